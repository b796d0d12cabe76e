//! The HorizontalPodAutoscaler controller against a real `bramble controller`, driven with
//! the real kubectl (`kubectl autoscale`, `kubectl get hpa`). Pods are scheduled by the real
//! scheduler onto a simulated node whose kubelet endpoint is the real kubelet server
//! (`bramble-kubelet-server`, TLS with a cluster-CA serving certificate) fed with test
//! usage figures through its `StatsProvider` seam: the controller scrapes it for
//! `metrics.k8s.io` exactly as it scrapes a kubelet, and the HPA reads PodMetrics from there.

mod common;
mod hpa_support;
#[path = "common/scheduler.rs"]
mod sched;
mod workloads_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hpa_support::{
    cluster, condition, create, hpa_events, hpa_json, replicas_of, wait_pod_metrics, Load, WINDOW,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use workloads_support::{kc, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_autoscale_scales_a_deployment_up_and_down_on_cpu() -> Result<()> {
    // 160m of a 200m request: 80% per pod.
    let web = Load::new("web", 160, 8 << 20);
    let cl = cluster(vec![web.clone()]).await?;
    let (c, client) = (&cl.c, &cl.client);
    create(
        &cl,
        "web",
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox",
                        "resources": {"requests": {"cpu": "200m"}}}]}}},
        }),
    )?;
    // The metrics API serves the pod's usage before the autoscaler exists.
    wait_pod_metrics(&cl, "web", 1).await?;

    let out = kc(
        c,
        &[
            "autoscale",
            "deployment",
            "web",
            "--cpu-percent=50",
            "--min=1",
            "--max=5",
        ],
    )?;
    assert!(out.contains("autoscaled"), "{out}");

    // 80% of a 50% target: 1 -> 2 -> 4 -> 5 (maxReplicas), the table showing the usage.
    let table = wait_for("kubectl get hpa to show cpu: 80%/50%", 90, || async {
        let t = kc(c, &["get", "hpa", "web"])?;
        Ok(t.contains("cpu: 80%/50%").then_some(t))
    })
    .await?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ],
        "{table}"
    );
    assert!(table.contains("Deployment/web"), "{table}");
    wait_for("the Deployment to reach maxReplicas 5", 120, || async {
        Ok((replicas_of::<Deployment>(client, "web").await? == 5).then_some(()))
    })
    .await?;
    let hpa = wait_for("status of 5 replicas at 80%", 60, || async {
        let v = hpa_json(&cl, "web")?;
        let done = v["status"]["currentReplicas"] == 5
            && v["status"]["desiredReplicas"] == 5
            && condition(&v, "ScalingLimited")["reason"] == "TooManyReplicas";
        Ok(done.then_some(v))
    })
    .await?;
    assert_eq!(
        hpa["status"]["currentMetrics"][0]["resource"],
        json!({"name": "cpu", "current": {"averageUtilization": 80, "averageValue": "160m"}}),
        "{hpa:#}"
    );
    assert_eq!(condition(&hpa, "ScalingLimited")["status"], "True");
    assert_eq!(
        condition(&hpa, "ScalingActive")["reason"],
        "ValidMetricFound",
        "{hpa:#}"
    );
    assert_eq!(
        condition(&hpa, "ScalingActive")["message"],
        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"
    );
    assert_eq!(condition(&hpa, "AbleToScale")["status"], "True");
    assert!(hpa["status"]["lastScaleTime"].is_string(), "{hpa:#}");
    let events = hpa_events(client, "web").await?;
    let reason = "cpu resource utilization (percentage of request) above target";
    for size in [2, 4, 5] {
        let want = format!("New size: {size}; reason: {reason}");
        assert!(
            events
                .iter()
                .any(|(r, m)| r == "SuccessfulRescale" && *m == want),
            "no {want:?} in {events:?}"
        );
    }

    // Load drops to 10%: the recommendation of 1 waits out the scale-down window.
    web.cpu_millis.store(20, Ordering::SeqCst);
    let dropped = Instant::now();
    wait_for("the usage drop to show", 60, || async {
        let t = kc(c, &["get", "hpa", "web"])?;
        Ok(t.contains("cpu: 10%/50%").then_some(()))
    })
    .await?;
    let replicas = replicas_of::<Deployment>(client, "web").await?;
    if dropped.elapsed() + Duration::from_secs(2) < WINDOW {
        assert_eq!(replicas, 5, "scaled down within the stabilization window");
        let v = hpa_json(&cl, "web")?;
        assert_eq!(
            condition(&v, "AbleToScale")["reason"],
            "ScaleDownStabilized",
            "{v:#}"
        );
    }
    wait_for("the Deployment to scale down to 1", 120, || async {
        Ok((replicas_of::<Deployment>(client, "web").await? == 1).then_some(()))
    })
    .await?;
    // The last high recommendation may come from the sync just before the drop: one sync
    // period (1 s) and one kubelet round of slack.
    assert!(
        dropped.elapsed() + Duration::from_secs(2) >= WINDOW,
        "scaled down {:?} after the drop, before the {WINDOW:?} window",
        dropped.elapsed()
    );
    let events = hpa_events(client, "web").await?;
    assert!(
        events.iter().any(|(r, m)| r == "SuccessfulRescale"
            && m == "New size: 1; reason: All metrics below target"),
        "{events:?}"
    );
    let described = kc(c, &["describe", "hpa", "web"])?;
    assert!(
        described.contains("New size: 1; reason: All metrics below target"),
        "{described}"
    );
    Ok(())
}

/// `behavior.scaleDown.stabilizationWindowSeconds` of the StatefulSet's autoscaler.
const HPA_WINDOW_SECONDS: u64 = 25;

/// An autoscaling/v2 HPA on a StatefulSet's memory (AverageValue) with `behavior`: one pod
/// per minute up (ScaleUpLimit), a 25 s scale-down window instead of the 15 s default; and
/// an HPA whose pods lack cpu requests reports ScalingActive=False as upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v2_behavior_statefulset_memory_and_missing_requests() -> Result<()> {
    let mem = Load::new("mem", 10, 30 << 20);
    let bare = Load::new("bare", 50, 1 << 20);
    let cl = cluster(vec![mem.clone(), bare.clone()]).await?;
    let (c, client) = (&cl.c, &cl.client);
    let pod_template = |app: &str| {
        json!({"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    };
    create(
        &cl,
        "mem",
        &json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "mem", "namespace": "default"},
            "spec": {"replicas": 1, "serviceName": "mem",
                "selector": {"matchLabels": {"app": "mem"}}, "template": pod_template("mem")},
        }),
    )?;
    create(
        &cl,
        "bare",
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bare", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "bare"}},
                "template": pod_template("bare")},
        }),
    )?;
    wait_pod_metrics(&cl, "mem", 1).await?;
    wait_pod_metrics(&cl, "bare", 1).await?;
    create(
        &cl,
        "mem-hpa",
        &json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "mem", "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "mem"},
                "minReplicas": 1, "maxReplicas": 6,
                "metrics": [{"type": "Resource", "resource": {"name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "10Mi"}}}],
                "behavior": {
                    "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                    "scaleDown": {"stabilizationWindowSeconds": HPA_WINDOW_SECONDS},
                },
            },
        }),
    )?;
    kc(
        c,
        &[
            "autoscale",
            "deployment",
            "bare",
            "--cpu-percent=50",
            "--max=3",
        ],
    )?;

    // 30Mi against 10Mi wants 3; the Pods policy allows one more per minute.
    let hpa = wait_for("the StatefulSet HPA to be rate limited", 90, || async {
        let v = hpa_json(&cl, "mem")?;
        let limited = condition(&v, "ScalingLimited")["reason"] == "ScaleUpLimit";
        Ok((limited && v["status"]["currentReplicas"] == 2).then_some(v))
    })
    .await?;
    assert_eq!(
        condition(&hpa, "ScalingLimited")["message"],
        "the desired replica count is increasing faster than the maximum scale rate"
    );
    assert_eq!(replicas_of::<StatefulSet>(client, "mem").await?, 2);
    let table = kc(c, &["get", "hpa", "mem"])?;
    assert!(table.contains("memory: "), "{table}");
    assert!(table.contains("/10Mi"), "{table}");
    assert!(table.contains("StatefulSet/mem"), "{table}");
    let events = hpa_events(client, "mem").await?;
    assert!(
        events.iter().any(|(r, m)| r == "SuccessfulRescale"
            && m == "New size: 2; reason: memory resource above target"),
        "{events:?}"
    );

    // Usage drops to 5Mi: the HPA's own 25 s window applies, not the controller's 15 s
    // default: still 2 replicas past the default, 1 after its own.
    mem.memory_bytes.store(5 << 20, Ordering::SeqCst);
    let dropped = Instant::now();
    let own = Duration::from_secs(HPA_WINDOW_SECONDS);
    tokio::time::sleep(WINDOW + Duration::from_secs(3)).await;
    let replicas = replicas_of::<StatefulSet>(client, "mem").await?;
    let v = hpa_json(&cl, "mem")?;
    if dropped.elapsed() + Duration::from_secs(2) < own {
        assert_eq!(replicas, 2, "scaled down before the HPA's own window");
        assert_eq!(
            condition(&v, "AbleToScale")["reason"],
            "ScaleDownStabilized",
            "{v:#}"
        );
    }
    wait_for("the StatefulSet to scale down to 1", 90, || async {
        Ok((replicas_of::<StatefulSet>(client, "mem").await? == 1).then_some(()))
    })
    .await?;
    assert!(
        dropped.elapsed() + Duration::from_secs(2) >= own,
        "scaled down {:?} after the drop, before the HPA's {own:?} window",
        dropped.elapsed()
    );

    // Pods without a cpu request: nothing to compute a utilization from.
    // (While the pod's cpu samples are still initializing the error is that no ready pod
    // has metrics; then the missing request.)
    let v = wait_for(
        "ScalingActive=False for the missing request",
        60,
        || async {
            let v = hpa_json(&cl, "bare")?;
            let active = condition(&v, "ScalingActive");
            let missing = active["message"]
                .as_str()
                .is_some_and(|m| m.contains("missing request"));
            Ok((active["status"] == "False" && missing).then_some(v))
        },
    )
    .await?;
    let active = condition(&v, "ScalingActive");
    assert_eq!(active["reason"], "FailedGetResourceMetric", "{v:#}");
    let pod = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("app=bare"))
        .await?
        .items
        .into_iter()
        .next()
        .context("a bare pod")?;
    let missing = format!(
        "failed to get cpu utilization: missing request for cpu in container main of Pod {}",
        pod.name_any()
    );
    assert_eq!(
        active["message"],
        format!("the HPA was unable to compute the replica count: {missing}")
    );
    let events = hpa_events(client, "bare").await?;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "FailedGetResourceMetric" && *m == missing),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, m)| r == "FailedComputeMetricsReplicas"
            && *m == format!("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: {missing}")),
        "{events:?}"
    );
    assert_eq!(replicas_of::<Deployment>(client, "bare").await?, 1);

    // A target that does not exist: AbleToScale=False, FailedGetScale.
    create(
        &cl,
        "ghost",
        &json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "ghost", "namespace": "default"},
            "spec": {"maxReplicas": 3,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nothing"}},
        }),
    )?;
    let not_found = r#"deployments.apps "nothing" not found"#;
    let v = wait_for("AbleToScale=False on ghost", 60, || async {
        let v = hpa_json(&cl, "ghost")?;
        Ok((condition(&v, "AbleToScale")["status"] == "False").then_some(v))
    })
    .await?;
    let able = condition(&v, "AbleToScale");
    assert_eq!(able["reason"], "FailedGetScale", "{v:#}");
    assert_eq!(
        able["message"],
        format!("the HPA controller was unable to get the target's current scale: {not_found}")
    );
    let events = hpa_events(client, "ghost").await?;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "FailedGetScale" && m == not_found),
        "{events:?}"
    );
    Ok(())
}
