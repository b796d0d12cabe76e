//! apps/v1 and batch/v1 defaults; every embedded pod template gets the PodSpec defaults.

use serde_json::{json, Value};

use super::pod::default_pod_template;
use super::{as_map, child, get_obj, set_if_empty, set_if_nil};

fn template(spec: &mut Value) {
    if let Some(t) = get_obj(spec, "template") {
        default_pod_template(t);
    }
}

/// `SetDefaults_Deployment` (apps/v1).
pub fn deployment(d: &mut Value) {
    let spec = child(d, "spec");
    set_if_nil(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    set_if_empty(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_if_nil(ru, "maxUnavailable", json!("25%"));
        set_if_nil(ru, "maxSurge", json!("25%"));
    }
    set_if_nil(spec, "revisionHistoryLimit", json!(10));
    set_if_nil(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
}

/// `SetDefaults_ReplicaSet` (apps/v1).
pub fn replica_set(rs: &mut Value) {
    let spec = child(rs, "spec");
    set_if_nil(spec, "replicas", json!(1));
    template(spec);
}

/// `SetDefaults_ReplicationController` (core/v1): replicas 1, selector and labels from the
/// template labels.
pub fn replication_controller(rc: &mut Value) {
    let labels = rc
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    let spec = child(rc, "spec");
    set_if_nil(spec, "replicas", json!(1));
    if let Some(l) = &labels {
        let empty_sel = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty());
        if empty_sel {
            as_map(spec).insert("selector".into(), l.clone());
        }
    }
    template(spec);
    if let Some(l) = labels {
        let meta = child(rc, "metadata");
        let empty = meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty());
        if empty {
            as_map(meta).insert("labels".into(), l);
        }
    }
}

/// `SetDefaults_DaemonSet` (apps/v1).
pub fn daemon_set(ds: &mut Value) {
    let spec = child(ds, "spec");
    let strategy = child(spec, "updateStrategy");
    set_if_empty(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_if_nil(ru, "maxUnavailable", json!(1));
        set_if_nil(ru, "maxSurge", json!(0));
    }
    set_if_nil(spec, "revisionHistoryLimit", json!(10));
    template(spec);
}

/// `SetDefaults_StatefulSet` (apps/v1).
pub fn stateful_set(ss: &mut Value) {
    let spec = child(ss, "spec");
    set_if_empty(spec, "podManagementPolicy", "OrderedReady");
    let strategy = child(spec, "updateStrategy");
    set_if_empty(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_if_nil(ru, "partition", json!(0));
    }
    let policy = child(spec, "persistentVolumeClaimRetentionPolicy");
    set_if_empty(policy, "whenDeleted", "Retain");
    set_if_empty(policy, "whenScaled", "Retain");
    set_if_nil(spec, "replicas", json!(1));
    set_if_nil(spec, "revisionHistoryLimit", json!(10));
    if let Some(list) = spec
        .get_mut("volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for pvc in list {
            super::core::persistent_volume_claim(pvc);
        }
    }
    template(spec);
}

/// `SetDefaults_JobSpec` on a JobSpec (Job and CronJob job templates).
fn job_spec(spec: &mut Value) {
    let has = |s: &Value, k: &str| s.get(k).is_some_and(|v| !v.is_null());
    if !has(spec, "completions") && !has(spec, "parallelism") {
        as_map(spec).insert("completions".into(), json!(1));
        as_map(spec).insert("parallelism".into(), json!(1));
    }
    set_if_nil(spec, "parallelism", json!(1));
    if has(spec, "backoffLimitPerIndex") {
        set_if_nil(spec, "backoffLimit", json!(i32::MAX));
    } else {
        set_if_nil(spec, "backoffLimit", json!(6));
    }
    set_if_nil(spec, "completionMode", json!("NonIndexed"));
    set_if_nil(spec, "suspend", json!(false));
    let policy = if has(spec, "podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_if_nil(spec, "podReplacementPolicy", json!(policy));
    template(spec);
}

/// `SetDefaults_Job` (batch/v1); Job labels default to the template labels.
pub fn job(j: &mut Value) {
    job_spec(child(j, "spec"));
    let labels = j
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(l) = labels {
        let meta = child(j, "metadata");
        let empty = meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty());
        if empty {
            as_map(meta).insert("labels".into(), l);
        }
    }
}

/// `SetDefaults_CronJob` (batch/v1).
pub fn cron_job(cj: &mut Value) {
    let spec = child(cj, "spec");
    set_if_empty(spec, "concurrencyPolicy", "Allow");
    set_if_nil(spec, "suspend", json!(false));
    set_if_nil(spec, "successfulJobsHistoryLimit", json!(3));
    set_if_nil(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = get_obj(spec, "jobTemplate") {
        job_spec(child(jt, "spec"));
    }
}
