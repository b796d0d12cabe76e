//! Unit tests of the shared strings of cached pods.

use serde_json::json;

use crate::pod::Pod;
use crate::text::Text;

/// A pod the scheduler could not place, with `message`.
fn unschedulable(name: &str, message: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            "schedulerName": "default-scheduler"},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": null, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
    .unwrap()
}

fn condition(pod: &Pod) -> &crate::pod::PodCondition {
    &pod.status.as_ref().unwrap().conditions.as_ref().unwrap()[0]
}

#[test]
fn equal_strings_of_cached_pods_are_one_allocation() {
    let msg = "0/3 nodes are available: 3 Insufficient cpu.";
    let (a, b) = (unschedulable("a", msg), unschedulable("b", msg));
    let (ca, cb) = (condition(&a), condition(&b));
    assert!(ca.type_.shares(&cb.type_));
    assert!(ca
        .reason
        .as_ref()
        .unwrap()
        .shares(cb.reason.as_ref().unwrap()));
    assert!(ca
        .message
        .as_ref()
        .unwrap()
        .shares(cb.message.as_ref().unwrap()));
    let (sa, sb) = (a.spec.as_ref().unwrap(), b.spec.as_ref().unwrap());
    assert!(sa.containers[0].name.shares(&sb.containers[0].name));
    let other = unschedulable(
        "c",
        "0/3 nodes are available: 3 node(s) had untolerated taint.",
    );
    assert!(!ca
        .message
        .as_ref()
        .unwrap()
        .shares(condition(&other).message.as_ref().unwrap()));
    assert_eq!(condition(&other).status, "False");
}

#[test]
fn shared_strings_compare_as_str_and_string() {
    let t = Text::new("Ready");
    assert_eq!(t, "Ready");
    assert_eq!(t, *"Ready");
    assert_eq!(t, "Ready".to_string());
    assert_ne!(t, "ready");
    assert_eq!(t.as_str(), "Ready");
    assert_eq!(format!("{t} {t:?}"), "Ready \"Ready\"");
    assert_eq!(Some(t).as_deref(), Some("Ready"));
}

#[test]
fn cached_conditions_read_and_write_the_api_json() {
    let pod = unschedulable("a", "no nodes");
    let back = serde_json::to_value(&pod).unwrap();
    assert_eq!(
        back["status"]["conditions"][0],
        json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "no nodes", "lastTransitionTime": "2026-01-01T00:00:00Z"})
    );
    assert_eq!(back["status"]["phase"], "Pending");
    assert_eq!(back["spec"]["schedulerName"], "default-scheduler");
    let again: Pod = serde_json::from_value(back).unwrap();
    assert_eq!(again, pod);
    assert!(serde_json::from_value::<Text>(json!(3)).is_err());
}
