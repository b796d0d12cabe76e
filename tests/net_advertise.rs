//! The controller's default advertise address, end to end, as `bramble up` starts it: a
//! real `bramble controller` with its default listen address (0.0.0.0:6443) and no
//! `--advertise-address`, inside a test host (a network namespace of tests/common/netns.rs).
//!
//! First the host is air-gapped (eth0 without address or default route, a board before
//! DHCP): the controller falls back to 127.0.0.1 with a warning and works as before. Then
//! eth0 gets its address and default route and the controller restarts on the same data:
//! the `kubernetes` Endpoints and EndpointSlice and the kube-dns EndpointSlice carry eth0's
//! address, the serving certificate is reissued with it (kubectl from the LAN side checks
//! it), and a busybox pod of a kubelet on that host (CNI bridge network) resolves
//! `kubernetes.default.svc.cluster.local` through the cluster DNS and connects to the API
//! Service's ClusterIP.

mod common;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use common::kubelet::{create_pod, get_pod, pod_manifest, tail};
use common::netns::{poll, sh, TestNet};
use common::registry::TestRegistry;
use common::{ok, TestController, KUBECTL};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(180);

fn step(s: &str) {
    eprintln!("==> {s}");
}

fn get(ctrl: &TestController, args: &[&str]) -> Result<Value> {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend(["-o", "json"]);
    Ok(serde_json::from_str(&ok(ctrl.kubectl(&full)?)?)?)
}

/// The addresses of the `kubernetes` Endpoints and EndpointSlice, and of the kube-dns
/// EndpointSlices.
fn advertised(ctrl: &TestController) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let ep = get(ctrl, &["endpoints", "kubernetes", "-n", "default"])?;
    let ep_ips = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(str::to_string))
        .collect();
    let slice = get(ctrl, &["endpointslice", "kubernetes", "-n", "default"])?;
    let slice_ips = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| strings(&e["addresses"]))
        .collect();
    let dns = get(
        ctrl,
        &[
            "endpointslices",
            "-n",
            "kube-system",
            "-l",
            "kubernetes.io/service-name=kube-dns",
        ],
    )?;
    let dns_ips = dns["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .flat_map(|e| strings(&e["addresses"]))
        .collect();
    Ok((ep_ips, slice_ips, dns_ips))
}

/// The serving certificate's subjectAltName extension, as openssl prints it.
fn serving_sans(ctrl: &TestController) -> Result<String> {
    let cert = ctrl.data_dir().join("controller/pki/apiserver.crt");
    sh(
        "openssl",
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            cert.to_str().context("certificate path")?,
        ],
    )
}

#[test]
fn controller_advertises_the_default_route_address() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "advertise", &[])?;
    let mut net = TestNet::new(1)?;
    let host = &net.hosts[0];
    let host_ip = host.ip.clone();
    let in_host = |args: &[&str]| -> Result<String> {
        let out = host.exec(args)?;
        if !out.status.success() {
            bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };

    step("an air-gapped host: eth0 without address or default route");
    in_host(&["ip", "route", "del", "default"])?;
    in_host(&["ip", "addr", "flush", "dev", "eth0"])?;
    let mut ctrl = TestController::start_in(host.wrapper(), &[])?;
    let (ep, slice, _) = advertised(&ctrl)?;
    ensure!(
        ep == ["127.0.0.1"] && slice == ["127.0.0.1"],
        "without a default route the kubernetes endpoints stay on loopback: {ep:?} {slice:?}"
    );
    ensure!(
        ctrl.log().contains("no routable host address"),
        "no fallback warning in the log:\n{}",
        tail(&ctrl.log(), 20)
    );
    poll(LONG, "the kube-dns publisher's loopback warning", || {
        Ok(ctrl
            .log()
            .contains("kube-dns gets no endpoints")
            .then_some(()))
    })?;
    let (_, _, dns) = advertised(&ctrl)?;
    ensure!(
        dns.is_empty(),
        "kube-dns got loopback endpoints, which pods cannot reach: {dns:?}"
    );
    let before = serving_sans(&ctrl)?;
    ensure!(
        !before.contains(&host_ip),
        "the address is not the host's yet: {before}"
    );

    step("eth0 gets its address and default route; the controller restarts on its data");
    in_host(&["ip", "addr", "add", &format!("{host_ip}/24"), "dev", "eth0"])?;
    in_host(&["ip", "route", "add", "default", "via", &net.gateway])?;
    ctrl.restart()?;
    poll(
        LONG,
        "kubernetes and kube-dns endpoints on eth0's address",
        || {
            let (ep, slice, dns) = advertised(&ctrl)?;
            let want = [host_ip.clone()];
            if ep == want && slice == want && dns == want {
                Ok(Some(()))
            } else {
                bail!("kubernetes Endpoints {ep:?}, EndpointSlice {slice:?}, kube-dns {dns:?}")
            }
        },
    )
    .with_context(|| tail(&ctrl.log(), 30))?;
    ensure!(
        ctrl.log().contains("reissuing certificate"),
        "serving certificate not reissued:\n{}",
        tail(&ctrl.log(), 30)
    );
    let sans = serving_sans(&ctrl)?;
    for want in [
        format!("IP Address:{host_ip}"),
        "IP Address:127.0.0.1".into(),
        "IP Address:10.43.0.1".into(),
        "DNS:kubernetes.default.svc.cluster.local".into(),
        "DNS:kubernetes,".into(),
    ] {
        ensure!(
            sans.contains(&want),
            "serving certificate lacks {want}: {sans}"
        );
    }

    step("kubectl from the LAN side reaches https://<eth0's address>:6443 and trusts it");
    let lan = ctrl.data_dir().join("kubeconfig-lan");
    std::fs::write(
        &lan,
        std::fs::read_to_string(&ctrl.kubeconfig)?
            .replace("127.0.0.1:6443", &format!("{host_ip}:6443")),
    )?;
    let lan_path = lan.to_str().context("kubeconfig path")?;
    ok(std::process::Command::new(KUBECTL)
        .args(["--kubeconfig", lan_path, "get", "--raw", "/readyz"])
        .output()?)?;

    step("a kubelet on the host (CNI bridge); a pod resolves the API Service and connects");
    net.forward(reg.port)?;
    let gw = net.gateway.clone();
    let image = image.replace("127.0.0.1", &gw);
    let kubelet = net.start_kubelet_with(
        &ctrl.kubeconfig,
        0,
        &["--insecure-registry", &format!("{gw}:{}", reg.port)],
    )?;
    let script = "for i in $(seq 1 60); do \
          if nslookup kubernetes.default.svc.cluster.local > /tmp/ns 2>&1 \
             && nc -w 5 10.43.0.1 443 < /dev/null; then \
            cat /tmp/ns; echo API-REACHABLE; exit 0; fi; sleep 2; done; cat /tmp/ns; exit 1";
    create_pod(
        &ctrl,
        &pod_manifest(
            "probe",
            &net.node_name(0),
            &image,
            script,
            "Never",
            json!({}),
        ),
    )?;
    let pod = poll(LONG, "pod probe finished", || {
        let p = get_pod(&ctrl, "probe")?;
        let phase = p["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(matches!(phase.as_str(), "Succeeded" | "Failed").then_some(p))
    })
    .with_context(|| {
        format!(
            "kubelet log:\n{}\ncontroller log:\n{}",
            tail(&kubelet.log(), 30),
            tail(&ctrl.log(), 30)
        )
    })?;
    let logs = ok(ctrl.kubectl(&["logs", "probe"])?)?;
    ensure!(
        pod["status"]["phase"] == "Succeeded",
        "the pod did not reach the API through cluster DNS and the ClusterIP:\n{logs}\n{}",
        tail(&kubelet.log(), 30)
    );
    // busybox nslookup: `Server: 10.43.0.10` (the kube-dns Service from resolv.conf), then
    // `Address: 10.43.0.1` (the kubernetes Service's ClusterIP).
    let line_ends = |prefix: &str, value: &str| {
        logs.lines()
            .any(|l| l.starts_with(prefix) && l.split_whitespace().last() == Some(value))
    };
    ensure!(
        line_ends("Server", "10.43.0.10")
            && line_ends("Address", "10.43.0.1")
            && logs.contains("API-REACHABLE"),
        "unexpected answer from the cluster DNS:\n{logs}"
    );
    Ok(())
}
