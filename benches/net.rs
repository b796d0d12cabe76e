//! Network benchmark: `cargo bench --bench net` (release build; prints a Markdown table and
//! writes it to target/bench-net.md).
//!
//! Two test hosts in network namespaces (tests/common/netns.rs), a real `bramble kubelet` in
//! each and one controller. A busybox httpd pod on node B serves a small file; a client pod
//! on node A per path runs the load generator (this binary re-executed with `loadgen`, entered into
//! the pod's network namespace with nsenter): HTTP/1.0 requests (one TCP connection each,
//! so every request crosses the nftables DNAT and conntrack anew) over 4 concurrent
//! connections, pod to pod directly, through the ClusterIP, through node A's NodePort and
//! through node A's built-in Ingress (a userspace proxy, unlike the three nftables paths),
//! in interleaved rounds.
//! Then UDP queries/s against the cluster DNS (10.43.0.10 from node A, 4 sockets with 32
//! queries in flight each), and the time from the pod becoming Ready (seen by a watch) to
//! the first connection the ClusterIP accepts (a prober in node A connecting every 2 ms).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use common::kubelet::{create_pod, get_pod, TestKubelet};
use common::netns::{poll, TestNet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(180);
const HTTP_SECS: u64 = 5;
const HTTP_ROUNDS: usize = 5;
const HTTP_CONNS: usize = 4;
const DNS_SECS: u64 = 10;
const DNS_SOCKETS: usize = 4;
const DNS_WINDOW: usize = 32;
const READY_ROUNDS: usize = 5;
/// The client pods on node A, one per measured path (direct, ClusterIP, NodePort, Ingress).
const CLIENTS: [&str; 4] = [
    "client-direct",
    "client-clusterip",
    "client-nodeport",
    "client-ingress",
];
/// The Host header of every request, and the host of the Ingress rule.
const HOST: &str = "bench";

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// One HTTP/1.0 GET on a new connection; `Ok` when a 200 came back.
fn http_once(addr: SocketAddr, path: &str) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n").as_bytes())?;
    let mut buf = Vec::with_capacity(512);
    s.read_to_end(&mut buf)?;
    if !buf.starts_with(b"HTTP/1.") || buf.get(9..12) != Some(b"200") {
        return Err(std::io::Error::other("not a 200"));
    }
    Ok(())
}

/// Requests slower than this waited for a resent SYN (the first resend is after 1 s).
const STALL: Duration = Duration::from_millis(500);

/// `loadgen http ADDR PATH CONNS SECS`: prints `requests errors p50_us p99_us stalls`
/// (stalls: requests slower than [`STALL`]).
fn loadgen_http(addr: SocketAddr, path: &str, conns: usize, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || {
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < end {
                    let t = Instant::now();
                    match http_once(addr, &path) {
                        Ok(()) => lat.push(t.elapsed().as_micros() as u64),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (l, e) = w.join().expect("load thread");
        lat.extend(l);
        errors += e;
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let stalls = lat
        .iter()
        .filter(|l| **l >= STALL.as_micros() as u64)
        .count();
    println!(
        "{} {errors} {} {} {stalls}",
        lat.len(),
        pct(0.50),
        pct(0.99)
    );
}

/// A DNS query for `name` type A with id `id`.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// `loadgen dns ADDR NAME SOCKETS WINDOW SECS`: prints `answers`.
fn loadgen_dns(addr: SocketAddr, name: &str, sockets: usize, window: usize, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..sockets)
        .map(|_| {
            let name = name.to_string();
            std::thread::spawn(move || -> u64 {
                let Ok(sock) = UdpSocket::bind("0.0.0.0:0") else {
                    return 0;
                };
                if sock.connect(addr).is_err() {
                    return 0;
                }
                let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
                let mut id: u16 = 0;
                let mut send = |sock: &UdpSocket| {
                    id = id.wrapping_add(1);
                    let _ = sock.send(&dns_query(id, &name));
                };
                for _ in 0..window {
                    send(&sock);
                }
                let (mut answers, mut buf) = (0u64, [0u8; 1500]);
                while Instant::now() < end {
                    match sock.recv(&mut buf) {
                        Ok(n) if n > 12 && buf[7] > 0 => {
                            answers += 1;
                            send(&sock);
                        }
                        Ok(_) => send(&sock),
                        // Lost queries: refill the window.
                        Err(_) => {
                            for _ in 0..window {
                                send(&sock);
                            }
                        }
                    }
                }
                answers
            })
        })
        .collect();
    let answers: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    println!("{answers}");
}

/// `loadgen probe ADDR`: connects every 2 ms until a connection is accepted; prints the
/// wall-clock nanoseconds of that moment.
fn loadgen_probe(addr: SocketAddr) {
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            println!("{}", now_nanos());
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("0");
}

fn loadgen(args: &[String]) -> Result<()> {
    let a =
        |i: usize| -> Result<&str> { args.get(i).map(String::as_str).context("loadgen arguments") };
    let addr: SocketAddr = a(1)?.parse()?;
    match a(0)? {
        "http" => loadgen_http(addr, a(2)?, a(3)?.parse()?, a(4)?.parse()?),
        "dns" => loadgen_dns(addr, a(2)?, a(3)?.parse()?, a(4)?.parse()?, a(5)?.parse()?),
        "probe" => loadgen_probe(addr),
        other => bail!("unknown loadgen mode {other}"),
    }
    Ok(())
}

/// Runs this binary's load generator in the network namespace `netns` (a path).
fn run_loadgen(netns: &str, args: &[&str]) -> Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .arg(exe)
        .arg("loadgen")
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("loadgen {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The network namespace of the process whose command line is exactly `argv`.
fn netns_of(argv: &[&str]) -> Result<String> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline == want {
            return Ok(e.path().join("ns/net").display().to_string());
        }
    }
    bail!("no process {argv:?}")
}

/// TCP connections in TIME_WAIT in the network namespace `netns` whose peer is `peer` (an
/// address): a server keeps one per connection its client closed first for 60 s, and a new
/// SYN from a reused source port meets it.
fn time_wait_from(netns: &str, peer: &str) -> Result<u64> {
    let out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["ss", "-Htn", "state", "time-wait", "dst", peer])
        .output()?;
    if !out.status.success() {
        bail!("ss: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.lines().count() as u64)
}

/// The conntrack `insert_failed` counter summed over CPUs and over the test hosts' network
/// namespaces (/proc/net/stat/nf_conntrack: a header row, then one row of hex per CPU).
fn conntrack_insert_failed(net: &TestNet) -> Result<u64> {
    let mut total = 0;
    for host in &net.hosts {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", host.netns_path().display()))
            .args(["cat", "/proc/net/stat/nf_conntrack"])
            .output()?;
        let text = String::from_utf8(out.stdout)?;
        let mut rows = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>());
        let header = rows.next().context("conntrack statistics header")?;
        let col = header
            .iter()
            .position(|c| *c == "insert_failed")
            .context("insert_failed column")?;
        for row in rows {
            total += u64::from_str_radix(row.get(col).context("conntrack row")?, 16)?;
        }
    }
    Ok(total)
}

struct Setup {
    ctrl: TestController,
    net: TestNet,
    _kubelets: Vec<TestKubelet>,
    _reg: TestRegistry,
}

fn pod_ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn setup() -> Result<(Setup, String)> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "bench-net", &[("www/index.html", b"bramble")])?;
    let mut net = TestNet::new(2)?;
    let gw = net.gateway.clone();
    let ctrl = TestController::start_with(&["--advertise-address", &gw, "--tls-san", &gw])?;
    let kubeconfig = net.expose_controller(&ctrl)?;
    net.forward(reg.port)?;
    let image = image.replace("127.0.0.1", &gw);
    let registry = format!("{gw}:{}", reg.port);
    let kubelets = (0..2)
        .map(|i| net.start_kubelet_with(&kubeconfig, i, &["--insecure-registry", &registry]))
        .collect::<Result<Vec<_>>>()?;
    Ok((
        Setup {
            ctrl,
            net,
            _kubelets: kubelets,
            _reg: reg,
        },
        image,
    ))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("loadgen") {
        return loadgen(&args[1..]);
    }
    let (s, image) = setup()?;
    let pod = |name: &str, node: usize, script: &str, extra: Value| -> Result<()> {
        let mut container = json!({"name": "main", "image": image,
                                   "command": ["sh", "-c", script]});
        for (k, v) in extra.as_object().into_iter().flatten() {
            container[k] = v.clone();
        }
        create_pod(
            &s.ctrl,
            &json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
                    "spec": {"nodeName": s.net.node_name(node),
                             "terminationGracePeriodSeconds": 1,
                             "containers": [container]}}),
        )
    };
    pod(
        "web",
        1,
        "touch /tmp/ready && exec httpd -f -p 8080 -h /www",
        json!({"readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                                  "periodSeconds": 1, "failureThreshold": 1}}),
    )?;
    // One client pod per path: the same client address and port reaching the same backend
    // directly and through a DNAT would collide in conntrack (the DNAT'd connection's reply
    // tuple equals the direct one's while that one lingers in TIME_WAIT), the insert fails and
    // the SYN is dropped and resent a second later, as it would be with upstream kube-proxy.
    for (i, name) in CLIENTS.iter().enumerate() {
        pod(name, 0, &format!("exec sleep {}", 3601 + i), json!({}))?;
    }
    ok(s.ctrl.kubectl_with(
        common::KUBECTL,
        &["apply", "-f", "-"],
        Some(
            &json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"type": "NodePort", "selector": {"app": "web"},
                             "ports": [{"port": 80, "targetPort": 8080}]}})
            .to_string(),
        ),
    )?)?;
    // The built-in ingress of every node routes Host `bench` to the Service.
    ok(s.ctrl.kubectl_with(
        common::KUBECTL,
        &["apply", "-f", "-"],
        Some(
            &json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"rules": [{"host": HOST, "http": {"paths": [
                        {"path": "/", "pathType": "Prefix",
                         "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
            .to_string(),
        ),
    )?)?;
    let ready_pod = |name: &str| -> Result<Value> {
        poll(LONG, &format!("pod {name} Ready"), || {
            let p = get_pod(&s.ctrl, name)?;
            Ok((pod_ready(&p) && p["status"]["podIP"].is_string()).then_some(p))
        })
    };
    let web_ip = ready_pod("web")?["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut client_ns = Vec::new();
    for (i, name) in CLIENTS.iter().enumerate() {
        ready_pod(name)?;
        client_ns.push(netns_of(&["sleep", &(3601 + i).to_string()])?);
    }
    let svc: Value = serde_json::from_str(&ok(s
        .ctrl
        .kubectl(&["get", "service", "web", "-o", "json"])?)?)?;
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap_or_default();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
    let node_a = s.net.hosts[0].ip.clone();
    let node_a_ns = s.net.hosts[0].netns_path().display().to_string();
    let targets = [
        ("pod to pod (direct)", format!("{web_ip}:8080")),
        ("pod to ClusterIP", format!("{cluster_ip}:80")),
        ("pod to NodePort (node A)", format!("{node_a}:{node_port}")),
        ("pod to Ingress (node A, port 80)", format!("{node_a}:80")),
    ];
    // Everything answers before measuring.
    for ((what, addr), ns) in targets.iter().zip(&client_ns) {
        poll(LONG, what, || {
            Ok(run_loadgen(ns, &["http", addr, "/index.html", "1", "1"])?
                .split(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n > 0))
        })?;
    }

    let mut table = String::from("| measurement | value | notes |\n|---|---|---|\n");
    // Rounds interleave the three paths so a busy moment of the machine does not land on
    // one of them only; each row shows the median round (by req/s).
    let mut rounds: Vec<Vec<[u64; 4]>> = vec![Vec::new(); targets.len()];
    let mut clashes = vec![0u64; targets.len()];
    let (mut stalls, mut time_wait) = (vec![0u64; targets.len()], vec![0u64; targets.len()]);
    let web_ns = netns_of(&["httpd", "-f", "-p", "8080", "-h", "/www"])?;
    for round in 0..HTTP_ROUNDS {
        for (i, (what, addr)) in targets.iter().enumerate() {
            let before = conntrack_insert_failed(&s.net)?;
            let waiting = time_wait_from(&web_ns, &node_a)?;
            time_wait[i] += waiting;
            let out = run_loadgen(
                &client_ns[i],
                &[
                    "http",
                    addr,
                    "/index.html",
                    &HTTP_CONNS.to_string(),
                    &HTTP_SECS.to_string(),
                ],
            )?;
            clashes[i] += conntrack_insert_failed(&s.net)?.saturating_sub(before);
            let f: Vec<u64> = out.split(' ').filter_map(|v| v.parse().ok()).collect();
            eprintln!(
                "round {round} {what}: {} requests, {} errors, p50 {} us, p99 {} us, {} over {STALL:?}; web pod had {waiting} TIME_WAIT connections from node A",
                f[0], f[1], f[2], f[3], f[4]
            );
            stalls[i] += f[4];
            rounds[i].push([f[0], f[1], f[2], f[3]]);
        }
    }
    let mut direct_rps = 0.0;
    for (i, ((what, _), mut r)) in targets.iter().zip(rounds).enumerate() {
        r.sort_by_key(|f| f[0]);
        let f = r[r.len() / 2];
        let rps = f[0] as f64 / HTTP_SECS as f64;
        if direct_rps == 0.0 {
            direct_rps = rps;
        }
        table.push_str(&format!(
            "| HTTP {what} | {rps:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | {:+.1}% vs direct; median of {HTTP_ROUNDS} interleaved {HTTP_SECS} s rounds, {} errors; in all rounds: {} requests over {STALL:?}, {} conntrack insert failures, on average {} TIME_WAIT connections from node A in the web pod at a round's start; {HTTP_CONNS} connections, one TCP connection per request (busybox httpd) |\n",
            f[2] as f64 / 1000.0,
            f[3] as f64 / 1000.0,
            (rps / direct_rps - 1.0) * 100.0,
            f[1],
            stalls[i],
            clashes[i],
            time_wait[i] / HTTP_ROUNDS as u64,
        ));
    }

    let dns = run_loadgen(
        &node_a_ns,
        &[
            "dns",
            "10.43.0.10:53",
            "web.default.svc.cluster.local",
            &DNS_SOCKETS.to_string(),
            &DNS_WINDOW.to_string(),
            &DNS_SECS.to_string(),
        ],
    )?;
    let qps = dns.parse::<f64>().unwrap_or(0.0) / DNS_SECS as f64;
    table.push_str(&format!(
        "| DNS A queries, node A to 10.43.0.10 | {qps:.0} q/s | {DNS_SOCKETS} UDP sockets, {DNS_WINDOW} in flight each; target > 20,000 |\n"
    ));

    // Ready to served: flip readiness, watch for Ready, probe the ClusterIP from node A.
    let rt = tokio::runtime::Runtime::new()?;
    let client = rt.block_on(s.ctrl.client())?;
    let mut delays = Vec::new();
    for _ in 0..READY_ROUNDS {
        ok(s.ctrl.kubectl(&["exec", "web", "--", "rm", "/tmp/ready"])?)?;
        poll(LONG, "web not ready", || {
            Ok((!pod_ready(&get_pod(&s.ctrl, "web")?)).then_some(()))
        })?;
        poll(LONG, "web gone from the Endpoints", || {
            let ips = ok(s.ctrl.kubectl(&[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[*].addresses[*].ip}",
            ])?)?;
            Ok(ips.trim().is_empty().then_some(()))
        })?;
        // The proxies catch up (the prober must see the refusal first).
        let target = format!("{cluster_ip}:80");
        std::thread::sleep(Duration::from_secs(2));
        let (ns, t) = (node_a_ns.clone(), target.clone());
        let prober = std::thread::spawn(move || run_loadgen(&ns, &["probe", &t]));
        std::thread::sleep(Duration::from_millis(300));
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client.clone(), "default");
        let ready_at = rt.block_on(async {
            use futures::StreamExt;
            let cfg = kube::runtime::watcher::Config::default().fields("metadata.name=web");
            let mut events = kube::runtime::watcher::watcher(api, cfg).boxed();
            let mut touched = false;
            while let Some(ev) = events.next().await {
                let pod = match ev {
                    Ok(kube::runtime::watcher::Event::Apply(p))
                    | Ok(kube::runtime::watcher::Event::InitApply(p)) => p,
                    Ok(kube::runtime::watcher::Event::InitDone) if !touched => {
                        touched = true;
                        let _ = s
                            .ctrl
                            .kubectl(&["exec", "web", "--", "touch", "/tmp/ready"]);
                        continue;
                    }
                    _ => continue,
                };
                let v = serde_json::to_value(&pod).unwrap_or_default();
                if touched && pod_ready(&v) {
                    return now_nanos();
                }
            }
            0
        });
        let served_at: u128 = prober
            .join()
            .map_err(|_| anyhow::anyhow!("prober thread"))??
            .parse()?;
        if served_at > 0 && ready_at > 0 {
            delays.push((served_at as f64 - ready_at as f64) / 1e6);
        }
    }
    delays.sort_by(f64::total_cmp);
    let median = delays.get(delays.len() / 2).copied().unwrap_or(f64::NAN);
    let max = delays.last().copied().unwrap_or(f64::NAN);
    table.push_str(&format!(
        "| pod Ready (watch event) to its ClusterIP accepting, node A | median {median:.0} ms, max {max:.0} ms | {} rounds; target < 1 s |\n",
        delays.len()
    ));
    print!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-net.md");
    let _ = std::fs::write(out, &table);
    Ok(())
}
