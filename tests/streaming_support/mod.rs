//! Fixtures of tests/kubectl_streaming.rs: a `PodContainers` over containers the test runs,
//! cleanup of what the runtime started, and kubectl runners (plain, with stdin, in a
//! pseudo-terminal, port-forward).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bramble_cgroups::CgroupManager;
use bramble_kubelet_server::{
    ContainerTarget, LookupError, LookupFuture, PodContainers, PodSandbox,
};
use bramble_runtime::{ContainerRuntime, ContainerStatusKind, RuntimeClient};

use crate::common::free_port;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One pod's containers as the test created them.
pub struct TestPods {
    pub uid: String,
    pub netns: PathBuf,
    /// name -> (current, previous)
    pub containers: Vec<(String, ContainerTarget, Option<ContainerTarget>)>,
}

impl PodContainers for TestPods {
    fn container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        Box::pin(async move {
            self.find(namespace, pod, container)
                .map(|(_, current, _)| current.clone())
        })
    }

    fn previous_container<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
    ) -> LookupFuture<'a, ContainerTarget> {
        Box::pin(async move {
            let (name, _, prev) = self.find(namespace, pod, container)?;
            prev.clone().ok_or(LookupError::PreviousNotFound {
                container: name.clone(),
                pod: pod.to_string(),
            })
        })
    }

    fn sandbox<'a>(&'a self, namespace: &'a str, pod: &'a str) -> LookupFuture<'a, PodSandbox> {
        Box::pin(async move {
            self.check_pod(namespace, pod)?;
            Ok(PodSandbox {
                pod_uid: self.uid.clone(),
                netns_path: self.netns.clone(),
            })
        })
    }
}

type Found<'a> = &'a (String, ContainerTarget, Option<ContainerTarget>);

impl TestPods {
    fn check_pod(&self, namespace: &str, pod: &str) -> Result<(), LookupError> {
        if namespace == "default" && pod == "web" {
            Ok(())
        } else {
            Err(LookupError::PodNotFound {
                namespace: namespace.into(),
                pod: pod.into(),
            })
        }
    }

    fn find(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<Found<'_>, LookupError> {
        self.check_pod(namespace, pod)?;
        let name = container.unwrap_or("main");
        self.containers
            .iter()
            .find(|(n, _, _)| n == name)
            .ok_or(LookupError::ContainerNotFound {
                container: name.into(),
                pod: pod.into(),
            })
    }
}

/// Kills what the runtime started and removes the test's cgroups, even on failure.
pub struct Cleanup {
    pub state_root: PathBuf,
    pub cgroup_top: PathBuf,
    pub cgroups: Box<dyn CgroupManager>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir(self.state_root.join("containers")) else {
            return;
        };
        for entry in rd.flatten() {
            let bundle = entry.path();
            let lc = self
                .state_root
                .join("libcontainer")
                .join(entry.file_name())
                .join("state.json");
            let init = std::fs::read_to_string(lc)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["pid"].as_i64());
            let shim = std::fs::read_to_string(bundle.join("shim.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok());
            for pid in [init, shim].into_iter().flatten() {
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
            let _ = Command::new("umount")
                .arg("-l")
                .arg(bundle.join("rootfs"))
                .stderr(Stdio::null())
                .status();
        }
        for _ in 0..50 {
            if self.cgroups.remove(&self.cgroup_top).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub async fn kubectl_in(bin: &str, kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    let bin = bin.to_string();
    let kubeconfig = kubeconfig.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Ok(tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
    })
    .await??)
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub async fn wait_exited(rt: &RuntimeClient, id: &str) -> Result<()> {
    let start = Instant::now();
    while rt.container_status(id).await?.status != ContainerStatusKind::Exited {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("container {id} did not exit");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// `kubectl exec -i ... -- sh -c 'cat; echo done'` fed two lines and end of file.
pub fn exec_with_stdin(bin: &'static str, kc: PathBuf) -> tokio::task::JoinHandle<Result<Output>> {
    tokio::task::spawn_blocking(move || -> Result<Output> {
        let mut child = Command::new(bin)
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "exec",
                "-i",
                "web",
                "-c",
                "main",
                "--",
                "sh",
                "-c",
                "cat; echo done",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(b"line one\nline two\n")?;
        Ok(child.wait_with_output()?)
    })
}

/// Runs `cmd` with its stdin/stdout on a pseudo-terminal (util-linux `script`), feeding
/// `input` after `delay`; returns everything the terminal showed.
pub async fn in_terminal(cmd: String, input: &'static str, delay: Duration) -> Result<String> {
    tokio::task::spawn_blocking(move || -> Result<String> {
        let mut child = Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        std::thread::sleep(delay);
        let mut stdin = child.stdin.take().context("stdin")?;
        for line in input.split_inclusive('\n') {
            stdin.write_all(line.as_bytes())?;
            stdin.flush()?;
            std::thread::sleep(Duration::from_millis(300));
        }
        let out = child.wait_with_output()?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    })
    .await?
}

/// `kubectl port-forward` (WebSocket tunnel for 1.32, plain SPDY for the old one) to the
/// pod's busybox httpd; returns the HTTP answer through the forwarded port.
pub async fn port_forward_get(bin: &'static str, kubeconfig: PathBuf) -> Result<String> {
    tokio::task::spawn_blocking(move || -> Result<String> {
        let local = free_port();
        let mut child = Command::new(bin)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["port-forward", "pod/web", &format!("{local}:8080")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let answer = loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", local)) {
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")?;
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if !buf.is_empty() {
                    break buf;
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output()?;
                bail!("port-forward never answered: {}", text(&out));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let _ = child.kill();
        let _ = child.wait();
        Ok(answer)
    })
    .await?
}
