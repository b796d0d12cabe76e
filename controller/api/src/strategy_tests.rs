//! Strategy behaviour against upstream's registry strategies.

use super::*;
use crate::registry::Registry;
use std::sync::Arc;

fn info(group: &str, resource: &str) -> Arc<ResourceInfo> {
    Registry::builtin()
        .all()
        .into_iter()
        .find(|r| r.group == group && r.resource == resource)
        .unwrap()
}

fn container(requests: Value, limits: Value) -> Value {
    json!({"name": "c", "image": "i", "resources": {"requests": requests, "limits": limits}})
}

#[test]
fn qos_classes_match_get_pod_qos() {
    let spec = |cs: Vec<Value>| json!({ "containers": cs });
    assert_eq!(qos_class(&spec(vec![json!({"name": "c"})])), "BestEffort");
    assert_eq!(qos_class(&json!({})), "BestEffort");
    // Zero quantities do not count.
    assert_eq!(
        qos_class(&spec(vec![container(json!({"cpu": "0"}), json!({}))])),
        "BestEffort"
    );
    let g = container(
        json!({"cpu": "500m", "memory": "64Mi"}),
        json!({"cpu": "0.5", "memory": "64Mi"}),
    );
    assert_eq!(qos_class(&spec(vec![g.clone()])), "Guaranteed");
    assert_eq!(qos_class(&spec(vec![g.clone(), g.clone()])), "Guaranteed");
    // One container without limits makes the pod Burstable.
    assert_eq!(
        qos_class(&spec(vec![g.clone(), json!({"name": "d"})])),
        "Burstable"
    );
    assert_eq!(
        qos_class(&spec(vec![container(json!({"cpu": "100m"}), json!({}))])),
        "Burstable"
    );
    assert_eq!(
        qos_class(&spec(vec![container(
            json!({"cpu": "100m", "memory": "1Mi"}),
            json!({"cpu": "200m", "memory": "1Mi"})
        )])),
        "Burstable"
    );
    // Limits only (before defaulting copies them to requests): Burstable, as upstream.
    assert_eq!(
        qos_class(&spec(vec![container(
            json!({}),
            json!({"cpu": "1", "memory": "1Gi"})
        )])),
        "Burstable"
    );
    // Other resources are ignored.
    let gpu = container(
        json!({"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}),
        json!({"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}),
    );
    assert_eq!(qos_class(&spec(vec![gpu])), "Guaranteed");
    // Init containers count.
    let s = json!({"containers": [g.clone()], "initContainers": [container(json!({"cpu": "1"}), json!({}))]});
    assert_eq!(qos_class(&s), "Burstable");
    let s = json!({"containers": [g], "initContainers": [container(json!({"cpu": "1", "memory": "1Mi"}), json!({"cpu": "1", "memory": "1Mi"}))]});
    assert_eq!(qos_class(&s), "Guaranteed");
}

#[test]
fn pod_create_resets_status_and_sets_generation() {
    let pods = info("", "pods");
    let mut pod = json!({"metadata": {"name": "p", "generation": 7, "deletionTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"containers": [container(json!({"cpu": "1", "memory": "1Gi"}), json!({"cpu": "1", "memory": "1Gi"}))]},
        "status": {"phase": "Running", "podIP": "1.2.3.4"}});
    prepare_for_create(&pods, &mut pod);
    assert_eq!(
        pod["status"],
        json!({"phase": "Pending", "qosClass": "Guaranteed"})
    );
    assert_eq!(pod["metadata"]["generation"], 1);
    assert!(pod["metadata"].get("deletionTimestamp").is_none());

    let mut gated = json!({"metadata": {"name": "g"}, "spec": {"containers": [], "schedulingGates": [{"name": "x"}]}});
    prepare_for_create(&pods, &mut gated);
    assert_eq!(gated["status"]["qosClass"], "BestEffort");
    assert_eq!(
        gated["status"]["conditions"][0]["reason"],
        "SchedulingGated"
    );
    assert_eq!(gated["status"]["conditions"][0]["status"], "False");
}

#[test]
fn create_clears_status_where_upstream_does() {
    let mut d =
        json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"replicas": 5}});
    prepare_for_create(&info("apps", "deployments"), &mut d);
    assert_eq!(d["status"], json!({}));
    assert_eq!(d["metadata"]["generation"], 1);

    let mut svc = json!({"metadata": {"name": "s"}, "spec": {}, "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
    prepare_for_create(&info("", "services"), &mut svc);
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    assert!(svc["metadata"].get("generation").is_none());

    let mut node = json!({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}});
    prepare_for_create(&info("", "nodes"), &mut node);
    assert_eq!(node["status"]["capacity"]["cpu"], "4");

    let mut cm = json!({"metadata": {"name": "c", "generation": 3}, "data": {}});
    prepare_for_create(&info("", "configmaps"), &mut cm);
    assert_eq!(cm["metadata"]["generation"], 3);
    assert!(cm.get("status").is_none());

    let mut ns = json!({"metadata": {"name": "n"}, "status": {"phase": "Terminating"}});
    prepare_for_create(&info("", "namespaces"), &mut ns);
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));

    let mut pvc = json!({"metadata": {"name": "c"}, "status": {"phase": "Bound"}});
    prepare_for_create(&info("", "persistentvolumeclaims"), &mut pvc);
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));

    let mut ds = json!({"metadata": {"name": "d"}});
    prepare_for_create(&info("apps", "daemonsets"), &mut ds);
    assert_eq!(ds["status"]["desiredNumberScheduled"], 0);
}

#[test]
fn job_create_generates_its_selector() {
    let jobs = info("batch", "jobs");
    let mut job = json!({"metadata": {"name": "pi", "uid": "u-1"},
        "spec": {"template": {"metadata": {"labels": {"job-name": "custom"}}, "spec": {}}}});
    prepare_for_create(&jobs, &mut job);
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    let labels = &job["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], "u-1");
    assert_eq!(labels["controller-uid"], "u-1");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
    assert_eq!(labels["job-name"], "custom");
    assert_eq!(job["metadata"]["generation"], 1);

    let mut manual = json!({"metadata": {"name": "m", "uid": "u"}, "spec": {"manualSelector": true,
        "selector": {"matchLabels": {"a": "b"}}, "template": {}}});
    prepare_for_create(&jobs, &mut manual);
    assert_eq!(
        manual["spec"]["selector"],
        json!({"matchLabels": {"a": "b"}})
    );
}

#[test]
fn crd_create_records_storage_version() {
    let mut crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"versions": [
        {"name": "v1alpha1", "served": true, "storage": false},
        {"name": "v1", "served": true, "storage": true}]}, "status": {"storedVersions": ["x"]}});
    prepare_for_create(
        &info("apiextensions.k8s.io", "customresourcedefinitions"),
        &mut crd,
    );
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
}

#[test]
fn custom_resources_track_generation_and_drop_status_on_create() {
    let mut widget_info = (*info("", "configmaps")).clone();
    widget_info.group = "example.com".into();
    widget_info.resource = "widgets".into();
    widget_info.kind = "Widget".into();
    widget_info.decode = None;
    widget_info.subresources = vec!["status".into()];
    let mut w = json!({"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"ok": true}});
    prepare_for_create(&widget_info, &mut w);
    assert!(w.get("status").is_none());
    assert_eq!(w["metadata"]["generation"], 1);
    let old = json!({"metadata": {"name": "w", "generation": 1}, "spec": {"size": 1}, "status": {"ok": true}});
    let mut new = json!({"metadata": {"name": "w"}, "spec": {"size": 2}, "status": {"ok": false}});
    prepare_for_update(&widget_info, &mut new, &old);
    assert_eq!(new["metadata"]["generation"], 2);
    assert_eq!(new["status"], json!({"ok": true}));
}

#[test]
fn update_keeps_status_and_bumps_generation_on_spec_change() {
    let deploy = info("apps", "deployments");
    let old = json!({"metadata": {"name": "d", "uid": "u", "generation": 3, "creationTimestamp": "t0"},
        "spec": {"replicas": 1}, "status": {"replicas": 1}});
    let mut new = json!({"metadata": {"name": "d", "generation": 99, "creationTimestamp": "t9", "labels": {"a": "b"}},
        "spec": {"replicas": 1}, "status": {"replicas": 42}});
    prepare_for_update(&deploy, &mut new, &old);
    assert_eq!(new["status"], json!({"replicas": 1}));
    assert_eq!(
        new["metadata"]["generation"], 3,
        "label change does not bump"
    );
    assert_eq!(new["metadata"]["uid"], "u");
    assert_eq!(new["metadata"]["creationTimestamp"], "t0");

    let mut new = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}});
    prepare_for_update(&deploy, &mut new, &old);
    assert_eq!(new["metadata"]["generation"], 4);
    assert_eq!(new["status"], json!({"replicas": 1}));

    let mut new =
        json!({"metadata": {"name": "d", "annotations": {"x": "y"}}, "spec": {"replicas": 1}});
    prepare_for_update(&deploy, &mut new, &old);
    assert_eq!(
        new["metadata"]["generation"], 4,
        "deployments bump on annotation changes"
    );

    let rs = info("apps", "replicasets");
    let mut new =
        json!({"metadata": {"name": "d", "annotations": {"x": "y"}}, "spec": {"replicas": 1}});
    prepare_for_update(&rs, &mut new, &old);
    assert_eq!(new["metadata"]["generation"], 3);

    // Kinds without generation tracking keep the old generation (none here).
    let cms = info("", "configmaps");
    let mut new = json!({"metadata": {"name": "c", "generation": 5}, "data": {"a": "b"}});
    prepare_for_update(
        &cms,
        &mut new,
        &json!({"metadata": {"name": "c"}, "data": {}}),
    );
    assert!(new["metadata"].get("generation").is_none());
}

#[test]
fn update_cannot_touch_deletion_timestamp() {
    let pods = info("", "pods");
    let old = json!({"metadata": {"name": "p", "deletionTimestamp": "t1", "deletionGracePeriodSeconds": 30}, "spec": {}});
    let mut new = json!({"metadata": {"name": "p"}, "spec": {}});
    prepare_for_update(&pods, &mut new, &old);
    assert_eq!(new["metadata"]["deletionTimestamp"], "t1");
    assert_eq!(new["metadata"]["deletionGracePeriodSeconds"], 30);
    let mut new = json!({"metadata": {"name": "p", "deletionTimestamp": "t2"}, "spec": {}});
    prepare_for_update(
        &pods,
        &mut new,
        &json!({"metadata": {"name": "p"}, "spec": {}}),
    );
    assert!(new["metadata"].get("deletionTimestamp").is_none());
}

#[test]
fn pod_update_bumps_generation_on_spec_change_only() {
    let pods = info("", "pods");
    let old = json!({"metadata": {"name": "p", "generation": 1}, "spec": {"containers": [{"name": "c", "image": "a"}]},
        "status": {"phase": "Running"}});
    let mut new = json!({"metadata": {"name": "p", "labels": {"x": "y"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}});
    prepare_for_update(&pods, &mut new, &old);
    assert_eq!(new["metadata"]["generation"], 1);
    assert_eq!(new["status"]["phase"], "Running");
    let mut new =
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "b"}]}});
    prepare_for_update(&pods, &mut new, &old);
    assert_eq!(new["metadata"]["generation"], 2);
}

#[test]
fn namespace_and_csr_updates_keep_protected_fields() {
    let ns = info("", "namespaces");
    let old = json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    let mut new = json!({"metadata": {"name": "n"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}});
    prepare_for_update(&ns, &mut new, &old);
    assert_eq!(new["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(new["status"]["phase"], "Active");

    let mut fin = json!({"metadata": {"name": "n", "resourceVersion": "9", "labels": {"x": "y"}}, "spec": {"finalizers": []}});
    prepare_for_subresource_update(&ns, "finalize", &mut fin, &old);
    assert_eq!(fin["spec"]["finalizers"], json!([]));
    assert!(fin["metadata"].get("labels").is_none());
    assert_eq!(fin["metadata"]["resourceVersion"], "9");

    let csr = info("certificates.k8s.io", "certificatesigningrequests");
    let old = json!({"metadata": {"name": "c"}, "spec": {"request": "AAAA", "signerName": "s"}, "status": {}});
    let mut new = json!({"metadata": {"name": "c"}, "spec": {"request": "BBBB", "signerName": "s"},
        "status": {"certificate": "x"}});
    prepare_for_update(&csr, &mut new, &old);
    assert_eq!(new["spec"]["request"], "AAAA");
    assert_eq!(new["status"], json!({}));

    let mut approve = json!({"metadata": {"name": "c"}, "spec": {"request": "ZZZZ"},
        "status": {"certificate": "x", "conditions": [{"type": "Approved", "status": "True", "reason": "OK"}]}});
    prepare_for_subresource_update(&csr, "approval", &mut approve, &old);
    assert_eq!(approve["spec"]["request"], "AAAA");
    assert!(approve["status"].get("certificate").is_none());
    let cond = &approve["status"]["conditions"][0];
    assert_eq!(cond["type"], "Approved");
    assert!(cond["lastUpdateTime"].is_string());
    assert!(cond["lastTransitionTime"].is_string());

    // Approval conditions cannot change through /status.
    let approved = approve.clone();
    let mut st = json!({"metadata": {"name": "c"}, "spec": {}, "status": {"certificate": "CERT", "conditions": []}});
    prepare_for_status_update(&csr, &mut st, &approved);
    assert_eq!(st["status"]["certificate"], "CERT");
    assert_eq!(st["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(st["spec"]["request"], "AAAA");
}

#[test]
fn status_update_changes_only_status() {
    let deploy = info("apps", "deployments");
    let old = json!({"metadata": {"name": "d", "generation": 2, "labels": {"a": "1"}, "annotations": {"x": "1"},
        "finalizers": ["f"], "ownerReferences": [{"name": "o"}], "resourceVersion": "5"},
        "spec": {"replicas": 3}, "status": {"replicas": 1}});
    let mut new = json!({"metadata": {"name": "d", "generation": 9, "labels": {"a": "2"}, "resourceVersion": "5"},
        "spec": {"replicas": 100}, "status": {"replicas": 3, "readyReplicas": 3}, "extra": 1});
    prepare_for_status_update(&deploy, &mut new, &old);
    assert_eq!(new["spec"], json!({"replicas": 3}));
    assert!(new.get("extra").is_none());
    assert_eq!(new["status"], json!({"replicas": 3, "readyReplicas": 3}));
    assert_eq!(new["metadata"]["generation"], 2);
    assert_eq!(new["metadata"]["labels"], json!({"a": "1"}));
    assert_eq!(new["metadata"]["annotations"], json!({"x": "1"}));
    assert_eq!(new["metadata"]["finalizers"], json!(["f"]));
    assert_eq!(new["metadata"]["ownerReferences"], json!([{"name": "o"}]));
    assert_eq!(new["metadata"]["resourceVersion"], "5");
}

#[test]
fn pod_status_update_follows_the_pod_status_strategy() {
    let pods = info("", "pods");
    let old = json!({"metadata": {"name": "p", "labels": {"a": "1"}, "ownerReferences": [{"name": "rs"}]},
        "spec": {"nodeName": "n1"}, "status": {"phase": "Pending", "qosClass": "Burstable", "observedGeneration": 2}});
    let mut new = json!({"metadata": {"name": "p", "labels": {"a": "2"}, "ownerReferences": []},
        "spec": {"nodeName": "evil"}, "status": {"phase": "Running"}});
    prepare_for_status_update(&pods, &mut new, &old);
    assert_eq!(new["spec"]["nodeName"], "n1");
    assert_eq!(new["status"]["phase"], "Running");
    assert_eq!(new["status"]["qosClass"], "Burstable");
    assert_eq!(new["status"]["observedGeneration"], 2);
    assert_eq!(new["metadata"]["ownerReferences"], json!([{"name": "rs"}]));
    assert_eq!(new["metadata"]["labels"], json!({"a": "2"}));
}

#[test]
fn pod_spec_subresources_change_only_their_fields() {
    let pods = info("", "pods");
    let old = json!({"metadata": {"name": "p", "generation": 1, "resourceVersion": "3"},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "a",
            "resources": {"requests": {"cpu": "100m"}}}]},
        "status": {"phase": "Running"}});
    let mut new = json!({"metadata": {"name": "p", "resourceVersion": "3", "labels": {"x": "y"}},
        "spec": {"nodeName": "other", "containers": [{"name": "c", "image": "b",
            "resources": {"requests": {"cpu": "200m"}}}]}});
    prepare_for_subresource_update(&pods, "resize", &mut new, &old);
    assert_eq!(
        new["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "200m"
    );
    assert_eq!(new["spec"]["containers"][0]["image"], "a");
    assert_eq!(new["spec"]["nodeName"], "n");
    assert!(new["metadata"].get("labels").is_none());
    assert_eq!(new["metadata"]["generation"], 2);
    assert_eq!(new["status"]["phase"], "Running");

    let mut eph = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "x", "containers": [],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}});
    prepare_for_subresource_update(&pods, "ephemeralcontainers", &mut eph, &old);
    assert_eq!(eph["spec"]["ephemeralContainers"][0]["name"], "debug");
    assert_eq!(eph["spec"]["containers"][0]["image"], "a");
    assert_eq!(eph["metadata"]["generation"], 2);
}
