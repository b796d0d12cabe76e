//! `bramble up`, the single-node cluster the README starts: the kubelet inside the
//! controller process serves its own API (logs, exec, attach, port-forward, stats) to the
//! controller over TLS with the cluster CA, so `kubectl top nodes`, which the controller
//! answers from the kubelet's stats, works on it. Runs in a network namespace of its own
//! (needs root), with the real kubectl.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use common::netns::{poll, sh};

/// The `bramble up` process and its network namespace, removed on drop.
struct Up {
    child: Child,
    netns: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = sh("ip", &["netns", "del", &self.netns]);
    }
}

#[test]
fn kubectl_top_nodes_reads_the_in_process_kubelet() -> Result<()> {
    let netns = format!("bramble-up-{}", std::process::id());
    sh("ip", &["netns", "add", &netns])?;
    let dir = tempfile::Builder::new().prefix("bramble-up-").tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let log = std::fs::File::create(dir.path().join("up.log"))?;
    let enter = format!("--net=/run/netns/{netns}");
    let child = Command::new("nsenter")
        .arg(&enter)
        .arg(common::bramble_bin())
        .arg("up")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--local-path-dir")
        .arg(dir.path().join("local-path"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting bramble up")?;
    let up = Up { child, netns };
    sh("ip", &["-n", &up.netns, "link", "set", "lo", "up"])?;
    let kubectl = |args: &[&str]| -> Result<Output> {
        Ok(Command::new("nsenter")
            .arg(&enter)
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    };
    let log_tail = || {
        let text = std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text[text.floor_char_boundary(start)..].to_string()
    };
    let node = poll(Duration::from_secs(120), "a Ready node", || {
        if !kubeconfig.exists() {
            return Ok(None);
        }
        let out = kubectl(&[
            "get",
            "nodes",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
        ])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(text
            .lines()
            .find_map(|l| l.strip_suffix("=True"))
            .map(str::to_string))
    })
    .with_context(log_tail)?;
    // The controller reads the node's usage from its kubelet's stats endpoint: before the
    // kubelet served its API this stayed "metrics not available yet".
    let row = poll(Duration::from_secs(120), "kubectl top nodes", || {
        let out = kubectl(&["top", "nodes", "--no-headers"])?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.split_whitespace().next() == Some(node.as_str()))
            .map(str::to_string))
    })
    .with_context(log_tail)?;
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cols.len() >= 5 && cols[1].ends_with('m') && cols[3].ends_with("Mi"),
        "a node row with CPU and memory: {row}"
    );
    drop(up);
    Ok(())
}
