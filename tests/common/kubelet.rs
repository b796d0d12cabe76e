//! A real `bramble kubelet` process against a [`TestController`], with its data, images,
//! runtime state and cgroups isolated per test; whatever it leaves running is killed and
//! its cgroups removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use super::{bramble_bin, TestController};

pub const CGROUPFS: &str = "/sys/fs/cgroup";

pub struct TestKubelet {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub node: String,
    pub cgroup_parent: String,
    kubeconfig: PathBuf,
    pub port: u16,
    /// More command-line arguments (e.g. `--config FILE`).
    pub extra_args: Vec<String>,
    /// Command prefix, e.g. `nsenter --net=/run/netns/NAME` for a test network namespace.
    pub wrapper: Vec<String>,
    /// `--node-ip`.
    pub node_ip: String,
}

impl TestKubelet {
    /// Starts a kubelet for node `node` talking to `ctrl`.
    pub fn start(ctrl: &TestController, node: &str) -> Result<Self> {
        Self::start_with_args(ctrl, node, &[])
    }

    /// Starts a kubelet with the API server of `kubeconfig`, run through `wrapper` (e.g.
    /// nsenter into a test network namespace) with `node_ip` and extra arguments.
    pub fn start_in(
        kubeconfig: &Path,
        node: &str,
        wrapper: Vec<String>,
        node_ip: &str,
        extra: &[String],
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("bramble-kubelet-")
            .tempdir()?;
        let mut k = TestKubelet {
            child: None,
            cgroup_parent: format!("bramble-test-{}-{node}", std::process::id()),
            node: node.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            port: super::free_port(),
            extra_args: extra.to_vec(),
            wrapper,
            node_ip: node_ip.to_string(),
            dir,
        };
        k.spawn()?;
        Ok(k)
    }

    /// Starts a kubelet with extra command-line arguments (e.g. `--config FILE`).
    pub fn start_with_args(ctrl: &TestController, node: &str, extra: &[String]) -> Result<Self> {
        Self::start_in(&ctrl.kubeconfig, node, Vec::new(), "127.0.0.1", extra)
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("runtime")
    }

    pub fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("kubelet.log"))?;
        let mut cmd = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bramble_bin());
                c
            }
            None => Command::new(bramble_bin()),
        };
        // Pod networking is tested in network namespaces (tests/net_*.rs).
        let network: &[&str] = if self.extra_args.iter().any(|a| a == "--pod-network") {
            &[]
        } else {
            &["--pod-network", "loopback"]
        };
        // A build machine's disk is shared with the target directory and with whatever else
        // runs there (CI has seen 130 MiB left of 252 GiB), so disk-pressure eviction would
        // fail pods for reasons no test studies: the disk thresholds are off ("0%", as
        // upstream reads it). Tests that study eviction bring their own --config.
        let mut config: Vec<String> = Vec::new();
        if !self.extra_args.iter().any(|a| a == "--config") {
            let file = self.dir.path().join("test-kubelet-config.yaml");
            std::fs::write(
                &file,
                "apiVersion: kubelet.config.k8s.io/v1beta1\n\
                 kind: KubeletConfiguration\n\
                 evictionHard: {memory.available: 100Mi, nodefs.available: 0%, imagefs.available: 0%}\n",
            )?;
            config = vec!["--config".into(), file.display().to_string()];
        }
        let child = cmd
            .arg("kubelet")
            .args(["--node-name", &self.node])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--data-dir")
            .arg(self.dir.path().join("kubelet"))
            .arg("--image-dir")
            .arg(self.dir.path().join("images"))
            .arg("--runtime-dir")
            .arg(self.runtime_dir())
            .args(["--cgroup-parent", &self.cgroup_parent])
            .args(["--node-ip", &self.node_ip])
            .args(network)
            .args(&config)
            .args(["--kubelet-port", &self.port.to_string()])
            .args(&self.extra_args)
            .env("RUST_LOG", "info,bramble_kubelet=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kubelet.log")).unwrap_or_default()
    }

    /// Polls `f` every `every` until it gives `Some`; after `limit` fails naming `what`, with
    /// the kubelet's log tail.
    pub fn wait_for<T>(
        &self,
        limit: Duration,
        every: Duration,
        what: &str,
        mut f: impl FnMut() -> Option<T>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return Ok(v);
            }
            if start.elapsed() > limit {
                bail!(
                    "{what} not reached after {limit:?}:\n{}",
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(every);
        }
    }

    /// SIGKILL: the kubelet gets no chance to clean up; containers keep running.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the kubelet and starts a new one on the same state.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// The pod cgroup directory of a container in the cpu hierarchy (v1) or unified (v2).
    pub fn find_cgroup_file(
        &self,
        controller: &str,
        file: &str,
        container_id: &str,
    ) -> Option<PathBuf> {
        let base = if Path::new(CGROUPFS).join("cgroup.controllers").exists() {
            Path::new(CGROUPFS).join(&self.cgroup_parent)
        } else {
            Path::new(CGROUPFS)
                .join(controller)
                .join(&self.cgroup_parent)
        };
        find_dir(&base, container_id).map(|d| d.join(file))
    }
}

fn find_dir(base: &Path, name: &str) -> Option<PathBuf> {
    let rd = std::fs::read_dir(base).ok()?;
    for e in rd.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if e.file_name().to_string_lossy() == name {
            return Some(p);
        }
        if let Some(found) = find_dir(&p, name) {
            return Some(found);
        }
    }
    None
}

/// Kills every process in the cgroup trees under `parent` and removes the cgroups.
fn cleanup_cgroups(parent: &str) {
    let roots: Vec<PathBuf> = if Path::new(CGROUPFS).join("cgroup.controllers").exists() {
        vec![Path::new(CGROUPFS).join(parent)]
    } else {
        std::fs::read_dir(CGROUPFS)
            .map(|rd| rd.flatten().map(|e| e.path().join(parent)).collect())
            .unwrap_or_default()
    };
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    for _ in 0..50 {
        let mut dirs = Vec::new();
        for r in &roots {
            if r.exists() {
                walk(r, &mut dirs);
            }
        }
        if dirs.is_empty() {
            return;
        }
        for d in &dirs {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        for d in &dirs {
            let _ = std::fs::remove_dir(d);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for TestKubelet {
    fn drop(&mut self) {
        self.kill();
        cleanup_cgroups(&self.cgroup_parent);
        if let Ok(rd) = std::fs::read_dir(self.runtime_dir().join("containers")) {
            for e in rd.flatten() {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(e.path().join("rootfs"))
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Volume mounts (tmpfs of emptyDir/secret/projected volumes) left by the pods.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| Path::new(p).starts_with(self.dir.path()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
    }
}

/// A pod manifest for `node` running `script` in `image` (restartPolicy and extra container
/// fields merged in).
pub fn pod_manifest(
    name: &str,
    node: &str,
    image: &str,
    script: &str,
    restart: &str,
    extra: Value,
) -> Value {
    let mut container = serde_json::json!({
        "name": "main", "image": image, "command": ["sh", "-c", script],
    });
    if let (Some(c), Value::Object(e)) = (container.as_object_mut(), extra) {
        for (k, v) in e {
            c.insert(k, v);
        }
    }
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "restartPolicy": restart, "containers": [container],
                 "terminationGracePeriodSeconds": 5},
    })
}

/// Creates a pod from a JSON manifest with kubectl.
pub fn create_pod(ctrl: &TestController, manifest: &Value) -> Result<()> {
    super::ok(ctrl.kubectl_with(
        super::KUBECTL,
        &["create", "-f", "-"],
        Some(&manifest.to_string()),
    )?)?;
    Ok(())
}

/// `kubectl get pod NAME -o json`.
pub fn get_pod(ctrl: &TestController, name: &str) -> Result<Value> {
    Ok(serde_json::from_str(&super::ok(
        ctrl.kubectl(&["get", "pod", name, "-o", "json"])?,
    )?)?)
}

/// Polls the pod until `pred` holds; returns it.
pub fn wait_pod(
    ctrl: &TestController,
    k: &TestKubelet,
    name: &str,
    limit: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let start = Instant::now();
    let mut last = Value::Null;
    while start.elapsed() < limit {
        if let Ok(p) = get_pod(ctrl, name) {
            if pred(&p) {
                return Ok(p);
            }
            last = p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "pod {name}: {what} not reached after {limit:?}; last status:\n{}\nkubelet log tail:\n{}",
        serde_json::to_string_pretty(&last["status"]).unwrap_or_default(),
        tail(&k.log(), 40)
    )
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SSZ` timestamp (metav1.Time).
pub fn rfc3339_secs(t: &str) -> i64 {
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().expect("timestamp digits");
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}
