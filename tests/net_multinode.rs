//! Pod networking across several nodes, end to end: two test hosts in network namespaces
//! (tests/common/netns.rs), a real kubelet in each with the default CNI bridge network,
//! host-gateway routes, the nftables service proxy, and one controller with its node IPAM,
//! EndpointSlice controller and cluster DNS. Busybox pods on each node (pinned by
//! `nodeName`) reach each other by IP without NAT and by DNS name (busybox nslookup in a
//! pod, `dig` from a test host at the cluster DNS address); a ClusterIP answers a pod on the
//! other node; a NodePort answers on every node's IP, also the node without the pod; a
//! LoadBalancer Service gets the node IPs in `status.loadBalancer` and answers there; and
//! endpoints leave the Service while the readiness probe fails and come back once it passes.

mod common;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::kubelet::{create_pod, get_pod, tail, TestKubelet};
use common::netns::{poll, sh, TestNet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(180);
const DOMAIN: &str = "cluster.local";
const CLUSTER_DNS: &str = "10.43.0.10";

/// The busybox server: httpd on 8080 with a CGI script answering the client's address and
/// the pod's hostname, and a readiness file the probe looks at.
const SERVER: &str = "mkdir -p /www/cgi-bin && touch /tmp/ready && \
    printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"$REMOTE_ADDR $(hostname)\"\\n' \
    > /www/cgi-bin/who && chmod +x /www/cgi-bin/who && exec httpd -f -p 8080 -h /www";

struct Cluster {
    ctrl: TestController,
    net: TestNet,
    kubelets: Vec<TestKubelet>,
    image: String,
    _reg: TestRegistry,
}

impl Cluster {
    fn start(nodes: usize) -> Result<Cluster> {
        let reg = TestRegistry::start()?;
        let image = reg.push_busybox("busybox", "net", &[])?;
        let mut net = TestNet::new(nodes)?;
        let gw = net.gateway.clone();
        let ctrl = TestController::start_with(&["--advertise-address", &gw, "--tls-san", &gw])?;
        let kubeconfig = net.expose_controller(&ctrl)?;
        net.forward(reg.port)?;
        let image = image.replace("127.0.0.1", &gw);
        let registry = format!("{gw}:{}", reg.port);
        let mut kubelets = Vec::new();
        for i in 0..nodes {
            kubelets.push(net.start_kubelet_with(
                &kubeconfig,
                i,
                &["--insecure-registry", &registry],
            )?);
        }
        let c = Cluster {
            ctrl,
            net,
            kubelets,
            image,
            _reg: reg,
        };
        for i in 0..nodes {
            c.wait_node(i)?;
        }
        Ok(c)
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for k in &self.kubelets {
            s.push_str(&format!(
                "--- kubelet {} log tail:\n{}\n",
                k.node,
                tail(&k.log(), 30)
            ));
        }
        s.push_str(&format!(
            "--- controller log tail:\n{}\n",
            tail(&self.ctrl.log(), 30)
        ));
        s
    }

    /// Waits until node `i` is Ready with a pod CIDR.
    fn wait_node(&self, i: usize) -> Result<()> {
        let name = self.net.node_name(i);
        poll(LONG, &format!("node {name} Ready with a podCIDR"), || {
            let n: Value = serde_json::from_str(&ok(self
                .ctrl
                .kubectl(&["get", "node", &name, "-o", "json"])?)?)?;
            let ready = n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            Ok((ready && n["spec"]["podCIDR"].is_string()).then_some(()))
        })
        .with_context(|| self.logs())
    }

    fn kubectl(&self, args: &[&str]) -> Result<String> {
        ok(self.ctrl.kubectl(args)?)
    }

    fn apply(&self, manifest: &Value) -> Result<()> {
        ok(self.ctrl.kubectl_with(
            common::KUBECTL,
            &["apply", "-f", "-"],
            Some(&manifest.to_string()),
        )?)?;
        Ok(())
    }

    /// A busybox pod on node `i` running `script`, with extra pod spec fields and labels.
    fn pod(&self, name: &str, i: usize, script: &str, labels: Value, extra: Value) -> Result<()> {
        let mut spec = json!({
            "nodeName": self.net.node_name(i),
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": self.image,
                            "command": ["sh", "-c", script]}],
        });
        if let Value::Object(e) = extra {
            for (k, v) in e {
                if k == "container" {
                    for (ck, cv) in v.as_object().into_iter().flatten() {
                        spec["containers"][0][ck] = cv.clone();
                    }
                } else {
                    spec[k] = v;
                }
            }
        }
        create_pod(
            &self.ctrl,
            &json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "labels": labels},
                "spec": spec,
            }),
        )
    }

    /// Waits until the pod is Ready; returns its IP.
    fn wait_ready(&self, name: &str) -> Result<String> {
        let p = poll(LONG, &format!("pod {name} Ready"), || {
            let p = get_pod(&self.ctrl, name)?;
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            Ok((ready && p["status"]["podIP"].is_string()).then_some(p))
        })
        .with_context(|| self.logs())?;
        Ok(p["status"]["podIP"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// `kubectl exec POD -- ARGS`: stdout, or an error with stderr.
    fn exec(&self, pod: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["exec", pod, "--"];
        full.extend_from_slice(args);
        self.kubectl(&full)
    }

    /// `wget -qO- URL` in `pod`, given 10 s (Debian's static busybox wget crashes with its
    /// own `-T`, so busybox `timeout` bounds it).
    fn wget(&self, pod: &str, url: &str) -> Result<String> {
        self.exec(pod, &["timeout", "10", "wget", "-q", "-O-", url])
    }

    fn service(&self, name: &str) -> Result<Value> {
        Ok(serde_json::from_str(
            &self.kubectl(&["get", "service", name, "-o", "json"])?,
        )?)
    }

    /// The ready and not-ready addresses of the Service's Endpoints.
    fn endpoints(&self, name: &str) -> Result<(Vec<String>, Vec<String>)> {
        let ep: Value =
            serde_json::from_str(&self.kubectl(&["get", "endpoints", name, "-o", "json"])?)?;
        let ips = |key: &str| -> Vec<String> {
            ep["subsets"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s[key].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a["ip"].as_str().map(str::to_string))
                .collect()
        };
        Ok((ips("addresses"), ips("notReadyAddresses")))
    }

    /// `(address, ready)` of every endpoint in the Service's EndpointSlices.
    fn slice_endpoints(&self, name: &str) -> Result<Vec<(String, bool)>> {
        let list: Value = serde_json::from_str(&self.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={name}"),
            "-o",
            "json",
        ])?)?;
        let mut out = Vec::new();
        for s in list["items"].as_array().into_iter().flatten() {
            for e in s["endpoints"].as_array().into_iter().flatten() {
                let ready = e["conditions"]["ready"].as_bool().unwrap_or(true);
                for a in e["addresses"].as_array().into_iter().flatten() {
                    out.push((a.as_str().unwrap_or_default().to_string(), ready));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// `dig +short` from test host `i` at the cluster DNS address.
    fn dig(&self, i: usize, args: &[&str]) -> Result<String> {
        let server = format!("@{CLUSTER_DNS}");
        let mut full = vec!["dig", server.as_str(), "+short", "+time=2", "+tries=2"];
        full.extend_from_slice(args);
        let out = self.net.hosts[i].exec(&full)?;
        if !out.status.success() {
            bail!(
                "dig {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// `curl` from the test's own namespace (the LAN side of the test hosts).
fn curl(url: &str) -> Result<String> {
    sh("curl", &["-sS", "--max-time", "5", url])
}

/// Polls `f` until it returns a value containing `want`; returns that value.
fn until_contains(what: &str, want: &str, mut f: impl FnMut() -> Result<String>) -> Result<String> {
    poll(LONG, what, || {
        let got = f()?;
        if got.contains(want) {
            Ok(Some(got))
        } else {
            bail!("got {got:?}, want {want:?}")
        }
    })
}

/// Polls `f` until it fails (a refused or unanswered request).
fn until_fails(what: &str, mut f: impl FnMut() -> Result<String>) -> Result<()> {
    poll(LONG, what, || match f() {
        Ok(got) => bail!("still answers: {got:?}"),
        Err(_) => Ok(Some(())),
    })
}

/// The CGI's answer with busybox httpd's IPv4-mapped client address (`[::ffff:A.B.C.D]`)
/// written as `A.B.C.D`.
fn who(answer: &str) -> String {
    answer.trim().replace("[::ffff:", "").replace(']', "")
}

fn step(s: &str) {
    eprintln!("==> {s}");
}

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
    Ok(())
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
