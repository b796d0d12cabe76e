//! The streaming paths through a real `bramble kubelet` process (its own streaming server,
//! its pod table, images from a real registry): `kubectl logs -f`, `exec -it` in a
//! pseudo-terminal, `attach` and `port-forward` (kubectl 1.32 WebSocket tunnel and 1.29
//! SPDY), all through the controller.

mod common;

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{free_port, TestController, KUBECTL, KUBECTL_OLD};
use serde_json::json;

/// The first `n` lines a long-running kubectl command prints.
fn first_lines(ctrl: &TestController, args: &[&str], n: usize) -> Result<Vec<String>> {
    let mut child = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&ctrl.kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = std::io::BufReader::new(child.stdout.take().context("stdout")?);
    let mut lines = Vec::new();
    while lines.len() < n {
        let mut l = String::new();
        if out.read_line(&mut l)? == 0 {
            break;
        }
        lines.push(l.trim_end().to_string());
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(lines)
}

fn ticks(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect()
}

fn port_forward_get(ctrl: &TestController, bin: &str) -> Result<String> {
    let local = free_port();
    let mut child = Command::new(bin)
        .arg("--kubeconfig")
        .arg(&ctrl.kubeconfig)
        .args(["port-forward", "pod/serve", &format!("{local}:8080")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", local)) {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if !buf.is_empty() {
                break buf;
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "{bin} port-forward never answered: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok(answer)
}

#[test]
fn follow_attach_tty_and_port_forward_through_a_real_kubelet() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ks-serve")?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "serve",
            "ks-serve",
            &image,
            "mkdir -p /tmp/www && echo pong from the pod > /tmp/www/index.html && \
             httpd -p 8080 -h /tmp/www; i=0; \
             while true; do i=$((i+1)); echo tick $i; sleep 0.3; done",
            "Always",
            json!({}),
        ),
    )?;
    wait_pod(
        &ctrl,
        &k,
        "serve",
        Duration::from_secs(60),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;

    let lines = first_lines(&ctrl, &["logs", "-f", "serve", "--tail=1"], 4)?;
    let t = ticks(&lines);
    assert_eq!(
        t.len(),
        4,
        "{lines:?}\n{}",
        common::kubelet::tail(&k.log(), 20)
    );
    assert!(t.windows(2).all(|w| w[1] == w[0] + 1), "{lines:?}");

    let lines = first_lines(&ctrl, &["attach", "serve"], 2)?;
    assert_eq!(ticks(&lines).len(), 2, "{lines:?}");

    for bin in [KUBECTL, KUBECTL_OLD] {
        let answer = port_forward_get(&ctrl, bin)?;
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains("pong from the pod"),
            "{bin}: {answer}"
        );
    }

    let cmd = format!(
        "stty rows 27 cols 99; {KUBECTL} --kubeconfig {} exec -it serve -- sh",
        ctrl.kubeconfig.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_secs(2));
    let mut stdin = child.stdin.take().context("stdin")?;
    // The shell runs on a terminal of the container's own devpts (OCI process.terminal), as
    // its controlling terminal (tty_nr in /proc/self/stat is set).
    for line in [
        "stty size; echo $((6*7))\n",
        "echo tty=$(tty)\n",
        "awk '{print \"ctty=\" $7}' /proc/self/stat\n",
        "exit\n",
    ] {
        stdin.write_all(line.as_bytes())?;
        stdin.flush()?;
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = child.wait_with_output()?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("27 99") && shown.contains("42"),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tty = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("tty="))
        .unwrap_or_default();
    assert!(tty.starts_with("/dev/pts/"), "{shown}");
    let ctty: i64 = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("ctty="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert_ne!(ctty, 0, "no controlling terminal:\n{shown}");
    Ok(())
}
