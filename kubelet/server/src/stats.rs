//! Resource usage endpoints: `GET /stats/summary` (upstream's Summary API,
//! `stats.k8s.io/v1alpha1`, the node/pod/container cpu and memory subset) and
//! `GET /metrics/resource` (the same figures in Prometheus text format with upstream's
//! metric names: `node_cpu_usage_seconds_total`, `node_memory_working_set_bytes`,
//! `pod_*`, `container_*`, `resource_scrape_error`).

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::server::Body;

/// The agent's side: the latest Summary document.
pub trait StatsProvider: Send + Sync {
    /// The latest summary (`None` until the first sample is taken).
    fn summary(&self) -> Option<Value>;
}

fn response(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> http::Response<Body> {
    let mut r = http::Response::new(Full::new(body.into()).map_err(|n| match n {}).boxed());
    *r.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

fn unavailable() -> http::Response<Body> {
    response(
        503,
        "text/plain; charset=utf-8",
        "Internal Error: stats are not available yet\n",
    )
}

/// `GET /stats/summary[?only_cpu_and_memory=true]`.
pub fn summary(provider: Option<&dyn StatsProvider>, query: Option<&str>) -> http::Response<Body> {
    let Some(mut s) = provider.and_then(|p| p.summary()) else {
        return unavailable();
    };
    let only = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "only_cpu_and_memory" && v == "true");
    if only {
        strip_to_cpu_and_memory(&mut s);
    }
    response(
        200,
        "application/json",
        serde_json::to_vec(&s).unwrap_or_default(),
    )
}

/// Keeps what `only_cpu_and_memory=true` keeps upstream (names, times, cpu, memory).
fn strip_to_cpu_and_memory(s: &mut Value) {
    fn keep(v: &mut Value, keys: &[&str]) {
        if let Value::Object(m) = v {
            m.retain(|k, _| keys.contains(&k.as_str()));
        }
    }
    keep(&mut s["node"], &["nodeName", "startTime", "cpu", "memory"]);
    if let Some(pods) = s["pods"].as_array_mut() {
        for p in pods {
            keep(p, &["podRef", "startTime", "cpu", "memory", "containers"]);
            if let Some(cs) = p["containers"].as_array_mut() {
                for c in cs {
                    keep(c, &["name", "startTime", "cpu", "memory"]);
                }
            }
        }
    }
}

/// `GET /metrics/resource`.
pub fn resource_metrics(provider: Option<&dyn StatsProvider>) -> http::Response<Body> {
    let text = match provider.and_then(|p| p.summary()) {
        Some(s) => render(&s),
        None => render_error(),
    };
    response(200, "text/plain; version=0.0.4; charset=utf-8", text)
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn millis(t: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t.as_str()?)
        .ok()
        .map(|d| d.timestamp_millis())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<String>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: f64, at: Option<i64>) {
        let mut line = self.name.to_string();
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            line.push('{');
            line.push_str(&l.join(","));
            line.push('}');
        }
        let _ = write!(line, " {value}");
        if let Some(ms) = at {
            let _ = write!(line, " {ms}");
        }
        self.samples.push(line);
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} [STABLE] {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for s in &self.samples {
            out.push_str(s);
            out.push('\n');
        }
    }
}

fn cpu_seconds(v: &Value) -> Option<f64> {
    v["cpu"]["usageCoreNanoSeconds"]
        .as_u64()
        .map(|n| n as f64 / 1e9)
}

fn working_set(v: &Value) -> Option<f64> {
    v["memory"]["workingSetBytes"].as_u64().map(|n| n as f64)
}

fn render_error() -> String {
    let mut f = Family::new(
        "resource_scrape_error",
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
    );
    f.add(&[], 1.0, None);
    let mut out = String::new();
    f.write(&mut out);
    out
}

/// The Prometheus text of a Summary document.
pub fn render(s: &Value) -> String {
    let mut c_cpu = Family::new(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
    );
    let mut c_mem = Family::new(
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set of the container in bytes",
    );
    let mut c_start = Family::new(
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds",
    );
    let mut n_cpu = Family::new(
        "node_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the node in core-seconds",
    );
    let mut n_mem = Family::new(
        "node_memory_working_set_bytes",
        "gauge",
        "Current working set of the node in bytes",
    );
    let mut p_cpu = Family::new(
        "pod_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the pod in core-seconds",
    );
    let mut p_mem = Family::new(
        "pod_memory_working_set_bytes",
        "gauge",
        "Current working set of the pod in bytes",
    );
    let mut scrape = Family::new(
        "resource_scrape_error",
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
    );
    let node = &s["node"];
    if let Some(v) = cpu_seconds(node) {
        n_cpu.add(&[], v, millis(&node["cpu"]["time"]));
    }
    if let Some(v) = working_set(node) {
        n_mem.add(&[], v, millis(&node["memory"]["time"]));
    }
    for p in s["pods"].as_array().into_iter().flatten() {
        let ns = p["podRef"]["namespace"].as_str().unwrap_or_default();
        let pod = p["podRef"]["name"].as_str().unwrap_or_default();
        let labels = [("namespace", ns), ("pod", pod)];
        if let Some(v) = cpu_seconds(p) {
            p_cpu.add(&labels, v, millis(&p["cpu"]["time"]));
        }
        if let Some(v) = working_set(p) {
            p_mem.add(&labels, v, millis(&p["memory"]["time"]));
        }
        for c in p["containers"].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default();
            let labels = [("container", name), ("namespace", ns), ("pod", pod)];
            if let Some(v) = cpu_seconds(c) {
                c_cpu.add(&labels, v, millis(&c["cpu"]["time"]));
            }
            if let Some(v) = working_set(c) {
                c_mem.add(&labels, v, millis(&c["memory"]["time"]));
            }
            if let Some(ms) = millis(&c["startTime"]) {
                c_start.add(&labels, ms as f64 / 1000.0, None);
            }
        }
    }
    scrape.add(&[], 0.0, None);
    let mut out = String::new();
    for f in [
        &c_cpu, &c_mem, &c_start, &n_cpu, &n_mem, &p_cpu, &p_mem, &scrape,
    ] {
        f.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "node": {"nodeName": "n1", "cpu": {"time": "2026-01-01T00:00:00Z", "usageCoreNanoSeconds": 1_500_000_000u64, "usageNanoCores": 10},
                     "memory": {"time": "2026-01-01T00:00:00Z", "workingSetBytes": 1024}, "fs": {"availableBytes": 1}},
            "pods": [{"podRef": {"name": "p\"1", "namespace": "default", "uid": "u"},
                      "cpu": {"time": "2026-01-01T00:00:00Z", "usageCoreNanoSeconds": 2_000_000_000u64},
                      "memory": {"time": "2026-01-01T00:00:00Z", "workingSetBytes": 512},
                      "containers": [{"name": "main", "startTime": "2026-01-01T00:00:00Z",
                                      "cpu": {"time": "2026-01-01T00:00:00Z", "usageCoreNanoSeconds": 2_000_000_000u64},
                                      "memory": {"time": "2026-01-01T00:00:00Z", "workingSetBytes": 256}}]}]
        })
    }

    #[test]
    fn renders_upstream_metric_names() {
        let t = render(&doc());
        assert!(t.contains("# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total 1.5 1767225600000\n"), "{t}");
        assert!(t.contains("node_memory_working_set_bytes 1024 1767225600000"));
        assert!(t.contains(
            "container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"p\\\"1\"} 256 1767225600000"
        ));
        assert!(t.contains("pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"p\\\"1\"} 2"));
        assert!(t.contains("container_start_time_seconds{container=\"main\",namespace=\"default\",pod=\"p\\\"1\"} 1767225600\n"));
        assert!(t.ends_with("resource_scrape_error 0\n"));
    }

    #[test]
    fn only_cpu_and_memory_strips_the_rest() {
        let mut d = doc();
        strip_to_cpu_and_memory(&mut d);
        assert!(d["node"].get("fs").is_none());
        assert!(d["node"].get("cpu").is_some());
    }
}
