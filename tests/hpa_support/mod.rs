//! The HPA tests' cluster: a controller with short HPA intervals, a simulated node whose
//! kubelet endpoint is the real kubelet server fed with test usage figures, and a task playing
//! kubelet for the pods bound to it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{bramble_bin, TestController};
use crate::sched;
use crate::workloads_support::{kc, wait_for};
use anyhow::{Context, Result};
use bramble_kubelet_server::stats::StatsProvider;
use bramble_kubelet_server::{
    ClientAuthorizer, ContainerTarget, LookupError, LookupFuture, PodContainers, PodSandbox,
};
use bramble_runtime::{HelperConfig, RuntimeClient};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

pub(crate) const NODE: &str = "hpa-node";

/// The simulated node's containers: none (no streaming in this test).
pub(crate) struct NoContainers;

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

pub(crate) fn not_found(namespace: &str, pod: &str) -> LookupError {
    LookupError::PodNotFound {
        namespace: namespace.into(),
        pod: pod.into(),
    }
}

/// The Summary the simulated kubelet serves, rebuilt by the driver task.
#[derive(Default)]
pub(crate) struct Stats(Mutex<Option<Value>>);

impl StatsProvider for Stats {
    fn summary(&self) -> Option<Value> {
        self.0.lock().unwrap().clone()
    }
}

pub(crate) fn rfc3339(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Starts the kubelet server for `NODE` on loopback with a serving certificate of the
/// cluster CA; returns its port.
pub(crate) async fn start_kubelet_server(
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
pub(crate) struct Load {
    pub(crate) app: &'static str,
    pub(crate) cpu_millis: AtomicU64,
    pub(crate) memory_bytes: AtomicU64,
}

impl Load {
    pub(crate) fn new(app: &'static str, cpu_millis: u64, memory_bytes: u64) -> Arc<Load> {
        Arc::new(Load {
            app,
            cpu_millis: AtomicU64::new(cpu_millis),
            memory_bytes: AtomicU64::new(memory_bytes),
        })
    }
}

/// What a kubelet does for the pods bound to `NODE`: reports them Running and Ready, and
/// publishes a Summary with each app's usage for each of its running pods.
pub(crate) async fn kubelet_round(
    client: &Client,
    stats: &Stats,
    loads: &[Arc<Load>],
) -> Result<()> {
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
pub(crate) struct Cluster {
    pub(crate) c: TestController,
    pub(crate) client: Client,
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
pub(crate) const WINDOW: Duration = Duration::from_secs(15);

pub(crate) async fn cluster(loads: Vec<Arc<Load>>) -> Result<Cluster> {
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
pub(crate) fn create(cl: &Cluster, name: &str, manifest: &Value) -> Result<String> {
    let file = cl.dir.path().join(format!("{name}.json"));
    std::fs::write(&file, manifest.to_string())?;
    kc(&cl.c, &["create", "-f", file.to_str().context("path")?])
}

/// Waits until the metrics API serves `n` PodMetrics of `app`.
pub(crate) async fn wait_pod_metrics(cl: &Cluster, app: &str, n: usize) -> Result<()> {
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
pub(crate) async fn replicas_of<K>(client: &Client, name: &str) -> Result<i32>
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
pub(crate) async fn hpa_events(client: &Client, name: &str) -> Result<Vec<(String, String)>> {
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

pub(crate) fn condition<'a>(hpa: &'a Value, type_: &str) -> &'a Value {
    hpa["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

pub(crate) fn hpa_json(cl: &Cluster, name: &str) -> Result<Value> {
    Ok(serde_json::from_str(&kc(
        &cl.c,
        &["get", "hpa", name, "-o", "json"],
    )?)?)
}
