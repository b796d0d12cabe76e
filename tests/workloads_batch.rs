//! Jobs and CronJobs against a real `bramble controller`, created with the real kubectl; a
//! simulated kubelet reports pods Succeeded/Failed through the API.

mod common;
mod workloads_support;

use std::collections::BTreeSet;

use anyhow::Result;
use common::{ok, TestController, KUBECTL};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use workloads_support::*;

fn apply(c: &TestController, yaml: &str) -> Result<String> {
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(yaml))?)
}

fn condition(j: &Job, t: &str) -> Option<(String, String)> {
    let c = j
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

async fn job(client: &Client, name: &str) -> Result<Job> {
    Ok(Api::<Job>::namespaced(client.clone(), "default")
        .get(name)
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_five_completions_two_at_a_time() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    apply(
        &c,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: five}\nspec:\n  completions: 5\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: busybox}]\n",
    )?;
    let selector = "batch.kubernetes.io/job-name=five";
    let seen = std::sync::Mutex::new(BTreeSet::new());
    let done = wait_for("job to complete", 60, || async {
        let pods = live_pods(&client, "default", selector).await?;
        let running: Vec<_> = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded"))
            .collect();
        assert!(
            running.len() <= 2,
            "parallelism 2 exceeded: {}",
            running.len()
        );
        for p in &running {
            assert!(
                p.finalizers()
                    .iter()
                    .any(|f| f == "batch.kubernetes.io/job-tracking"),
                "pods carry the tracking finalizer"
            );
            seen.lock().unwrap().insert(p.name_any());
            finish(&client, p, true).await?;
        }
        let j = job(&client, "five").await?;
        Ok(condition(&j, "Complete").is_some().then_some(j))
    })
    .await?;
    let st = done.status.clone().unwrap();
    assert_eq!(st.succeeded, Some(5));
    assert!(st.completion_time.is_some());
    assert_eq!(
        condition(&done, "Complete"),
        Some(("True".into(), "CompletionsReached".into()))
    );
    assert_eq!(
        condition(&done, "SuccessCriteriaMet").map(|c| c.0),
        Some("True".into())
    );
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 5, "exactly five pods were created: {seen:?}");
    ok(c.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/five",
        "--timeout=5s",
    ])?)?;
    // Finished pods keep no finalizer.
    let pods = live_pods(&client, "default", selector).await?;
    assert!(pods.iter().all(|p| p.finalizers().is_empty()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_job_stops_at_backoff_limit_and_indexed_job_tracks_indexes() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    apply(
        &c,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: flaky}\nspec:\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: busybox}]\n",
    )?;
    apply(
        &c,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: idx}\nspec:\n  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: busybox}]\n",
    )?;
    // Indexed: one pod per index with the annotation, label, hostname and env var.
    let pods = wait_pod_count(&client, "default", "batch.kubernetes.io/job-name=idx", 3).await?;
    let mut indexes: Vec<String> = pods
        .iter()
        .map(|p| p.annotations()["batch.kubernetes.io/job-completion-index"].clone())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    for p in &pods {
        let i = &p.labels()["batch.kubernetes.io/job-completion-index"];
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{i}").as_str()));
        let env = spec.containers[0].env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX"));
        finish(&client, p, true).await?;
    }
    let idx = wait_for("indexed job to complete", 30, || async {
        let j = job(&client, "idx").await?;
        Ok(condition(&j, "Complete").is_some().then_some(j))
    })
    .await?;
    assert_eq!(
        idx.status.unwrap().completed_indexes.as_deref(),
        Some("0-2")
    );

    // backoffLimit 1: the second failure fails the Job (the replacement waits ~10 s).
    let failed = wait_for("job to fail", 60, || async {
        for p in live_pods(&client, "default", "batch.kubernetes.io/job-name=flaky").await? {
            if p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed") {
                finish(&client, &p, false).await?;
            }
        }
        let j = job(&client, "flaky").await?;
        Ok(condition(&j, "Failed").is_some().then_some(j))
    })
    .await?;
    assert_eq!(
        condition(&failed, "Failed"),
        Some(("True".into(), "BackoffLimitExceeded".into()))
    );
    assert_eq!(
        condition(&failed, "FailureTarget").map(|c| c.1),
        Some("BackoffLimitExceeded".into())
    );
    assert_eq!(failed.status.unwrap().failed, Some(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_deadline_suspend_and_ttl() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    apply(
        &c,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: slow}\nspec:\n  activeDeadlineSeconds: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: busybox}]\n",
    )?;
    apply(
        &c,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: paused}\nspec:\n  suspend: true\n  ttlSecondsAfterFinished: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: busybox}]\n",
    )?;
    let slow = wait_for("deadline", 30, || async {
        let j = job(&client, "slow").await?;
        Ok(condition(&j, "Failed").is_some().then_some(j))
    })
    .await?;
    assert_eq!(condition(&slow, "Failed").unwrap().1, "DeadlineExceeded");
    assert!(
        live_pods(&client, "default", "batch.kubernetes.io/job-name=slow")
            .await?
            .is_empty()
    );

    let p = wait_for("suspended condition", 30, || async {
        let j = job(&client, "paused").await?;
        Ok(condition(&j, "Suspended").is_some().then_some(j))
    })
    .await?;
    assert_eq!(condition(&p, "Suspended").unwrap().1, "JobSuspended");
    assert!(
        live_pods(&client, "default", "batch.kubernetes.io/job-name=paused")
            .await?
            .is_empty()
    );
    ok(c.kubectl(&[
        "patch",
        "job",
        "paused",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ])?)?;
    let pods = wait_pod_count(&client, "default", "batch.kubernetes.io/job-name=paused", 1).await?;
    finish(&client, &pods[0], true).await?;
    // ttlSecondsAfterFinished: 1 -> the finished Job and its pods are deleted.
    wait_for("ttl deletion", 30, || async {
        let gone = Api::<Job>::namespaced(client.clone(), "default")
            .get_opt("paused")
            .await?
            .is_none();
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "default")
            .list(&ListParams::default().labels("batch.kubernetes.io/job-name=paused"))
            .await?;
        Ok((gone && pods.items.is_empty()).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_starts_a_job_each_minute() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    ok(c.kubectl(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=* * * * *",
    ])?)?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let first = wait_for("the first scheduled job", 75, || async {
        let list = jobs.list(&ListParams::default()).await?;
        Ok(list
            .items
            .into_iter()
            .find(|j| j.name_any().starts_with("tick-")))
    })
    .await?;
    assert_eq!(first.owner_references()[0].kind, "CronJob");
    assert!(first
        .annotations()
        .contains_key("batch.kubernetes.io/cronjob-scheduled-timestamp"));
    let cj = wait_for("status.active and lastScheduleTime", 10, || async {
        let cj = Api::<CronJob>::namespaced(client.clone(), "default")
            .get("tick")
            .await?;
        let st = cj.status.clone().unwrap_or_default();
        Ok((st.last_schedule_time.is_some() && st.active.is_some()).then_some(cj))
    })
    .await?;
    let active = cj.status.unwrap().active.unwrap();
    assert_eq!(active[0].name.as_deref(), Some(first.name_any().as_str()));
    // The Job runs its pod; when it succeeds the CronJob records lastSuccessfulTime.
    let pods = wait_pod_count(
        &client,
        "default",
        &format!("batch.kubernetes.io/job-name={}", first.name_any()),
        1,
    )
    .await?;
    finish(&client, &pods[0], true).await?;
    wait_for("lastSuccessfulTime", 30, || async {
        let cj = Api::<CronJob>::namespaced(client.clone(), "default")
            .get("tick")
            .await?;
        Ok(cj.status.and_then(|s| s.last_successful_time))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_failure_policy_fails_the_job_or_ignores_the_failure() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    apply(
        &c,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: policy}\nspec:\n  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - {action: Ignore, onExitCodes: {operator: In, values: [137]}}\n    - {action: FailJob, onExitCodes: {containerName: main, operator: In, values: [42]}}\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: busybox}]\n",
    )?;
    let selector = "batch.kubernetes.io/job-name=policy";
    let first = wait_pod_count(&client, "default", selector, 1).await?;
    // 137 is ignored: not counted, replaced at once (no back-off for ignored failures).
    workloads_support::finish_with_code(&client, &first[0], 137).await?;
    let second = wait_for("a replacement pod", 30, || async {
        let pods = live_pods(&client, "default", selector).await?;
        Ok(pods.into_iter().find(|p| {
            p.name_any() != first[0].name_any()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed")
        }))
    })
    .await?;
    assert_eq!(
        job(&client, "policy")
            .await?
            .status
            .unwrap()
            .failed
            .unwrap_or(0),
        0
    );
    // 42 matches the FailJob rule.
    workloads_support::finish_with_code(&client, &second, 42).await?;
    let failed = wait_for("job to fail by policy", 30, || async {
        let j = job(&client, "policy").await?;
        Ok(condition(&j, "Failed").is_some().then_some(j))
    })
    .await?;
    assert_eq!(
        condition(&failed, "Failed"),
        Some(("True".into(), "PodFailurePolicy".into()))
    );
    let msg = failed
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap()
        .message
        .unwrap();
    assert!(
        msg.contains("failed with exit code 42 matching FailJob rule at index 1"),
        "{msg}"
    );
    Ok(())
}
