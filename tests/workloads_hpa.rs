//! The HorizontalPodAutoscaler controller against a real `bramble controller`, driven with
//! the real kubectl (`kubectl autoscale`, `kubectl get hpa`). Pods are scheduled by the real
//! scheduler onto a simulated node whose kubelet endpoint is the real kubelet server
//! (`bramble-kubelet-server`, TLS with a cluster-CA serving certificate) fed with test
//! usage figures through its `StatsProvider` seam: the controller scrapes it for
//! `metrics.k8s.io` exactly as it scrapes a kubelet, and the HPA reads PodMetrics from there.

mod common;
#[path = "common/scheduler.rs"]
mod sched;
mod workloads_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bramble_kubelet_server::stats::StatsProvider;
use bramble_kubelet_server::{
    ClientAuthorizer, ContainerTarget, LookupError, LookupFuture, PodContainers, PodSandbox,
};
use bramble_runtime::{HelperConfig, RuntimeClient};
use common::{bramble_bin, TestController};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use workloads_support::{kc, wait_for};

const NODE: &str = "hpa-node";
/// cpu request of each pod, in millicores.
const REQUEST_M: u64 = 200;

/// The simulated node's containers: none (no streaming in this test).
struct NoContainers;

impl PodContainers for NoContainers {
    fn container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        _container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        Box::pin(async move { Err(not_found(namespace, pod)) })
    }

    fn previous_container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        _container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        Box::pin(async move { Err(not_found(namespace, pod)) })
    }

    fn sandbox<'a>(&'a self, namespace: &'a str, pod: &'a str) -> LookupFuture<'a, PodSandbox> {
        Box::pin(async move { Err(not_found(namespace, pod)) })
    }
}

fn not_found(namespace: &str, pod: &str) -> LookupError {
    LookupError::PodNotFound {
        namespace: namespace.into(),
        pod: pod.into(),
    }
}

/// The Summary the simulated kubelet serves, rebuilt by the driver task.
#[derive(Default)]
struct Stats(Mutex<Option<Value>>);

impl StatsProvider for Stats {
    fn summary(&self) -> Option<Value> {
        self.0.lock().unwrap().clone()
    }
}

fn rfc3339(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Starts the kubelet server for `NODE` on loopback with a serving certificate of the
/// cluster CA; returns its port.
async fn start_kubelet_server(
    ctrl: &TestController,
    stats: Arc<Stats>,
    state_root: &Path,
) -> Result<u16> {
    let pki = ctrl.data_dir().join("controller/pki");
    let ca = std::fs::read_to_string(pki.join("ca.crt"))?;
    let ca_key = std::fs::read_to_string(pki.join("ca.key"))?;
    let (csr, key) = bramble_pki::new_serving_csr(
        &format!("system:node:{NODE}"),
        &["system:nodes"],
        &[],
        &["127.0.0.1".parse()?],
    )?;
    let cert =
        bramble_pki::sign_serving_csr_with_ca(&ca, &ca_key, &csr, Duration::from_secs(3600))?;
    let tls = bramble_kubelet_server::server_config(&ca, &cert, &key)?;
    let runtime = Arc::new(RuntimeClient::spawn_helper(
        Path::new(bramble_bin()),
        &HelperConfig {
            state_root: state_root.to_path_buf(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            pause_binary: PathBuf::from(bramble_bin()),
        },
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(bramble_kubelet_server::serve_with_stats(
        listener,
        tls,
        Arc::new(NoContainers),
        runtime,
        ClientAuthorizer::default(),
        Some(stats as Arc<dyn StatsProvider>),
        std::future::pending::<()>(),
    ));
    Ok(port)
}

/// What a kubelet does for the pods bound to `NODE`: reports them Running and Ready, and
/// publishes a Summary with `load` millicores used by every running pod.
async fn kubelet_round(client: &Client, stats: &Stats, load: u64) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut entries = Vec::new();
    for p in api
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items
    {
        let on_node = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE);
        if !on_node || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if !running {
            let patch = json!({"status": {
                "phase": "Running",
                "startTime": rfc3339(now),
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now)},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": rfc3339(now)},
                ],
                "containerStatuses": [{"name": "web", "image": "busybox", "imageID": "",
                    "ready": true, "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": rfc3339(now)}}}],
            }});
            match api
                .patch_status(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        entries.push(json!({
            "podRef": {"name": p.name_any(), "namespace": "default", "uid": p.uid()},
            "startTime": rfc3339(now),
            "containers": [{"name": "web", "startTime": rfc3339(now),
                "cpu": {"time": rfc3339(now), "usageNanoCores": load * 1_000_000},
                "memory": {"time": rfc3339(now), "workingSetBytes": 8u64 << 20}}],
        }));
    }
    let node_cpu = load * entries.len() as u64 * 1_000_000;
    *stats.0.lock().unwrap() = Some(json!({
        "node": {"nodeName": NODE, "startTime": rfc3339(now),
            "cpu": {"time": rfc3339(now), "usageNanoCores": node_cpu},
            "memory": {"time": rfc3339(now), "workingSetBytes": 1u64 << 30}},
        "pods": entries,
    }));
    Ok(())
}

async fn spec_replicas(client: &Client) -> Result<i32> {
    let d = Api::<Deployment>::namespaced(client.clone(), "default")
        .get("web")
        .await?;
    Ok(d.spec.and_then(|s| s.replicas).unwrap_or(1))
}

async fn hpa_events(client: &Client) -> Result<Vec<(String, String)>> {
    let events = Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("HorizontalPodAutoscaler"))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect())
}

fn condition<'a>(hpa: &'a Value, type_: &str) -> &'a Value {
    hpa["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_autoscale_scales_a_deployment_up_and_down_on_cpu() -> Result<()> {
    // One-second syncs, a 15 s scale-down window, a 3 s cpu initialization period.
    let window = Duration::from_secs(15);
    for (k, v) in [
        ("BRAMBLE_HPA_SYNC_PERIOD_MS", "1000".to_string()),
        (
            "BRAMBLE_HPA_DOWNSCALE_STABILIZATION_MS",
            window.as_millis().to_string(),
        ),
        (
            "BRAMBLE_HPA_CPU_INITIALIZATION_PERIOD_MS",
            "3000".to_string(),
        ),
    ] {
        std::env::set_var(k, v);
    }
    let c = sched::start_controller()?;
    let client = c.client().await?;
    let dir = tempfile::tempdir()?;

    // The node and its kubelet endpoint.
    let stats = Arc::new(Stats::default());
    let port = start_kubelet_server(&c, stats.clone(), &dir.path().join("state")).await?;
    sched::add_node(&client, NODE, "8", "16Gi", json!({}), json!({})).await?;
    let _leases = sched::renew_leases(client.clone(), vec![NODE.into()]);
    let status = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }})
    .to_string();
    kc(
        &c,
        &[
            "patch",
            "node",
            NODE,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
    )?;

    // A Deployment of one pod requesting 200m cpu, and the simulated kubelet.
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "busybox",
                    "resources": {"requests": {"cpu": format!("{REQUEST_M}m")}}}]}}},
    });
    let file = dir.path().join("web.json");
    std::fs::write(&file, manifest.to_string())?;
    kc(&c, &["create", "-f", file.to_str().context("path")?])?;
    // 160m of 200m: 80% per pod.
    let load = Arc::new(AtomicU64::new(160));
    let driver = {
        let (client, stats, load) = (client.clone(), stats.clone(), load.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = kubelet_round(&client, &stats, load.load(Ordering::SeqCst)).await {
                    eprintln!("kubelet round: {e:#}");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    // The metrics API serves the pod's usage before the autoscaler exists.
    wait_for("PodMetrics of web", 60, || async {
        let out = c.kubectl(&[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
        ])?;
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let n = v["items"].as_array().map_or(0, Vec::len);
        Ok((n == 1).then_some(()))
    })
    .await?;

    let out = kc(
        &c,
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
        let t = kc(&c, &["get", "hpa", "web"])?;
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
        Ok((spec_replicas(&client).await? == 5).then_some(()))
    })
    .await?;
    let hpa = wait_for("status of 5 replicas at 80%", 60, || async {
        let v: Value = serde_json::from_str(&kc(&c, &["get", "hpa", "web", "-o", "json"])?)?;
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
    let events = hpa_events(&client).await?;
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
    load.store(20, Ordering::SeqCst);
    let dropped = Instant::now();
    wait_for("the usage drop to show", 60, || async {
        let t = kc(&c, &["get", "hpa", "web"])?;
        Ok(t.contains("cpu: 10%/50%").then_some(()))
    })
    .await?;
    let replicas = spec_replicas(&client).await?;
    if dropped.elapsed() + Duration::from_secs(2) < window {
        assert_eq!(replicas, 5, "scaled down within the stabilization window");
        let v: Value = serde_json::from_str(&kc(&c, &["get", "hpa", "web", "-o", "json"])?)?;
        assert_eq!(
            condition(&v, "AbleToScale")["reason"],
            "ScaleDownStabilized",
            "{v:#}"
        );
    }
    wait_for("the Deployment to scale down to 1", 120, || async {
        Ok((spec_replicas(&client).await? == 1).then_some(()))
    })
    .await?;
    // The last high recommendation may come from the sync just before the drop: one sync
    // period (1 s) and one kubelet round of slack.
    assert!(
        dropped.elapsed() + Duration::from_secs(2) >= window,
        "scaled down {:?} after the drop, before the {window:?} window",
        dropped.elapsed()
    );
    let events = hpa_events(&client).await?;
    assert!(
        events.iter().any(|(r, m)| r == "SuccessfulRescale"
            && m == "New size: 1; reason: All metrics below target"),
        "{events:?}"
    );
    let described = kc(&c, &["describe", "hpa", "web"])?;
    assert!(
        described.contains("New size: 1; reason: All metrics below target"),
        "{described}"
    );
    driver.abort();
    Ok(())
}
