//! Unit tests of what the caches drop.

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use crate::compact::{compact, LAST_APPLIED};
use crate::pod::Pod;

#[test]
fn cached_pods_lose_managed_fields_and_last_applied() {
    let mut pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"},
            "annotations": {LAST_APPLIED: "{}"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "a"}]}
    }))
    .unwrap();
    compact(&mut pod);
    assert_eq!(
        serde_json::to_value(&pod).unwrap(),
        json!({
            "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "a"}]}
        })
    );
}

#[test]
fn other_kinds_lose_only_managed_fields_and_last_applied() {
    let mut cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "c", "annotations": {LAST_APPLIED: "{}", "keep": "v"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
        "data": {"k": "v"}
    }))
    .unwrap();
    compact(&mut cm);
    assert_eq!(
        serde_json::to_value(&cm).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "annotations": {"keep": "v"}}, "data": {"k": "v"}})
    );
}

#[test]
fn cached_pods_hold_no_spare_list_capacity() {
    let mut pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "apps/v1",
            "kind": "ReplicaSet", "name": "r", "uid": "u"}]},
        "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80}]}],
            "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]},
        "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    }))
    .unwrap();
    compact(&mut pod);
    let spec = pod.spec.as_ref().unwrap();
    let status = pod.status.as_ref().unwrap();
    assert_eq!(spec.containers.capacity(), 1);
    assert_eq!(spec.containers[0].ports.as_ref().unwrap().capacity(), 1);
    // tolerations are a shared slice (crate::intern), exact by construction
    assert_eq!(spec.tolerations.as_ref().unwrap().len(), 2);
    assert_eq!(status.conditions.as_ref().unwrap().capacity(), 1);
    assert_eq!(
        pod.metadata.owner_references.as_ref().unwrap().capacity(),
        1
    );
}
