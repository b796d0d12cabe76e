//! Several test hosts (tests/common/netns.rs) with a real kubelet each, the default CNI
//! bridge network, and one controller: pods pinned to nodes, kubectl and wget helpers, and
//! polling for what the network tests check.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::kubelet::{create_pod, tail, TestKubelet};
use super::netns::{poll, sh, TestNet};
use super::registry::TestRegistry;
use super::{ok, TestController};

pub const LONG: Duration = Duration::from_secs(180);
pub const DOMAIN: &str = "cluster.local";
pub const CLUSTER_DNS: &str = "10.43.0.10";

/// The busybox server: httpd on 8080 with a CGI script answering the client's address and
/// the pod's hostname, and a readiness file the probe looks at.
pub const SERVER: &str = "mkdir -p /www/cgi-bin && touch /tmp/ready && \
    printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"$REMOTE_ADDR $(hostname)\"\\n' \
    > /www/cgi-bin/who && chmod +x /www/cgi-bin/who && exec httpd -f -p 8080 -h /www";

pub struct Cluster {
    pub ctrl: TestController,
    pub net: TestNet,
    pub kubelets: Vec<TestKubelet>,
    pub image: String,
    _reg: TestRegistry,
}

impl Cluster {
    pub fn start(nodes: usize) -> Result<Cluster> {
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

    pub fn logs(&self) -> String {
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
    pub fn wait_node(&self, i: usize) -> Result<()> {
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

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        ok(self.ctrl.kubectl(args)?)
    }

    pub fn apply(&self, manifest: &Value) -> Result<()> {
        ok(self.ctrl.kubectl_with(
            super::KUBECTL,
            &["apply", "-f", "-"],
            Some(&manifest.to_string()),
        )?)?;
        Ok(())
    }

    /// A busybox pod on node `i` running `script`, with extra pod spec fields and labels.
    pub fn pod(
        &self,
        name: &str,
        i: usize,
        script: &str,
        labels: Value,
        extra: Value,
    ) -> Result<()> {
        self.pod_in("default", name, i, script, labels, extra)
    }

    /// [`Cluster::pod`] in namespace `ns`.
    pub fn pod_in(
        &self,
        ns: &str,
        name: &str,
        i: usize,
        script: &str,
        labels: Value,
        extra: Value,
    ) -> Result<()> {
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
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": spec,
            }),
        )
    }

    /// Waits until the pod is Ready; returns its IP.
    pub fn wait_ready(&self, name: &str) -> Result<String> {
        self.wait_ready_in("default", name)
    }

    /// [`Cluster::wait_ready`] in namespace `ns`.
    pub fn wait_ready_in(&self, ns: &str, name: &str) -> Result<String> {
        let p = poll(LONG, &format!("pod {ns}/{name} Ready"), || {
            let p: Value = serde_json::from_str(
                &self.kubectl(&["get", "pod", "-n", ns, name, "-o", "json"])?,
            )?;
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
    pub fn exec(&self, pod: &str, args: &[&str]) -> Result<String> {
        self.exec_in("default", pod, args)
    }

    /// [`Cluster::exec`] in namespace `ns`.
    pub fn exec_in(&self, ns: &str, pod: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["exec", "-n", ns, pod, "--"];
        full.extend_from_slice(args);
        self.kubectl(&full)
    }

    /// `wget -qO- URL` in `pod`, given 10 s (Debian's static busybox wget crashes with its
    /// own `-T`, so busybox `timeout` bounds it).
    pub fn wget(&self, pod: &str, url: &str) -> Result<String> {
        self.wget_in("default", pod, url)
    }

    /// [`Cluster::wget`] in namespace `ns`.
    pub fn wget_in(&self, ns: &str, pod: &str, url: &str) -> Result<String> {
        self.exec_in(ns, pod, &["timeout", "10", "wget", "-q", "-O-", url])
    }

    pub fn service(&self, name: &str) -> Result<Value> {
        Ok(serde_json::from_str(
            &self.kubectl(&["get", "service", name, "-o", "json"])?,
        )?)
    }

    /// The ready and not-ready addresses of the Service's Endpoints.
    pub fn endpoints(&self, name: &str) -> Result<(Vec<String>, Vec<String>)> {
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
    pub fn slice_endpoints(&self, name: &str) -> Result<Vec<(String, bool)>> {
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
    pub fn dig(&self, i: usize, args: &[&str]) -> Result<String> {
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
pub fn curl(url: &str) -> Result<String> {
    sh("curl", &["-sS", "--max-time", "5", url])
}

/// Polls `f` until it returns a value containing `want`; returns that value.
pub fn until_contains(
    what: &str,
    want: &str,
    mut f: impl FnMut() -> Result<String>,
) -> Result<String> {
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
pub fn until_fails(what: &str, mut f: impl FnMut() -> Result<String>) -> Result<()> {
    poll(LONG, what, || match f() {
        Ok(got) => bail!("still answers: {got:?}"),
        Err(_) => Ok(Some(())),
    })
}

/// The CGI's answer with busybox httpd's IPv4-mapped client address (`[::ffff:A.B.C.D]`)
/// written as `A.B.C.D`.
pub fn who(answer: &str) -> String {
    answer.trim().replace("[::ffff:", "").replace(']', "")
}

pub fn step(s: &str) {
    eprintln!("==> {s}");
}
