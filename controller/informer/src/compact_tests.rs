//! Unit tests of what the caches drop.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;

use crate::compact::{compact, LAST_APPLIED};

#[test]
fn pods_lose_managed_fields_volumes_and_mounts_and_keep_the_rest() {
    let mut pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"},
            "annotations": {LAST_APPLIED: "{}"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
        "spec": {
            "nodeName": "n1",
            "initContainers": [{"name": "init", "image": "i",
                "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
            "containers": [{"name": "app", "image": "a",
                "resources": {"requests": {"cpu": "10m"}},
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets"}],
                "volumeDevices": [{"name": "blk", "devicePath": "/dev/b"}]}],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}}]}}]},
        "status": {"phase": "Running", "podIP": "10.0.0.5"}
    }))
    .unwrap();
    compact(&mut pod);
    let got = serde_json::to_value(&pod).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"}},
            "spec": {
                "nodeName": "n1",
                "initContainers": [{"name": "init", "image": "i"}],
                "containers": [{"name": "app", "image": "a",
                    "resources": {"requests": {"cpu": "10m"}},
                    "ports": [{"containerPort": 80, "hostPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5"}
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
