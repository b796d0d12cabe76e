//! NetworkPolicy, end to end on two test hosts (tests/common/net_cluster.rs): a web pod on
//! node B; clients on node A (one labelled `access=true`, one not), a neighbour on node B
//! (same bridge as the web pod) and a guest in namespace `other`. The real kubectl applies
//! the policies the Kubernetes documentation shows: default-deny ingress, allow from pods
//! with a label to a named port, allow from a namespace, default-deny egress; each takes
//! effect in the kubelets' nftables and is undone when deleted. The web pod's HTTP readiness
//! probe keeps passing under default-deny (the node reaches its pods), and a bad policy gets
//! upstream's 422 naming the field.

mod common;

use anyhow::{bail, Result};
use common::net_cluster::{step, until_contains, until_fails, Cluster, SERVER};
use serde_json::{json, Value};

/// One `wget` of the web pod's CGI from `ns/pod`, given 4 s (a dropped SYN shows as a
/// timeout).
fn fetch(c: &Cluster, ns: &str, pod: &str, url: &str) -> Result<String> {
    c.exec_in(ns, pod, &["timeout", "4", "wget", "-q", "-O-", url])
}

fn reaches(c: &Cluster, ns: &str, pod: &str, url: &str) -> Result<()> {
    until_contains(&format!("{ns}/{pod} reaching the web pod"), "web-b", || {
        fetch(c, ns, pod, url)
    })
    .map(|_| ())
}

fn blocked(c: &Cluster, ns: &str, pod: &str, url: &str) -> Result<()> {
    until_fails(&format!("{ns}/{pod} blocked from the web pod"), || {
        fetch(c, ns, pod, url)
    })
}

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

#[test]
fn network_policies_isolate_pods_and_allow_what_their_rules_say() -> Result<()> {
    step("a controller, a registry and a kubelet in each of two test hosts");
    let c = Cluster::start(2)?;
    c.kubectl(&["create", "namespace", "other"])?;
    let sleeper = "exec sleep 3600";
    step("web-b (httpd on the named port http, HTTP readiness probe) and four clients");
    c.pod(
        "web-b",
        1,
        SERVER,
        json!({"app": "web"}),
        json!({"container": {
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/cgi-bin/who", "port": "http"},
                               "periodSeconds": 1, "failureThreshold": 2}}}),
    )?;
    c.pod("client-a", 0, sleeper, json!({"access": "true"}), json!({}))?;
    c.pod("stranger-a", 0, sleeper, json!({}), json!({}))?;
    c.pod("neighbour-b", 1, sleeper, json!({}), json!({}))?;
    c.pod_in("other", "guest-a", 0, sleeper, json!({}), json!({}))?;
    let web_ip = c.wait_ready("web-b")?;
    for p in ["client-a", "stranger-a", "neighbour-b"] {
        c.wait_ready(p)?;
    }
    c.wait_ready_in("other", "guest-a")?;
    let url = format!("http://{web_ip}:8080/cgi-bin/who");
    let clients = [
        ("default", "client-a"),
        ("default", "stranger-a"),
        ("default", "neighbour-b"),
        ("other", "guest-a"),
    ];
    for (ns, p) in clients {
        reaches(&c, ns, p, &url)?;
    }

    step("a bad policy: 422 naming the field, nothing stored");
    let bad = policy(
        "bad",
        json!({"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]}),
    );
    let out = c.ctrl.kubectl_with(
        common::KUBECTL,
        &["apply", "-f", "-"],
        Some(&bad.to_string()),
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success()
        || !err.contains("spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive")
    {
        bail!("bad policy: {err}");
    }
    let list = c.kubectl(&["get", "networkpolicies", "-o", "name"])?;
    if !list.trim().is_empty() {
        bail!("a rejected policy was stored: {list}");
    }

    step("default-deny ingress: nobody reaches web-b, its readiness probe still passes");
    c.apply(&policy(
        "default-deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    ))?;
    blocked(&c, "default", "client-a", &url)?;
    for (ns, p) in clients {
        if fetch(&c, ns, p, &url).is_ok() {
            bail!("{ns}/{p} still reaches web-b under default-deny");
        }
    }
    let table = c.kubectl(&["get", "netpol"])?;
    if !table.contains("POD-SELECTOR") || !table.contains("default-deny-ingress   <none>") {
        bail!("kubectl get netpol:\n{table}");
    }
    std::thread::sleep(std::time::Duration::from_secs(4));
    c.wait_ready("web-b")?;

    step("allow access=true pods to the named port http: only client-a gets in");
    c.apply(&policy(
        "allow-access",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}],
                            "ports": [{"protocol": "TCP", "port": "http"}]}]}),
    ))?;
    reaches(&c, "default", "client-a", &url)?;
    for (ns, p) in &clients[1..] {
        if fetch(&c, ns, p, &url).is_ok() {
            bail!("{ns}/{p} reaches web-b without access=true");
        }
    }

    step("allow the namespace other: guest-a gets in");
    c.apply(&policy(
        "allow-other",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels":
                   {"kubernetes.io/metadata.name": "other"}}}]}]}),
    ))?;
    reaches(&c, "other", "guest-a", &url)?;
    reaches(&c, "default", "client-a", &url)?;
    if fetch(&c, "default", "neighbour-b", &url).is_ok() {
        bail!("neighbour-b reaches web-b");
    }

    step("default-deny egress for access=true pods: client-a is cut off at its own node");
    c.apply(&policy(
        "deny-egress",
        json!({"podSelector": {"matchLabels": {"access": "true"}}, "policyTypes": ["Egress"]}),
    ))?;
    blocked(&c, "default", "client-a", &url)?;
    reaches(&c, "other", "guest-a", &url)?;

    step("policies deleted: everyone reaches web-b again");
    c.kubectl(&["delete", "networkpolicies", "--all"])?;
    for (ns, p) in clients {
        reaches(&c, ns, p, &url)?;
    }
    Ok(())
}
