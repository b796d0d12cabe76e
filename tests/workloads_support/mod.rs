//! Helpers of the workload controller tests: polling, and a simulated kubelet that reports
//! pods Running/Ready or finished through the status subresource, as a real kubelet would.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// Runs kubectl against `c`; its stdout, or an error with its stderr.
pub fn kc(c: &crate::common::TestController, args: &[&str]) -> Result<String> {
    crate::common::ok(c.kubectl(args)?)
}

/// Polls `f` every 200 ms until it returns `Some`, or fails after `secs` seconds.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Pods matching `selector` that are not being deleted.
pub async fn live_pods(client: &Client, ns: &str, selector: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default().labels(selector)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Waits until exactly `n` live pods match `selector`.
pub async fn wait_pod_count(
    client: &Client,
    ns: &str,
    selector: &str,
    n: usize,
) -> Result<Vec<Pod>> {
    wait_for(&format!("{n} pods {selector}"), 30, || async {
        let pods = live_pods(client, ns, selector).await?;
        Ok((pods.len() == n).then_some(pods))
    })
    .await
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// What a kubelet reports for a running, ready pod.
pub async fn mark_ready(client: &Client, pod: &Pod) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap());
    let containers: Vec<_> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            json!({"name": c.name, "image": c.image, "imageID": "", "ready": true,
                   "restartCount": 0, "started": true,
                   "state": {"running": {"startedAt": now()}}})
        })
        .collect();
    let patch = json!({"status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now()},
        ],
        "containerStatuses": containers,
    }});
    api.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await?;
    Ok(())
}

/// Marks every live, not yet ready pod matching `selector` ready; returns how many.
pub async fn kubelet_pass(client: &Client, ns: &str, selector: &str) -> Result<usize> {
    let mut n = 0;
    for p in live_pods(client, ns, selector).await? {
        if !is_ready(&p) {
            match mark_ready(client, &p).await {
                Ok(()) => n += 1,
                Err(e) if e.to_string().contains("not found") => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}

/// Whether the pod reports Ready=True.
pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What a kubelet reports for a finished pod (`Succeeded` with exit 0 or `Failed` with 1).
pub async fn finish(client: &Client, pod: &Pod, succeeded: bool) -> Result<()> {
    finish_with_code(client, pod, if succeeded { 0 } else { 1 }).await
}

/// What a kubelet reports for a pod whose containers exited with `code`.
pub async fn finish_with_code(client: &Client, pod: &Pod, code: i32) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap());
    let succeeded = code == 0;
    let reason = if succeeded { "Completed" } else { "Error" };
    let containers: Vec<_> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            json!({"name": c.name, "image": c.image, "imageID": "", "ready": false,
                   "restartCount": 0,
                   "state": {"terminated": {"exitCode": code, "reason": reason,
                             "startedAt": now(), "finishedAt": now()}}})
        })
        .collect();
    let patch = json!({"status": {
        "phase": if succeeded { "Succeeded" } else { "Failed" },
        "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted",
                        "lastTransitionTime": now()}],
        "containerStatuses": containers,
    }});
    api.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await?;
    Ok(())
}

/// What a kubelet does with pods being deleted: confirms the deletion (grace period 0).
pub async fn reap_terminating(client: &Client, ns: &str, selector: &str) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default().labels(selector)).await?;
    for p in list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
    {
        let dp = kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let _ = api.delete(&p.name_any(), &dp).await;
    }
    Ok(())
}
