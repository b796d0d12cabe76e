//! Kubelet benchmark: `cargo bench --bench kubelet` (release build; prints a Markdown table
//! and writes it to target/bench-kubelet.md).
//!
//! Starts a real `bramble controller`, Debian's `docker-registry` with a busybox image and a
//! real `bramble kubelet` (the test fixtures of tests/common), then measures pod
//! create-to-Running latency (API create until the status says Running and ready, seen on a
//! watch) for one pod at a time and for 30 pods created at once, with the image cached; the
//! kubelet's RSS idle and with 30 pods; the memory each pod costs outside its containers
//! (pause process, per-container shims, kubelet and runtime-helper growth); and the time to pull
//! and unpack a 50 MiB image from the local registry.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::kubelet::{pod_manifest, TestKubelet};
use common::registry::TestRegistry;
use common::TestController;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::Api;
use serde_json::json;
use tokio::sync::mpsc;

const NODE: &str = "bench-node";
/// Idle RSS samples, one a second.
const IDLE_SAMPLES: usize = 30;

fn kib(pid: u32, key: &str, file: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    kib(pid, "VmRSS:", "status")
}

fn pss_kib(pid: u32) -> u64 {
    kib(pid, "Pss:", "smaps_rollup")
}

/// Children of `pid` (the runtime helper is the kubelet's child).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// (Pss of live shims, their count, Pss of live pause processes, their count) from the
/// runtime state.
fn runtime_overhead(runtime_dir: &Path) -> (u64, usize, u64, usize) {
    let (mut shims, mut n_shim, mut pauses, mut n_pause) = (0, 0, 0, 0);
    let Ok(rd) = std::fs::read_dir(runtime_dir.join("containers")) else {
        return (0, 0, 0, 0);
    };
    for e in rd.flatten() {
        let meta: serde_json::Value = std::fs::read(e.path().join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if let Some(pid) = std::fs::read_to_string(e.path().join("shim.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            let pss = pss_kib(pid);
            if pss > 0 {
                shims += pss;
                n_shim += 1;
            }
        }
        if meta["kind"] == "sandbox" {
            let state: serde_json::Value = std::fs::read(
                runtime_dir
                    .join("libcontainer")
                    .join(e.file_name())
                    .join("state.json"),
            )
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
            if let Some(pid) = state["pid"].as_u64() {
                let pss = pss_kib(pid as u32);
                if pss > 0 {
                    pauses += pss;
                    n_pause += 1;
                }
            }
        }
    }
    (shims, n_shim, pauses, n_pause)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ready(p: &Pod) -> bool {
    let st = p.status.as_ref();
    st.and_then(|s| s.phase.as_deref()) == Some("Running")
        && st
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.ready))
}

async fn create_all(
    api: &Api<Pod>,
    image: &str,
    names: &[String],
    ready_rx: &mut mpsc::UnboundedReceiver<(String, Instant)>,
) -> Vec<Duration> {
    let mut started = HashMap::new();
    let creates = names.iter().map(|n| {
        let manifest = pod_manifest(n, NODE, image, "exec sleep 3600", "Always", json!({}));
        let pod: Pod = serde_json::from_value(manifest).unwrap();
        let api = api.clone();
        async move {
            let t0 = Instant::now();
            api.create(&PostParams::default(), &pod)
                .await
                .expect("create pod");
            t0
        }
    });
    for (n, t0) in names.iter().zip(futures::future::join_all(creates).await) {
        started.insert(n.clone(), t0);
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < names.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ready_rx.recv()).await {
            Ok(Some((name, at))) => {
                if let Some(t0) = started.remove(&name) {
                    out.push(at.duration_since(t0));
                }
            }
            _ => panic!("pods not Running in time: {:?}", started.keys()),
        }
    }
    out
}

/// The pull time the kubelet reports in its `Pulled` event for `pod` ("Successfully pulled
/// image \"x\" in 1.234s (1.3s including waiting)..."), a Go duration.
async fn pulled_in(ctrl: &TestController, pod: &str) -> anyhow::Result<Duration> {
    let out = ctrl.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod},reason=Pulled"),
        "-o",
        "jsonpath={.items[0].message}",
    ])?;
    let msg = String::from_utf8_lossy(&out.stdout).to_string();
    let took = msg
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no pull time in {msg:?}"))?;
    go_duration(took).ok_or_else(|| anyhow::anyhow!("bad duration {took:?} in {msg:?}"))
}

/// Parses the Go durations the kubelet prints (`1.234s`, `523ms`, `1m2.5s`).
fn go_duration(s: &str) -> Option<Duration> {
    let (mut total, mut rest) = (0.0f64, s);
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_end].parse().ok()?;
        let unit_end = rest[num_end..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| num_end + i);
        total += value
            * match &rest[num_end..unit_end] {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "µs" | "us" => 1e-6,
                "ns" => 1e-9,
                _ => return None,
            };
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

async fn delete_all(api: &Api<Pod>, names: &[String]) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for n in names {
        let _ = api.delete(n, &dp).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let left = api
            .list(&Default::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(1);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn main() -> anyhow::Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "bench", &[])?;
    let big_images = (0..3)
        .map(|i| {
            let mut data = vec![0u8; 50 << 20];
            rand::fill(&mut data[..]);
            reg.push_busybox_gzip("big", &format!("{i}"), &[("/data/blob", &data)])
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, NODE)?;
    let kubelet_pid = k.pid().expect("kubelet pid");
    let rt = tokio::runtime::Runtime::new()?;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    rt.block_on(async {
        let client = ctrl.client().await?;
        let api: Api<Pod> = Api::namespaced(client, "default");
        let (tx, mut ready_rx) = mpsc::unbounded_channel();
        let watch_api = api.clone();
        tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            let mut s = watcher::watcher(watch_api, watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    if ready(&p) && seen.insert(uid) {
                        let _ =
                            tx.send((p.metadata.name.clone().unwrap_or_default(), Instant::now()));
                    }
                }
            }
        });
        // Warm-up: pull the image once, let the node settle.
        let warm = vec!["warmup".to_string()];
        create_all(&api, &image, &warm, &mut ready_rx).await;
        delete_all(&api, &warm).await;
        // Idle: past the kubelet's next trim of the binary's text pages it no longer runs
        // (bramble_kubelet::idle_text), then the highest RSS of IDLE_SAMPLES samples a second
        // apart (three trim periods), so the figure holds between trims too.
        let period = bramble_kubelet::idle_text::KUBELET_PERIOD;
        tokio::time::sleep(period + Duration::from_secs(5)).await;
        let (mut idle_rss, mut idle_anon, mut idle_file) = (0, 0, 0);
        let mut idle_low = u64::MAX;
        for _ in 0..IDLE_SAMPLES {
            let rss = rss_kib(kubelet_pid);
            if rss > idle_rss {
                idle_rss = rss;
                idle_anon = kib(kubelet_pid, "RssAnon:", "status");
                idle_file = kib(kubelet_pid, "RssFile:", "status");
            }
            idle_low = idle_low.min(rss);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let helper = children(kubelet_pid);
        let idle_helper: u64 = helper.iter().map(|p| rss_kib(*p)).sum();

        let mut single = Vec::new();
        for i in 0..20 {
            let names = vec![format!("single-{i}")];
            single.extend(create_all(&api, &image, &names, &mut ready_rx).await);
            delete_all(&api, &names).await;
        }
        single.sort();
        rows.push((
            "create-to-Running, 1 pod (p50)".into(),
            ms(percentile(&single, 0.5)),
            "< 300 ms".into(),
        ));
        rows.push((
            "create-to-Running, 1 pod (p99, 20 runs)".into(),
            ms(percentile(&single, 0.99)),
            "< 1 s".into(),
        ));

        let names: Vec<String> = (0..30).map(|i| format!("many-{i}")).collect();
        let mut many = create_all(&api, &image, &names, &mut ready_rx).await;
        many.sort();
        rows.push((
            "create-to-Running, 30 pods at once (p50)".into(),
            ms(percentile(&many, 0.5)),
            String::new(),
        ));
        rows.push((
            "create-to-Running, 30 pods at once (p99)".into(),
            ms(percentile(&many, 0.99)),
            String::new(),
        ));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let busy_rss = rss_kib(kubelet_pid);
        let busy_helper: u64 = children(kubelet_pid).iter().map(|p| rss_kib(*p)).sum();
        let (shims, n_shim, pauses, n_pause) = runtime_overhead(&k.runtime_dir());
        let growth = (busy_rss + busy_helper).saturating_sub(idle_rss + idle_helper);
        // Per pod: one pause, one app container's shim, a 30th of the kubelet's growth.
        let per_pod = pauses as f64 / n_pause.max(1) as f64
            + shims as f64 / n_shim.max(1) as f64
            + growth as f64 / 30.0;
        rows.push((
            format!("kubelet RSS idle (highest of {IDLE_SAMPLES} samples, 1 s apart)"),
            format!("{:.1} MiB", idle_rss as f64 / 1024.0),
            "< 20 MiB".into(),
        ));
        rows.push((
            "kubelet RSS idle, lowest sample".into(),
            format!("{:.1} MiB", idle_low as f64 / 1024.0),
            String::new(),
        ));
        rows.push((
            "of which anonymous / file-backed (the binary), at the highest".into(),
            format!(
                "{:.1} / {:.1} MiB",
                idle_anon as f64 / 1024.0,
                idle_file as f64 / 1024.0
            ),
            String::new(),
        ));
        rows.push((
            "runtime helper RSS idle".into(),
            format!("{:.1} MiB", idle_helper as f64 / 1024.0),
            String::new(),
        ));
        rows.push((
            "kubelet RSS with 30 pods".into(),
            format!("{:.1} MiB", busy_rss as f64 / 1024.0),
            String::new(),
        ));
        rows.push((
            "runtime helper RSS with 30 pods".into(),
            format!("{:.1} MiB", busy_helper as f64 / 1024.0),
            String::new(),
        ));
        rows.push((
            format!("shim PSS per container ({n_shim} shims)"),
            format!("{:.0} KiB", shims as f64 / n_shim.max(1) as f64),
            "< 1 MiB".into(),
        ));
        rows.push((
            format!("pause PSS per pod ({n_pause} pauses)"),
            format!("{:.0} KiB", pauses as f64 / n_pause.max(1) as f64),
            String::new(),
        ));
        rows.push((
            "memory per pod outside containers (shim + pause + kubelet/helper growth)".into(),
            format!("{per_pod:.0} KiB"),
            String::new(),
        ));
        delete_all(&api, &names).await;

        // Pull and unpack of a 50 MiB image (one gzip layer of incompressible data), not cached:
        // the kubelet's own measure (its `Pulled` event, as upstream's "Successfully pulled image
        // ... in X") and create-to-Running around it.
        let mut pulls = Vec::new();
        let mut runs = Vec::new();
        for (i, big) in big_images.iter().enumerate() {
            let name = format!("pull-{i}");
            let names = vec![name.clone()];
            runs.extend(create_all(&api, big, &names, &mut ready_rx).await);
            pulls.push(pulled_in(&ctrl, &name).await?);
            delete_all(&api, &names).await;
        }
        pulls.sort();
        runs.sort();
        rows.push((
            format!(
                "pull + unpack 50 MiB image, kubelet's Pulled event (p50 of {})",
                pulls.len()
            ),
            ms(percentile(&pulls, 0.5)),
            String::new(),
        ));
        rows.push((
            "create-to-Running with that pull (p50)".into(),
            ms(percentile(&runs, 0.5)),
            String::new(),
        ));
        Ok::<_, anyhow::Error>(())
    })?;
    let mut table = String::from("| kubelet measurement | value | target |\n|---|---|---|\n");
    for (a, b, c) in &rows {
        table.push_str(&format!("| {a} | {b} | {c} |\n"));
    }
    println!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-kubelet.md");
    let _ = std::fs::write(&out, &table);
    drop(k);
    Ok(())
}
