//! Service proxy memory and sync cost: `cargo bench -p bramble-proxy --bench proxy_memory`
//! (prints a Markdown table).
//!
//! What the proxy keeps in the kubelet for a cluster of `SERVICES` Services (one port each,
//! every tenth a NodePort) with one EndpointSlice of `ENDPOINTS` ready endpoints each: the
//! watch caches' objects (as the proxier's reflectors hold them, managedFields dropped), the
//! model computed from them, and the nftables script rendered from the model. Heap bytes
//! are counted by a global allocator wrapper (live bytes after each step, and the peak of a
//! sync). The kernel's copy of the rules is not counted: `nft list table` size is the
//! script's size, and the kernel's memory for it is outside the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bramble_proxy::model::{build_model, ProxyConfig};
use bramble_proxy::rules::render;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

const SERVICES: usize = 1000;
const ENDPOINTS: usize = 3;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn kib(bytes: usize) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn service(i: usize) -> Service {
    let node_port = i.is_multiple_of(10);
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": "default",
                     "uid": format!("00000000-0000-0000-0000-{i:012}"),
                     "resourceVersion": "100", "labels": {"app": format!("app-{i}")}},
        "spec": {"type": if node_port { "NodePort" } else { "ClusterIP" },
                 "clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                 "clusterIPs": [format!("10.43.{}.{}", i / 250, i % 250 + 1)],
                 "selector": {"app": format!("app-{i}")},
                 "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080,
                            "nodePort": if node_port { Some(30000 + i) } else { None }}]},
    }))
    .expect("valid Service")
}

fn slice(i: usize) -> EndpointSlice {
    let endpoints: Vec<_> = (0..ENDPOINTS)
        .map(|e| {
            json!({"addresses": [format!("10.42.{}.{}", e, i % 250 + 2)],
                   "conditions": {"ready": true, "serving": true, "terminating": false},
                   "nodeName": format!("node-{e}"),
                   "targetRef": {"kind": "Pod", "namespace": "default",
                                 "name": format!("app-{i}-{e}")}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}-abcde"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
    }))
    .expect("valid EndpointSlice")
}

fn main() {
    let config = ProxyConfig::new("node-0");
    let base = live();
    let services: Vec<Arc<Service>> = (0..SERVICES).map(|i| Arc::new(service(i))).collect();
    let slices: Vec<Arc<EndpointSlice>> = (0..SERVICES).map(|i| Arc::new(slice(i))).collect();
    let cached = live() - base;

    PEAK.store(live(), Ordering::Relaxed);
    let before_sync = live();
    let started = Instant::now();
    let model = build_model(&config, &services, &slices);
    let modelled = live() - before_sync;
    let script = render(&config, &model);
    let sync = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - before_sync;
    let rendered = script.capacity();
    assert_eq!(model.len(), SERVICES, "one port model per Service");

    println!("| proxy, {SERVICES} Services x {ENDPOINTS} endpoints | value |");
    println!("|---|---|");
    println!(
        "| watch caches (Services + EndpointSlices) | {} |",
        kib(cached)
    );
    println!("| model | {} |", kib(modelled));
    println!(
        "| nftables script | {} ({} bytes) |",
        kib(rendered),
        script.len()
    );
    println!("| peak heap of one sync above the caches | {} |", kib(peak));
    println!(
        "| one sync (model + render; nft not run) | {:.1} ms |",
        sync.as_secs_f64() * 1000.0
    );
}
