//! Unit tests of the cached Pod: what survives the watch's deserialization, what is dropped.

use std::mem::size_of;

use k8s_openapi::api::core::v1 as api;
use kube::Resource;
use serde_json::{json, Value};

use crate::pod::Pod;

/// A pod with every field a reader uses and a sample of what the cache drops.
fn full_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1",
            "labels": {"app": "web", "pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                "uid": "rs1", "controller": true, "blockOwnerDeletion": true}],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "deletionTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "nodeName": "n1", "nodeSelector": {"disk": "ssd"}, "schedulerName": "default-scheduler",
            "priority": 10, "priorityClassName": "high", "preemptionPolicy": "Never",
            "hostname": "web-1", "subdomain": "web", "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 5, "activeDeadlineSeconds": 60,
            "overhead": {"cpu": "10m"},
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname",
                 "labelSelector": {"matchLabels": {"app": "web"}}}]}},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule"}],
            "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "50m"}},
                "command": ["envoy"], "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "containers": [{"name": "app", "image": "nginx:1",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"memory": "128Mi"}},
                "ports": [{"name": "http", "containerPort": 80, "hostPort": 8080,
                    "protocol": "TCP"}],
                "env": [{"name": "A", "value": "b"}], "args": ["-g"],
                "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
                "securityContext": {"runAsNonRoot": true}, "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets"}],
                "volumeDevices": [{"name": "blk", "devicePath": "/dev/b"}]}],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}}]}}],
            "serviceAccountName": "default", "dnsPolicy": "ClusterFirst",
            "securityContext": {"fsGroup": 2000}},
        "status": {
            "phase": "Running", "reason": "Evicted", "message": "dropped", "qosClass": "Burstable",
            "hostIP": "192.168.1.2", "hostIPs": [{"ip": "192.168.1.2"}],
            "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
            "nominatedNodeName": "n2", "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:01Z",
                "lastProbeTime": "2026-01-01T00:00:02Z", "observedGeneration": 2}],
            "initContainerStatuses": [{"name": "proxy", "image": "envoy", "imageID": "sha",
                "ready": true, "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
            "containerStatuses": [{"name": "app", "image": "nginx:1", "imageID": "sha",
                "containerID": "containerd://x", "ready": true, "restartCount": 3,
                "started": true,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                "lastState": {"terminated": {"exitCode": 42, "reason": "Error"}}}]}
    })
}

/// What the cache keeps of [`full_pod`].
fn kept() -> Value {
    let mut want = full_pod();
    let obj = want.as_object_mut().unwrap();
    obj.remove("apiVersion");
    obj.remove("kind");
    let spec = want["spec"].as_object_mut().unwrap();
    for f in [
        "volumes",
        "serviceAccountName",
        "dnsPolicy",
        "securityContext",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
    ] {
        spec.remove(f);
    }
    for f in ["command", "volumeMounts"] {
        want["spec"]["initContainers"][0]
            .as_object_mut()
            .unwrap()
            .remove(f);
    }
    let app = want["spec"]["containers"][0].as_object_mut().unwrap();
    for f in [
        "env",
        "args",
        "livenessProbe",
        "securityContext",
        "imagePullPolicy",
        "volumeMounts",
        "volumeDevices",
    ] {
        app.remove(f);
    }
    let status = want["status"].as_object_mut().unwrap();
    for f in [
        "reason", "message", "qosClass", "hostIP", "hostIPs", "podIPs",
    ] {
        status.remove(f);
    }
    for f in ["lastProbeTime", "observedGeneration"] {
        want["status"]["conditions"][0]
            .as_object_mut()
            .unwrap()
            .remove(f);
    }
    for list in ["initContainerStatuses", "containerStatuses"] {
        for cs in want["status"][list].as_array_mut().unwrap() {
            let cs = cs.as_object_mut().unwrap();
            for f in ["image", "imageID", "containerID", "started", "lastState"] {
                cs.remove(f);
            }
        }
    }
    want
}

#[test]
fn the_cache_keeps_every_field_a_reader_uses_and_drops_the_rest() {
    let pod: Pod = serde_json::from_value(full_pod()).unwrap();
    assert_eq!(serde_json::to_value(&pod).unwrap(), kept());
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("n1"));
    assert_eq!(
        spec.containers[0].ports.as_ref().unwrap()[0].host_port,
        Some(8080)
    );
    let status = pod.status.as_ref().unwrap();
    assert_eq!(
        status.container_statuses.as_ref().unwrap()[0].restart_count,
        3
    );
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.5"));
}

#[test]
fn an_api_pod_converts_to_what_the_watch_would_have_cached() {
    let full: api::Pod = serde_json::from_value(full_pod()).unwrap();
    let from_watch: Pod = serde_json::from_value(full_pod()).unwrap();
    assert_eq!(Pod::from_api(&full).unwrap(), from_watch);
}

#[test]
fn a_minimal_pod_reads_with_defaults() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"containerStatuses": [{"name": "c", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0}]}
    }))
    .unwrap();
    assert_eq!(pod.spec.unwrap().containers[0].name, "c");
    assert!(!pod.status.unwrap().container_statuses.unwrap()[0].ready);
}

#[test]
fn the_cached_pod_is_the_pods_resource() {
    assert_eq!(Pod::kind(&()), "Pod");
    assert_eq!(Pod::api_version(&()), "v1");
    assert_eq!(Pod::url_path(&(), Some("ns")), "/api/v1/namespaces/ns/pods");
}

#[test]
fn the_cached_types_are_a_fraction_of_the_api_types() {
    // The point of the type: fixed sizes the API types spend on fields nobody here reads.
    assert!(size_of::<crate::pod::Container>() * 4 <= size_of::<api::Container>());
    assert!(size_of::<crate::pod::ContainerStatus>() * 2 <= size_of::<api::ContainerStatus>());
    assert!(size_of::<Pod>() * 2 <= size_of::<api::Pod>());
}

#[test]
fn resource_lists_read_and_write_as_maps() {
    let c: crate::pod::Container = serde_json::from_value(json!({"name": "c",
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}}}))
    .unwrap();
    let r = c.resources.as_ref().unwrap();
    let requests = r.requests.as_ref().unwrap();
    assert_eq!(requests.get("memory").map(|q| q.0.as_str()), Some("64Mi"));
    assert_eq!(requests.get("ephemeral-storage"), None);
    assert_eq!(requests.len(), 2);
    assert_eq!(
        serde_json::to_value(&c).unwrap()["resources"],
        json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}})
    );
    let dup: crate::pod::ResourceList =
        serde_json::from_str(r#"{"cpu": "1", "cpu": "2"}"#).unwrap();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup.get("cpu").map(|q| q.0.as_str()), Some("2"));
}

/// A pending pod with admission's default tolerations (and `seconds` in the second).
fn with_tolerations(name: &str, seconds: i64) -> Pod {
    serde_json::from_value(
        json!({"metadata": {"name": name}, "spec": {"containers": [],
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": seconds}]}}),
    )
    .unwrap()
}

fn tolerations_of(pod: &Pod) -> &crate::intern::Tolerations {
    pod.spec.as_ref().unwrap().tolerations.as_ref().unwrap()
}

#[test]
fn equal_toleration_lists_are_one_shared_list() {
    let (a, b) = (with_tolerations("a", 300), with_tolerations("b", 300));
    assert!(std::sync::Arc::ptr_eq(
        tolerations_of(&a),
        tolerations_of(&b)
    ));
    let other = with_tolerations("c", 60);
    assert!(!std::sync::Arc::ptr_eq(
        tolerations_of(&a),
        tolerations_of(&other)
    ));
    assert_eq!(tolerations_of(&other)[1].toleration_seconds, Some(60));
    // a list nobody holds any more is not handed out again
    let weak = std::sync::Arc::downgrade(tolerations_of(&other));
    drop(other);
    assert!(weak.upgrade().is_none());
}

#[test]
fn shared_tolerations_read_and_write_the_api_json() {
    let pod = with_tolerations("a", 300);
    let back = serde_json::to_value(&pod).unwrap();
    assert_eq!(
        back["spec"]["tolerations"][1],
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 300})
    );
    let again: Pod = serde_json::from_value(back).unwrap();
    assert_eq!(again, pod);
    let none: Pod = serde_json::from_value(json!({"metadata": {"name": "n"},
        "spec": {"containers": [], "tolerations": null}}))
    .unwrap();
    assert_eq!(none.spec.unwrap().tolerations, None);
}
