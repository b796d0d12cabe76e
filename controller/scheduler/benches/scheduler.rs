//! Scheduler throughput: `cargo bench -p bramble-scheduler --bench scheduler` (release build;
//! prints a Markdown table and writes it to target/bench-scheduler.md).
//!
//! Runs the real API server in process (LMDB store in a temp dir), creates simulated Ready
//! nodes and then pending pods through the API with the scheduler stopped, starts the
//! scheduler and measures the time until every pod is bound (bindings are real
//! `pods/binding` POSTs, and every bind writes a Scheduled event). Then the time from creating
//! a 100-replica Deployment (real workload controllers) until all its pods are bound, and the
//! RSS of the whole process (API server, store, scheduler, controllers, bench watcher).
//! Sizes: `BENCH_PODS` (default 10000) and `BENCH_NODES` (default "100,1000").

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::PostParams;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::json;

use bramble_apiserver::{Controller, ControllerConfig};
use bramble_scheduler::{Scheduler, SchedulerConfig};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

async fn create_nodes(client: &Client, n: usize) {
    let api: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                let name = format!("node-{i:04}");
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                        "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
                    "status": {
                        "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "250"},
                        "capacity": {"cpu": "32", "memory": "64Gi", "pods": "250"},
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }))
                .unwrap();
                api.create(&PostParams::default(), &node).await.unwrap();
            }
        })
        .await;
}

async fn create_pods(client: &Client, ns: &str, prefix: &str, n: usize) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                let meta = json!({"name": format!("{prefix}-{i:05}"), "labels": {"app": prefix}});
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": meta,
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
                }))
                .unwrap();
                api.create(&PostParams::default(), &pod).await.unwrap();
            }
        })
        .await;
}

/// Waits until `n` pods in `ns` are bound; returns the elapsed time since `start`.
async fn wait_bound(client: &Client, ns: &str, n: usize, start: Instant) -> Duration {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut bound = HashSet::new();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.try_next().await.unwrap() {
        let pods: Vec<Pod> = match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => vec![p],
            _ => vec![],
        };
        for p in pods {
            if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                bound.insert(p.metadata.uid.unwrap_or_default());
            }
        }
        if bound.len() >= n {
            break;
        }
    }
    start.elapsed()
}

async fn run(nodes: usize, pods: usize) -> (f64, Duration, Duration, f64) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ControllerConfig::new(
        dir.path().join("controller"),
        "127.0.0.1:0".parse().unwrap(),
    );
    let controller = Controller::start(&cfg).await.unwrap();
    let admin = controller.in_process_client("bench-admin");
    let sched_client = controller.in_process_client("system:kube-scheduler");
    let workloads_client = controller.in_process_client("system:kube-controller-manager");
    tokio::spawn(controller.serve(std::future::pending::<()>()));
    // One cache per kind for the whole process, as `bramble controller` has.
    let informers = bramble_scheduler::SharedInformers::new(workloads_client.clone());
    create_nodes(&admin, nodes).await;
    create_pods(&admin, "default", "bulk", pods).await;
    let start = Instant::now();
    let sched = tokio::spawn(
        Scheduler::new(
            sched_client,
            SchedulerConfig {
                bind_concurrency: std::env::var("BENCH_BIND")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(SchedulerConfig::default().bind_concurrency),
                ..SchedulerConfig::default()
            },
            &informers,
        )
        .run(),
    );
    let all = wait_bound(&admin, "default", pods, start).await;
    let rate = pods as f64 / all.as_secs_f64();
    // A 100-replica Deployment through the real workload controllers, scheduler running.
    bramble_workloads::spawn(workloads_client, &informers);
    let start = Instant::now();
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "kube-public"},
        "spec": {"replicas": 100, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                "name": "c", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
    }))
    .unwrap();
    Api::<Deployment>::namespaced(admin.clone(), "kube-public")
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();
    let burst = wait_bound(&admin, "kube-public", 100, start).await;
    let rss = rss_mib();
    sched.abort();
    (rate, all, burst, rss)
}

fn main() {
    let pods: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let node_counts: Vec<usize> = std::env::var("BENCH_NODES")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let mut table = String::from(
        "| nodes | pods | all bound (s) | pods bound/s | 100-replica Deployment all bound (s) | process RSS (MiB) |\n|---|---|---|---|---|---|\n",
    );
    for nodes in node_counts {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (rate, all, burst, rss) = rt.block_on(run(nodes, pods));
        rt.shutdown_timeout(Duration::from_secs(1));
        let row = format!(
            "| {nodes} | {pods} | {:.2} | {rate:.0} | {:.2} | {rss:.0} |\n",
            all.as_secs_f64(),
            burst.as_secs_f64()
        );
        eprint!("{row}");
        table.push_str(&row);
    }
    println!("{table}");
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_string());
    let _ = std::fs::write(format!("{target}/bench-scheduler.md"), &table);
}
