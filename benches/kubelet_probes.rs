//! Prober benchmark: `cargo bench --bench kubelet_probes` (release build; prints a Markdown
//! table and writes it to target/bench-kubelet-probes.md).
//!
//! Starts a real `bramble controller`, Debian's `docker-registry` with a busybox image and a
//! real `bramble kubelet` (the test fixtures of tests/common), runs 30 pods each with an
//! exec liveness probe and a tcpSocket readiness probe (inside the pod's network namespace)
//! at `periodSeconds: 1`, and measures the kubelet's CPU (utime+stime of the kubelet and its
//! runtime helper over a 60 s window, as a share of one core) and RSS, against the same
//! window with 30 probe-less pods.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::kubelet::{pod_manifest, TestKubelet};
use common::registry::TestRegistry;
use common::TestController;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

const NODE: &str = "bench-probes";
const PODS: usize = 30;
const WINDOW: Duration = Duration::from_secs(60);

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

/// (share of one core, kubelet RSS KiB, helper RSS KiB) over [`WINDOW`].
fn measure(kubelet: u32) -> (f64, u64, u64) {
    // /proc/<pid>/stat counts in USER_HZ, which the kernel ABI fixes at 100.
    let tick = 100.0;
    let pids = kubelet_pids(kubelet);
    let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let t0 = Instant::now();
    std::thread::sleep(WINDOW);
    let after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let secs = t0.elapsed().as_secs_f64();
    let helper = pids.get(1).map_or(0, |p| rss_kib(*p));
    (
        (after - before) as f64 / tick / secs,
        rss_kib(kubelet),
        helper,
    )
}

fn manifest(name: &str, image: &str, probes: bool) -> Value {
    let extra = if probes {
        json!({
            "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
        })
    } else {
        json!({})
    };
    pod_manifest(
        name,
        NODE,
        image,
        "exec httpd -f -p 8080 -h /tmp",
        "Always",
        extra,
    )
}

async fn run_pods(api: &Api<Pod>, image: &str, probes: bool) -> Vec<String> {
    let names: Vec<String> = (0..PODS)
        .map(|i| format!("{}-{i}", if probes { "probed" } else { "plain" }))
        .collect();
    for n in &names {
        let pod: Pod = serde_json::from_value(manifest(n, image, probes)).unwrap();
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
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "bench", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, NODE)?;
    let kubelet = k.pid().expect("kubelet pid");
    let rt = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    rt.block_on(async {
        let client = ctrl.client().await?;
        let api: Api<Pod> = Api::namespaced(client, "default");
        for probes in [false, true] {
            let names = run_pods(&api, &image, probes).await;
            // Let start-up work settle before the window.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let (cpu, rss, helper) = tokio::task::spawn_blocking(move || measure(kubelet)).await?;
            rows.push((probes, cpu, rss, helper));
            delete_all(&api, &names).await;
        }
        anyhow::Ok(())
    })?;
    let mut table = String::from(
        "| 30 pods | kubelet+helper CPU (share of one core) | kubelet RSS | runtime helper RSS |\n|---|---|---|---|\n",
    );
    for (probes, cpu, rss, helper) in &rows {
        let what = if *probes {
            "liveness (exec) + readiness (tcpSocket), periodSeconds 1"
        } else {
            "no probes"
        };
        table.push_str(&format!(
            "| {what} | {:.2} % | {:.1} MiB | {:.1} MiB |\n",
            cpu * 100.0,
            *rss as f64 / 1024.0,
            *helper as f64 / 1024.0
        ));
    }
    print!("{table}");
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-kubelet-probes.md");
    let _ = std::fs::write(out, &table);
    drop(k);
    Ok(())
}
