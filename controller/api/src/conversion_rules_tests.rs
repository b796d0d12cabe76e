//! A served version without rules of its own (autoscaling/v1 HorizontalPodAutoscalers) is
//! defaulted, prepared, validated and printed as its storage version.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::conversion::hpa::{CONDITIONS_ANNOTATION, CURRENT_METRICS_ANNOTATION};
use crate::printers::{self, TableOptions};
use crate::registry::Registry;
use crate::resources::ResourceInfo;
use crate::{defaults, strategy, validation};

fn hpa(version: &str) -> ResourceInfo {
    Registry::builtin()
        .find("autoscaling", version, "horizontalpodautoscalers")
        .expect("served")
        .as_ref()
        .clone()
}

fn v1(spec: Value) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "1",
            "creationTimestamp": "2026-11-24T00:00:00Z"},
        "spec": spec})
}

fn target() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
}

#[test]
fn both_versions_are_served_with_v2_first() {
    let registry = Registry::builtin();
    let versions: Vec<String> = registry
        .find_group_kind("autoscaling", "HorizontalPodAutoscaler")
        .iter()
        .map(|r| r.version.clone())
        .collect();
    assert_eq!(versions, ["v2", "v1"]);
    let (v1, v2) = (hpa("v1"), hpa("v2"));
    assert_eq!(v1.store_prefix(), v2.store_prefix());
    assert_eq!(v1.short_names, ["hpa"]);
    assert!(v1.has_subresource("status"));
}

#[test]
fn v1_defaults_are_v2s() {
    let mut obj = v1(json!({"scaleTargetRef": target(), "maxReplicas": 3}));
    defaults::apply(&hpa("v1"), &mut obj);
    assert_eq!(obj["apiVersion"], "autoscaling/v1");
    assert_eq!(
        obj["spec"],
        json!({"scaleTargetRef": target(), "minReplicas": 1, "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 80})
    );
}

#[test]
fn v1_is_validated_as_v2_with_upstreams_field_paths() {
    let obj = v1(
        json!({"scaleTargetRef": target(), "minReplicas": 1, "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 0}),
    );
    let causes = validation::validate(&hpa("v1"), &obj, None);
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(
        causes[0].field,
        "spec.metrics[0].resource.target.averageUtilization"
    );
    assert_eq!(
        causes[0].message,
        "Invalid value: 0: must be greater than 0"
    );
    let ok = v1(
        json!({"scaleTargetRef": target(), "minReplicas": 1, "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 50}),
    );
    assert!(validation::validate(&hpa("v1"), &ok, None).is_empty());
    let causes = validation::validate(&hpa("v1"), &ok, Some(&ok));
    assert!(causes.is_empty(), "{causes:?}");
}

#[test]
fn creating_through_v1_clears_status_annotations_too() {
    let mut obj = v1(json!({"scaleTargetRef": target(), "maxReplicas": 3}));
    obj["metadata"]["annotations"] = json!({CONDITIONS_ANNOTATION:
        r#"[{"type":"AbleToScale","status":"True"}]"#});
    strategy::prepare_for_create(&hpa("v1"), &mut obj);
    assert_eq!(
        obj["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(obj["metadata"].get("annotations").is_none(), "{obj}");
}

#[test]
fn v1_updates_keep_the_status_and_v1_status_updates_keep_the_spec() {
    let info = hpa("v1");
    let mut old = v1(
        json!({"scaleTargetRef": target(), "minReplicas": 1, "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 50}),
    );
    old["status"] = json!({"currentReplicas": 1, "desiredReplicas": 1,
        "currentCPUUtilizationPercentage": 20});
    old["metadata"]["annotations"] = json!({CURRENT_METRICS_ANNOTATION:
        r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":20,"currentAverageValue":"20m"}}]"#});

    // a main-resource update cannot change the status, not even through its annotations
    let mut new = old.clone();
    new["spec"]["maxReplicas"] = json!(5);
    new["status"]["currentReplicas"] = json!(9);
    new["metadata"]["annotations"][CONDITIONS_ANNOTATION] =
        json!(r#"[{"type":"AbleToScale","status":"False"}]"#);
    strategy::prepare_for_update(&info, &mut new, &old);
    assert_eq!(new["spec"]["maxReplicas"], 5);
    assert_eq!(new["status"], old["status"]);
    assert_eq!(
        new["metadata"]["annotations"],
        old["metadata"]["annotations"]
    );

    // a status update through v1 sets conditions from their annotation, not the spec
    let mut new = old.clone();
    new["spec"]["maxReplicas"] = json!(7);
    new["status"]["currentReplicas"] = json!(2);
    new["metadata"]["annotations"][CONDITIONS_ANNOTATION] =
        json!(r#"[{"type":"AbleToScale","status":"False","reason":"BackoffBoth"}]"#);
    strategy::prepare_for_subresource_update(&info, "status", &mut new, &old);
    assert_eq!(new["spec"]["maxReplicas"], 3);
    assert_eq!(new["status"]["currentReplicas"], 2);
    let v2 = (crate::conversion::hpa::v1_to_v2)(new);
    assert_eq!(
        v2["status"]["conditions"],
        json!([{"type": "AbleToScale", "status": "False", "reason": "BackoffBoth"}])
    );
    assert!(validation::validate_subresource(&info, "status", &v2_back(v2), &old).is_empty());
}

fn v2_back(v2: Value) -> Value {
    crate::conversion::hpa::v2_to_v1(v2)
}

#[test]
fn v1_tables_have_v2s_columns_and_cells() {
    let mut obj = v1(
        json!({"scaleTargetRef": target(), "minReplicas": 1, "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 50}),
    );
    obj["status"] = json!({"currentReplicas": 1, "desiredReplicas": 1,
        "currentCPUUtilizationPercentage": 20});
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 0, 5, 0).unwrap();
    let t1 = printers::table(
        &hpa("v1"),
        std::slice::from_ref(&obj),
        &TableOptions::at(now),
    );
    let names: Vec<&str> = t1["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Reference",
            "Targets",
            "MinPods",
            "MaxPods",
            "Replicas",
            "Age"
        ]
    );
    assert_eq!(
        t1["rows"][0]["cells"],
        json!(["web", "Deployment/web", "cpu: 20%/50%", "1", 3, 1, "5m"])
    );
    let v2 = crate::conversion::hpa::v1_to_v2(obj);
    let t2 = printers::table(&hpa("v2"), &[v2], &TableOptions::at(now));
    assert_eq!(t1["rows"][0]["cells"], t2["rows"][0]["cells"]);
    assert_eq!(t1["columnDefinitions"], t2["columnDefinitions"]);
}
