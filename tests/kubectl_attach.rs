//! `kubectl attach -i` and `kubectl run -i` with standard input, through the controller to a
//! real `bramble kubelet` and its containers' shims: input reaches containers with
//! `stdin: true`, `stdinOnce` closes it when the first session ends, several sessions share a
//! container, `-it` runs on the container's pseudo-terminal (resizes relayed, output in the
//! log), a container without `stdin` keeps reading /dev/null (its input is dropped, as
//! containerd does), and a container stays attachable across a kubelet restart. Both the
//! WebSocket (kubectl 1.3x) and SPDY (kubectl 1.29) paths.

mod common;

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::kubelet::{create_pod, get_pod, pod_manifest, tail, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController, KUBECTL, KUBECTL_OLD};
use serde_json::{json, Value};

/// A running kubectl whose stdin we write and whose output lines we read.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Session {
    fn start(ctrl: &TestController, bin: &str, args: &[&str]) -> Result<Session> {
        let mut child = Command::new(bin)
            .arg("--kubeconfig")
            .arg(&ctrl.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().context("stdout")?) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().context("stderr")?),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in std::io::BufReader::new(out).lines() {
                    let Ok(l) = l else { return };
                    if tx.send(l).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(Session {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        })
    }

    fn send(&mut self, text: &str) -> Result<()> {
        let w = self.stdin.as_mut().context("stdin closed")?;
        w.write_all(text.as_bytes())?;
        w.flush()?;
        Ok(())
    }

    /// Waits for an output line equal to `want`.
    fn expect(&mut self, want: &str, k: &TestKubelet) -> Result<()> {
        if self.seen.iter().any(|l| l.trim() == want) {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    let hit = l.trim() == want;
                    self.seen.push(l);
                    if hit {
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        bail!(
            "no line {want:?}; saw {:?}\nkubelet log:\n{}",
            self.seen,
            tail(&k.log(), 30)
        )
    }

    /// Closes stdin and waits for kubectl to end; returns every line it printed.
    fn finish(mut self, limit: Duration) -> Result<Vec<String>> {
        drop(self.stdin.take());
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                if !status.success() {
                    bail!("kubectl failed ({status}): {:?}", self.seen);
                }
                return Ok(std::mem::take(&mut self.seen));
            }
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("kubectl did not end within {limit:?}: {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interactive(name: &str, node: &str, image: &str, script: &str, extra: Value) -> Value {
    let mut fields = json!({"stdin": true});
    if let (Some(f), Value::Object(e)) = (fields.as_object_mut(), extra) {
        f.extend(e);
    }
    pod_manifest(name, node, image, script, "Never", fields)
}

fn running(ctrl: &TestController, k: &TestKubelet, name: &str) -> Result<Value> {
    wait_pod(ctrl, k, name, Duration::from_secs(60), "Running", |p| {
        p["status"]["phase"] == "Running"
    })
}

/// Runs `kubectl ARGS` in a 27x99 pseudo-terminal (`script`), types `lines` (after it had
/// time to attach), and returns what the terminal showed once kubectl ended.
fn in_terminal(ctrl: &TestController, args: &str, lines: &[&str]) -> Result<std::process::Output> {
    let cmd = format!(
        "stty rows 27 cols 99; {KUBECTL} --kubeconfig {} {args}",
        ctrl.kubeconfig.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_secs(3));
    let mut stdin = child.stdin.take().context("stdin")?;
    for line in lines {
        stdin.write_all(line.as_bytes())?;
        stdin.flush()?;
        std::thread::sleep(Duration::from_millis(700));
    }
    let done = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() && Instant::now() < done {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    Ok(child.wait_with_output()?)
}

#[test]
fn kubectl_run_i_and_stdin_once() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ka-run")?;
    running_node(&ctrl, "ka-run")?;

    // kubectl run -i --rm: stdin: true, stdinOnce: true; the piped input reaches `read`, the
    // end of it closes stdin, the pod is deleted afterwards.
    let overrides = json!({"spec": {"nodeName": "ka-run"}}).to_string();
    let out = ctrl.kubectl_with(
        KUBECTL,
        &[
            "run",
            "reader",
            "-i",
            "--rm",
            "--restart=Never",
            "--image",
            &image,
            "--overrides",
            &overrides,
            "--",
            "sh",
            "-c",
            "read x; echo got $x; read y || echo eof after $x",
        ],
        Some("hello\n"),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("got hello") && stdout.contains("eof after hello"),
        "{out:?}\n{}",
        tail(&k.log(), 30)
    );
    let gone = ctrl.kubectl(&["get", "pod", "reader"])?;
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "--rm deletes the pod"
    );

    // kubectl run -it --rm: stdin, stdinOnce and tty; the shell on the container's terminal
    // runs what is typed, and its exit ends the session and deletes the pod.
    let out = in_terminal(
        &ctrl,
        &format!(
            "run shell -it --rm --restart=Never --image {image} --overrides '{overrides}' -- sh"
        ),
        &["echo ready\n", "echo $((6*7)) $(stty size)\n", "exit\n"],
    )?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("42 27 99"),
        "{shown}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&k.log(), 30)
    );
    let gone = ctrl.kubectl(&["get", "pod", "shell"])?;
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "--rm deletes the pod: {shown}"
    );

    // stdinOnce through SPDY (kubectl 1.29): the first session's end of input closes the
    // container's stdin; the session gets the output until the container exits.
    create_pod(
        &ctrl,
        &interactive(
            "once",
            "ka-run",
            &image,
            "while read l; do echo line $l; done; echo stdin closed",
            json!({"stdinOnce": true}),
        ),
    )?;
    running(&ctrl, &k, "once")?;
    let mut s = Session::start(&ctrl, KUBECTL_OLD, &["attach", "-i", "once"])?;
    s.send("a\nb\n")?;
    s.expect("line a", &k)?;
    s.expect("line b", &k)?;
    let lines = s.finish(Duration::from_secs(30))?;
    assert!(lines.iter().any(|l| l == "stdin closed"), "{lines:?}");
    let p = wait_pod(
        &ctrl,
        &k,
        "once",
        Duration::from_secs(30),
        "Succeeded",
        |p| p["status"]["phase"] == "Succeeded",
    )?;
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );
    Ok(())
}

fn running_node(ctrl: &TestController, node: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ctrl.kubectl(&["get", "node", node])?.status.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("node {node} never registered")
}

#[test]
fn attach_i_sessions_tty_and_a_container_without_stdin() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ka-attach")?;
    create_pod(
        &ctrl,
        &interactive(
            "echo",
            "ka-attach",
            &image,
            "while read l; do echo echo $l; done",
            json!({}),
        ),
    )?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "deaf",
            "ka-attach",
            &image,
            "while true; do read l && echo read $l; echo tick; sleep 0.3; done",
            "Never",
            json!({}),
        ),
    )?;
    create_pod(
        &ctrl,
        &interactive("term", "ka-attach", &image, "sh", json!({"tty": true})),
    )?;
    for p in ["echo", "deaf", "term"] {
        running(&ctrl, &k, p)?;
    }

    // Two sessions at once (WebSocket and SPDY): input from either, output to both.
    let mut a = Session::start(&ctrl, KUBECTL, &["attach", "-i", "echo"])?;
    let mut b = Session::start(&ctrl, KUBECTL_OLD, &["attach", "-i", "echo"])?;
    // Each session's own input echoing back shows it is attached.
    a.send("from a\n")?;
    a.expect("echo from a", &k)?;
    b.send("probe\n")?;
    b.expect("echo probe", &k)?;
    a.expect("echo probe", &k)?;
    b.send("from b\n")?;
    a.expect("echo from b", &k)?;
    b.expect("echo from b", &k)?;
    drop(a);
    drop(b);
    // Without stdinOnce stdin stays open across sessions.
    let mut c = Session::start(&ctrl, KUBECTL, &["attach", "-i", "echo"])?;
    c.send("again\n")?;
    c.expect("echo again", &k)?;
    drop(c);
    assert_eq!(get_pod(&ctrl, "echo")?["status"]["phase"], "Running");

    // No `stdin`: the container reads /dev/null; attach -i still streams its output and the
    // input goes nowhere (containerd's behaviour).
    let fd0 = ok(ctrl.kubectl(&["exec", "deaf", "--", "readlink", "/proc/1/fd/0"])?)?;
    assert_eq!(fd0.trim(), "/dev/null");
    let mut d = Session::start(&ctrl, KUBECTL, &["attach", "-i", "deaf"])?;
    d.send("secret\n")?;
    d.expect("tick", &k)?;
    d.expect("tick", &k)?;
    drop(d);
    let logs = ok(ctrl.kubectl(&["logs", "deaf"])?)?;
    assert!(!logs.contains("read secret"), "{logs}");

    // -it: the shell's terminal is the container's own pty, sized as the client's.
    // A first line gives kubectl's resizes time to land before `stty size`.
    let out = in_terminal(
        &ctrl,
        "attach -it term",
        &[
            "echo attached\n",
            "stty size; echo $((6*7))\n",
            "echo tty=$(tty)\n",
            "exit\n",
        ],
    )?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("27 99") && shown.contains("42"),
        "{shown}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&k.log(), 30)
    );
    let tty = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("tty="))
        .unwrap_or_default();
    assert!(tty.starts_with("/dev/pts/"), "{shown}");
    // The shell exited: the pod completes, and its log recorded the terminal's output.
    wait_pod(
        &ctrl,
        &k,
        "term",
        Duration::from_secs(30),
        "Succeeded",
        |p| p["status"]["phase"] == "Succeeded",
    )?;
    let logs = ok(ctrl.kubectl(&["logs", "term"])?)?;
    assert!(logs.contains("42"), "{logs}");
    Ok(())
}

#[test]
fn a_container_stays_attachable_across_a_kubelet_restart() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let mut k = TestKubelet::start(&ctrl, "ka-restart")?;
    create_pod(
        &ctrl,
        &interactive(
            "echo",
            "ka-restart",
            &image,
            "while read l; do echo echo $l; done",
            json!({}),
        ),
    )?;
    let before = running(&ctrl, &k, "echo")?;
    let mut s = Session::start(&ctrl, KUBECTL, &["attach", "-i", "echo"])?;
    s.send("before\n")?;
    s.expect("echo before", &k)?;
    drop(s);

    k.restart()?;
    // The new kubelet serves again (a session through it works) for the same container.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        n += 1;
        let mut s = Session::start(&ctrl, KUBECTL, &["attach", "-i", "echo"])?;
        s.send(&format!("after{n}\n"))?;
        if s.expect(&format!("echo after{n}"), &k).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("no attach after the restart\n{}", tail(&k.log(), 40));
        }
    }
    let after = get_pod(&ctrl, "echo")?;
    let id = |p: &Value| p["status"]["containerStatuses"][0]["containerID"].clone();
    assert_eq!(id(&after), id(&before), "the same container, not a new one");
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0);
    Ok(())
}
