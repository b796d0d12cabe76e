//! ReplicaSet status as upstream's `calculateStatus`.

use std::sync::Arc;

use bramble_informer::pod::Pod;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::pods;

/// A failure of the last create/delete round, reported as `ReplicaFailure`.
#[derive(Debug, Clone)]
pub struct ManageFailure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    pub message: String,
}

/// The status for `rs` controlling `owned` active pods.
pub fn calculate(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    failure: Option<&ManageFailure>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = owned
        .iter()
        .filter(|p| {
            let l = crate::meta::labels(&p.metadata);
            template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
        })
        .count();
    let ready = owned.iter().filter(|p| pods::is_ready(p)).count();
    let available = owned
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now))
        .count();
    let old = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = old.conditions.clone().unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some(f.reason.into()),
            message: Some(f.message.clone()),
            last_transition_time: Some(Time(now)),
        }),
        None if has_failure => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    let n = |x: usize| i32::try_from(x).unwrap_or(i32::MAX);
    ReplicaSetStatus {
        replicas: n(owned.len()),
        fully_labeled_replicas: Some(n(fully_labeled)),
        ready_replicas: Some(n(ready)),
        available_replicas: Some(n(available)),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: old.terminating_replicas,
    }
}

/// Whether two statuses differ in what upstream compares (zero and unset are equal).
pub fn differs(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    let z = |x: Option<i32>| x.unwrap_or(0);
    a.replicas != b.replicas
        || z(a.fully_labeled_replicas) != z(b.fully_labeled_replicas)
        || z(a.ready_replicas) != z(b.ready_replicas)
        || z(a.available_replicas) != z(b.available_replicas)
        || a.observed_generation != b.observed_generation
        || a.conditions.as_deref().unwrap_or_default().len()
            != b.conditions.as_deref().unwrap_or_default().len()
}
