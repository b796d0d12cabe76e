//! API benchmark: `cargo bench --bench api` (release build; prints a Markdown table and writes
//! it to target/bench-api.md).
//!
//! Starts a real `bramble controller` (plain HTTP on loopback, token auth) and Debian's
//! `etcd` (WAL fsync on, its default: the same durability as Bramble's synced commits), and
//! measures: creates/s and p50/p99 latency of 1 KiB ConfigMaps at 1, 8 and 64 concurrent
//! clients next to etcd puts of the same size; list of 10,000 Pods; watch delivery latency;
//! controller RSS idle with 1,000 and 10,000 objects; bytes written to disk per create;
//! discovery and OpenAPI documents (bytes, time, RSS added); RBAC's cost.
//!
//! Sections run selectively: `cargo bench --bench api -- memory` (or the built executable with
//! `memory`) runs only the named ones, of `creates`, `memory` (list, watch delivery, RSS),
//! `discovery` and `rbac`; no name runs all. `BENCH_HOLD_SECS=N` keeps the memory section's
//! controller running N seconds after its last RSS reading (its pid on stderr), for heaptrack
//! or /proc/PID/smaps; `BENCH_WRAPPER="heaptrack -o FILE"` starts every controller under that
//! command (the RSS figures are then the wrapper's process, so only heap profiles count);
//! `BENCH_BRAMBLE=PATH` runs that bramble executable instead of this build's.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

#[path = "shared/data_fs.rs"]
mod data_fs;
#[path = "api/discovery.rs"]
mod discovery;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("write_bytes:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// One load run: `clients` workers issuing requests built by `make` for `duration`.
struct Run {
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

impl Run {
    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

async fn load(
    client: &HttpClient,
    clients: usize,
    duration: Duration,
    make: Arc<dyn Fn(usize, usize) -> http::Request<Full<Bytes>> + Send + Sync>,
) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..clients {
        let client = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut n = 0;
            while start.elapsed() < duration {
                let req = make(w, n);
                n += 1;
                let t = Instant::now();
                match client.request(req).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let _ = resp.into_body().collect().await;
                        if ok {
                            lat.push(t.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Run {
        count: latencies.len(),
        elapsed,
        latencies,
        errors,
    }
}

struct Bramble {
    proc: Proc,
    url: String,
    token: String,
}

fn start_bramble(dir: &Path) -> Bramble {
    start_bramble_with(dir, &[])
}

fn start_bramble_with(dir: &Path, extra: &[&str]) -> Bramble {
    let port = free_port();
    // BENCH_WRAPPER (e.g. `heaptrack -o /tmp/ctl`) runs the controller under a profiler.
    // BENCH_BRAMBLE runs another build of bramble (e.g. a copy of an older one).
    let bin =
        std::env::var("BENCH_BRAMBLE").unwrap_or_else(|_| env!("CARGO_BIN_EXE_bramble").into());
    let wrapper = std::env::var("BENCH_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut cmd = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let child = cmd
        .args([
            "controller",
            "--plain-http",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting bramble controller");
    let token_path = dir.join("controller/pki/admin.token");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !token_path.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "bramble did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_string();
    Bramble {
        proc: Proc(child),
        url: format!("http://127.0.0.1:{port}"),
        token,
    }
}

fn start_etcd(dir: &Path) -> Option<(Proc, String)> {
    let bin = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let (client, peer) = (free_port(), free_port());
    let child = Command::new(bin)
        .args([
            "--name",
            "bench",
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-cluster",
            &format!("bench=http://127.0.0.1:{peer}"),
            "--log-level",
            "error",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Proc(child), format!("http://127.0.0.1:{client}")))
}

fn configmap_request(url: &str, token: &str, name: String) -> http::Request<Full<Bytes>> {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"payload": "x".repeat(1024)}});
    http::Request::post(format!("{url}/api/v1/namespaces/default/configmaps"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap()
}

fn pod_request(url: &str, token: &str, name: String) -> http::Request<Full<Bytes>> {
    let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "app", "image": "registry.local/app:1", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}});
    http::Request::post(format!("{url}/api/v1/namespaces/default/pods"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap()
}

async fn create_many(
    client: &HttpClient,
    n: usize,
    make: impl Fn(usize) -> http::Request<Full<Bytes>>,
) {
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for i in 0..n {
        pending.push(client.request(make(i)));
        if pending.len() >= 32 {
            let r = pending.next().await.unwrap().expect("create");
            assert!(r.status().is_success(), "create failed: {}", r.status());
        }
    }
    while let Some(r) = pending.next().await {
        assert!(r.expect("create").status().is_success());
    }
}

/// Where a data directory's writes are counted: the block device of a file system of its
/// own as root (what reaches the card: see `shared/data_fs.rs`), else the process's
/// page-cache accounting (`write_bytes`), which large folios inflate.
enum WriteMeter {
    /// The file system, then the directory holding its image (dropped in this order).
    Device {
        fs: data_fs::DataFs,
        _image_dir: tempfile::TempDir,
    },
    Process(tempfile::TempDir),
}

impl WriteMeter {
    fn new() -> WriteMeter {
        let dir = tempfile::tempdir().unwrap();
        if data_fs::is_root() {
            WriteMeter::Device {
                fs: data_fs::DataFs::new(dir.path(), "1G"),
                _image_dir: dir,
            }
        } else {
            WriteMeter::Process(dir)
        }
    }

    fn data_dir(&self) -> std::path::PathBuf {
        match self {
            WriteMeter::Device { fs, .. } => fs.mount.join("data"),
            WriteMeter::Process(dir) => dir.path().to_path_buf(),
        }
    }

    /// Bytes written so far (everything dirty written back first, on a device).
    fn written(&self, pid: u32) -> u64 {
        match self {
            WriteMeter::Device { fs, .. } => {
                fs.sync();
                fs.written()
            }
            WriteMeter::Process(_) => write_bytes(pid),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            WriteMeter::Device { .. } => "block device of an ext4 data partition",
            WriteMeter::Process(_) => "/proc/PID/io write_bytes, page-cache accounting",
        }
    }
}

/// Creates/s and bytes written per create at 1, 8 and 64 clients, next to etcd's.
async fn creates(client: &HttpClient, duration: Duration, table: &mut String) {
    let bmeter = WriteMeter::new();
    let b = start_bramble(&bmeter.data_dir());
    let bpid = b.proc.0.id();
    let emeter = WriteMeter::new();
    let etcd = start_etcd(&emeter.data_dir());

    for clients in [1usize, 8, 64] {
        let (url, token) = (b.url.clone(), b.token.clone());
        let w0 = bmeter.written(bpid);
        let run = load(
            client,
            clients,
            duration,
            Arc::new(move |w, n| configmap_request(&url, &token, format!("c{clients}-{w}-{n}"))),
        )
        .await;
        let written = bmeter.written(bpid) - w0;
        let erow = match &etcd {
            Some((p, url)) => {
                let url = url.clone();
                let epid = p.0.id();
                let e0 = emeter.written(epid);
                let value = base64::engine::general_purpose::STANDARD.encode("x".repeat(1024));
                let r = load(
                    client,
                    clients,
                    duration,
                    Arc::new(move |w, n| {
                        let key = base64::engine::general_purpose::STANDARD
                            .encode(format!("/registry/configmaps/default/c{clients}-{w}-{n}"));
                        http::Request::post(format!("{url}/v3/kv/put"))
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(
                                json!({"key": key, "value": value}).to_string(),
                            )))
                            .unwrap()
                    }),
                )
                .await;
                let ew = emeter.written(epid) - e0;
                Some((r, ew))
            }
            None => None,
        };
        let fmt = |r: &Run| {
            format!(
                "{:.0}/s, p50 {} ms, p99 {} ms{}",
                r.rate(),
                ms(percentile(&r.latencies, 0.5)),
                ms(percentile(&r.latencies, 0.99)),
                if r.errors > 0 {
                    format!(" ({} errors)", r.errors)
                } else {
                    String::new()
                }
            )
        };
        table.push_str(&format!(
            "| creates of 1 KiB objects, {clients} client(s) | {} | {} |\n",
            fmt(&run),
            erow.as_ref()
                .map(|(r, _)| fmt(r))
                .unwrap_or_else(|| "etcd not installed".into())
        ));
        table.push_str(&format!(
            "| bytes written per create, {clients} client(s) ({}) | {:.0} | {} |\n",
            bmeter.what(),
            written as f64 / run.count.max(1) as f64,
            erow.as_ref()
                .map(|(r, w)| format!("{:.0}", *w as f64 / r.count.max(1) as f64))
                .unwrap_or_default()
        ));
    }
    drop(etcd);
    drop(b);
}

/// List of 10,000 Pods, watch delivery, and the RSS of an idle controller (empty, with 1,000
/// ConfigMaps, with 10,000 Pods more, after listing them).
async fn memory(client: &HttpClient, table: &mut String) {
    // memory and list on a fresh controller
    let dir = tempfile::tempdir().unwrap();
    let b = start_bramble(dir.path());
    let pid = b.proc.0.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let empty_rss = proc_status_kib(pid, "VmRSS:");
    let (url, token) = (b.url.clone(), b.token.clone());
    create_many(client, 1000, |i| {
        configmap_request(&url, &token, format!("idle-{i}"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_1k = proc_status_kib(pid, "VmRSS:");
    create_many(client, 10_000, |i| {
        pod_request(&url, &token, format!("pod-{i}"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_10k = Rss::of(pid);

    let mut list_times = Vec::new();
    let mut list_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let resp = client
            .request(
                http::Request::get(format!("{url}/api/v1/pods"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        list_times.push(t.elapsed());
        list_bytes = bytes.len();
    }
    list_times.sort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_list = Rss::of(pid);

    // watch delivery: time from sending a create to receiving its event
    let mut delivery = Vec::new();
    let current_rv = {
        let resp = client
            .request(
                http::Request::get(format!(
                    "{url}/api/v1/namespaces/default/configmaps?limit=1"
                ))
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
            )
            .await
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let resp = client
        .request(http::Request::get(format!("{url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={current_rv}")).header("authorization", format!("Bearer {token}")).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    for i in 0..200 {
        let t = Instant::now();
        let r = client
            .request(configmap_request(&url, &token, format!("watched-{i}")))
            .await
            .unwrap();
        let _ = r.into_body().collect().await;
        // read until this object's event arrives
        let want = format!("watched-{i}\"");
        let mut buf = Vec::new();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .expect("watch event")
                .unwrap()
                .unwrap();
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if String::from_utf8_lossy(&buf).contains(&want) {
                    break;
                }
            }
        }
        delivery.push(t.elapsed());
    }
    delivery.sort();

    table.push_str(&format!(
        "| list of 10,000 Pods ({} KiB) | p50 {} ms | |\n",
        list_bytes / 1024,
        ms(percentile(&list_times, 0.5))
    ));
    table.push_str(&format!(
        "| watch delivery (create sent -> event read) | p50 {} ms, p99 {} ms | |\n",
        ms(percentile(&delivery, 0.5)),
        ms(percentile(&delivery, 0.99))
    ));
    table.push_str(&format!(
        "| controller RSS idle, empty store | {:.1} MiB | |\n",
        empty_rss as f64 / 1024.0
    ));
    table.push_str(&format!(
        "| controller RSS idle, 1,000 objects | {:.1} MiB | |\n",
        rss_1k as f64 / 1024.0
    ));
    table.push_str(&format!(
        "| controller RSS idle, 11,000 objects (1,000 ConfigMaps + 10,000 Pods) | {} | |\n",
        rss_10k
    ));
    table.push_str(&format!(
        "| controller RSS after listing the 10,000 Pods | {} | |\n",
        rss_after_list
    ));
    // The controller drops the store map's pages every bramble_apiserver::memory::MAP_TICK
    // (10 s), and its binary's idle code pages and freed heap every 10 s
    // (bramble_kubelet::idle_text::KUBELET_PERIOD).
    tokio::time::sleep(Duration::from_secs(65)).await;
    table.push_str(&format!(
        "| controller RSS idle 65 s after the last write | {} | |\n",
        Rss::of(pid)
    ));
    if let Some(secs) = std::env::var("BENCH_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        eprintln!("holding controller pid {pid} for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    drop(b);
}

/// A process's resident memory: the total and its parts (anonymous: heap and stacks; file:
/// mapped files, of which the store's LMDB map `data.mdb`), KiB.
struct Rss {
    total: u64,
    /// Proportional set size: shared pages (the binary's, with other bramble processes)
    /// divided among their sharers.
    pss: u64,
    anon: u64,
    file: u64,
    mdb: u64,
}

impl Rss {
    fn of(pid: u32) -> Rss {
        // /proc/PID/smaps: a mapping's header line names the file; its `Rss:` line follows.
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
        let (mut mdb, mut in_mdb) = (0, false);
        for line in smaps.lines() {
            if let Some(kib) = line.strip_prefix("Rss:") {
                if in_mdb {
                    mdb += kib
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            } else if line
                .split_whitespace()
                .next()
                .is_some_and(|f| f.contains('-'))
            {
                in_mdb = line.ends_with("/data.mdb");
            }
        }
        Rss {
            total: proc_status_kib(pid, "VmRSS:"),
            pss: std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0),
            anon: proc_status_kib(pid, "RssAnon:"),
            file: proc_status_kib(pid, "RssFile:"),
            mdb,
        }
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |k: u64| k as f64 / 1024.0;
        write!(
            f,
            "{:.1} MiB (anon {:.1}, file {:.1} of which data.mdb {:.1}; PSS {:.1})",
            mib(self.total),
            mib(self.anon),
            mib(self.file),
            mib(self.mdb),
            mib(self.pss)
        )
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    // `cargo bench` passes `--bench`; any other argument names a section to run.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(128)
        .build_http();
    let mut table = String::new();
    table.push_str("| measurement | Bramble | etcd 3.4 (same puts, WAL fsync) |\n|---|---|---|\n");

    if run("creates") {
        creates(&client, duration, &mut table).await;
    }
    if run("memory") {
        memory(&client, &mut table).await;
    }
    if run("discovery") {
        discovery::discovery_cost(&client, &mut table).await;
    }
    if run("rbac") {
        authorization_cost(&client, duration, &mut table).await;
    }

    println!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-api.md");
    let _ = std::fs::write(&out, &table);
    eprintln!("written to {}", out.display());
}

/// A JSON request with the admin token; the response body as JSON.
async fn admin_json(
    client: &HttpClient,
    b: &Bramble,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", b.url))
        .header("authorization", format!("Bearer {}", b.token))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.expect("admin request");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A service-account token of `default/default`, bound to `edit` in `default` by a
/// RoleBinding (so RBAC walks bindings and roles for every request).
async fn edit_user_token(client: &HttpClient, b: &Bramble) -> String {
    let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "bench-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]});
    let (code, _) = admin_json(
        client,
        b,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        rb,
    )
    .await;
    assert_eq!(code, 201, "creating the RoleBinding");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "read-me"}, "data": {"k": "v"}});
    let (code, _) = admin_json(
        client,
        b,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        cm,
    )
    .await;
    assert_eq!(code, 201, "creating the ConfigMap");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tr = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}});
        let (code, v) = admin_json(
            client,
            b,
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/default/token",
            tr,
        )
        .await;
        if code == 201 {
            return v["status"]["token"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no token for default/default: {code} {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Authorization cost: the same reads by the same service account against a controller
/// with `--authorization-mode AlwaysAllow` and one with the default `Node,RBAC`.
async fn authorization_cost(client: &HttpClient, duration: Duration, table: &mut String) {
    let mut rates = Vec::new();
    for mode in ["AlwaysAllow", "Node,RBAC"] {
        let dir = tempfile::tempdir().unwrap();
        let b = start_bramble_with(dir.path(), &["--authorization-mode", mode]);
        let token = edit_user_token(client, &b).await;
        let url = b.url.clone();
        let make = Arc::new(move |_w: usize, _n: usize| {
            http::Request::get(format!(
                "{url}/api/v1/namespaces/default/configmaps/read-me"
            ))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
        });
        // warm up, then measure
        load(client, 8, Duration::from_secs(1), make.clone()).await;
        let run = load(client, 8, duration, make).await;
        assert_eq!(run.errors, 0, "{mode}: {} errors", run.errors);
        rates.push(run.rate());
        drop(b);
    }
    table.push_str(&format!(
        "| GET of one ConfigMap by a service account, 8 clients: authorization AlwaysAllow vs Node,RBAC (RoleBinding to edit) | {:.0}/s vs {:.0}/s ({:+.1}% with RBAC) | |\n",
        rates[0],
        rates[1],
        (rates[1] / rates[0] - 1.0) * 100.0
    ));
}
