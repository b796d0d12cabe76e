//! Pure decisions: the default StorageClass, which claims to provision where, and the
//! PersistentVolume for a claim.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{json, Value};

use crate::{CLASS_NAME, PROVISIONER};

/// The annotation marking the default class.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The scheduler's choice of node for a WaitForFirstConsumer claim.
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";

/// The `local-path` StorageClass.
pub fn storage_class() -> StorageClass {
    serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
    .expect("valid StorageClass")
}

/// The node a pending claim should be provisioned on: the scheduler's selected node, else
/// the node of a pod in its namespace that uses it.
pub fn consumer_node(pvc: &PersistentVolumeClaim, pods: &[Pod]) -> Option<String> {
    if let Some(n) = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE_ANNOTATION))
    {
        return Some(n.clone());
    }
    let name = pvc.metadata.name.as_deref()?;
    pods.iter()
        .filter(|p| p.metadata.namespace == pvc.metadata.namespace)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let spec = p.spec.as_ref()?;
            let uses = spec.volumes.iter().flatten().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == name)
            });
            uses.then(|| spec.node_name.clone()).flatten()
        })
        .next()
}

/// The PersistentVolume name of a claim (`pvc-<claim uid>`, as upstream provisioners).
pub fn volume_name(pvc: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or_default())
}

/// The PersistentVolume for `pvc` on `node`, its directory under `root`.
pub fn volume_for(pvc: &PersistentVolumeClaim, node: &str, root: &str) -> PersistentVolume {
    let ns = pvc.metadata.namespace.as_deref().unwrap_or("default");
    let name = pvc.metadata.name.as_deref().unwrap_or_default();
    let spec = pvc.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_else(|| "1Gi".into());
    let modes = spec
        .access_modes
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| vec!["ReadWriteOnce".into()]);
    let pv_name = volume_name(pvc);
    let path = format!("{}/{pv_name}_{ns}_{name}", root.trim_end_matches('/'));
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": modes,
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": CLASS_NAME,
            "volumeMode": "Filesystem",
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns,
                         "name": name, "uid": pvc.metadata.uid},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
        }
    }))
    .expect("valid PersistentVolume")
}

/// The claim's status once bound to `pv`.
pub fn bound_claim_status(pv: &PersistentVolume) -> Value {
    let spec = pv.spec.clone().unwrap_or_default();
    json!({
        "phase": "Bound",
        "accessModes": spec.access_modes,
        "capacity": spec.capacity.unwrap_or_default(),
    })
}

/// Whether the claim belongs to this provisioner: class `local-path`, not bound yet.
pub fn wants_volume(pvc: &PersistentVolumeClaim) -> bool {
    let spec = pvc.spec.as_ref();
    spec.and_then(|s| s.storage_class_name.as_deref()) == Some(CLASS_NAME)
        && spec
            .and_then(|s| s.volume_name.as_deref())
            .is_none_or(str::is_empty)
        && pvc.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc() -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "2Gi"}}}
        }))
        .unwrap()
    }

    #[test]
    fn first_consumer_decides_the_node() {
        let c = pvc();
        assert!(wants_volume(&c));
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "containers": [],
                     "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}
        }))
        .unwrap();
        assert_eq!(consumer_node(&c, &[]), None);
        assert_eq!(consumer_node(&c, &[pod]).as_deref(), Some("n1"));
        let pv = volume_for(&c, "n1", "/srv/storage/");
        let v = serde_json::to_value(&pv).unwrap();
        assert_eq!(v["metadata"]["name"], "pvc-u1");
        assert_eq!(v["spec"]["hostPath"]["path"], "/srv/storage/pvc-u1_ns_data");
        assert_eq!(v["spec"]["capacity"]["storage"], "2Gi");
        assert_eq!(
            v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                ["values"][0],
            "n1"
        );
        assert_eq!(bound_claim_status(&pv)["phase"], "Bound");
    }
}
