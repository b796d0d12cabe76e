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
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use workloads_support::{kc, wait_for};

const NODE: &str = "hpa-node";

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

/// Usage of every running pod of one app.
struct Load {
    app: &'static str,
    cpu_millis: AtomicU64,
    memory_bytes: AtomicU64,
}

impl Load {
    fn new(app: &'static str, cpu_millis: u64, memory_bytes: u64) -> Arc<Load> {
        Arc::new(Load {
            app,
            cpu_millis: AtomicU64::new(cpu_millis),
            memory_bytes: AtomicU64::new(memory_bytes),
        })
    }
}

/// What a kubelet does for the pods bound to `NODE`: reports them Running and Ready, and
/// publishes a Summary with each app's usage for each of its running pods.
async fn kubelet_round(client: &Client, stats: &Stats, loads: &[Arc<Load>]) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut entries = Vec::new();
    let (mut node_cpu, mut node_mem) = (0u64, 0u64);
    for p in api.list(&ListParams::default()).await?.items {
        let on_node = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE);
        let app = p.labels().get("app").cloned().unwrap_or_default();
        let Some(load) = loads.iter().find(|l| l.app == app) else {
            continue;
        };
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
                "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "",
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
        let cpu = load.cpu_millis.load(Ordering::SeqCst) * 1_000_000;
        let mem = load.memory_bytes.load(Ordering::SeqCst);
        node_cpu += cpu;
        node_mem += mem;
        entries.push(json!({
            "podRef": {"name": p.name_any(), "namespace": "default", "uid": p.uid()},
            "startTime": rfc3339(now),
            "containers": [{"name": "main", "startTime": rfc3339(now),
                "cpu": {"time": rfc3339(now), "usageNanoCores": cpu},
                "memory": {"time": rfc3339(now), "workingSetBytes": mem}}],
        }));
    }
    *stats.0.lock().unwrap() = Some(json!({
        "node": {"nodeName": NODE, "startTime": rfc3339(now),
            "cpu": {"time": rfc3339(now), "usageNanoCores": node_cpu},
            "memory": {"time": rfc3339(now), "workingSetBytes": node_mem + (1u64 << 30)}},
        "pods": entries,
    }));
    Ok(())
}

/// The controller (short HPA intervals), a node with the kubelet server, and a task playing
/// kubelet for `loads` until the returned guard is dropped.
struct Cluster {
    c: TestController,
    client: Client,
    dir: tempfile::TempDir,
    driver: tokio::task::JoinHandle<()>,
    _leases: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.driver.abort();
        self._leases.abort();
    }
}

/// The scale-down window the controller runs with in these tests.
const WINDOW: Duration = Duration::from_secs(15);

async fn cluster(loads: Vec<Arc<Load>>) -> Result<Cluster> {
    // One-second syncs, a 15 s default scale-down window, a 3 s cpu initialization period
    // (the same values in every test of this binary: they share the environment).
    for (k, v) in [
        ("BRAMBLE_HPA_SYNC_PERIOD_MS", "1000".to_string()),
        (
            "BRAMBLE_HPA_DOWNSCALE_STABILIZATION_MS",
            WINDOW.as_millis().to_string(),
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
    let stats = Arc::new(Stats::default());
    let port = start_kubelet_server(&c, stats.clone(), &dir.path().join("state")).await?;
    sched::add_node(&client, NODE, "8", "16Gi", json!({}), json!({})).await?;
    let leases = sched::renew_leases(client.clone(), vec![NODE.into()]);
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
    let driver = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = kubelet_round(&client, &stats, &loads).await {
                    eprintln!("kubelet round: {e:#}");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    Ok(Cluster {
        c,
        client,
        dir,
        driver,
        _leases: leases,
    })
}

/// Creates an object from a JSON manifest with kubectl.
fn create(cl: &Cluster, name: &str, manifest: &Value) -> Result<String> {
    let file = cl.dir.path().join(format!("{name}.json"));
    std::fs::write(&file, manifest.to_string())?;
    kc(&cl.c, &["create", "-f", file.to_str().context("path")?])
}

/// Waits until the metrics API serves `n` PodMetrics of `app`.
async fn wait_pod_metrics(cl: &Cluster, app: &str, n: usize) -> Result<()> {
    let path =
        format!("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3D{app}");
    wait_for(&format!("{n} PodMetrics of {app}"), 60, || async {
        let out = cl.c.kubectl(&["get", "--raw", &path])?;
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        Ok((v["items"].as_array().map_or(0, Vec::len) == n).then_some(()))
    })
    .await
}

/// `spec.replicas` of a scalable object, through its scale subresource.
async fn replicas_of<K>(client: &Client, name: &str) -> Result<i32>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let scale = Api::<K>::namespaced(client.clone(), "default")
        .get_scale(name)
        .await?;
    Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
}

/// (reason, message) of the events about autoscaler `name`.
async fn hpa_events(client: &Client, name: &str) -> Result<Vec<(String, String)>> {
    let events = Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("HorizontalPodAutoscaler")
                && e.involved_object.name.as_deref() == Some(name)
        })
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect())
}

fn condition<'a>(hpa: &'a Value, type_: &str) -> &'a Value {
    hpa["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn hpa_json(cl: &Cluster, name: &str) -> Result<Value> {
    Ok(serde_json::from_str(&kc(
        &cl.c,
        &["get", "hpa", name, "-o", "json"],
    )?)?)
}

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
