//! Prober benchmark: `cargo bench --bench kubelet_probes` (release build; prints a Markdown
//! table and writes it to target/bench-kubelet-probes.md). `cargo bench --bench
//! kubelet_probes -- exec tcp` runs only the rows whose name contains one of the words.
//!
//! Starts a real `bramble controller`, Debian's `docker-registry` with a busybox image and a
//! real `bramble kubelet` (the test fixtures of tests/common). For each probe type (none,
//! exec, httpGet, tcpSocket) it runs 30 pods, each with a liveness and a readiness probe of
//! that type at `periodSeconds: 1` (the network probes connect inside the pod's network
//! namespace to busybox httpd), waits for them to be ready, and measures over a 60 s window:
//! - the kubelet's CPU: utime+stime of the kubelet and its runtime helper, as a share of one
//!   core (the figure);
//! - everything the kubelet starts outside the containers: the bench moves the kubelet and
//!   its helper into a cgroup of their own at start, so the cgroup's CPU time also counts the
//!   short-lived processes of each exec (shims, libcontainer's intermediate processes) and
//!   the container shims;
//! - the CPU of the pods' cgroups (the containers, and the processes exec'd into them);
//! - the kubelet's and the helper's RSS at the end of the window, and the kubelet's highest
//!   RSS of the window (sampled every second).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::kubelet::{pod_manifest, TestKubelet, CGROUPFS};
use common::registry::TestRegistry;
use common::TestController;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

const NODE: &str = "bench-probes";
const PODS: usize = 30;
const WINDOW: Duration = Duration::from_secs(60);

/// The rows: a name and the probes each pod's container gets.
fn rows() -> Vec<(&'static str, Value)> {
    let http = json!({"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1});
    let tcp = json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1});
    let exec = json!({"exec": {"command": ["true"]}, "periodSeconds": 1});
    let both = |p: &Value| json!({"livenessProbe": p, "readinessProbe": p});
    vec![
        ("no probes", json!({})),
        ("exec", both(&exec)),
        ("httpGet", both(&http)),
        ("tcpSocket", both(&tcp)),
    ]
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The kubelet and its runtime helper (its child).
fn kubelet_pids(kubelet: u32) -> Vec<u32> {
    let mut pids = vec![kubelet];
    pids.extend(
        std::fs::read_to_string(format!("/proc/{kubelet}/task/{kubelet}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok()),
    );
    pids
}

fn unified() -> bool {
    Path::new(CGROUPFS).join("cgroup.controllers").exists()
}

/// A cgroup directory `rel` in the CPU accounting hierarchy (cpuacct on v1).
fn cpu_cgroup(rel: &str) -> PathBuf {
    if unified() {
        Path::new(CGROUPFS).join(rel)
    } else {
        Path::new(CGROUPFS).join("cpuacct").join(rel)
    }
}

/// CPU time a cgroup (and its descendants) used, in nanoseconds.
fn cgroup_cpu_ns(dir: &Path) -> u64 {
    if unified() {
        std::fs::read_to_string(dir.join("cpu.stat"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(0, |us| us * 1000)
    } else {
        std::fs::read_to_string(dir.join("cpuacct.usage"))
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// One row's figures.
struct Figures {
    /// Kubelet + helper, share of one core.
    kubelet: f64,
    /// Everything in the kubelet's cgroup (kubelet, helper, shims, exec plumbing).
    outside: f64,
    /// The pods' cgroups.
    pods: f64,
    rss: u64,
    /// The kubelet's highest RSS in the window.
    max_rss: u64,
    helper_rss: u64,
}

fn measure(kubelet: u32, own: &Path, pods: &Path) -> Figures {
    // /proc/<pid>/stat counts in USER_HZ, which the kernel ABI fixes at 100.
    let tick = 100.0;
    let pids = kubelet_pids(kubelet);
    let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let (own0, pods0) = (cgroup_cpu_ns(own), cgroup_cpu_ns(pods));
    let t0 = Instant::now();
    let mut max_rss = 0;
    while t0.elapsed() < WINDOW {
        std::thread::sleep(Duration::from_secs(1).min(WINDOW.saturating_sub(t0.elapsed())));
        max_rss = max_rss.max(rss_kib(kubelet));
    }
    let after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let (own1, pods1) = (cgroup_cpu_ns(own), cgroup_cpu_ns(pods));
    let secs = t0.elapsed().as_secs_f64();
    Figures {
        kubelet: (after - before) as f64 / tick / secs,
        outside: own1.saturating_sub(own0) as f64 / 1e9 / secs,
        pods: pods1.saturating_sub(pods0) as f64 / 1e9 / secs,
        rss: rss_kib(kubelet),
        max_rss,
        helper_rss: pids.get(1).map_or(0, |p| rss_kib(*p)),
    }
}

async fn run_pods(api: &Api<Pod>, image: &str, row: usize, probes: &Value) -> Vec<String> {
    let names: Vec<String> = (0..PODS).map(|i| format!("row{row}-{i}")).collect();
    for n in &names {
        let manifest = pod_manifest(
            n,
            NODE,
            image,
            "echo ok > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
            "Always",
            probes.clone(),
        );
        let pod: Pod = serde_json::from_value(manifest).unwrap();
        api.create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pods = api.list(&Default::default()).await.expect("list pods");
        let ready = pods
            .items
            .iter()
            .filter(|p| names.contains(p.metadata.name.as_ref().unwrap()))
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|cs| cs.iter().all(|c| c.ready))
            })
            .count();
        if ready == PODS {
            break;
        }
        assert!(Instant::now() < deadline, "only {ready}/{PODS} pods ready");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    names
}

async fn delete_all(api: &Api<Pod>, names: &[String]) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for n in names {
        let _ = api.delete(n, &dp).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let left = api
            .list(&Default::default())
            .await
            .map_or(1, |l| l.items.len());
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn main() -> anyhow::Result<()> {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rows: Vec<(&str, Value)> = rows()
        .into_iter()
        .filter(|(name, _)| {
            filter.is_empty() || filter.iter().any(|f| name.to_lowercase().contains(f))
        })
        .collect();
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "bench", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, NODE)?;
    let kubelet = k.pid().expect("kubelet pid");
    // The kubelet and its helper in a cgroup of their own: whatever they start outside the
    // pods' cgroups counts there.
    let own = cpu_cgroup(&format!("bramble-bench-probes-{}", std::process::id()));
    std::fs::create_dir_all(&own)?;
    std::thread::sleep(Duration::from_secs(1));
    for pid in kubelet_pids(kubelet) {
        std::fs::write(own.join("cgroup.procs"), pid.to_string())?;
    }
    let pods_cgroup = cpu_cgroup(&k.cgroup_parent);
    let rt = tokio::runtime::Runtime::new()?;
    let mut out = Vec::new();
    rt.block_on(async {
        let client = ctrl.client().await?;
        let api: Api<Pod> = Api::namespaced(client, "default");
        for (i, (name, probes)) in rows.iter().enumerate() {
            let names = run_pods(&api, &image, i, probes).await;
            // Let start-up work settle before the window.
            tokio::time::sleep(Duration::from_secs(10)).await;
            let (own, pods) = (own.clone(), pods_cgroup.clone());
            let f = tokio::task::spawn_blocking(move || measure(kubelet, &own, &pods)).await?;
            out.push((*name, f));
            delete_all(&api, &names).await;
            // The kubelet tears pods down (volumes, cgroups, rootfs) after the API has
            // forgotten them: not in the next row's window.
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
        anyhow::Ok(())
    })?;
    let mut table = String::from(
        "| 30 pods, liveness + readiness probes at periodSeconds 1 | kubelet+helper CPU (share of one core; target < 2 %) | kubelet, helper and everything they start outside the pods | the pods' cgroups | kubelet RSS (target < 25 MiB) | kubelet RSS, highest in the window | runtime helper RSS |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, f) in &out {
        table.push_str(&format!(
            "| {name} | {:.2} % | {:.2} % | {:.2} % | {:.1} MiB | {:.1} MiB | {:.1} MiB |\n",
            f.kubelet * 100.0,
            f.outside * 100.0,
            f.pods * 100.0,
            f.rss as f64 / 1024.0,
            f.max_rss as f64 / 1024.0,
            f.helper_rss as f64 / 1024.0
        ));
    }
    print!("{table}");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-kubelet-probes.md");
    let _ = std::fs::write(path, &table);
    drop(k);
    let _ = std::fs::remove_dir(&own);
    Ok(())
}
