//! PodDisruptionBudget checks of the `pods/<name>/eviction` subresource, as upstream's
//! eviction REST (`pkg/registry/core/pod/storage/eviction.go`) makes them: which budgets
//! cover a pod, whether evicting it is allowed, and the budget's decremented status.
//!
//! When a budget has a status written by a disruption controller (`observedGeneration` set),
//! that status decides and is decremented as upstream does. A budget nobody has processed
//! yet gets its status computed here from the pods it selects (healthy = Ready and not
//! terminating), so evictions are checked even without a disruption controller.

// Errors are the `Status` the API server sends as is.
#![allow(clippy::result_large_err)]

use serde_json::{json, Value};

use crate::selectors::LabelSelector;
use crate::status::{Cause, Reason, Status};

/// Upstream's message for an eviction a budget refuses.
pub const VIOLATION_MESSAGE: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

/// Upstream's limit on `status.disruptedPods` before evictions are refused.
pub const MAX_DISRUPTED_PODS: usize = 2000;

/// A pod that is not running (Pending, Succeeded, Failed) or already terminating is
/// deleted without consulting budgets (`canIgnorePDB`).
pub fn can_ignore_budgets(pod: &Value) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    matches!(phase, "Succeeded" | "Failed" | "Pending")
        || crate::meta::deletion_timestamp(pod).is_some()
}

/// The budgets (of the pod's namespace) whose selector matches the pod. A budget without a
/// selector matches nothing; an empty selector matches every pod (policy/v1).
pub fn budgets_for_pod<'a>(pod: &Value, budgets: &'a [Value]) -> Vec<&'a Value> {
    budgets
        .iter()
        .filter(|b| match b.pointer("/spec/selector") {
            None | Some(Value::Null) => false,
            Some(sel) => LabelSelector::from_label_selector(sel)
                .map(|s| s.matches_object(pod))
                .unwrap_or(false),
        })
        .collect()
}

/// The Status for a pod covered by more than one budget.
pub fn multiple_budgets() -> Status {
    Status::internal(
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
    )
}

/// What an eviction does to the pod's budget.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Evict without changing the budget (unhealthy pod the policy lets go).
    Evict,
    /// Evict and store this budget (its status decremented).
    EvictAndUpdate(Value),
}

/// `pod` Ready condition is True.
pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Decides an eviction of `pod` covered by `budget`; `pods` are the pods of the namespace
/// (used when the budget has no controller-written status). `now` is an RFC 3339 time for
/// `status.disruptedPods`.
pub fn decide(budget: &Value, pod: &Value, pods: &[Value], now: &str) -> Result<Decision, Status> {
    let name = crate::meta::name(budget).unwrap_or_default().to_string();
    let mut budget = budget.clone();
    let generation = crate::meta::generation(&budget).unwrap_or(0);
    match budget
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
    {
        Some(observed) if observed < generation => {
            return Err(too_many_requests(format!(
                "The disruption budget {name} is still being processed by the server."
            )))
        }
        Some(_) => {}
        None => {
            let status = computed_status(&budget, pods);
            budget["status"] = status;
        }
    }
    let status_i64 = |b: &Value, f: &str| {
        b.pointer(&format!("/status/{f}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let allowed = status_i64(&budget, "disruptionsAllowed");
    if allowed < 0 {
        let mut s = Status::new(
            Reason::Forbidden,
            format!("poddisruptionbudgets.policy \"{name}\" is forbidden: pdb disruptions allowed is negative"),
        );
        s.name = Some(name);
        s.group = Some("policy".into());
        s.kind = Some("poddisruptionbudgets".into());
        return Err(s);
    }
    let disrupted = budget
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(Status::new(
            Reason::Forbidden,
            format!("poddisruptionbudgets.policy \"{name}\" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller"),
        ));
    }
    let desired = status_i64(&budget, "desiredHealthy");
    let current = status_i64(&budget, "currentHealthy");
    if !pod_ready(pod) {
        let policy = budget
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("IfHealthyBudget");
        if policy == "AlwaysAllow" || (current >= desired && desired > 0) {
            return Ok(Decision::Evict);
        }
    }
    if allowed == 0 {
        return Err(too_many_requests(format!(
            "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )));
    }
    let status = budget["status"]
        .as_object_mut()
        .expect("status is an object");
    status.insert("disruptionsAllowed".into(), json!(allowed - 1));
    let pod_name = crate::meta::name(pod).unwrap_or_default().to_string();
    let disrupted = status.entry("disruptedPods").or_insert_with(|| json!({}));
    if !disrupted.is_object() {
        *disrupted = json!({});
    }
    disrupted[pod_name] = json!(now);
    if allowed - 1 == 0 {
        set_disruption_allowed_condition(&mut budget, false, now);
    }
    Ok(Decision::EvictAndUpdate(budget))
}

/// 429 TooManyRequests with upstream's message and a `DisruptionBudget` cause.
fn too_many_requests(cause: String) -> Status {
    let mut s = Status::new(Reason::TooManyRequests, VIOLATION_MESSAGE);
    s.causes.push(Cause {
        reason: "DisruptionBudget".into(),
        message: cause,
        field: String::new(),
    });
    s
}

/// Upstream's `DisruptionAllowed` condition (reason `SufficientPods` / `InsufficientPods`).
fn set_disruption_allowed_condition(budget: &mut Value, allowed: bool, now: &str) {
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let observed = budget
        .pointer("/status/observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    let conditions = budget["status"]
        .as_object_mut()
        .expect("status is an object")
        .entry("conditions")
        .or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    if let Some(c) = list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"))
    {
        if c.get("status").and_then(Value::as_str) != Some(status) {
            c["lastTransitionTime"] = json!(now);
        }
        c["status"] = json!(status);
        c["reason"] = json!(reason);
        c["observedGeneration"] = observed;
        return;
    }
    list.push(
        json!({"type": "DisruptionAllowed", "status": status, "reason": reason,
        "message": "", "observedGeneration": observed, "lastTransitionTime": now}),
    );
}

/// The status a disruption controller would write for `budget` given the namespace's pods:
/// expected = selected pods that are not finished, healthy = those Ready and not
/// terminating, desired from `minAvailable` / `maxUnavailable` (percentages round up).
pub fn computed_status(budget: &Value, pods: &[Value]) -> Value {
    let selected = budgets_for_pod_list(budget, pods);
    let expected = selected.len() as i64;
    let healthy = selected
        .iter()
        .filter(|p| crate::meta::deletion_timestamp(p).is_none() && pod_ready(p))
        .count() as i64;
    let scaled = |v: &Value| -> i64 {
        match v {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(s) => {
                let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
                (pct * expected + 99) / 100
            }
            _ => 0,
        }
    };
    let desired = if let Some(max) = budget.pointer("/spec/maxUnavailable") {
        (expected - scaled(max)).max(0)
    } else if let Some(min) = budget.pointer("/spec/minAvailable") {
        scaled(min)
    } else {
        0
    };
    json!({
        "observedGeneration": crate::meta::generation(budget).unwrap_or(0),
        "disruptionsAllowed": (healthy - desired).max(0),
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
    })
}

fn budgets_for_pod_list<'a>(budget: &Value, pods: &'a [Value]) -> Vec<&'a Value> {
    let selector = match budget.pointer("/spec/selector") {
        None | Some(Value::Null) => return Vec::new(),
        Some(sel) => match LabelSelector::from_label_selector(sel) {
            Ok(s) => s,
            Err(_) => return Vec::new(),
        },
    };
    pods.iter()
        .filter(|p| selector.matches_object(p))
        .filter(|p| {
            !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": "web"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    fn pdb(spec: Value) -> Value {
        json!({"metadata": {"name": "web-pdb", "generation": 1}, "spec": spec})
    }

    const NOW: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn selects_budgets_like_policy_v1() {
        let p = pod("a", true);
        let budgets = vec![
            pdb(json!({"selector": {"matchLabels": {"app": "web"}}})),
            pdb(json!({"selector": {}})),
            pdb(json!({})),
            pdb(json!({"selector": {"matchLabels": {"app": "db"}}})),
        ];
        assert_eq!(budgets_for_pod(&p, &budgets).len(), 2);
        assert!(can_ignore_budgets(&json!({"status": {"phase": "Pending"}})));
        assert!(!can_ignore_budgets(&p));
    }

    #[test]
    fn computed_budget_refuses_when_at_minimum() {
        let pods = vec![pod("a", true), pod("b", true)];
        let b = pdb(json!({"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 2}));
        let err = decide(&b, &pods[0], &pods, NOW).unwrap_err();
        assert_eq!(err.code(), 429);
        assert_eq!(err.message, VIOLATION_MESSAGE);
        assert_eq!(
            err.causes[0].message,
            "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
        );
        let b = pdb(json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": "50%"}));
        match decide(&b, &pods[0], &pods, NOW).unwrap() {
            Decision::EvictAndUpdate(u) => {
                assert_eq!(u["status"]["disruptionsAllowed"], 0);
                assert_eq!(u["status"]["disruptedPods"]["a"], NOW);
                assert_eq!(u["status"]["conditions"][0]["reason"], "InsufficientPods");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn controller_status_is_decremented_or_waited_for() {
        let p = pod("a", true);
        let mut b = pdb(json!({"selector": {}, "minAvailable": 1}));
        b["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": 2,
            "currentHealthy": 3, "desiredHealthy": 1, "expectedPods": 3});
        match decide(&b, &p, &[], NOW).unwrap() {
            Decision::EvictAndUpdate(u) => assert_eq!(u["status"]["disruptionsAllowed"], 1),
            other => panic!("{other:?}"),
        }
        b["metadata"]["generation"] = json!(2);
        let err = decide(&b, &p, &[], NOW).unwrap_err();
        assert_eq!(
            err.causes[0].message,
            "The disruption budget web-pdb is still being processed by the server."
        );
        b["metadata"]["generation"] = json!(1);
        b["status"]["disruptionsAllowed"] = json!(-1);
        assert_eq!(decide(&b, &p, &[], NOW).unwrap_err().code(), 403);
    }

    #[test]
    fn unhealthy_pods_follow_the_policy() {
        let sick = pod("s", false);
        let mut b = pdb(json!({"selector": {}, "minAvailable": 1}));
        b["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": 0,
            "currentHealthy": 1, "desiredHealthy": 1});
        assert_eq!(decide(&b, &sick, &[], NOW).unwrap(), Decision::Evict);
        b["status"]["currentHealthy"] = json!(0);
        assert_eq!(decide(&b, &sick, &[], NOW).unwrap_err().code(), 429);
        b["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
        assert_eq!(decide(&b, &sick, &[], NOW).unwrap(), Decision::Evict);
    }
}
