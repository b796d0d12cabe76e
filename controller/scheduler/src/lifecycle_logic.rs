//! Node lifecycle decisions, free of I/O: when a node is Unknown, which taints its
//! conditions call for, and when a pod on a NoExecute-tainted node must go.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint, Toleration};

use bramble_informer::pod::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::filters::{TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE};
use crate::matching::{node_taints, pod_tolerations, tolerates};

/// The conditions the controller marks Unknown together with Ready.
pub const MONITORED_CONDITIONS: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Condition -> NoSchedule taint, as upstream's `nodeConditionToTaintKeyStatusMap`.
const CONDITION_TAINTS: [(&str, &str, &str); 5] = [
    ("Ready", "False", TAINT_NOT_READY),
    ("Ready", "Unknown", TAINT_UNREACHABLE),
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];

fn conditions(node: &Node) -> &[NodeCondition] {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

/// The status of a node condition.
pub fn condition_status<'a>(node: &'a Node, type_: &str) -> Option<&'a str> {
    conditions(node)
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// The conditions after the kubelet stopped renewing its lease: every monitored condition
/// Unknown (`NodeStatusUnknown`, "Kubelet stopped posting node status."), or
/// `NodeStatusNeverUpdated` for a node that never posted one. `None` when already so.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut out = conditions(node).to_vec();
    let mut changed = false;
    for type_ in MONITORED_CONDITIONS {
        match out.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                out.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

/// The taint list the node should carry: its own taints, with the controller-managed ones
/// (NoSchedule per condition, `unschedulable` for a cordoned node, NoExecute `not-ready` /
/// `unreachable`) added or removed to match. `None` when nothing changes. New NoExecute taints
/// get `timeAdded = now`.
pub fn desired_taints(node: &Node, now: Timestamp) -> Option<Vec<Taint>> {
    let current = node_taints(node);
    let mut wanted: Vec<(String, &'static str)> = Vec::new();
    for (cond, status, key) in CONDITION_TAINTS {
        if condition_status(node, cond) == Some(status) {
            wanted.push((key.to_string(), "NoSchedule"));
        }
    }
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        wanted.push((TAINT_UNSCHEDULABLE.into(), "NoSchedule"));
    }
    match condition_status(node, "Ready") {
        Some("False") => wanted.push((TAINT_NOT_READY.into(), "NoExecute")),
        Some("Unknown") => wanted.push((TAINT_UNREACHABLE.into(), "NoExecute")),
        _ => {}
    }
    let managed = |t: &Taint| {
        CONDITION_TAINTS.iter().any(|(_, _, k)| *k == t.key) || t.key == TAINT_UNSCHEDULABLE
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || wanted.iter().any(|(k, e)| *k == t.key && *e == t.effect))
        .cloned()
        .collect();
    for (key, effect) in &wanted {
        if !out.iter().any(|t| t.key == *key && t.effect == *effect) {
            out.push(Taint {
                key: key.clone(),
                effect: effect.to_string(),
                value: None,
                time_added: (*effect == "NoExecute").then_some(Time(now)),
            });
        }
    }
    (out != current).then_some(out)
}

/// The pod's tolerations plus the `not-ready`/`unreachable` NoExecute tolerations with
/// `default_seconds` that the DefaultTolerationSeconds admission would have added.
pub fn effective_tolerations(pod: &Pod, default_seconds: i64) -> Vec<Toleration> {
    let mut out = pod_tolerations(pod).to_vec();
    for key in [TAINT_NOT_READY, TAINT_UNREACHABLE] {
        let probe = Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            ..Default::default()
        };
        if !out.iter().any(|t| tolerates(t, &probe)) {
            out.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(default_seconds),
                value: None,
            });
        }
    }
    out
}

/// When a pod on a node with these taints must be deleted: `None` never (no NoExecute taint,
/// or all tolerated forever), otherwise the instant (taint's `timeAdded` plus the smallest
/// matching `tolerationSeconds`; `now` for an untolerated taint).
pub fn eviction_time(
    tolerations: &[Toleration],
    taints: &[Taint],
    now: Timestamp,
) -> Option<Timestamp> {
    let mut when: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        // Upstream's getMinTolerationTime: the smallest tolerationSeconds among the
        // matching tolerations; none set means tolerated forever.
        let Some(secs) = matching.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue;
        };
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
        let at = added
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs.max(0)))
            .unwrap_or(added);
        when = Some(when.map_or(at, |w| w.min(at)));
    }
    when
}
