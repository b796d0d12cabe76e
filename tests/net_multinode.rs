//! Pod networking across several nodes, end to end: two test hosts in network namespaces
//! (tests/common/netns.rs), a real kubelet in each with the default CNI bridge network,
//! host-gateway routes, the nftables service proxy, and one controller with its node IPAM,
//! EndpointSlice controller and cluster DNS. Busybox pods on each node (pinned by
//! `nodeName`) reach each other by IP without NAT and by DNS name (busybox nslookup in a
//! pod, `dig` from a test host at the cluster DNS address); a ClusterIP answers a pod on the
//! other node; a NodePort answers on every node's IP, also the node without the pod; a
//! LoadBalancer Service gets the node IPs in `status.loadBalancer` and answers there; and
//! Ingress routes a Host to the pod on node B from every node's address, with the node IPs in
//! its status; and endpoints leave the Service while the readiness probe fails and come back
//! once it passes.

mod common;

use anyhow::{Context, Result};
use common::net_cluster::{
    curl, step, until_contains, until_fails, who, Cluster, CLUSTER_DNS, DOMAIN, LONG, SERVER,
};
use common::netns::{poll, sh};
use serde_json::json;

/// What [`Cluster::web`] set up: a web pod on node B behind a headless Service `web-hl`
/// and a LoadBalancer Service `web`, and a client pod on node A.
struct Web {
    web_ip: String,
    client_ip: String,
    cluster_ip: String,
    node_port: i64,
    node_a: String,
    node_b: String,
}

impl Cluster {
    /// Two nodes; `web-b` (httpd, readiness from /tmp/ready, hostname `web-b` in subdomain
    /// `web-hl`) on node B, `client-a` on node A, and the Services `web-hl` (headless) and
    /// `web` (LoadBalancer, port 80 to the named port `http`).
    fn web() -> Result<(Cluster, Web)> {
        step("a controller, a registry and a kubelet in each of two test hosts");
        let c = Cluster::start(2)?;
        step("a web server pod on node B, a client pod on node A, their Services");
        c.pod(
            "web-b",
            1,
            SERVER,
            json!({"app": "web"}),
            json!({
                "hostname": "web-b", "subdomain": "web-hl",
                "container": {
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                                       "periodSeconds": 1, "failureThreshold": 1},
                },
            }),
        )?;
        c.pod(
            "client-a",
            0,
            "exec sleep 3600",
            json!({"app": "client"}),
            json!({}),
        )?;
        c.apply(&json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web-hl", "namespace": "default"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]},
        }))?;
        c.apply(&json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }))?;
        let web_ip = c.wait_ready("web-b")?;
        let client_ip = c.wait_ready("client-a")?;
        let svc = c.service("web")?;
        let web = Web {
            web_ip,
            client_ip,
            cluster_ip: svc["spec"]["clusterIP"]
                .as_str()
                .context("clusterIP")?
                .to_string(),
            node_port: svc["spec"]["ports"][0]["nodePort"]
                .as_i64()
                .context("nodePort")?,
            node_a: c.net.hosts[0].ip.clone(),
            node_b: c.net.hosts[1].ip.clone(),
        };
        Ok((c, web))
    }
}

#[test]
fn pods_reach_each_other_across_nodes_by_ip_and_dns_name() -> Result<()> {
    let (c, w) = Cluster::web()?;
    let (web_ip, client_ip) = (&w.web_ip, &w.client_ip);
    let cidr = |i: usize| -> Result<String> {
        c.kubectl(&[
            "get",
            "node",
            &c.net.node_name(i),
            "-o",
            "jsonpath={.spec.podCIDR}",
        ])
    };
    let (cidr_a, cidr_b) = (cidr(0)?, cidr(1)?);
    assert_ne!(cidr_a, cidr_b);
    let in_cidr = |ip: &str, cidr: &str| {
        let (net, len) = cidr.split_once('/').expect("node podCIDR");
        let bits = |a: &str| u32::from(a.parse::<std::net::Ipv4Addr>().expect("IPv4"));
        let mask = u32::MAX << (32 - len.parse::<u32>().expect("prefix length"));
        bits(ip) & mask == bits(net) & mask
    };
    assert!(in_cidr(client_ip, &cidr_a), "{client_ip} not in {cidr_a}");
    assert!(in_cidr(web_ip, &cidr_b), "{web_ip} not in {cidr_b}");

    step("pod to pod across nodes by IP, the server sees the client's pod IP (no NAT)");
    let got = until_contains("client-a -> web-b by pod IP", "web-b", || {
        c.wget("client-a", &format!("http://{web_ip}:8080/cgi-bin/who"))
    })?;
    assert_eq!(who(&got), format!("{client_ip} web-b"));

    step("DNS from a pod: busybox nslookup of the Service, the headless name and the pod record");
    let hl = format!("web-hl.default.svc.{DOMAIN}");
    let pod_name = format!("web-b.web-hl.default.svc.{DOMAIN}");
    for name in [hl.as_str(), pod_name.as_str()] {
        until_contains(&format!("nslookup {name} in client-a"), web_ip, || {
            c.exec("client-a", &["nslookup", name])
        })?;
    }
    let cluster_ip = &w.cluster_ip;
    // busybox nslookup asks every search domain at once and fails when any of them is
    // NXDOMAIN (web.svc.cluster.local is), so only its answer for the first one counts.
    let got = until_contains("nslookup web (search path) in client-a", cluster_ip, || {
        c.exec("client-a", &["sh", "-c", "nslookup web; true"])
    })?;
    assert!(
        got.contains(&format!(
            "Name:\tweb.default.svc.{DOMAIN}\nAddress: {cluster_ip}"
        )),
        "{got}"
    );
    let resolv = c.exec("client-a", &["cat", "/etc/resolv.conf"])?;
    assert!(
        resolv.contains(&format!("nameserver {CLUSTER_DNS}")),
        "{resolv}"
    );
    assert!(
        resolv.contains(&format!(
            "search default.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}"
        )),
        "{resolv}"
    );

    step("DNS from the test hosts: dig at the cluster DNS address");
    for i in 0..2 {
        until_contains(&format!("dig {hl} from host {i}"), web_ip, || {
            c.dig(i, &[&hl])
        })?;
        assert_eq!(&c.dig(i, &[&hl])?, web_ip, "dig {hl} from host {i}");
        assert_eq!(&c.dig(i, &[&pod_name])?, web_ip);
        assert_eq!(
            &c.dig(i, &[&format!("web.default.svc.{DOMAIN}")])?,
            cluster_ip
        );
    }
    let srv = c.dig(0, &["SRV", &format!("_http._tcp.web.default.svc.{DOMAIN}")])?;
    assert_eq!(srv, format!("0 100 80 web.default.svc.{DOMAIN}."));
    let ptr = c.dig(0, &["-x", web_ip])?;
    assert_eq!(ptr, format!("{pod_name}."));

    step("pod to pod across nodes by DNS name");
    let got = until_contains("client-a -> web-b.web-hl by name", "web-b", || {
        c.wget("client-a", "http://web-b.web-hl:8080/cgi-bin/who")
    })?;
    assert_eq!(who(&got), format!("{client_ip} web-b"));
    Ok(())
}

#[test]
fn cluster_ip_node_port_and_load_balancer_answer_across_nodes() -> Result<()> {
    let (c, w) = Cluster::web()?;
    let (cluster_ip, node_port) = (&w.cluster_ip, w.node_port);

    step("ClusterIP from the pod on the other node, by IP and by name");
    let got = until_contains("client-a -> ClusterIP", "web-b", || {
        c.wget("client-a", &format!("http://{cluster_ip}/cgi-bin/who"))
    })?;
    assert_eq!(who(&got), format!("{} web-b", w.client_ip));
    until_contains("client-a -> http://web", "web-b", || {
        c.wget("client-a", "http://web/cgi-bin/who")
    })?;

    step("NodePort from the host side on every node's IP (node A has no web pod)");
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    for ip in [&w.node_a, &w.node_b] {
        until_contains(&format!("NodePort on {ip}"), "web-b", || {
            curl(&format!("http://{ip}:{node_port}/cgi-bin/who"))
        })?;
    }

    step("LoadBalancer: node IPs in status.loadBalancer, answering on port 80");
    let mut want = vec![w.node_a.clone(), w.node_b.clone()];
    want.sort();
    let lb = poll(LONG, "web LoadBalancer ingress of both nodes", || {
        let s = c.service("web")?;
        let mut ips: Vec<String> = s["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["ip"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        Ok((ips == want).then_some(ips))
    })?;
    for ip in &lb {
        until_contains(&format!("LoadBalancer on {ip}:80"), "web-b", || {
            curl(&format!("http://{ip}/cgi-bin/who"))
        })?;
    }
    let out = c.kubectl(&["get", "service", "web"])?;
    assert!(out.contains(&want.join(",")), "{out}");

    step("Ingress: every node's built-in ingress routes a Host to the pod on node B");
    // The LoadBalancer Service holds port 80 of the node IPs (its DNAT comes before the
    // ingress's socket), as k3s's service load balancer would: remove it first.
    c.kubectl(&["delete", "service", "web"])?;
    c.apply(&json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"rules": [{"host": "web.example.test", "http": {"paths": [
            {"path": "/cgi-bin", "pathType": "Prefix",
             "backend": {"service": {"name": "web-hl", "port": {"name": "http"}}}}]}}]},
    }))?;
    for ip in [&w.node_a, &w.node_b] {
        until_contains(&format!("Ingress on {ip}:80"), "web-b", || {
            sh(
                "curl",
                &[
                    "-sS",
                    "--max-time",
                    "5",
                    "--resolve",
                    &format!("web.example.test:80:{ip}"),
                    "http://web.example.test/cgi-bin/who",
                ],
            )
        })?;
        let code = http_status(ip, "other.example.test")?;
        assert_eq!(code, "404", "an unknown Host on {ip} gets the default 404");
    }
    poll(LONG, "Ingress status with both node IPs", || {
        let out = c.kubectl(&[
            "get",
            "ingress",
            "web",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])?;
        let mut ips: Vec<&str> = out.split_whitespace().collect();
        ips.sort();
        Ok((ips == want).then_some(()))
    })?;
    Ok(())
}

/// The status code of `GET /` with Host `host` at `ip`:80.
fn http_status(ip: &str, host: &str) -> Result<String> {
    sh(
        "curl",
        &[
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-H",
            &format!("Host: {host}"),
            "-w",
            "%{http_code}",
            &format!("http://{ip}/"),
        ],
    )
}

#[test]
fn endpoints_leave_the_service_while_readiness_fails() -> Result<()> {
    let (c, w) = Cluster::web()?;
    let (web_ip, cluster_ip, node_port) = (&w.web_ip, &w.cluster_ip, w.node_port);
    let hl = format!("web-hl.default.svc.{DOMAIN}");
    step("the Service answers through the ClusterIP, every NodePort and the headless name");
    until_contains("ClusterIP answers", "web-b", || {
        c.wget("client-a", &format!("http://{cluster_ip}/cgi-bin/who"))
    })?;
    for ip in [&w.node_a, &w.node_b] {
        until_contains(&format!("NodePort on {ip} answers"), "web-b", || {
            curl(&format!("http://{ip}:{node_port}/cgi-bin/who"))
        })?;
    }
    until_contains("headless name answers", web_ip, || c.dig(0, &[&hl]))?;

    step("readiness fails: the endpoint leaves the Service");
    c.exec("web-b", &["rm", "/tmp/ready"])?;
    poll(LONG, "web-b not ready in the Endpoints", || {
        let (ready, not_ready) = c.endpoints("web")?;
        Ok((ready.is_empty() && not_ready == [web_ip.clone()]).then_some(()))
    })?;
    assert_eq!(c.slice_endpoints("web")?, [(web_ip.clone(), false)]);
    until_fails("ClusterIP refuses without endpoints", || {
        c.wget("client-a", &format!("http://{cluster_ip}/cgi-bin/who"))
    })?;
    for ip in [&w.node_a, &w.node_b] {
        until_fails(&format!("NodePort on {ip} refuses"), || {
            curl(&format!("http://{ip}:{node_port}/cgi-bin/who"))
        })?;
    }
    poll(LONG, "headless name without ready endpoints", || {
        Ok(c.dig(0, &[&hl])?.is_empty().then_some(()))
    })?;
    // The pod itself still answers on its IP: only the Service dropped it.
    c.wget("client-a", &format!("http://{web_ip}:8080/cgi-bin/who"))?;

    step("readiness passes again: the endpoint returns");
    c.exec("web-b", &["touch", "/tmp/ready"])?;
    poll(LONG, "web-b ready in the Endpoints", || {
        let (ready, _) = c.endpoints("web")?;
        Ok((ready == [web_ip.clone()]).then_some(()))
    })?;
    assert_eq!(c.slice_endpoints("web")?, [(web_ip.clone(), true)]);
    until_contains("ClusterIP answers again", "web-b", || {
        c.wget("client-a", &format!("http://{cluster_ip}/cgi-bin/who"))
    })?;
    for ip in [&w.node_a, &w.node_b] {
        until_contains(&format!("NodePort on {ip} answers again"), "web-b", || {
            curl(&format!("http://{ip}:{node_port}/cgi-bin/who"))
        })?;
    }
    until_contains("headless name answers again", web_ip, || c.dig(1, &[&hl]))?;
    Ok(())
}
