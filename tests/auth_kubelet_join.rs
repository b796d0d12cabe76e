//! `bramble kubelet --server URL --token <bootstrap> --discovery-token-ca-cert-hash sha256:..`
//! as a real process: it joins (CA pinned by the hash, CSR signed for `system:node:<name>`),
//! registers its Node with that identity, keeps the credentials in <data-dir>/kubeconfig
//! and reuses them after a restart, and renews its client certificate before it expires
//! (the controller signs 40-second certificates here). A wrong CA hash, an expired or deleted
//! token, and a bootstrap token without a hash all refuse to join with a clear error.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use common::auth::{ca_pem, url};
use common::{bramble_bin, ok, TestController};
use serde_json::Value;

fn bramble_token(tc: &TestController, args: &[&str]) -> Result<String> {
    let out = Command::new(bramble_bin())
        .arg("token")
        .args(args)
        .arg("--kubeconfig")
        .arg(&tc.kubeconfig)
        .output()?;
    Ok(ok(out)?.trim().to_string())
}

/// A joining kubelet with its own directories; killed and its cgroups removed on drop.
struct JoiningKubelet {
    dir: tempfile::TempDir,
    node: String,
    args: Vec<String>,
    child: Option<Child>,
    cgroup_parent: String,
}

impl JoiningKubelet {
    fn new(node: &str, server: &str, token: &str, hashes: &[&str]) -> Result<Self> {
        let mut args = vec![
            "--server".to_string(),
            server.to_string(),
            "--token".into(),
            token.into(),
        ];
        for h in hashes {
            args.extend(["--discovery-token-ca-cert-hash".into(), h.to_string()]);
        }
        Ok(JoiningKubelet {
            dir: tempfile::Builder::new().prefix("bramble-join-").tempdir()?,
            node: node.into(),
            args,
            child: None,
            cgroup_parent: format!("bramble-test-{}-{node}", std::process::id()),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(bramble_bin());
        let d = self.dir.path();
        cmd.arg("kubelet")
            .args(["--node-name", &self.node])
            .args(&self.args)
            .arg("--data-dir")
            .arg(d.join("kubelet"))
            .arg("--image-dir")
            .arg(d.join("images"))
            .arg("--runtime-dir")
            .arg(d.join("runtime"))
            .args(["--cgroup-parent", &self.cgroup_parent])
            .args(["--node-ip", "127.0.0.1"])
            .args(["--kubelet-port", &common::free_port().to_string()])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs until it exits (it must refuse to start); its output.
    fn run_to_exit(&self) -> Result<Output> {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let start = Instant::now();
        while child.try_wait()?.is_none() {
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                bail!("kubelet still running after 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(child.wait_with_output()?)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        self.child = Some(self.command().stdout(Stdio::null()).stderr(log).spawn()?);
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("kubelet.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubelet").join("kubeconfig")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for JoiningKubelet {
    fn drop(&mut self) {
        self.kill();
        for root in [
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/cpu",
            "/sys/fs/cgroup/memory",
        ] {
            remove_tree(&Path::new(root).join(&self.cgroup_parent));
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn failure_text(out: &Output) -> Result<String> {
    ensure!(
        !out.status.success(),
        "kubelet should have refused to start"
    );
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn get_json(tc: &TestController, args: &[&str]) -> Result<Value> {
    Ok(serde_json::from_str(&ok(tc.kubectl(args)?)?)?)
}

fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("{what} not reached after {limit:?}")
}

fn client_cert(kubeconfig: &Path) -> Option<String> {
    let text = std::fs::read_to_string(kubeconfig).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("client-certificate-data:"))?;
    Some(line.split(':').nth(1)?.trim().to_string())
}

fn csrs_of(tc: &TestController, user: &str) -> Result<Vec<Value>> {
    let list = get_json(tc, &["get", "csr", "-o", "json"])?;
    Ok(list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["spec"]["username"] == user)
        .collect())
}

#[test]
fn kubelet_joins_restarts_and_rotates_its_certificate() -> Result<()> {
    let tc = TestController::start_with(&["--cluster-signing-duration", "40s"])?;
    let hash = bramble_pki::ca_cert_hash(&ca_pem(&tc)?)?;
    let token = bramble_token(&tc, &["create"])?;
    let mut k = JoiningKubelet::new("join-1", &url(&tc), &token, &[&hash])?;
    k.spawn()?;
    let node = wait_for(Duration::from_secs(90), "node join-1 registered", || {
        get_json(&tc, &["get", "node", "join-1", "-o", "json"]).ok()
    })
    .map_err(|e| anyhow::anyhow!("{e}\nkubelet log:\n{}", k.log()))?;
    ensure!(node["metadata"]["name"] == "join-1");
    // the credentials are the node's own, kept in the data directory
    let kc = k.kubeconfig();
    let who = ok(common::auth::kubectl_as(
        &kc,
        &["auth", "whoami", "-o", "json"],
    )?)?;
    ensure!(who.contains("system:node:join-1"), "{who}");
    let boot = csrs_of(&tc, &format!("system:bootstrap:{}", &token[..6]))?;
    ensure!(
        boot.len() == 1,
        "one CSR from the bootstrap token: {boot:?}"
    );
    let first = client_cert(&kc).expect("client certificate in kubeconfig");

    // the certificate is renewed with itself before it expires
    wait_for(
        Duration::from_secs(90),
        "client certificate renewed",
        || client_cert(&kc).filter(|c| *c != first),
    )
    .map_err(|e| anyhow::anyhow!("{e}\nkubelet log:\n{}", k.log()))?;
    let own = csrs_of(&tc, "system:node:join-1")?;
    ensure!(!own.is_empty(), "no CSR sent as the node");
    ensure!(
        own[0]["status"]["conditions"][0]["reason"] == "AutoApproved",
        "{own:?}"
    );
    // once the first certificate expired, the kubelet still talks to the API with the new
    // one: its lease keeps being renewed
    std::thread::sleep(Duration::from_secs(45));
    let before = get_json(
        &tc,
        &[
            "get",
            "lease",
            "join-1",
            "-n",
            "kube-node-lease",
            "-o",
            "json",
        ],
    )?["spec"]["renewTime"]
        .clone();
    wait_for(
        Duration::from_secs(60),
        "lease renewed after expiry",
        || {
            let now = get_json(
                &tc,
                &[
                    "get",
                    "lease",
                    "join-1",
                    "-n",
                    "kube-node-lease",
                    "-o",
                    "json",
                ],
            )
            .ok()?["spec"]["renewTime"]
                .clone();
            (now != before).then_some(())
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}\nkubelet log:\n{}", k.log()))?;
    ensure!(!k.log().contains("Unauthorized"), "{}", k.log());

    // a restart reuses the credentials (the bootstrap token is not used again)
    k.kill();
    bramble_token(&tc, &["delete", &token[..6]])?;
    k.spawn()?;
    wait_for(
        Duration::from_secs(60),
        "restarted kubelet reuses credentials",
        || {
            k.log()
                .contains("using the credentials from an earlier join")
                .then_some(())
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}\nkubelet log:\n{}", k.log()))?;
    ensure!(
        csrs_of(&tc, &format!("system:bootstrap:{}", &token[..6]))?.len() == 1,
        "restart joined again"
    );
    Ok(())
}

#[test]
fn kubelet_refuses_bad_joins() -> Result<()> {
    let tc = TestController::start()?;
    let hash = bramble_pki::ca_cert_hash(&ca_pem(&tc)?)?;
    let token = bramble_token(&tc, &["create"])?;

    let wrong = format!("sha256:{}", "0".repeat(64));
    let k = JoiningKubelet::new("bad-hash", &url(&tc), &token, &[&wrong])?;
    let err = failure_text(&k.run_to_exit()?)?;
    ensure!(
        err.contains(&format!(
            "the cluster CA's hash {hash} matches none of the given CA hashes"
        )),
        "{err}"
    );
    ensure!(!k.kubeconfig().exists());

    let k = JoiningKubelet::new("no-hash", &url(&tc), &token, &[])?;
    let err = failure_text(&k.run_to_exit()?)?;
    ensure!(
        err.contains("--discovery-token-ca-cert-hash is missing"),
        "{err}"
    );

    let short = bramble_token(&tc, &["create", "--ttl", "1s"])?;
    std::thread::sleep(Duration::from_secs(2));
    let k = JoiningKubelet::new("expired", &url(&tc), &short, &[&hash])?;
    let err = failure_text(&k.run_to_exit()?)?;
    ensure!(
        err.contains(&format!("rejected bootstrap token {}", &short[..6])),
        "{err}"
    );
    ensure!(!k.kubeconfig().exists());

    let gone = bramble_token(&tc, &["create"])?;
    bramble_token(&tc, &["delete", &gone[..6]])?;
    let k = JoiningKubelet::new("deleted", &url(&tc), &gone, &[&hash])?;
    let err = failure_text(&k.run_to_exit()?)?;
    ensure!(
        err.contains(&format!("rejected bootstrap token {}", &gone[..6])),
        "{err}"
    );
    // no Node was registered by any of them
    let nodes = ok(tc.kubectl(&["get", "nodes", "-o", "name"])?)?;
    ensure!(nodes.trim().is_empty(), "{nodes}");
    Ok(())
}
