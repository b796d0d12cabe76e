//! The Job controller (upstream `job_controller.go`, 1.33 behaviour): pods carry the
//! `batch.kubernetes.io/job-tracking` finalizer until their outcome is recorded in
//! `status.uncountedTerminatedPods` and then in the counters, so nothing is counted twice
//! or lost across restarts; completions/parallelism, Indexed mode, backoffLimit,
//! activeDeadlineSeconds, podFailurePolicy, suspend, the SuccessCriteriaMet/FailureTarget
//! conditions before Complete/Failed, and ttlSecondsAfterFinished.

pub mod logic;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bramble_informer::pod::Pod;
use bramble_informer::Change;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod as ApiPod;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::context::{owner_triggers, run_controller, Ctx};
use crate::error::Result;
use crate::meta::new_controller_ref;
use crate::replicaset::{pod_present, pods_in, slow_start};
use crate::{claim, pods, write};
use logic::PolicyOutcome;

/// The finalizer that keeps a pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation and label carrying a pod's completion index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

/// Runs the Job controller.
pub async fn run(ctx: Arc<Ctx>) {
    let triggers = owner_triggers::<Pod, Job>(&ctx.informers.pods);
    let main = ctx.informers.jobs.clone();
    tokio::spawn(release_orphans(ctx.clone()));
    run_controller("job", ctx, main, triggers, reconcile).await;
}

/// Whether `p` keeps the tracking finalizer although no Job will ever count it: its
/// controlling Job (same name and uid) is gone, as after the Job's or its namespace's deletion.
fn is_orphan(p: &Pod, informers: &crate::context::Informers) -> bool {
    if !has_finalizer(p) {
        return false;
    }
    let Some(owner) = crate::meta::controller_ref(&p.metadata) else {
        return true;
    };
    if owner.kind != "Job" || owner.api_version != "batch/v1" {
        return true;
    }
    informers
        .jobs
        .get(p.metadata.namespace.as_deref(), &owner.name)
        .is_none_or(|j| j.metadata.uid.as_deref() != Some(owner.uid.as_str()))
}

/// Upstream's orphan-pod handling: the tracking finalizer comes off pods whose Job no longer
/// exists, so they do not stay Terminating forever (and hold up their namespace's deletion).
/// Checked on every pod change and Job deletion, and on a resync.
async fn release_orphans(ctx: Arc<Ctx>) {
    use futures::StreamExt;
    if ctx.informers.pods.ready().await.is_err() || ctx.informers.jobs.ready().await.is_err() {
        return;
    }
    // Every pass scans all pods: wake-ups coalesce the changes that arrive meanwhile (a
    // stream of changes would keep each version of each pod alive until its turn). Only a
    // pod that carries the tracking finalizer can be an orphan, so only its changes (and a
    // re-list) wake a pass: 10,000 other pods' status writes had this task rescan all pods
    // after nearly every one.
    let pods = ctx.informers.pods.wakeups_when(|c| match c {
        Change::Applied(p) => has_finalizer(p),
        Change::Deleted(_) => false,
        Change::Synced => true,
    });
    let jobs = ctx.informers.jobs.wakeups();
    let tick =
        tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(Duration::from_secs(30)))
            .map(|_| ());
    let mut wake = futures::stream::select(futures::stream::select(pods, jobs), tick);
    while wake.next().await.is_some() {
        for p in ctx.informers.pods.list() {
            if !is_orphan(&p, &ctx.informers) {
                continue;
            }
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let patch = release_patch(&p);
            info!(pod = %format!("{ns}/{}", p.name_any()), "releasing an orphaned job pod");
            if let Err(e) = write::merge(&ctx.api::<Pod>(&ns), &p.name_any(), patch).await {
                tracing::debug!(error = %e, "orphaned job pod not released yet");
            }
        }
    }
}

fn has_finalizer(p: &Pod) -> bool {
    p.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

fn is_failed(p: &Pod, job: &Job) -> bool {
    let phase = pods::phase(p);
    if phase == "Failed" {
        return true;
    }
    let spec = job.spec.as_ref();
    if spec.and_then(|s| s.pod_failure_policy.as_ref()).is_some()
        || spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
    {
        return false;
    }
    p.metadata.deletion_timestamp.is_some() && phase != "Succeeded"
}

fn index_of(p: &Pod) -> Option<i32> {
    p.annotations().get(INDEX_KEY)?.parse().ok()
}

/// A condition of `type_` that is True.
pub fn has_condition(st: &JobStatus, type_: &str) -> bool {
    condition(st, type_).is_some_and(|c| c.status == "True")
}

fn condition<'a>(st: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    st.conditions.as_deref()?.iter().find(|c| c.type_ == type_)
}

fn set_condition(
    st: &mut JobStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status && c.reason.as_deref() == Some(reason) {
            return;
        }
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(Time(now));
        return;
    }
    conds.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
}

/// When the Job finished (its Complete/Failed condition's transition time).
pub fn finished_at(st: &JobStatus) -> Option<Timestamp> {
    ["Complete", "Failed"].iter().find_map(|t| {
        let c = condition(st, t)?;
        (c.status == "True").then(|| c.last_transition_time.as_ref().map(|t| t.0))?
    })
}

async fn reconcile(cached: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = cached.namespace().unwrap_or_default();
    // The status holds the uncounted outcomes: read it live, never from a cache that may
    // not have seen our last write yet (upstream uses finalizer expectations for this).
    let Some(job) = ctx.api::<Job>(&ns).get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let job = Arc::new(job);
    let key = format!("job:{ns}/{}", job.name_any());
    let Some(spec) = job.spec.clone() else {
        return Ok(Action::await_change());
    };
    let Some(selector) = spec.selector.clone() else {
        return Ok(Action::await_change());
    };
    let now = ctx.clock.now();
    let pod_api: Api<Pod> = ctx.api(&ns);
    let deleting = job.metadata.deletion_timestamp.is_some();
    let owned = claim::claim(
        &pod_api,
        &new_controller_ref(job.as_ref()),
        deleting,
        &selector,
        pods_in(&ctx, &ns),
    )
    .await?;
    let mut st = job.status.clone().unwrap_or_default();
    let old_status = st.clone();

    // Outcomes recorded earlier whose pods have lost the finalizer move into the counters.
    let mut unc = st.uncounted_terminated_pods.clone().unwrap_or_default();
    let still_tracked = |uid: &String| {
        owned
            .iter()
            .any(|p| p.metadata.uid.as_ref() == Some(uid) && has_finalizer(p))
    };
    let (keep_s, done_s): (Vec<String>, Vec<String>) = unc
        .succeeded
        .take()
        .unwrap_or_default()
        .into_iter()
        .partition(still_tracked);
    let (keep_f, done_f): (Vec<String>, Vec<String>) = unc
        .failed
        .take()
        .unwrap_or_default()
        .into_iter()
        .partition(still_tracked);
    st.succeeded = Some(st.succeeded.unwrap_or(0) + done_s.len() as i32);
    st.failed = Some(st.failed.unwrap_or(0) + done_f.len() as i32);
    unc.succeeded = Some(keep_s);
    unc.failed = Some(keep_f);

    let finished = has_condition(&st, "Complete") || has_condition(&st, "Failed");
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions;
    let mut completed = logic::parse_indexes(
        st.completed_indexes.as_deref().unwrap_or(""),
        completions.unwrap_or(0),
    );

    // Newly finished pods are recorded as uncounted before their finalizer goes.
    let mut release: Vec<Arc<Pod>> = Vec::new();
    let mut fail_job: Option<String> = None;
    let is_uncounted = |u: &UncountedTerminatedPods, uid: &str| {
        u.succeeded
            .iter()
            .flatten()
            .chain(u.failed.iter().flatten())
            .any(|x| x == uid)
    };
    for p in owned.iter().filter(|p| has_finalizer(p)) {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if is_uncounted(&unc, &uid) {
            release.push(p.clone());
            continue;
        }
        if finished || deleting {
            release.push(p.clone());
            continue;
        }
        if pods::phase(p) == "Succeeded" {
            if indexed {
                match index_of(p) {
                    Some(i) if i < completions.unwrap_or(0) && !completed.contains(&i) => {
                        completed.insert(i);
                        unc.succeeded.get_or_insert_with(Vec::new).push(uid);
                    }
                    _ => {}
                }
            } else {
                unc.succeeded.get_or_insert_with(Vec::new).push(uid);
            }
            release.push(p.clone());
        } else if is_failed(p, &job) {
            let outcome = spec
                .pod_failure_policy
                .as_ref()
                .map(|pol| logic::match_failure_policy(pol, p))
                .unwrap_or(PolicyOutcome::Count);
            match outcome {
                PolicyOutcome::Ignore => {}
                PolicyOutcome::FailJob(msg) => {
                    fail_job.get_or_insert(msg);
                    unc.failed.get_or_insert_with(Vec::new).push(uid);
                }
                PolicyOutcome::Count => unc.failed.get_or_insert_with(Vec::new).push(uid),
            }
            release.push(p.clone());
        }
    }
    if indexed {
        st.completed_indexes = Some(logic::format_indexes(&completed));
    }
    let succeeded = st.succeeded.unwrap_or(0) + unc.succeeded.as_ref().map_or(0, Vec::len) as i32;
    let failed = st.failed.unwrap_or(0) + unc.failed.as_ref().map_or(0, Vec::len) as i32;
    st.uncounted_terminated_pods = Some(unc);

    let active: Vec<Arc<Pod>> = owned
        .iter()
        .filter(|p| pods::is_active(p))
        .cloned()
        .collect();
    let terminating = owned
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_some()
                && !matches!(pods::phase(p), "Succeeded" | "Failed")
        })
        .count() as i32;
    let suspended = spec.suspend.unwrap_or(false);
    let mut requeue: Option<Duration> = None;

    if !finished && !deleting {
        if st.start_time.is_none() && !suspended {
            st.start_time = Some(Time(now));
        }
        let start = st.start_time.as_ref().map(|t| t.0);
        let deadline = spec
            .active_deadline_seconds
            .zip(start)
            .map(|(s, t)| t + SignedDuration::from_secs(s));
        let failure =
            if let Some(c) = condition(&st, "FailureTarget").filter(|c| c.status == "True") {
                Some((
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                ))
            } else if let Some(msg) = fail_job {
                Some(("PodFailurePolicy".to_string(), msg))
            } else if failed > spec.backoff_limit.unwrap_or(6) {
                Some((
                    "BackoffLimitExceeded".to_string(),
                    "Job has reached the specified backoff limit".to_string(),
                ))
            } else if deadline.is_some_and(|d| d <= now) && !suspended {
                Some((
                    "DeadlineExceeded".to_string(),
                    "Job was active longer than specified deadline".to_string(),
                ))
            } else {
                None
            };
        let complete = has_condition(&st, "SuccessCriteriaMet")
            || if indexed {
                completed.len() as i32 >= completions.unwrap_or(0)
            } else {
                match completions {
                    Some(c) => succeeded >= c,
                    None => succeeded > 0 && active.is_empty(),
                }
            };
        if let Some((reason, message)) = failure {
            set_condition(&mut st, "FailureTarget", "True", &reason, &message, now);
            delete_pods(&ctx, &key, &pod_api, &active).await?;
            if terminating == 0 && active.is_empty() {
                set_condition(&mut st, "Failed", "True", &reason, &message, now);
                info!(job = %key, %reason, "job failed");
            }
        } else if complete {
            let msg = "Reached expected number of succeeded pods";
            set_condition(
                &mut st,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                msg,
                now,
            );
            delete_pods(&ctx, &key, &pod_api, &active).await?;
            if terminating == 0 && active.is_empty() {
                set_condition(&mut st, "Complete", "True", "CompletionsReached", msg, now);
                st.completion_time = Some(Time(now));
                info!(job = %key, "job completed");
            }
        } else if suspended {
            delete_pods(&ctx, &key, &pod_api, &active).await?;
            set_condition(
                &mut st,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            );
        } else {
            if has_condition(&st, "Suspended") {
                set_condition(
                    &mut st,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    now,
                );
                st.start_time = Some(Time(now));
            }
            if ctx
                .expectations
                .satisfied(&key, |n| pod_present(&ctx, &ns, n))
            {
                requeue = manage(
                    &ctx, &job, &key, &pod_api, &active, &completed, succeeded, failed, &owned, now,
                )
                .await?;
            }
            if let Some(d) = deadline {
                let left = Duration::from_secs(d.duration_since(now).as_secs().max(1) as u64);
                requeue = Some(requeue.map_or(left, |r| r.min(left)));
            }
        }
    }
    let active_now = owned.iter().filter(|p| pods::is_active(p)).count() as i32;
    st.active = Some(active_now);
    st.ready = Some(active.iter().filter(|p| pods::is_ready(p)).count() as i32);
    st.terminating = Some(terminating);

    if st != old_status {
        let mut upd = (*job).clone();
        upd.status = Some(st.clone());
        write::replace_status(&ctx.api::<Job>(&ns), &upd).await?;
    }
    for p in release {
        let patch = release_patch(&p);
        match write::merge(&pod_api, &p.name_any(), patch).await {
            Ok(_) | Err(crate::Error::Kube(kube::Error::Api(_))) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(at) = finished_at(&st) {
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            let expire = at + SignedDuration::from_secs(ttl.into());
            if expire <= now {
                info!(job = %key, "deleting finished job (ttlSecondsAfterFinished)");
                let api: Api<Job> = ctx.api(&ns);
                let dp = DeleteParams::foreground();
                match api.delete(&job.name_any(), &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(Action::await_change());
            }
            let left = expire.duration_since(now).as_secs().max(1) as u64;
            return Ok(Action::requeue(Duration::from_secs(left)));
        }
    }
    Ok(requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

async fn delete_pods(ctx: &Ctx, key: &str, api: &Api<Pod>, doomed: &[Arc<Pod>]) -> Result<()> {
    for p in doomed {
        write::delete(api, &p.name_any()).await?;
        ctx.expectations.deleted(key, &p.name_any());
    }
    Ok(())
}

/// Creates or deletes pods towards the wanted number of active pods; returns when to look
/// again if replacements wait for the failure back-off.
#[allow(clippy::too_many_arguments)]
async fn manage(
    ctx: &Ctx,
    job: &Job,
    key: &str,
    api: &Api<Pod>,
    active: &[Arc<Pod>],
    completed: &BTreeSet<i32>,
    succeeded: i32,
    failed: i32,
    owned: &[Arc<Pod>],
    now: Timestamp,
) -> Result<Option<Duration>> {
    let spec = job.spec.clone().unwrap_or_default();
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let n_active = active.len() as i32;
    let (to_create, surplus): (Vec<Option<i32>>, i32) = if indexed {
        let active_idx: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
        let room = (parallelism - n_active).max(0) as usize;
        let missing =
            logic::missing_indexes(spec.completions.unwrap_or(0), completed, &active_idx, room);
        (
            missing.into_iter().map(Some).collect(),
            n_active - parallelism,
        )
    } else {
        let want = logic::want_active(spec.completions, parallelism, succeeded, n_active);
        let n = (want - n_active).max(0) as usize;
        (vec![None; n], n_active - want)
    };
    if surplus > 0 {
        let mut sorted = active.to_vec();
        pods::sort_for_deletion(&mut sorted);
        delete_pods(ctx, key, api, &sorted[..surplus as usize]).await?;
        return Ok(None);
    }
    if to_create.is_empty() {
        return Ok(None);
    }
    // Replacements of failed pods wait out the exponential back-off.
    if failed > 0 {
        let last_failure = owned
            .iter()
            .filter(|p| pods::phase(p) == "Failed")
            .filter_map(|p| finish_time(p))
            .max();
        if let Some(last) = last_failure {
            let ready_at = last + logic::backoff(failed);
            if ready_at > now {
                let left = ready_at.duration_since(now).as_millis().max(100) as u64;
                return Ok(Some(Duration::from_millis(left)));
            }
        }
    }
    let to_create: Vec<Option<i32>> = to_create
        .into_iter()
        .take(crate::replicaset::BURST_REPLICAS)
        .collect();
    info!(job = %key, count = to_create.len(), "creating pods");
    let result = slow_start(to_create.len(), |i| {
        let pod = job_pod(job, to_create[i]);
        async move {
            let created = pods::create(api, &pod).await?;
            ctx.expectations.created(key, &created.name_any());
            Ok::<_, kube::Error>(())
        }
    })
    .await;
    result.map_err(crate::Error::from)?;
    Ok(None)
}

fn finish_time(p: &Pod) -> Option<Timestamp> {
    p.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
                .map(|t| t.0)
        })
        .max()
        .or_else(|| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// A pod for `job` (with the tracking finalizer; index annotation, label, hostname and
/// `JOB_COMPLETION_INDEX` in Indexed mode).
pub fn job_pod(job: &Job, index: Option<i32>) -> ApiPod {
    let spec = job.spec.clone().unwrap_or_default();
    let name = job.name_any();
    let generate = match index {
        Some(i) => format!("{name}-{i}-"),
        None => format!("{name}-"),
    };
    let mut pod = pods::from_template(
        &spec.template,
        &job.namespace().unwrap_or_default(),
        Some(generate),
        None,
        new_controller_ref(job),
    );
    pod.metadata
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    if let Some(i) = index {
        pod.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(INDEX_KEY.into(), i.to_string());
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(INDEX_KEY.into(), i.to_string());
        if let Some(ps) = pod.spec.as_mut() {
            if ps.hostname.is_none() {
                ps.hostname = Some(format!("{name}-{i}"));
            }
            let env = EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{INDEX_KEY}']"),
                    }),
                    ..Default::default()
                }),
            };
            for c in ps
                .init_containers
                .iter_mut()
                .flatten()
                .chain(ps.containers.iter_mut())
            {
                let envs = c.env.get_or_insert_with(Vec::new);
                if !envs.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    envs.push(env.clone());
                }
            }
        }
    }
    pod
}

/// The merge patch that drops the job-tracking finalizer from `pod` (at its current
/// resourceVersion, so a concurrent change makes it fail rather than lose a finalizer).
fn release_patch(pod: &Pod) -> serde_json::Value {
    let kept: Vec<&String> = pod
        .finalizers()
        .iter()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    json!({"metadata": {"finalizers": kept, "resourceVersion": pod.resource_version()}})
}
