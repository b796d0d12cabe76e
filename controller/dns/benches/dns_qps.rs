//! Cluster DNS throughput: queries per second answered from a zone of 1000 Services over
//! UDP on loopback, by client threads keeping a window of queries in flight each.
//! Also the heap the DNS part holds for that zone (its Service cache and the zone built from
//! it), counted by a global allocator wrapper.
//! Run: `cargo bench -p bramble-dns --bench dns_qps`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_dns::server::{bind, serve_udp, SharedZone};
use bramble_dns::Zone;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use serde_json::json;

const CLIENTS: usize = 2;
const WINDOW: usize = 32;
const SECONDS: u64 = 4;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
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

fn kib(bytes: usize) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn services() -> Vec<Arc<Service>> {
    (0..1000)
        .map(|i| {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                    "spec": {"clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                             "ports": [{"name": "http", "port": 80}]},
                }))
                .unwrap(),
            )
        })
        .collect()
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

fn client(server: SocketAddr, stop: Instant, answered: Arc<AtomicU64>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(server).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let queries: Vec<Vec<u8>> = (0..1000)
        .map(|i| query(i as u16, &format!("svc-{i}.default.svc.cluster.local.")))
        .collect();
    let mut next = 0usize;
    let mut buf = [0u8; 1500];
    for _ in 0..WINDOW {
        sock.send(&queries[next % queries.len()]).unwrap();
        next += 1;
    }
    while Instant::now() < stop {
        match sock.recv(&mut buf) {
            Ok(n) if n > 12 => {
                answered.fetch_add(1, Ordering::Relaxed);
            }
            // A lost datagram: put another query in flight instead.
            _ => {}
        }
        let _ = sock.send(&queries[next % queries.len()]);
        next += 1;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    let services = services();
    let cached = LIVE.load(Ordering::Relaxed) - before;
    let zone = Zone::build("cluster.local", &services, &[]);
    let zoned = LIVE.load(Ordering::Relaxed) - before - cached;
    let server = rt.block_on(async {
        let (udp, _tcp) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = udp.local_addr().unwrap();
        let shared = SharedZone::default();
        shared.set(zone);
        tokio::spawn(serve_udp(udp, shared, Arc::new(vec![]), 2));
        addr
    });
    let answered = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop = start + Duration::from_secs(SECONDS);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let a = answered.clone();
            std::thread::spawn(move || client(server, stop, a))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = answered.load(Ordering::Relaxed);
    println!("| bench | queries | seconds | queries/s |");
    println!("|---|---|---|---|");
    println!(
        "| dns A over UDP ({CLIENTS} clients x {WINDOW} in flight, 1000 services) | {n} | {secs:.2} | {:.0} |",
        n as f64 / secs
    );
    println!();
    println!("| DNS part, 1000 Services | heap |");
    println!("|---|---|");
    println!("| Service cache | {} |", kib(cached));
    println!("| zone built from it | {} |", kib(zoned));
}
