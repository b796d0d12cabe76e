//! One static pod manifest: decoding (JSON or YAML, one Pod per file), the checks upstream's
//! file source makes before it runs a pod, and upstream's defaults (`config/common.go`
//! `applyDefaults`): the uid is a hash of the decoded manifest, the node and the file path;
//! the name gets `-<node>` appended; the namespace defaults to `default`; the pod is bound to
//! the node, tolerates every NoExecute taint and carries the `kubernetes.io/config.*`
//! annotations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Toleration};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{CONFIG_HASH, CONFIG_SEEN, CONFIG_SOURCE, SOURCE_FILE};

/// Why a manifest file was skipped.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a decodable Pod.
    #[error("{path}: {message}")]
    Decode { path: PathBuf, message: String },
    /// A Pod the kubelet refuses to run.
    #[error("{path}: invalid pod: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Decodes `bytes` (the content of `path`) into a Pod.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Pod, ManifestError> {
    let bad = |message: String| ManifestError::Decode {
        path: path.to_owned(),
        message,
    };
    let json = path.extension().is_some_and(|e| e == "json");
    let value: Value = if json {
        serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?
    } else {
        serde_norway::from_slice(bytes).map_err(|e| bad(e.to_string()))?
    };
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "Pod" {
        return Err(bad(format!("kind: want \"Pod\", got {kind:?}")));
    }
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if api_version != "v1" {
        return Err(bad(format!("apiVersion: want \"v1\", got {api_version:?}")));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// The checks a decoded pod must pass on `node` (upstream validates static pods as the API would;
/// these are the fields the kubelet cannot run without).
pub fn validate(path: &Path, pod: &Pod, node: &str) -> Result<(), ManifestError> {
    let invalid = |message: String| ManifestError::Invalid {
        path: path.to_owned(),
        message,
    };
    let name = pod.metadata.name.as_deref().unwrap_or("");
    if name.is_empty() {
        return Err(invalid("metadata.name: Required value".into()));
    }
    let full = format!("{name}-{}", node.to_lowercase());
    let names = bramble_api::validation::names::is_dns1123_subdomain(&full);
    if let Some(m) = names.first() {
        return Err(invalid(format!(
            "metadata.name: Invalid value: {full:?}: {m}"
        )));
    }
    if pod.metadata.uid.as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(invalid(
            "metadata.uid: must not be set in a static pod".into(),
        ));
    }
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| invalid("spec: Required value".into()))?;
    if spec.containers.is_empty() {
        return Err(invalid("spec.containers: Required value".into()));
    }
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| ("initContainers", c));
    let all = all.chain(spec.containers.iter().map(|c| ("containers", c)));
    let mut seen = std::collections::HashSet::new();
    for (i, (field, c)) in all.enumerate() {
        if c.name.is_empty() {
            return Err(invalid(format!("spec.{field}[{i}].name: Required value")));
        }
        if !seen.insert(c.name.as_str()) {
            return Err(invalid(format!(
                "spec.{field}[{i}].name: Duplicate value: {:?}",
                c.name
            )));
        }
        if c.image.as_deref().unwrap_or("").is_empty() {
            return Err(invalid(format!("spec.{field}[{i}].image: Required value")));
        }
    }
    Ok(())
}

/// The static pod's uid: 32 hex digits of a SHA-256 over the decoded manifest (so comments
/// and formatting do not restart the pod), the node and the file path, as upstream hashes
/// the object, `host:<node>` and `file:<path>`.
pub fn pod_uid(pod: &Pod, node: &str, path: &Path) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(pod).unwrap_or_default());
    h.update(format!("host:{node}"));
    h.update(format!("file:{}", path.display()));
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Applies upstream's defaults to a decoded, validated `pod` read from `path`; `seen` is
/// the `kubernetes.io/config.seen` value.
pub fn apply_defaults(mut pod: Pod, node: &str, path: &Path, seen: &str) -> Pod {
    let uid = pod_uid(&pod, node, path);
    let meta = &mut pod.metadata;
    meta.name = Some(format!(
        "{}-{}",
        meta.name.as_deref().unwrap_or(""),
        node.to_lowercase()
    ));
    if meta.namespace.as_deref().unwrap_or("").is_empty() {
        meta.namespace = Some("default".into());
    }
    meta.uid = Some(uid.clone());
    let ann = meta.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert(CONFIG_HASH.into(), uid);
    ann.insert(CONFIG_SOURCE.into(), SOURCE_FILE.into());
    ann.insert(CONFIG_SEEN.into(), seen.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    spec.tolerations
        .get_or_insert_with(Vec::new)
        .push(Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        });
    pod
}

/// Reads, decodes, validates and defaults the manifest at `path`.
pub fn load(path: &Path, bytes: &[u8], node: &str, seen: &str) -> Result<Pod, ManifestError> {
    let pod = decode(path, bytes)?;
    validate(path, &pod, node)?;
    Ok(apply_defaults(pod, node, path, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    fn load_yaml(text: &str) -> Result<Pod, ManifestError> {
        load(Path::new("/m/web.yaml"), text.as_bytes(), "Node-1", "t0")
    }

    #[test]
    fn defaults_as_upstream() {
        let p = load_yaml(YAML).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        let uid = p.metadata.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        let ann = p.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[CONFIG_HASH], uid);
        assert_eq!(ann[CONFIG_SOURCE], "file");
        assert_eq!(ann[CONFIG_SEEN], "t0");
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("Node-1"));
        let tol = &spec.tolerations.as_ref().unwrap()[0];
        assert_eq!(tol.operator.as_deref(), Some("Exists"));
        assert_eq!(tol.effect.as_deref(), Some("NoExecute"));
        assert!(super::super::is_static_pod(&p));
        assert!(!super::super::is_mirror_pod(&p));
    }

    #[test]
    fn uid_follows_content_node_and_path_not_formatting() {
        let a = load_yaml(YAML).unwrap().metadata.uid.unwrap();
        let reformatted = YAML.replace("labels: {app: web}", "# comment\n  labels:\n    app: web");
        assert_eq!(load_yaml(&reformatted).unwrap().metadata.uid.unwrap(), a);
        let changed = YAML.replace("busybox", "busybox:2");
        assert_ne!(load_yaml(&changed).unwrap().metadata.uid.unwrap(), a);
        let other_node = load(Path::new("/m/web.yaml"), YAML.as_bytes(), "n2", "t0").unwrap();
        assert_ne!(other_node.metadata.uid.unwrap(), a);
        let other_path = load(Path::new("/m/x.yaml"), YAML.as_bytes(), "Node-1", "t0").unwrap();
        assert_ne!(other_path.metadata.uid.unwrap(), a);
        // The seen time is not part of the hash.
        let later = load(Path::new("/m/web.yaml"), YAML.as_bytes(), "Node-1", "t1").unwrap();
        assert_eq!(later.metadata.uid.unwrap(), a);
    }

    #[test]
    fn json_manifests_and_namespaces() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","namespace":"kube-system"},
            "spec":{"containers":[{"name":"c","image":"i"}]}}"#;
        let p = load(Path::new("/m/j.json"), json.as_bytes(), "n", "t").unwrap();
        assert_eq!(p.metadata.namespace.as_deref(), Some("kube-system"));
        assert_eq!(p.metadata.name.as_deref(), Some("j-n"));
    }

    #[test]
    fn bad_manifests_name_the_problem() {
        let cases = [
            ("kind: Service\napiVersion: v1\n", "kind: want \"Pod\""),
            ("apiVersion: v2\nkind: Pod\n", "apiVersion: want \"v1\""),
            ("kind: Pod\napiVersion: v1\n: : :\n", ""),
            ("kind: Pod\napiVersion: v1\nspec: {containers: []}\n", "metadata.name: Required"),
            (
                "kind: Pod\napiVersion: v1\nmetadata: {name: a}\nspec: {containers: []}\n",
                "spec.containers: Required",
            ),
            (
                "kind: Pod\napiVersion: v1\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n",
                "spec.containers[0].image: Required",
            ),
            (
                "kind: Pod\napiVersion: v1\nmetadata: {name: A_b}\nspec: {containers: [{name: c, image: i}]}\n",
                "metadata.name: Invalid value",
            ),
            (
                "kind: Pod\napiVersion: v1\nmetadata: {name: a}\nspec: {containers: [{name: c, image: i}, {name: c, image: i}]}\n",
                "Duplicate value",
            ),
        ];
        for (text, want) in cases {
            let err = load_yaml(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains("/m/web.yaml"), "{err}");
        }
    }
}
