//! The DNS server on loopback answering Debian's `dig`: cluster names from a zone, SRV with
//! additional addresses, PTR, NXDOMAIN, TCP, and forwarding of other names to an upstream
//! (a second server with its own domain).

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use bramble_dns::server::{bind, serve_tcp, serve_udp, SharedZone};
use bramble_dns::Zone;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

fn services(ns_svc_ip: &[(&str, &str, &str)]) -> Vec<Arc<Service>> {
    ns_svc_ip
        .iter()
        .map(|(ns, name, ip)| {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
                }))
                .unwrap(),
            )
        })
        .collect()
}

async fn server(zone: Zone, upstreams: Vec<SocketAddr>) -> SocketAddr {
    let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    let shared = SharedZone::default();
    shared.set(zone);
    let ups = Arc::new(upstreams);
    tokio::spawn(serve_udp(udp, shared.clone(), ups.clone(), 2));
    tokio::spawn(serve_tcp(tcp, shared, ups));
    addr
}

async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let mut cmd = Command::new("dig");
    cmd.arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=3", "+tries=1"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("dig (Debian dnsutils) installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_gets_cluster_answers_and_forwarded_ones() {
    let upstream_zone = Zone::build(
        "upstream.test",
        &services(&[("default", "far", "192.0.2.7")]),
        &[],
    );
    let upstream = server(upstream_zone, vec![]).await;
    let slices: Vec<Arc<EndpointSlice>> = vec![Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "db-1", "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.1.5"], "hostname": "db-0"},
                          {"addresses": ["10.42.2.6"]}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}))
        .unwrap(),
    )];
    let zone = Zone::build(
        "cluster.local",
        &services(&[("default", "web", "10.43.0.20"), ("prod", "db", "None")]),
        &slices,
    );
    let dns = server(zone, vec![upstream]).await;

    let a = dig(dns, &["+short", "web.default.svc.cluster.local"]).await;
    assert_eq!(a.trim(), "10.43.0.20");
    let tcp = dig(dns, &["+short", "+tcp", "web.default.svc.cluster.local"]).await;
    assert_eq!(tcp.trim(), "10.43.0.20");
    let mut headless: Vec<String> = dig(dns, &["+short", "db.prod.svc.cluster.local"])
        .await
        .lines()
        .map(str::to_string)
        .collect();
    headless.sort();
    assert_eq!(headless, vec!["10.42.1.5", "10.42.2.6"]);
    let host = dig(dns, &["+short", "db-0.db.prod.svc.cluster.local"]).await;
    assert_eq!(host.trim(), "10.42.1.5");
    let srv = dig(dns, &["SRV", "_http._tcp.web.default.svc.cluster.local"]).await;
    assert!(
        srv.contains("0 100 80 web.default.svc.cluster.local.")
            && srv.contains("status: NOERROR")
            && srv.contains("ADDITIONAL: 2"),
        "{srv}"
    );
    let ptr = dig(dns, &["+short", "-x", "10.43.0.20"]).await;
    assert_eq!(ptr.trim(), "web.default.svc.cluster.local.");
    let ptr = dig(dns, &["+short", "-x", "10.42.1.5"]).await;
    assert_eq!(ptr.trim(), "db-0.db.prod.svc.cluster.local.");
    let nx = dig(dns, &["nope.default.svc.cluster.local"]).await;
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains(" aa"),
        "{nx}"
    );
    // Outside the cluster domain: relayed to the upstream.
    let fwd = dig(dns, &["+short", "far.default.svc.upstream.test"]).await;
    assert_eq!(fwd.trim(), "192.0.2.7");
    // An upstream that does not answer gives SERVFAIL, not silence.
    let dead = server(Zone::default(), vec!["127.0.0.1:9".parse().unwrap()]).await;
    let sf = dig(dead, &["example.invalid"]).await;
    assert!(sf.contains("status: SERVFAIL"), "{sf}");
}
