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
