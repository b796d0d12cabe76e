//! Measures the hot paths of bramble-api (no assertions: numbers only).
//! Run: `cargo run --release -p bramble-api --example codec_bench`

use std::time::{Duration, Instant};

use bramble_api::codec;
use bramble_api::registry::Registry;
use bramble_api::selectors::{FieldSelector, LabelSelector};
use serde_json::{json, Value};

fn pod(i: usize) -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": format!("web-{i}"), "namespace": "default",
            "uid": format!("00000000-0000-0000-0000-{i:012}"), "resourceVersion": i.to_string(),
            "labels": {"app": "web", "shard": (i % 10).to_string()}},
        "spec": {"nodeName": format!("node-{}", i % 3), "containers": [{"name": "c", "image": "nginx:1.27",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
            "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": format!("10.42.0.{}", i % 250), "qosClass": "Burstable"}
    })
}

fn report(what: &str, n: usize, d: Duration) {
    println!(
        "{what}: {n} in {:.2} ms ({:.2} us each)",
        d.as_secs_f64() * 1e3,
        d.as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    let reg = Registry::builtin();
    let pods_info = reg.find("", "v1", "pods").expect("pods registered");
    let pods: Vec<Value> = (0..10_000).map(pod).collect();
    let raw: Vec<Vec<u8>> = pods
        .iter()
        .map(|p| serde_json::to_vec(p).unwrap())
        .collect();
    let bytes: usize = raw.iter().map(Vec::len).sum();

    let start = Instant::now();
    let list = codec::encode_list(
        &pods_info,
        raw.iter().map(Vec::as_slice),
        "10000",
        None,
        None,
    );
    report("encode_list of 10000 pods", 1, start.elapsed());
    println!("  list body {} bytes (items {} bytes)", list.len(), bytes);

    let n = 2_000;
    let start = Instant::now();
    for p in pods.iter().take(n) {
        codec::decode_object(&pods_info, p.clone()).unwrap();
    }
    report(
        "decode_object (typed round trip) of a pod",
        n,
        start.elapsed(),
    );

    let start = Instant::now();
    for r in raw.iter().take(n) {
        codec::parse_body(r, Some("application/json")).unwrap();
    }
    report("parse_body (JSON) of a pod", n, start.elapsed());

    let sel = LabelSelector::parse("app=web,shard in (1,2,3),!canary").unwrap();
    let start = Instant::now();
    let hits = pods.iter().filter(|p| sel.matches_object(p)).count();
    report("label selector over 10000 pods", 10_000, start.elapsed());
    println!("  {hits} matched");

    let fsel =
        FieldSelector::parse_for(&pods_info, "spec.nodeName=node-1,status.phase!=Failed").unwrap();
    let start = Instant::now();
    let hits = pods.iter().filter(|p| fsel.matches(p)).count();
    report("field selector over 10000 pods", 10_000, start.elapsed());
    println!("  {hits} matched");
}
