//! CronJob decisions under a manual clock: the real API server in-process, the controllers
//! reading time from a `ManualClock`, so schedules, Forbid/Replace and the starting deadline
//! are checked without waiting for wall-clock minutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bramble_apiserver::{Controller, ControllerConfig};
use bramble_workloads::{Clock, ManualClock};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

async fn start() -> Result<(tempfile::TempDir, Client, ManualClock)> {
    let dir = tempfile::tempdir()?;
    let cfg = ControllerConfig::new(dir.path().join("controller"), "127.0.0.1:0".parse()?);
    let controller = Controller::start(&cfg).await?;
    let client = controller.in_process_client("system:kube-controller-manager");
    // start of the next minute + 1 s, so minute arithmetic below is exact
    let now = Timestamp::now().as_second();
    let clock = ManualClock::new(Timestamp::from_second(now - now % 60 + 61)?);
    let informers = bramble_workloads::SharedInformers::new(client.clone());
    bramble_workloads::spawn_with_clock(client.clone(), &informers, Arc::new(clock.clone()));
    std::mem::forget(controller);
    Ok((dir, client, clock))
}

fn minute(t: Timestamp) -> i64 {
    t.as_second() / 60
}

async fn jobs(client: &Client) -> Result<Vec<String>> {
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    let mut v: Vec<String> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .map(|j| j.name_any())
        .collect();
    v.sort();
    Ok(v)
}

/// Touches the CronJob (a reconcile trigger) and waits until the Job names are `want`.
async fn expect_jobs(client: &Client, want: &[String]) -> Result<()> {
    let api: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let patch = json!({"metadata": {"annotations": {"test/touch": n.to_string()}}});
        api.patch("tick", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let have = jobs(client).await?;
        if have == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("jobs {have:?}, want {want:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_follow_the_manual_clock() -> Result<()> {
    let (_dir, client, clock) = start().await?;
    let api: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let cj: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default"},
        "spec": {
            "schedule": "* * * * *", "timeZone": "UTC", "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
        }
    }))?;
    api.create(&PostParams::default(), &cj).await?;
    let t0 = clock.now();
    // The CronJob was created (real time) before the clock's minute: that minute is due.
    let first = format!("tick-{}", minute(t0));
    expect_jobs(&client, std::slice::from_ref(&first)).await?;
    let st = api.get("tick").await?.status.unwrap();
    assert_eq!(
        st.last_schedule_time.unwrap().0.as_second(),
        minute(t0) * 60
    );
    assert_eq!(st.active.unwrap()[0].name.as_deref(), Some(first.as_str()));

    // Forbid: the next minute comes while the first Job still runs: nothing new.
    clock.advance(SignedDuration::from_mins(1));
    expect_jobs(&client, std::slice::from_ref(&first)).await?;

    // Replace: the running Job is replaced by the one for the current minute.
    api.patch(
        "tick",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"concurrencyPolicy": "Replace"}})),
    )
    .await?;
    let second = format!("tick-{}", minute(t0) + 1);
    expect_jobs(&client, std::slice::from_ref(&second)).await?;

    // Suspended: minutes pass, nothing starts.
    api.patch(
        "tick",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true, "concurrencyPolicy": "Allow"}})),
    )
    .await?;
    clock.advance(SignedDuration::from_mins(3));
    expect_jobs(&client, std::slice::from_ref(&second)).await?;

    // startingDeadlineSeconds: 10 — 30 s after the minute is too late, 5 s is in time.
    let base = minute(clock.now()) * 60;
    clock.set(Timestamp::from_second(base + 30)?);
    api.patch(
        "tick",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false, "startingDeadlineSeconds": 10}})),
    )
    .await?;
    expect_jobs(&client, std::slice::from_ref(&second)).await?;
    clock.set(Timestamp::from_second(base + 65)?);
    let third = format!("tick-{}", base / 60 + 1);
    expect_jobs(&client, &[second.clone(), third.clone()]).await?;
    Ok(())
}
