//! Ingress data-plane benchmark: `cargo bench -p bramble-ingress --bench proxy` (release
//! build; prints a Markdown table).
//!
//! A hyper HTTP/1.1 backend on loopback answering a 13-byte body, and the ingress's HTTP
//! listener routing a host to it (an Ingress, Service and EndpointSlice built in memory).
//! The load: 8 keep-alive connections, each sending GETs back to back for 5 s, first straight
//! to the backend, then through the ingress. Requests/s and p50/p99 latency per path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_ingress::backends::Cluster;
use bramble_ingress::proxy::Proxy;
use bramble_ingress::routes::RouteTable;
use bramble_ingress::server;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const CONNS: usize = 8;
const SECS: u64 = 5;

async fn backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"hello, bench\n",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

fn table(addr: SocketAddr) -> RouteTable {
    let ing = serde_json::from_value(json!({
        "metadata": {"name": "bench", "namespace": "d"},
        "spec": {"rules": [{"host": "bench.test", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    }))
    .unwrap();
    let svc = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "d"},
        "spec": {"ports": [{"port": 80, "targetPort": addr.port()}]},
    }))
    .unwrap();
    let slice = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "namespace": "d", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"port": addr.port(), "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
    }))
    .unwrap();
    RouteTable::build(
        &[Arc::new(ing)],
        &Cluster {
            services: &[Arc::new(svc)],
            slices: &[Arc::new(slice)],
        },
    )
}

/// One connection's GETs until `end`; their latencies in microseconds.
async fn client(addr: SocketAddr, end: Instant) -> Vec<u64> {
    let s = TcpStream::connect(addr).await.unwrap();
    let _ = s.set_nodelay(true);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut lat = Vec::new();
    while Instant::now() < end {
        let req = hyper::Request::get("/")
            .header("host", "bench.test")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let t = Instant::now();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat
}

async fn load(addr: SocketAddr) -> (f64, u64, u64) {
    let end = Instant::now() + Duration::from_secs(SECS);
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| tokio::spawn(client(addr, end)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / SECS as f64, pct(0.50), pct(0.99))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let backend = backend().await;
        let (_tx, rx) = watch::channel(Arc::new(table(backend)));
        let l = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let ingress = l.local_addr().unwrap();
        tokio::spawn(server::serve_http(l, Arc::new(Proxy::new(rx))));
        println!("| path ({CONNS} keep-alive connections, {SECS} s) | requests/s | p50 | p99 |");
        println!("| --- | --- | --- | --- |");
        for (name, addr) in [
            ("direct to the backend", backend),
            ("through the ingress", ingress),
        ] {
            let (rps, p50, p99) = load(addr).await;
            println!("| {name} | {rps:.0} | {p50} µs | {p99} µs |");
        }
    });
}
