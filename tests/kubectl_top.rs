//! `kubectl top nodes` and `kubectl top pods` against the controller's own
//! `metrics.k8s.io/v1beta1` (scraped from the kubelet's Summary API), and the kubelet's
//! `/metrics/resource` in Prometheus text format, with real containers.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus text format 0.0.4 strictly enough to fail on malformed lines:
/// `# HELP`/`# TYPE` comments, then `name{label="value",...} value [timestamp]`.
fn parse_prometheus(text: &str) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    let mut typed = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(_), _) => {}
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        bail!("bad TYPE line {line:?}");
                    }
                    typed.insert(name.to_string(), kind.to_string());
                }
                _ => bail!("bad comment line {line:?}"),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .with_context(|| format!("no value in {line:?}"))?;
        let name = &line[..name_end];
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            bail!("bad metric name in {line:?}");
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r
                    .find("=\"")
                    .with_context(|| format!("bad labels in {line:?}"))?;
                let key = r[..eq].to_string();
                let mut value = String::new();
                let mut chars = r[eq + 2..].char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => bail!("bad escape in {line:?}"),
                        },
                        '"' => {
                            end = Some(eq + 2 + i + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let end = end.with_context(|| format!("unterminated label in {line:?}"))?;
                labels.insert(key, value);
                r = &r[end..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
            rest = r;
        }
        let mut fields = rest.split_whitespace();
        let value: f64 = fields
            .next()
            .with_context(|| format!("no value in {line:?}"))?
            .parse()
            .with_context(|| format!("bad value in {line:?}"))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .with_context(|| format!("bad timestamp in {line:?}"))?;
        }
        if fields.next().is_some() || !typed.contains_key(name) {
            bail!("malformed or untyped sample {line:?}");
        }
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

/// `950m` -> 950, `2` -> 2000.
fn millicores(s: &str) -> Option<u64> {
    match s.strip_suffix('m') {
        Some(n) => n.parse().ok(),
        None => s.parse::<u64>().ok().map(|c| c * 1000),
    }
}

/// `12Mi` -> 12.
fn mebibytes(s: &str) -> Option<u64> {
    s.strip_suffix("Mi")?.parse().ok()
}

#[test]
fn kubectl_top_and_resource_metrics() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let node = "top-node";
    let k = TestKubelet::start(&ctrl, node)?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "busy",
            node,
            &image,
            "while :; do :; done",
            "Always",
            json!({}),
        ),
    )?;
    let mut idle = pod_manifest("idle", node, &image, "exec sleep 3600", "Always", json!({}));
    idle["metadata"]["labels"] = json!({"app": "idle"});
    create_pod(&ctrl, &idle)?;
    for p in ["busy", "idle"] {
        wait_pod(&ctrl, &k, p, Duration::from_secs(90), "Running", |v| {
            v["status"]["phase"] == "Running"
        })?;
    }

    // Discovery lists the group; `kubectl top pods` shows the busy pod burning cpu.
    let groups = ok(ctrl.kubectl(&["api-versions"])?)?;
    assert!(
        groups.lines().any(|l| l == "metrics.k8s.io/v1beta1"),
        "{groups}"
    );
    let start = Instant::now();
    let busy_cpu = loop {
        let out = ctrl.kubectl(&["top", "pods"])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let row = text
            .lines()
            .find(|l| l.starts_with("busy "))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>());
        if let Some(cols) = row {
            let cpu = millicores(&cols[1]).context("cpu column")?;
            assert!(mebibytes(&cols[2]).is_some(), "{text}");
            if cpu > 0 && text.lines().any(|l| l.starts_with("idle ")) {
                break cpu;
            }
        }
        if start.elapsed() > Duration::from_secs(90) {
            bail!(
                "kubectl top pods never showed busy cpu: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        busy_cpu >= 100,
        "a spinning shell uses most of a core: {busy_cpu}m"
    );

    // Label selectors narrow the list.
    let selected = ok(ctrl.kubectl(&["top", "pods", "-l", "app=idle"])?)?;
    assert!(
        selected.contains("idle") && !selected.contains("busy"),
        "{selected}"
    );

    // Per container.
    let containers = ok(ctrl.kubectl(&["top", "pods", "busy", "--containers"])?)?;
    assert!(
        containers
            .lines()
            .any(|l| l.starts_with("busy") && l.contains("main")),
        "{containers}"
    );

    // Nodes.
    let nodes = ok(ctrl.kubectl(&["top", "nodes"])?)?;
    let row: Vec<&str> = nodes
        .lines()
        .find(|l| l.starts_with(node))
        .with_context(|| format!("no {node} row: {nodes}"))?
        .split_whitespace()
        .collect();
    assert!(millicores(row[1]).is_some_and(|c| c > 0), "{nodes}");
    assert!(mebibytes(row[3]).is_some_and(|m| m > 0), "{nodes}");

    // The API objects themselves.
    let nm: Value = serde_json::from_str(&ok(ctrl.kubectl(&[
        "get",
        "--raw",
        &format!("/apis/metrics.k8s.io/v1beta1/nodes/{node}"),
    ])?)?)?;
    assert_eq!(nm["kind"], "NodeMetrics");
    assert!(nm["usage"]["cpu"]
        .as_str()
        .is_some_and(|c| c.ends_with('n')));
    let missing = ctrl.kubectl(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope",
    ])?;
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NotFound")
            || String::from_utf8_lossy(&missing.stderr).contains("not found")
    );

    // The kubelet's /metrics/resource through the node proxy.
    let text = ok(ctrl.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/metrics/resource"),
    ])?)?;
    let samples = parse_prometheus(&text)?;
    let find = |name: &str, pod: Option<&str>| {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && pod.is_none_or(|p| s.labels.get("pod").map(String::as_str) == Some(p))
            })
            .cloned()
    };
    assert!(
        find("node_cpu_usage_seconds_total", None).is_some_and(|s| s.value > 0.0),
        "{text}"
    );
    assert!(find("node_memory_working_set_bytes", None).is_some_and(|s| s.value > 0.0));
    let c =
        find("container_cpu_usage_seconds_total", Some("busy")).context("busy container cpu")?;
    assert_eq!(c.labels["container"], "main");
    assert_eq!(c.labels["namespace"], "default");
    assert!(c.value > 0.0);
    assert!(find("container_memory_working_set_bytes", Some("idle")).is_some());
    assert!(find("pod_cpu_usage_seconds_total", Some("busy")).is_some());
    assert!(find("pod_memory_working_set_bytes", Some("busy")).is_some());
    assert_eq!(
        find("resource_scrape_error", None).map(|s| s.value),
        Some(0.0)
    );

    // And the Summary API.
    let summary: Value = serde_json::from_str(&ok(ctrl.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/stats/summary"),
    ])?)?)?;
    assert_eq!(summary["node"]["nodeName"], node);
    assert!(
        summary["pods"].as_array().is_some_and(|p| p.len() == 2),
        "{summary}"
    );
    Ok(())
}

#[test]
fn prometheus_parser_rejects_malformed_text() {
    assert!(parse_prometheus("# TYPE a gauge\na 1\n").is_ok());
    assert!(parse_prometheus("a 1\n").is_err(), "untyped");
    assert!(parse_prometheus("# TYPE a gauge\na{x=\"1} 1\n").is_err());
    assert!(parse_prometheus("# TYPE a gauge\na one\n").is_err());
}
