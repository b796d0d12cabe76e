//! Shared fixtures of the runtime's integration tests: a busybox-static image layer, a state
//! root, a pod cgroup on the host's real cgroupfs, and a helper spawned from the crate's
//! multi-call test binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bramble_cgroups::{manager_for, CgroupManager, Resources};
use bramble_runtime::{
    ContainerConfig, ContainerRuntime, ContainerState, ContainerStatusKind, HelperConfig,
    RuntimeClient, SandboxConfig,
};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub layer: PathBuf,
    pub helper_cfg: HelperConfig,
    pub cgroup_top: PathBuf,
    pub pod_cgroup: PathBuf,
    cgroups: Box<dyn CgroupManager>,
}

/// A rootfs directory from Debian's busybox-static: /bin/busybox and one symlink per applet.
pub fn busybox_layer(dir: &Path) -> PathBuf {
    let layer = dir.join("layer-busybox");
    let bin = layer.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(layer.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    std::fs::write(layer.join("etc/image-marker"), "busybox layer\n").unwrap();
    layer
}

impl Fixture {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bramble-rt-")
            .tempdir()
            .unwrap();
        let layer = busybox_layer(dir.path());
        let cgroups = manager_for(CGROUP_ROOT).unwrap();
        let cgroup_top = PathBuf::from(format!("bramble-rt-{}-{name}", std::process::id()));
        let pod_cgroup = cgroup_top
            .join("kubepods/burstable")
            .join(format!("pod{name}"));
        cgroups
            .create(
                &cgroup_top.join("kubepods/burstable"),
                &Resources::default(),
            )
            .unwrap();
        // A pod-level limit well above the containers' own.
        cgroups
            .create(
                &pod_cgroup,
                &Resources {
                    memory_limit: Some(256 << 20),
                    ..Default::default()
                },
            )
            .unwrap();
        let helper_cfg = HelperConfig {
            state_root: dir.path().join("state"),
            cgroup_root: PathBuf::from(CGROUP_ROOT),
            pause_binary: PathBuf::from(env!("CARGO_BIN_EXE_bramble-runtime")),
        };
        Fixture {
            dir,
            layer,
            helper_cfg,
            cgroup_top,
            pod_cgroup,
            cgroups,
        }
    }

    pub fn client(&self) -> RuntimeClient {
        RuntimeClient::spawn_helper(
            Path::new(env!("CARGO_BIN_EXE_bramble-runtime")),
            &self.helper_cfg,
        )
        .unwrap()
    }

    pub fn sandbox_config(&self, name: &str) -> SandboxConfig {
        SandboxConfig {
            pod_uid: format!("uid-{name}"),
            pod_name: name.to_string(),
            pod_namespace: "default".into(),
            hostname: name.to_string(),
            cgroup_parent: self.pod_cgroup.clone(),
            host_network: false,
            resolv_conf: None,
        }
    }

    pub fn container_config(&self, name: &str, script: &str) -> ContainerConfig {
        ContainerConfig {
            name: name.to_string(),
            image_layers: vec![self.layer.clone()],
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["GREETING=hello".into()],
            log_path: self.dir.path().join("logs").join(format!("{name}.log")),
            ..Default::default()
        }
    }
}

/// Kills whatever a failed test left running (container inits, shims) and unmounts rootfs
/// overlays, so a failure does not leak processes or mounts.
fn kill_leftovers(state_root: &Path) {
    let Ok(rd) = std::fs::read_dir(state_root.join("containers")) else {
        return;
    };
    for entry in rd.flatten() {
        let bundle = entry.path();
        let id = entry.file_name();
        let lc_state = state_root.join("libcontainer").join(&id).join("state.json");
        let init = std::fs::read_to_string(lc_state)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["pid"].as_i64());
        let shim = std::fs::read_to_string(bundle.join("shim.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
        for pid in [init, shim].into_iter().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        kill_leftovers(&self.helper_cfg.state_root);
        // cgroups may linger a moment while the kernel finishes tearing tasks down.
        for _ in 0..50 {
            if self.cgroups.remove(&self.cgroup_top).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls a container until it leaves created/running.
pub async fn wait_exit<R: ContainerRuntime>(rt: &R, id: &str, limit: Duration) -> ContainerState {
    let start = Instant::now();
    loop {
        let st = rt.container_status(id).await.unwrap();
        if st.status == ContainerStatusKind::Exited {
            return st;
        }
        assert!(
            start.elapsed() < limit,
            "container {id} still {:?} after {limit:?}",
            st.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The inode link of a namespace of a host pid, e.g. `net:[4026532]`.
pub fn ns_link(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

/// (VmRSS KiB, Pss KiB, Private KiB) of a process.
pub fn memory_kib(pid: i32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let private = field(&rollup, "Private_Clean:") + field(&rollup, "Private_Dirty:");
    (field(&status, "VmRSS:"), field(&rollup, "Pss:"), private)
}
