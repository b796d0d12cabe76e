//! The rendered ruleset applied with the real `nft` in network namespaces this test
//! creates: a node namespace (pod bridge 10.42.0.1/24, uplink 192.0.2.1/24), two pod
//! namespaces with TCP servers and a client namespace on the uplink.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bramble_proxy::{build_model, nft, render, ProxyConfig};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> anyhow::Result<Self> {
        let name = format!("bpx-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ))?;
        Ok(Netns(name))
    }
    fn enter(&self) -> anyhow::Result<()> {
        let f = std::fs::File::open(format!("/run/netns/{}", self.0))?;
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn sh(script: &str) -> anyhow::Result<()> {
    let out = Command::new("sh").args(["-ec", script]).output()?;
    if !out.status.success() {
        bail!("{script}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A server in `ns` answering every connection with `<name> <peer ip>`.
fn serve(ns: &Netns, name: &'static str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{}", ns.0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        let l = TcpListener::bind("0.0.0.0:8080").unwrap();
        tx.send(()).unwrap();
        for mut c in l.incoming().flatten() {
            {
                let peer = c
                    .peer_addr()
                    .map(|p| p.ip().to_string())
                    .unwrap_or_default();
                let _ = c.write_all(format!("{name} {peer}").as_bytes());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5))?;
    Ok(())
}

/// Connects from the client namespace (on a fresh thread) `n` times; answers counted.
fn hits(client: &Netns, addr: &str, n: usize) -> anyhow::Result<BTreeMap<String, usize>> {
    let path = format!("/run/netns/{}", client.0);
    let addr: SocketAddr = addr.parse()?;
    std::thread::spawn(move || -> anyhow::Result<BTreeMap<String, usize>> {
        let f = std::fs::File::open(&path)?;
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        let mut seen = BTreeMap::new();
        for _ in 0..n {
            let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                .with_context(|| format!("connecting to {addr}"))?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            *seen.entry(s).or_insert(0) += 1;
        }
        Ok(seen)
    })
    .join()
    .unwrap()
}

fn service(name: &str, ip: &str, extra: serde_json::Value) -> Arc<Service> {
    let mut spec = json!({"clusterIP": ip, "clusterIPs": [ip],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    Arc::new(
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
        .unwrap(),
    )
}

fn slice(svc: &str, eps: &[(&str, &str, bool)]) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = eps
        .iter()
        .map(|(ip, node, ready)| json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready}}))
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{svc}-x"), "namespace": "default",
                "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }))
        .unwrap(),
    )
}

#[test]
fn cluster_ip_balances_node_port_affinity_local_and_reject() -> anyhow::Result<()> {
    let node = Netns::new("node")?;
    let (p1, p2, client) = (Netns::new("p1")?, Netns::new("p2")?, Netns::new("c")?);
    let (n, a, b, c) = (&node.0, &p1.0, &p2.0, &client.0);
    sh(&format!(
        "ip -n {n} link add br0 type bridge && ip -n {n} addr add 10.42.0.1/24 dev br0 && ip -n {n} link set br0 up
         for p in {a}:10.42.0.2 {b}:10.42.0.3; do ns=${{p%%:*}}; ip=${{p##*:}}
           ip -n {n} link add v-$ip type veth peer name eth0 netns $ns
           ip -n {n} link set v-$ip master br0 up
           ip -n $ns addr add $ip/24 dev eth0 && ip -n $ns link set eth0 up
           ip -n $ns route add default via 10.42.0.1; done
         ip -n {n} link add up0 type veth peer name eth0 netns {c}
         ip -n {n} addr add 192.0.2.1/24 dev up0 && ip -n {n} link set up0 up
         ip -n {c} addr add 192.0.2.2/24 dev eth0 && ip -n {c} link set eth0 up
         ip -n {c} route add default via 192.0.2.1
         ip -n {n} route add default via 192.0.2.2
         ip netns exec {n} sysctl -qw net.ipv4.ip_forward=1"
    ))?;
    serve(&p1, "p1")?;
    serve(&p2, "p2")?;

    let services = vec![
        service(
            "web",
            "10.43.0.9",
            json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]}),
        ),
        service(
            "sticky",
            "10.43.0.10",
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
        ),
        service("empty", "10.43.0.11", json!({})),
        service(
            "local",
            "10.43.0.12",
            json!({"type": "NodePort", "externalTrafficPolicy": "Local", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30081}]}),
        ),
    ];
    let both = [("10.42.0.2", "node-a", true), ("10.42.0.3", "node-b", true)];
    let slices = vec![
        slice("web", &both),
        slice("sticky", &both),
        slice("empty", &[("10.42.0.2", "node-a", false)]),
        slice("local", &both),
    ];
    let config = ProxyConfig::new("node-a");
    let script = render(&config, &build_model(&config, &services, &slices));
    node.enter()?;
    nft::apply(&script).with_context(|| script.clone())?;
    // Applying again replaces the table atomically (no duplicate rules).
    nft::apply(&script)?;
    let listed = Command::new("nft")
        .args(["list", "table", "ip", "bramble-proxy"])
        .output()?;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.matches("chain nat-prerouting").count(), 1);

    // ClusterIP from another host: both backends, source masqueraded (off-cluster client).
    let seen = hits(&client, "10.43.0.9:80", 40)?;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.keys().all(|k| k.ends_with(" 10.42.0.1")), "{seen:?}");
    // NodePort on the node's address.
    let seen = hits(&client, "192.0.2.1:30080", 20)?;
    assert_eq!(seen.len(), 2, "{seen:?}");
    // ClientIP affinity: one backend for every connection of this client.
    let seen = hits(&client, "10.43.0.10:80", 20)?;
    assert_eq!(seen.len(), 1, "{seen:?}");
    // externalTrafficPolicy Local: only the local pod, client source preserved.
    let seen = hits(&client, "192.0.2.1:30081", 10)?;
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        vec!["p1 192.0.2.2"],
        "{seen:?}"
    );
    // No ready endpoints: rejected, not blackholed.
    let err = hits(&client, "10.43.0.11:80", 1).unwrap_err();
    assert!(format!("{err:#}").contains("refused"), "{err:#}");
    // Hairpin: a pod reaching itself through its Service is masqueraded.
    let hair = Command::new("ip")
        .args(["netns", "exec", a, "busybox", "nc", "10.43.0.12", "80"])
        .stdin(std::process::Stdio::null())
        .output()?;
    assert!(
        String::from_utf8_lossy(&hair.stdout).starts_with("p"),
        "{hair:?}"
    );

    // Endpoints leave: only p2 stays ready and the next sync sends everything there.
    let slices = vec![slice(
        "web",
        &[
            ("10.42.0.2", "node-a", false),
            ("10.42.0.3", "node-b", true),
        ],
    )];
    nft::apply(&render(
        &config,
        &build_model(&config, &services[..1], &slices),
    ))?;
    let seen = hits(&client, "10.43.0.9:80", 10)?;
    assert_eq!(
        seen.keys().map(|k| &k[..2]).collect::<Vec<_>>(),
        vec!["p2"],
        "{seen:?}"
    );
    Ok(())
}
