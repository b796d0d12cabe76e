//! A real `bramble controller` process on real LMDB files, driven by the real kubectl and the
//! `kube` crate.
#![allow(dead_code)]

pub mod api;
pub mod auth;
pub mod kubelet;
pub mod net_cluster;
pub mod netns;
pub mod registry;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The kubectl on PATH (the newest installed) and an older one from the versioned set.
pub const KUBECTL: &str = "/usr/bin/kubectl";
pub const KUBECTL_OLD: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.29";

pub fn bramble_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bramble")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A controller child process; killed when dropped.
pub struct TestController {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    extra_args: Vec<String>,
    /// Command prefix of the controller and of kubectl (e.g. `nsenter --net=...` for a test
    /// network namespace); empty for this namespace.
    wrapper: Vec<String>,
    /// `--listen`; `None` leaves the default (`0.0.0.0:6443`).
    listen: Option<String>,
}

impl TestController {
    pub fn start() -> Result<TestController> {
        Self::start_with(&[])
    }

    /// Starts a controller with extra flags (e.g. `--history-limit 50`).
    pub fn start_with(extra: &[&str]) -> Result<TestController> {
        let port = free_port();
        Self::start_wrapped(Vec::new(), Some(format!("127.0.0.1:{port}")), port, extra)
    }

    /// Starts a controller through `wrapper` (e.g. [`netns::NetHost::wrapper`]) with its
    /// default listen address (`0.0.0.0:6443`, as `bramble up`); kubectl runs through the
    /// wrapper too and reaches it at 127.0.0.1:6443 there.
    pub fn start_in(wrapper: Vec<String>, extra: &[&str]) -> Result<TestController> {
        Self::start_wrapped(wrapper, None, 6443, extra)
    }

    fn start_wrapped(
        wrapper: Vec<String>,
        listen: Option<String>,
        port: u16,
        extra: &[&str],
    ) -> Result<TestController> {
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        let mut c = TestController {
            child: None,
            port,
            kubeconfig,
            dir,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            wrapper,
            listen,
        };
        c.spawn()?;
        Ok(c)
    }

    /// A command running `program` through the wrapper, if any.
    fn wrapped(&self, program: &str) -> Command {
        match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("controller.log"))?;
        let listen = self
            .listen
            .as_ref()
            .map(|l| vec!["--listen".to_string(), l.clone()])
            .unwrap_or_default();
        let child = self
            .wrapped(bramble_bin())
            .arg("controller")
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(listen)
            .arg("--write-kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--bookmark-interval-seconds")
            .arg("1")
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning bramble controller")?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("controller exited early with {status}:\n{}", self.log());
            }
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"])?;
                if out.status.success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("controller not ready after 30 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("controller.log")).unwrap_or_default()
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the process and starts a new one on the same files and port.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<Output> {
        self.kubectl_with(KUBECTL, args, None)
    }

    /// Runs a kubectl binary against this controller, optionally feeding `stdin`.
    pub fn kubectl_with(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let mut cmd = self.wrapped(bin);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("running {bin}"))?;
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// A `kube` client for this controller, from the kubeconfig kubectl uses.
    pub async fn client(&self) -> Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(kube::Client::try_from(config)?)
    }
}

impl Drop for TestController {
    fn drop(&mut self) {
        self.kill();
    }
}

/// stdout of a successful command, or an error with its stderr.
pub fn ok(out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "command failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// stderr of a command that must fail.
pub fn fails(out: Output) -> Result<String> {
    if out.status.success() {
        bail!(
            "command succeeded but should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8(out.stderr)?)
}
