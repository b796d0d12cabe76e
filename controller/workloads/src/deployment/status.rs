//! Deployment status and conditions (upstream `calculateStatus`, `syncRolloutStatus`).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Reasons upstream puts on the Progressing condition.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";

/// `progressDeadlineSeconds` unless it is the "no deadline" MaxInt32.
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    let v = d.spec.as_ref()?.progress_deadline_seconds.unwrap_or(600);
    (v != i32::MAX).then_some(v)
}

/// The condition of `type_`, if present.
pub fn condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.as_deref()?.iter().find(|c| c.type_ == type_)
}

/// Builds a condition stamped `now`.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream `SetDeploymentCondition`: nothing changes when status and reason are the same;
/// the transition time is kept when only the reason changes.
pub fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let conds = s.conditions.get_or_insert_with(Vec::new);
    if let Some(old) = conds.iter().find(|x| x.type_ == c.type_) {
        if old.status == c.status && old.reason == c.reason {
            return;
        }
        if old.status == c.status {
            c.last_transition_time = old.last_transition_time.clone();
        }
    }
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

/// Removes the condition of `type_`.
pub fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = s.conditions.as_mut() {
        c.retain(|x| x.type_ != type_);
    }
}

fn sum(sets: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    sets.iter().map(|r| f(r)).sum()
}

/// Counts and the Available condition (upstream `calculateStatus`).
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    max_unavailable: i32,
    now: Timestamp,
) -> DeploymentStatus {
    let st = |r: &ReplicaSet| r.status.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let available = sum(all, |r| st(r).available_replicas.unwrap_or(0));
    let total = sum(all, |r| st(r).replicas);
    let mut s = d.status.clone().unwrap_or_default();
    s.observed_generation = d.metadata.generation;
    s.replicas = Some(total);
    s.updated_replicas = Some(new.map_or(0, |n| st(n).replicas));
    s.ready_replicas = Some(sum(all, |r| st(r).ready_replicas.unwrap_or(0)));
    s.available_replicas = Some(available);
    s.unavailable_replicas = Some((desired - available).max(0));
    if available >= desired - max_unavailable {
        set_condition(
            &mut s,
            new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut s,
            new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    s
}

/// Upstream `DeploymentComplete`.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    s.updated_replicas.unwrap_or(0) == desired
        && s.replicas.unwrap_or(0) == desired
        && s.available_replicas.unwrap_or(0) == desired
        && s.observed_generation >= d.metadata.generation
}

/// Upstream `DeploymentProgressing`: more updated/ready/available replicas or fewer old ones.
pub fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let z = |x: Option<i32>| x.unwrap_or(0);
    let old_old = z(old.replicas) - z(old.updated_replicas);
    let new_old = z(new.replicas) - z(new.updated_replicas);
    z(new.updated_replicas) > z(old.updated_replicas)
        || new_old < old_old
        || z(new.ready_replicas) > z(old.ready_replicas)
        || z(new.available_replicas) > z(old.available_replicas)
}

/// Upstream `DeploymentTimedOut`.
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = condition(s, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0 + SignedDuration::from_secs(deadline.into()) < now),
    }
}

/// Adds the Progressing (and ReplicaFailure) conditions to `new` (upstream
/// `syncRolloutStatus`).
pub fn rollout_conditions(
    d: &Deployment,
    new: &mut DeploymentStatus,
    new_rs: Option<&ReplicaSet>,
    all: &[&ReplicaSet],
    now: Timestamp,
) {
    let old = d.status.clone().unwrap_or_default();
    if progress_deadline(d).is_none() {
        remove_condition(new, "Progressing");
    }
    let current = condition(new, "Progressing").cloned();
    let is_complete = new.replicas == new.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if progress_deadline(d).is_some() && !is_complete && !paused {
        let rs_name = new_rs
            .and_then(|r| r.metadata.name.clone())
            .unwrap_or_default();
        if complete(d, new) {
            set_condition(
                new,
                new_condition(
                    "Progressing",
                    "True",
                    NEW_RS_AVAILABLE,
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    now,
                ),
            );
        } else if progressing(&old, new) {
            let mut c = new_condition(
                "Progressing",
                "True",
                RS_UPDATED,
                format!("ReplicaSet \"{rs_name}\" is progressing."),
                now,
            );
            if let Some(cur) = current.as_ref().filter(|c| c.status == "True") {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            remove_condition(new, "Progressing");
            set_condition(new, c);
        } else if timed_out(d, new, now) {
            set_condition(
                new,
                new_condition(
                    "Progressing",
                    "False",
                    TIMED_OUT,
                    format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                    now,
                ),
            );
        }
    }
    let failure = all.iter().find_map(|r| {
        r.status
            .as_ref()?
            .conditions
            .as_deref()?
            .iter()
            .find(|c| c.type_ == "ReplicaFailure")
            .cloned()
    });
    match failure {
        Some(f) => set_condition(
            new,
            DeploymentCondition {
                type_: "ReplicaFailure".into(),
                status: f.status,
                reason: f.reason,
                message: f.message,
                last_update_time: f.last_transition_time.clone(),
                last_transition_time: f.last_transition_time,
            },
        ),
        None => remove_condition(new, "ReplicaFailure"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;

    fn deployment(replicas: i32, deadline: i32, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(deadline),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    fn counts(replicas: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..Default::default()
        }
    }

    #[test]
    fn progressing_reasons_follow_the_rollout() {
        let t0 = Timestamp::UNIX_EPOCH + SignedDuration::from_secs(1000);
        let d = deployment(3, 10, counts(3, 0, 3));
        let mut s = counts(4, 1, 3);
        rollout_conditions(&d, &mut s, None, &[], t0);
        assert_eq!(
            condition(&s, "Progressing").unwrap().reason.as_deref(),
            Some(RS_UPDATED)
        );

        // nothing moves for longer than the deadline
        let d = deployment(3, 10, s.clone());
        let mut later = s.clone();
        rollout_conditions(
            &d,
            &mut later,
            None,
            &[],
            t0 + SignedDuration::from_secs(11),
        );
        let c = condition(&later, "Progressing").unwrap();
        assert_eq!(c.reason.as_deref(), Some(TIMED_OUT));
        assert_eq!(c.status, "False");

        let d = deployment(3, 10, s.clone());
        let mut done = counts(3, 3, 3);
        done.conditions = s.conditions.clone();
        rollout_conditions(&d, &mut done, None, &[], t0 + SignedDuration::from_secs(5));
        assert_eq!(
            condition(&done, "Progressing").unwrap().reason.as_deref(),
            Some(NEW_RS_AVAILABLE)
        );
    }

    #[test]
    fn available_condition_uses_max_unavailable() {
        let d = deployment(4, 600, DeploymentStatus::default());
        let s = calculate(&d, &[], None, 1, Timestamp::UNIX_EPOCH);
        assert_eq!(condition(&s, "Available").unwrap().status, "False");
        let d = deployment(0, 600, DeploymentStatus::default());
        let s = calculate(&d, &[], None, 0, Timestamp::UNIX_EPOCH);
        assert_eq!(
            condition(&s, "Available").unwrap().reason.as_deref(),
            Some("MinimumReplicasAvailable")
        );
    }
}
