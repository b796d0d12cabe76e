//! The kubelet's API authorizes clients other than the controller with SubjectAccessReviews
//! on its Node (upstream's webhook mode): RBAC on `nodes/stats`, `nodes/metrics`,
//! `nodes/proxy` decides, with upstream's 403 text.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::auth::pki_dir;
use common::kubelet::TestKubelet;
use common::{ok, TestController};

struct Answer {
    code: u16,
    body: String,
}

/// curl to the kubelet with a client certificate (the serving certificate is not checked
/// here: this is about who the kubelet lets in).
fn curl(
    port: u16,
    cert: &std::path::Path,
    key: &std::path::Path,
    method: &str,
    path: &str,
) -> Result<Answer> {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "30", "-X", method, "--cert"])
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok(Answer {
        code: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
    })
}

#[test]
fn kubelet_api_follows_rbac_on_the_node() -> Result<()> {
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "authz-node")?;
    let start = Instant::now();
    while !ctrl
        .kubectl(&["get", "node", "authz-node"])?
        .status
        .success()
    {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("node never registered:\n{}", k.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // a user allowed to read node stats, and nothing else on nodes
    ok(ctrl.kubectl(&[
        "create",
        "clusterrole",
        "node-stats-reader",
        "--verb=get",
        "--resource=nodes/stats",
    ])?)?;
    ok(ctrl.kubectl(&[
        "create",
        "clusterrolebinding",
        "viewer-stats",
        "--clusterrole=node-stats-reader",
        "--user=viewer",
    ])?)?;
    let dir = tempfile::tempdir()?;
    let pki = pki_dir(&ctrl);
    let ids = [("viewer", &[][..]), ("admin-user", &["system:masters"][..])];
    for (user, groups) in ids {
        let (cert, key) = bramble_pki::issue_client_with_ca(
            &std::fs::read_to_string(pki.join("ca.crt"))?,
            &std::fs::read_to_string(pki.join("ca.key"))?,
            user,
            groups,
            Duration::from_secs(3600),
        )?;
        std::fs::write(dir.path().join(format!("{user}.crt")), cert)?;
        std::fs::write(dir.path().join(format!("{user}.key")), key)?;
    }
    let (vc, vk) = (dir.path().join("viewer.crt"), dir.path().join("viewer.key"));

    // the kubelet's server starts shortly after registration
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let a = curl(k.port, &vc, &vk, "GET", "/stats/summary")?;
        if a.code != 0 || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    ensure!(stats.code == 200, "stats: {} {}", stats.code, stats.body);
    ensure!(stats.body.contains("\"nodeName\""), "{}", stats.body);

    let metrics = curl(k.port, &vc, &vk, "GET", "/metrics/resource")?;
    ensure!(
        metrics.code == 403,
        "metrics: {} {}",
        metrics.code,
        metrics.body
    );
    ensure!(
        metrics.body.trim()
            == "Forbidden (user=viewer, verb=get, resource=nodes, subresource=metrics)",
        "{}",
        metrics.body
    );
    let exec = curl(
        k.port,
        &vc,
        &vk,
        "POST",
        "/exec/default/web/c?command=id&output=1",
    )?;
    ensure!(exec.code == 403, "exec: {} {}", exec.code, exec.body);
    ensure!(
        exec.body.trim()
            == "Forbidden (user=viewer, verb=create, resource=nodes, subresource=proxy)",
        "{}",
        exec.body
    );
    // system:masters needs no review
    let admin = curl(
        k.port,
        &dir.path().join("admin-user.crt"),
        &dir.path().join("admin-user.key"),
        "GET",
        "/metrics/resource",
    )?;
    ensure!(
        admin.code == 200,
        "admin metrics: {} {}",
        admin.code,
        admin.body
    );
    Ok(())
}

/// The certificate the kubelet presents on `port` (PEM), through openssl with a client
/// certificate the kubelet accepts.
fn presented_cert(port: u16, cert: &std::path::Path, key: &std::path::Path) -> Result<String> {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running openssl s_client")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----");
    let end = text.find("-----END CERTIFICATE-----");
    match (begin, end) {
        (Some(b), Some(e)) => Ok(text[b..e + "-----END CERTIFICATE-----".len()].to_string()),
        _ => Ok(String::new()),
    }
}

fn serving_csrs(ctrl: &TestController) -> Result<usize> {
    let out = ok(ctrl.kubectl(&["get", "csr", "-o", "json"])?)?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["spec"]["signerName"] == "kubernetes.io/kubelet-serving")
        .count())
}

#[test]
fn serving_certificate_is_kept_across_a_restart() -> Result<()> {
    let ctrl = TestController::start()?;
    let mut k = TestKubelet::start(&ctrl, "cert-node")?;
    let stored = k.dir.path().join("kubelet/pki/kubelet-server.crt");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !stored.exists() {
        if Instant::now() > deadline {
            bail!("no serving certificate stored:\n{}", k.log());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let kept = std::fs::read_to_string(&stored)?;
    let dir = tempfile::tempdir()?;
    let pki = pki_dir(&ctrl);
    let (cert, key) = bramble_pki::issue_client_with_ca(
        &std::fs::read_to_string(pki.join("ca.crt"))?,
        &std::fs::read_to_string(pki.join("ca.key"))?,
        "admin-user",
        &["system:masters"],
        Duration::from_secs(3600),
    )?;
    let (cp, kp) = (dir.path().join("a.crt"), dir.path().join("a.key"));
    std::fs::write(&cp, cert)?;
    std::fs::write(&kp, key)?;
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    // before the restart the kubelet serves the stored (CA-signed) certificate
    let deadline = Instant::now() + Duration::from_secs(30);
    while norm(&presented_cert(k.port, &cp, &kp)?) != norm(&kept) {
        if Instant::now() > deadline {
            bail!("the kubelet does not serve its stored certificate");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let csrs = serving_csrs(&ctrl)?;
    k.restart()?;
    // after it, the same certificate, without a new CSR
    let deadline = Instant::now() + Duration::from_secs(30);
    while norm(&presented_cert(k.port, &cp, &kp)?) != norm(&kept) {
        if Instant::now() > deadline {
            bail!(
                "after a restart the kubelet serves another certificate:\n{}",
                k.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    ensure!(
        serving_csrs(&ctrl)? == csrs,
        "the restarted kubelet asked for a new serving certificate"
    );
    Ok(())
}
