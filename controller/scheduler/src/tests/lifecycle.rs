use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::{node, pod};
use crate::lifecycle_logic::{
    condition_status, desired_taints, effective_tolerations, eviction_time, unknown_conditions,
};

#[test]
fn stale_node_goes_unknown_with_upstream_reasons() {
    let n = node("a", "1", "1Gi", json!({}));
    let now = Timestamp::now();
    let conds = unknown_conditions(&n, now).unwrap();
    let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let mem = conds.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
    assert_eq!(mem.reason.as_deref(), Some("NodeStatusNeverUpdated"));
    let mut n2 = (*n).clone();
    n2.status.as_mut().unwrap().conditions = Some(conds);
    assert!(
        unknown_conditions(&n2, now).is_none(),
        "already Unknown: no write"
    );
}

#[test]
fn taints_follow_conditions_and_cordon() {
    let now = Timestamp::now();
    let unknown = node(
        "a",
        "1",
        "1Gi",
        json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
               "spec": {"taints": [{"key": "user", "effect": "NoSchedule"}]}}),
    );
    let t = desired_taints(&unknown, now).unwrap();
    let keys: Vec<(&str, &str)> = t
        .iter()
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("user", "NoSchedule"),
            ("node.kubernetes.io/unreachable", "NoSchedule"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
        ]
    );
    assert!(t[2].time_added.is_some());
    // Back to Ready and cordoned: unreachable taints go, unschedulable comes, user taint stays.
    let mut back = (*unknown).clone();
    back.spec.as_mut().unwrap().taints = Some(t);
    back.spec.as_mut().unwrap().unschedulable = Some(true);
    back.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "True".into();
    let t = desired_taints(&back, now).unwrap();
    let keys: Vec<&str> = t.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, vec!["user", "node.kubernetes.io/unschedulable"]);
    back.spec.as_mut().unwrap().taints = Some(t);
    assert!(desired_taints(&back, now).is_none(), "stable");
    assert_eq!(condition_status(&back, "Ready"), Some("True"));
    let not_ready = node(
        "b",
        "1",
        "1Gi",
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    let t = desired_taints(&not_ready, now).unwrap();
    assert!(t
        .iter()
        .any(|t| t.key == "node.kubernetes.io/not-ready" && t.effect == "NoExecute"));
}

#[test]
fn eviction_waits_for_toleration_seconds() {
    let added = Timestamp::now();
    let taint = Taint {
        key: "node.kubernetes.io/unreachable".into(),
        effect: "NoExecute".into(),
        value: None,
        time_added: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(added)),
    };
    let plain = pod("p", "", "", json!({}));
    let tol = effective_tolerations(&plain, 300);
    assert_eq!(
        tol.len(),
        2,
        "default not-ready/unreachable tolerations added"
    );
    let at = eviction_time(&tol, std::slice::from_ref(&taint), added).unwrap();
    assert_eq!(at.duration_since(added), SignedDuration::from_secs(300));
    let short = pod(
        "p",
        "",
        "",
        json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 5}]}}),
    );
    let tol = effective_tolerations(&short, 300);
    let at = eviction_time(&tol, std::slice::from_ref(&taint), added).unwrap();
    assert_eq!(at.duration_since(added), SignedDuration::from_secs(5));
    let forever = pod(
        "p",
        "",
        "",
        json!({"spec": {"tolerations": [{"operator": "Exists"}]}}),
    );
    assert!(eviction_time(
        &effective_tolerations(&forever, 300),
        std::slice::from_ref(&taint),
        added
    )
    .is_none());
    let other = Taint {
        key: "maintenance".into(),
        effect: "NoExecute".into(),
        value: None,
        time_added: None,
    };
    assert_eq!(
        eviction_time(&effective_tolerations(&plain, 300), &[other], added),
        Some(added)
    );
    assert!(eviction_time(&tol, &[], added).is_none());
}
