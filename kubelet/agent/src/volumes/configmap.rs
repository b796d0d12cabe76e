//! configMap volumes: the ConfigMap's keys (or the listed `items`) as files, with
//! `defaultMode`/`mode`, through the atomic writer; an absent ConfigMap or key fails the
//! mount unless `optional`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath};
use kube::{Api, Client};

use super::atomic_writer::{FileProjection, Payload};
use super::error::VolumeError;

/// Upstream's default file mode of configMap, secret, downwardAPI and projected volumes.
pub const DEFAULT_MODE: i32 = 0o644;

/// Reads a ConfigMap (`None` when it does not exist).
pub async fn fetch(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<ConfigMap>, VolumeError> {
    Ok(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?)
}

/// A ConfigMap's entries as bytes (`data` and `binaryData`).
pub fn entries(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in cm.data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// Upstream `MakePayload` for configMap and secret sources: every key, or the `items`
/// mapping (a missing key fails unless `optional`). `kind` is `configmap` or `secret`.
pub fn make_payload(
    entries: Option<&BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    kind: &str,
) -> Result<Payload, VolumeError> {
    let mut payload = Payload::new();
    let Some(entries) = entries else {
        return Ok(payload);
    };
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in entries {
                payload.insert(
                    k.clone(),
                    FileProjection {
                        data: v.clone(),
                        mode: default_mode as u32,
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                let Some(v) = entries.get(&item.key) else {
                    if optional {
                        continue;
                    }
                    // Upstream's two wordings.
                    return Err(VolumeError::Setup(match kind {
                        "secret" => format!("references non-existent secret key: {}", item.key),
                        _ => format!("configmap references non-existent config key: {}", item.key),
                    }));
                };
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: v.clone(),
                        mode: item.mode.unwrap_or(default_mode) as u32,
                    },
                );
            }
        }
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_modes_and_optional() {
        let mut e = BTreeMap::new();
        e.insert("a".to_string(), b"1".to_vec());
        e.insert("b".to_string(), b"2".to_vec());
        let all = make_payload(Some(&e), None, 0o600, false, "configmap").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["a"].mode, 0o600);
        let items = [KeyToPath {
            key: "b".into(),
            path: "dir/bee".into(),
            mode: Some(0o400),
        }];
        let some = make_payload(Some(&e), Some(&items), 0o644, false, "configmap").unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(some["dir/bee"].mode, 0o400);
        let missing = [KeyToPath {
            key: "zz".into(),
            path: "zz".into(),
            mode: None,
        }];
        let err = make_payload(Some(&e), Some(&missing), 0o644, false, "configmap").unwrap_err();
        assert_eq!(
            err.to_string(),
            "configmap references non-existent config key: zz"
        );
        assert!(
            make_payload(Some(&e), Some(&missing), 0o644, true, "configmap")
                .unwrap()
                .is_empty()
        );
        assert!(make_payload(None, None, 0o644, false, "configmap")
            .unwrap()
            .is_empty());
    }
}
