//! `bramble init selftest`: the container runtime on the board itself, with no API server and no
//! kubelet. Creates a pod sandbox (the `bramble pause` process) and a busybox container with a
//! memory limit through bramble-runtime, reports the container's cgroup files while it runs,
//! lets it allocate past the limit and reports its exit (code, reason, `memory.events`). Every
//! result is one `selftest:` line on stdout; the QEMU tests read them from the console.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bramble_cgroups::{manager_for, CgroupManager, Resources};
use bramble_runtime::{
    ContainerConfig, ContainerResources, ContainerRuntime, ContainerStatusKind, HelperConfig,
    RuntimeClient, SandboxConfig,
};

use crate::error::{io, InitError};

/// Where the self-test keeps its rootfs, runtime state and logs.
pub const SELFTEST_DIR: &str = "/var/lib/bramble/selftest";
/// The container's memory limit.
pub const MEMORY_LIMIT: i64 = 32 << 20;
/// The pod cgroup, relative to the cgroup root.
const POD_CGROUP: &str = "kubepods/burstable/podselftest";
/// Applets linked in the busybox rootfs.
const APPLETS: [&str; 6] = ["sh", "echo", "cat", "sleep", "tail", "head"];
/// Printed last, whatever happened.
pub const DONE_MARKER: &str = "selftest: done";

/// Paths and limits of one self-test run.
#[derive(Debug, Clone)]
pub struct SelftestConfig {
    /// Working directory (rootfs, state, logs); holds `busybox`.
    pub dir: PathBuf,
    /// cgroupfs root.
    pub cgroup_root: PathBuf,
    /// The `bramble` binary (runtime helper, pause).
    pub exe: PathBuf,
}

impl Default for SelftestConfig {
    fn default() -> Self {
        SelftestConfig {
            dir: SELFTEST_DIR.into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            exe: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
        }
    }
}

fn say(line: &str) {
    println!("selftest: {line}");
}

/// Runs the self-test and prints its results; `Err` after printing what failed.
pub fn run(cfg: &SelftestConfig) -> Result<(), InitError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime", "selftest"))?;
    let result = rt.block_on(run_async(cfg));
    match &result {
        Ok(()) => say("result ok"),
        Err(e) => say(&format!("result failed: {e}")),
    }
    println!("{DONE_MARKER}");
    result
}

fn fail(message: impl Into<String>) -> InitError {
    InitError::Usage(message.into())
}

/// A rootfs with /bin/busybox and the applets the test uses.
fn busybox_rootfs(dir: &Path) -> Result<PathBuf, InitError> {
    let busybox = dir.join("busybox");
    if !busybox.is_file() {
        return Err(fail(format!("{} missing", busybox.display())));
    }
    let layer = dir.join("rootfs");
    let bin = layer.join("bin");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        let p = layer.join(d);
        std::fs::create_dir_all(&p).map_err(io("mkdir", &p))?;
    }
    let dst = bin.join("busybox");
    std::fs::copy(&busybox, &dst).map_err(io("copy", &dst))?;
    std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io("chmod", &dst))?;
    for a in APPLETS {
        let p = bin.join(a);
        if !p.exists() {
            symlink("busybox", &p).map_err(io("symlink", &p))?;
        }
    }
    Ok(layer)
}

fn read_trim(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().replace('\n', ", "))
        .unwrap_or_else(|e| format!("<{e}>"))
}

async fn run_async(cfg: &SelftestConfig) -> Result<(), InitError> {
    let cgroups: Box<dyn CgroupManager> =
        manager_for(&cfg.cgroup_root).map_err(|e| fail(format!("cgroups: {e}")))?;
    say(&format!(
        "cgroup {:?} at {}",
        cgroups.version(),
        cfg.cgroup_root.display()
    ));
    let layer = busybox_rootfs(&cfg.dir)?;
    let pod = PathBuf::from(POD_CGROUP);
    cgroups
        .create(&pod, &Resources::default())
        .map_err(|e| fail(format!("pod cgroup: {e}")))?;
    let helper = HelperConfig {
        state_root: cfg.dir.join("state"),
        cgroup_root: cfg.cgroup_root.clone(),
        pause_binary: cfg.exe.clone(),
    };
    let rt = RuntimeClient::spawn_helper(&cfg.exe, &helper)
        .map_err(|e| fail(format!("runtime helper: {e}")))?;
    let t0 = Instant::now();
    let sandbox = rt
        .run_pod_sandbox(&SandboxConfig {
            pod_uid: "selftest".into(),
            pod_name: "selftest".into(),
            pod_namespace: "kube-system".into(),
            hostname: "selftest".into(),
            cgroup_parent: pod.clone(),
            host_network: false,
            resolv_conf: None,
        })
        .await
        .map_err(|e| fail(format!("sandbox: {e}")))?;
    let sb = rt
        .sandbox_status(&sandbox)
        .await
        .map_err(|e| fail(format!("sandbox status: {e}")))?;
    say(&format!(
        "sandbox {} ready {} pause pid {:?} ({} ms)",
        &sandbox[..12.min(sandbox.len())],
        sb.ready,
        sb.pid,
        t0.elapsed().as_millis()
    ));
    if let Some(pid) = sb.pid {
        say(&format!(
            "pause cmdline {}",
            read_trim(Path::new(&format!("/proc/{pid}/cmdline"))).replace('\0', " ")
        ));
    }

    let log_path = cfg.dir.join("logs/oom.log");
    let _ = std::fs::remove_file(&log_path);
    let container = rt
        .create_container(
            &sandbox,
            &ContainerConfig {
                name: "oom".into(),
                image_layers: vec![layer],
                command: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo hello from busybox; sleep 2; tail /dev/zero".into(),
                ],
                resources: ContainerResources {
                    memory_limit: Some(MEMORY_LIMIT),
                    ..Default::default()
                },
                log_path: log_path.clone(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| fail(format!("create container: {e}")))?;
    rt.start_container(&container)
        .await
        .map_err(|e| fail(format!("start container: {e}")))?;
    let cg = cfg.cgroup_root.join(&pod).join(&container);
    say(&format!("container cgroup {}", cg.display()));
    for f in ["memory.max", "cgroup.procs", "memory.current"] {
        say(&format!("running {f} = {}", read_trim(&cg.join(f))));
    }
    say(&format!(
        "pod cgroup.subtree_control = {}",
        read_trim(&cfg.cgroup_root.join(&pod).join("cgroup.subtree_control"))
    ));

    let deadline = Instant::now() + Duration::from_secs(120);
    let state = loop {
        let st = rt
            .container_status(&container)
            .await
            .map_err(|e| fail(format!("container status: {e}")))?;
        if st.status == ContainerStatusKind::Exited || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    say(&format!(
        "exited memory.events = {}",
        read_trim(&cg.join("memory.events"))
    ));
    say(&format!(
        "log {}",
        read_trim(&log_path).chars().take(200).collect::<String>()
    ));
    let exit = state
        .exit
        .clone()
        .ok_or_else(|| fail(format!("container did not exit: {:?}", state.status)))?;
    say(&format!(
        "container exit code {} signal {:?} reason {} oom_killed {}",
        exit.exit_code, exit.signal, exit.reason, exit.oom_killed
    ));
    let _ = rt.remove_container(&container).await;
    let _ = rt.stop_pod_sandbox(&sandbox, Duration::from_secs(2)).await;
    let _ = rt.remove_pod_sandbox(&sandbox).await;
    let _ = cgroups.remove(&pod);
    if !exit.oom_killed {
        return Err(fail("the container was not OOM-killed"));
    }
    Ok(())
}
