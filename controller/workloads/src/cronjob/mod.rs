//! The CronJob controller (upstream `cronjob_controllerv2.go`): keeps `status.active` in
//! line with the Jobs it owns, starts the most recent due run (honouring suspend,
//! startingDeadlineSeconds and concurrencyPolicy Allow/Forbid/Replace), records
//! lastScheduleTime/lastSuccessfulTime, trims history and requeues itself for the next
//! start, reading time from the clock seam.

pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use crate::context::{owner_triggers, run_controller, Ctx};
use crate::error::Result;
use crate::job::{finished_at, has_condition};
use crate::meta::{controlled_by, new_controller_ref};
use crate::write;
use schedule::{CronSchedule, TOO_MANY_MISSED};

/// Annotation upstream puts on each Job with its scheduled time.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Runs the CronJob controller.
pub async fn run(ctx: Arc<Ctx>) {
    let triggers = owner_triggers::<Job, CronJob>(&ctx.informers.jobs);
    let main = ctx.informers.cronjobs.clone();
    run_controller("cronjob", ctx, main, triggers, reconcile).await;
}

fn job_ref(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: j.metadata.name.clone(),
        namespace: j.metadata.namespace.clone(),
        uid: j.metadata.uid.clone(),
        resource_version: j.metadata.resource_version.clone(),
        field_path: None,
    }
}

fn finished(j: &Job) -> bool {
    j.status
        .as_ref()
        .is_some_and(|s| has_condition(s, "Complete") || has_condition(s, "Failed"))
}

/// The name of the Job for a scheduled time: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second() / 60)
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = cj.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", cj.name_any());
    let Some(spec) = cj.spec.clone() else {
        return Ok(Action::await_change());
    };
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let now = ctx.clock.now();
    let jobs: Vec<Arc<Job>> = ctx
        .informers
        .jobs
        .list_namespace(&ns)
        .into_iter()
        .filter(|j| controlled_by(&j.metadata, &uid))
        .collect();
    let job_api: Api<Job> = ctx.api(&ns);
    let mut st = cj.status.clone().unwrap_or_default();
    let old = st.clone();

    // status.active: running Jobs we own; finished ones leave it (and may be the last success).
    let mut active: Vec<ObjectReference> = Vec::new();
    for j in &jobs {
        if finished(j) {
            if let Some(s) = j.status.as_ref().filter(|s| has_condition(s, "Complete")) {
                let done = s
                    .completion_time
                    .as_ref()
                    .map(|t| t.0)
                    .or_else(|| finished_at(s));
                if let Some(done) = done {
                    if st.last_successful_time.as_ref().is_none_or(|t| t.0 < done) {
                        st.last_successful_time = Some(Time(done));
                    }
                }
            }
        } else {
            active.push(job_ref(j));
        }
    }
    active.sort_by(|a, b| a.name.cmp(&b.name));
    st.active = (!active.is_empty()).then_some(active.clone());

    let mut requeue = None;
    if cj.metadata.deletion_timestamp.is_none() && !spec.suspend.unwrap_or(false) {
        match CronSchedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Err(e) => warn!(cronjob = %key, error = %e, "cannot schedule"),
            Ok(sched) => {
                requeue = run_due(&ctx, &cj, &sched, &job_api, &mut st, &jobs, now).await?;
            }
        }
    }
    cleanup_history(&cj, &job_api, &jobs).await?;

    if st != old {
        let mut upd = (*cj).clone();
        upd.status = Some(st);
        write::replace_status(&ctx.api::<CronJob>(&ns), &upd).await?;
    }
    Ok(requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// Starts the most recent due run if allowed; returns the delay until the next start.
async fn run_due(
    ctx: &Ctx,
    cj: &CronJob,
    sched: &CronSchedule,
    job_api: &Api<Job>,
    st: &mut k8s_openapi::api::batch::v1::CronJobStatus,
    jobs: &[Arc<Job>],
    now: Timestamp,
) -> Result<Option<Duration>> {
    let spec = cj.spec.clone().unwrap_or_default();
    let key = format!("{}/{}", cj.namespace().unwrap_or_default(), cj.name_any());
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let mut earliest = st
        .last_schedule_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(created);
    if let Some(sds) = spec.starting_deadline_seconds {
        let floor = now - SignedDuration::from_secs(sds);
        if floor > earliest {
            earliest = floor;
        }
    }
    let next = sched.next_after(now);
    let until_next = next.map(|n| {
        let ms = n.duration_since(now).as_millis().max(0) as u64;
        Duration::from_millis(ms + 100)
    });
    let (due, missed) = sched.most_recent(earliest, now);
    let Some(due) = due else {
        return Ok(until_next);
    };
    if missed > TOO_MANY_MISSED {
        warn!(cronjob = %key, missed, "too many missed start times; check clock skew");
    }
    if let Some(sds) = spec.starting_deadline_seconds {
        if due + SignedDuration::from_secs(sds) < now {
            info!(cronjob = %key, "missed the starting deadline for {due}");
            return Ok(until_next);
        }
    }
    let name = job_name(&cj.name_any(), due);
    if jobs.iter().any(|j| j.name_any() == name) {
        st.last_schedule_time = Some(Time(due));
        return Ok(until_next);
    }
    let running: Vec<&Arc<Job>> = jobs.iter().filter(|j| !finished(j)).collect();
    match spec.concurrency_policy.as_deref().unwrap_or("Allow") {
        "Forbid" if !running.is_empty() => {
            // Retried when the running Job finishes (its change triggers us) or at the next start.
            return Ok(until_next);
        }
        "Replace" => {
            for j in &running {
                info!(cronjob = %key, job = %j.name_any(), "replacing running job");
                match job_api
                    .delete(&j.name_any(), &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(a) = st.active.as_mut() {
                a.retain(|r| running.iter().all(|j| j.metadata.uid != r.uid));
            }
        }
        _ => {}
    }
    let template = spec.job_template.clone();
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut annotations = tmeta.annotations.clone().unwrap_or_default();
    let tz_time = due
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), tz_time);
    let job = Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: cj.namespace(),
            labels: tmeta.labels.clone(),
            annotations: Some(annotations),
            owner_references: Some(vec![new_controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    };
    let created = match job_api.create(&PostParams::default(), &job).await {
        Ok(j) => j,
        Err(kube::Error::Api(s)) if s.code == 409 => job_api.get(&name).await?,
        Err(e) => return Err(e.into()),
    };
    info!(cronjob = %key, job = %name, "created job");
    let _ = ctx;
    let active = st.active.get_or_insert_with(Vec::new);
    if !active.iter().any(|r| r.uid == created.metadata.uid) {
        active.push(job_ref(&created));
    }
    st.last_schedule_time = Some(Time(due));
    Ok(until_next)
}

/// Deletes the oldest finished Jobs beyond the history limits.
async fn cleanup_history(cj: &CronJob, api: &Api<Job>, jobs: &[Arc<Job>]) -> Result<()> {
    let spec = cj.spec.clone().unwrap_or_default();
    let limits = [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ];
    for (cond, limit) in limits {
        let mut done: Vec<&Arc<Job>> = jobs
            .iter()
            .filter(|j| j.status.as_ref().is_some_and(|s| has_condition(s, cond)))
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .collect();
        let limit = limit.max(0) as usize;
        if done.len() <= limit {
            continue;
        }
        done.sort_by_key(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref().map(|t| t.0))
                .or(j.metadata.creation_timestamp.as_ref().map(|t| t.0))
        });
        let n = done.len() - limit;
        for j in done.into_iter().take(n) {
            info!(job = %j.name_any(), "deleting job beyond the history limit");
            match api.delete(&j.name_any(), &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
