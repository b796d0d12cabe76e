//! downwardAPI volumes: files holding pod fields (`fieldRef`) and container resources
//! (`resourceFieldRef`), formatted as upstream's kubelet writes them.

use std::collections::BTreeMap;

use bramble_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod, ResourceFieldSelector};

use super::atomic_writer::{FileProjection, Payload};
use super::error::VolumeError;
use crate::pod_spec::{containers, init_containers};

/// upstream `FormatMap`: sorted `key="value"` lines (Go `%q` quoting), no final newline.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of a `fieldRef` in a downwardAPI volume.
pub fn field_value(pod: &Pod, path: &str) -> Result<String, VolumeError> {
    let md = &pod.metadata;
    let sub = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|k| k.strip_suffix("']"))
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.name" => md.name.clone().unwrap_or_default(),
        "metadata.namespace" => md.namespace.clone().unwrap_or_default(),
        "metadata.uid" => md.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(md.labels.as_ref()),
        "metadata.annotations" => format_map(md.annotations.as_ref()),
        _ => {
            if let Some(k) = sub("metadata.labels['") {
                md.labels
                    .as_ref()
                    .and_then(|l| l.get(&k).cloned())
                    .unwrap_or_default()
            } else if let Some(k) = sub("metadata.annotations['") {
                md.annotations
                    .as_ref()
                    .and_then(|l| l.get(&k).cloned())
                    .unwrap_or_default()
            } else {
                return Err(VolumeError::Setup(format!("unsupported fieldPath: {path}")));
            }
        }
    })
}

/// Node facts a `resourceFieldRef` falls back to when a limit is unset.
#[derive(Debug, Clone, Copy)]
pub struct NodeAllocatable {
    /// Millicores.
    pub cpu_milli: i64,
    /// Bytes.
    pub memory: i64,
}

/// The value of a `resourceFieldRef` (upstream `ExtractContainerResourceValue` with limits
/// defaulted to node allocatable): `ceil(quantity / divisor)`.
pub fn resource_value(
    pod: &Pod,
    default_container: Option<&str>,
    sel: &ResourceFieldSelector,
    node: NodeAllocatable,
) -> Result<String, VolumeError> {
    let name = sel
        .container_name
        .as_deref()
        .or(default_container)
        .unwrap_or("");
    let c = containers(pod)
        .iter()
        .chain(init_containers(pod))
        .find(|c| c.name == name)
        .ok_or_else(|| VolumeError::Setup(format!("container {name:?} not found")))?;
    let res = c.resources.as_ref();
    let get = |kind: &str, key: &str| {
        res.and_then(|r| {
            if kind == "limits" {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        })
        .and_then(|m| m.get(key))
        .and_then(|q| Quantity::parse(&q.0).ok())
    };
    let (kind, key) = sel.resource.split_once('.').ok_or_else(|| {
        VolumeError::Setup(format!("unsupported container resource : {}", sel.resource))
    })?;
    let q = match (kind, key) {
        ("limits", "cpu") => get(kind, key).unwrap_or_else(|| Quantity::from_milli(node.cpu_milli)),
        ("limits", "memory") => get(kind, key).unwrap_or_else(|| {
            Quantity::from_int(node.memory, bramble_api::quantity::Format::BinarySI)
        }),
        ("limits" | "requests", "cpu" | "memory" | "ephemeral-storage") => {
            get(kind, key).unwrap_or_else(Quantity::zero)
        }
        _ => {
            return Err(VolumeError::Setup(format!(
                "unsupported container resource : {}",
                sel.resource
            )))
        }
    };
    let divisor = sel
        .divisor
        .as_ref()
        .and_then(|d| Quantity::parse(&d.0).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or_else(|| Quantity::from_milli(1000));
    let (n, d) = (q.nanos(), divisor.nanos());
    let v = n / d + i128::from(n % d != 0 && (n > 0) == (d > 0));
    Ok(v.to_string())
}

/// The files of a downwardAPI item list.
pub fn make_payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    node: NodeAllocatable,
) -> Result<Payload, VolumeError> {
    let mut payload = Payload::new();
    for item in items {
        let data = if let Some(f) = &item.field_ref {
            field_value(pod, &f.field_path)?
        } else if let Some(r) = &item.resource_field_ref {
            resource_value(pod, None, r, node)?
        } else {
            continue;
        };
        payload.insert(
            item.path.clone(),
            FileProjection {
                data: data.into_bytes(),
                mode: item.mode.unwrap_or(default_mode) as u32,
            },
        );
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_and_resources() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"b": "2", "a": "x\"y"}},
            "spec": {"containers": [{"name": "c", "resources": {
                "limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"memory": "32Mi"}}}]}
        }))
        .unwrap();
        assert_eq!(
            field_value(&pod, "metadata.labels").unwrap(),
            "a=\"x\\\"y\"\nb=\"2\""
        );
        assert_eq!(field_value(&pod, "metadata.labels['b']").unwrap(), "2");
        let node = NodeAllocatable {
            cpu_milli: 4000,
            memory: 1 << 30,
        };
        let sel = |r: &str, d: Option<&str>| ResourceFieldSelector {
            container_name: Some("c".into()),
            resource: r.into(),
            divisor: d.map(|d| k8s_openapi::apimachinery::pkg::api::resource::Quantity(d.into())),
        };
        assert_eq!(
            resource_value(&pod, None, &sel("limits.cpu", None), node).unwrap(),
            "1"
        );
        assert_eq!(
            resource_value(&pod, None, &sel("limits.cpu", Some("1m")), node).unwrap(),
            "250"
        );
        assert_eq!(
            resource_value(&pod, None, &sel("limits.memory", Some("1Mi")), node).unwrap(),
            "64"
        );
        assert_eq!(
            resource_value(&pod, None, &sel("requests.memory", None), node).unwrap(),
            (32u64 << 20).to_string()
        );
        assert!(resource_value(&pod, None, &sel("limits.gpu", None), node).is_err());
    }
}
