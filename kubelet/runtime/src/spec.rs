//! OCI runtime configs (`config.json`) for pause and app containers, written as JSON.
//!
//! The pause container gets new pid, mount, network, IPC and UTS namespaces; app containers
//! join the pause container's network, IPC and UTS namespaces by `/proc/<pid>/ns/*` path and
//! get their own mount and PID namespaces.

use std::path::Path;

use serde_json::{json, Value};

use crate::protocol::{ContainerConfig, ContainerResources};

/// containerd's default capability set, which Kubernetes containers get unless told otherwise.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `PATH` given to containers whose environment has none (containerd's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the pause program lives inside the pause rootfs.
pub const PAUSE_BINARY: &str = "/bramble";

fn caps(extra: &[&str]) -> Value {
    let mut list: Vec<&str> = DEFAULT_CAPABILITIES.to_vec();
    list.extend_from_slice(extra);
    json!({
        "bounding": list, "effective": list, "permitted": list,
    })
}

fn standard_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ]
}

fn masked_paths() -> Value {
    json!([
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap"
    ])
}

fn readonly_paths() -> Value {
    json!([
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger"
    ])
}

/// The OCI `linux.resources` object for a container's cgroup.
pub fn linux_resources(r: &ContainerResources) -> Value {
    let mut res = json!({ "devices": [{"allow": false, "access": "rwm"}] });
    let mut cpu = serde_json::Map::new();
    if let Some(s) = r.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(q) = r.cpu_quota {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = r.cpu_period {
        cpu.insert("period".into(), json!(p));
    }
    if !cpu.is_empty() {
        res["cpu"] = Value::Object(cpu);
    }
    if let Some(m) = r.memory_limit {
        res["memory"] = json!({ "limit": m });
    }
    if let Some(p) = r.pids_limit {
        res["pids"] = json!({ "limit": p });
    }
    res
}

/// Device nodes every container gets (as runc's defaults).
fn default_devices() -> Value {
    let dev = |path: &str, major: i64, minor: i64| {
        json!({"path": path, "type": "c", "major": major, "minor": minor,
               "fileMode": 438, "uid": 0, "gid": 0})
    };
    json!([
        dev("/dev/null", 1, 3),
        dev("/dev/zero", 1, 5),
        dev("/dev/full", 1, 7),
        dev("/dev/random", 1, 8),
        dev("/dev/urandom", 1, 9),
        dev("/dev/tty", 5, 0)
    ])
}

fn allowed_device_rules() -> Vec<Value> {
    let rule = |major: i64, minor: i64| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"});
    vec![
        rule(1, 3),
        rule(1, 5),
        rule(1, 7),
        rule(1, 8),
        rule(1, 9),
        rule(5, 0),
        rule(5, 1),
        rule(5, 2),
        // Every pty (minor omitted = wildcard).
        json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}),
    ]
}

/// Host library directories bind-mounted read-only into the pause container when the running
/// binary is dynamically linked (development builds); a static `bramble` needs none.
pub struct HostLibs {
    /// `(host dir, container dir)` pairs to bind.
    pub binds: Vec<(String, String)>,
}

/// The pause container's config: the `bramble pause` program in the shared read-only pause
/// rootfs, with fresh pid, mount, network, IPC and UTS namespaces and the pod's hostname.
/// Whether this process may lower `oom_score_adj` below its own (needs `CAP_SYS_RESOURCE`,
/// which a node's kubelet has but some sandboxes, like this project's CI, lack).
pub fn may_lower_oom_score() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok())
        })
        .map(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
        .unwrap_or(false)
}

/// The `oom_score_adj` to put in a spec: negative values need `CAP_SYS_RESOURCE`; without it
/// the container inherits the helper's score instead of failing to start.
pub fn effective_oom_score_adj(wanted: Option<i32>, may_lower: bool) -> Option<i32> {
    match wanted {
        Some(v) if v < 0 && !may_lower => {
            tracing::warn!(
                wanted = v,
                "no CAP_SYS_RESOURCE: not lowering oom_score_adj"
            );
            None
        }
        w => w,
    }
}

/// The pause container's config (see the module docs); `oom_score_adj` is upstream's
/// [`bramble_cgroups::qos::POD_INFRA_OOM_SCORE_ADJ`] when permitted.
pub fn pause_spec(
    rootfs: &Path,
    hostname: &str,
    cgroups_path: &str,
    libs: &HostLibs,
    oom_score_adj: Option<i32>,
) -> Value {
    let mut mounts = standard_mounts();
    for (src, dst) in &libs.binds {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                           "options": ["rbind", "ro", "nosuid", "nodev"]}));
    }
    let mut resources = json!({ "devices": [{"allow": false, "access": "rwm"}] });
    resources["devices"]
        .as_array_mut()
        .expect("array")
        .extend(allowed_device_rules());
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": [PAUSE_BINARY, "pause"],
            "env": [DEFAULT_PATH],
            "cwd": "/",
            // NET_ADMIN only to bring the pod's loopback up.
            "capabilities": caps(&["CAP_NET_ADMIN"]),
            "noNewPrivileges": true,
        },
        "root": {"path": rootfs, "readonly": true},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": [
                {"type": "pid"}, {"type": "mount"}, {"type": "network"},
                {"type": "ipc"}, {"type": "uts"}
            ],
            "devices": default_devices(),
            "maskedPaths": masked_paths(),
            "readonlyPaths": readonly_paths(),
        }
    });
    if let Some(adj) = oom_score_adj {
        spec["process"]["oomScoreAdj"] = json!(adj);
    }
    spec
}

/// An app container's config: its overlay rootfs, joined to the pause container's network,
/// IPC and UTS namespaces, with its own mount and PID namespaces. `may_lower_oom` tells
/// whether a negative `oom_score_adj` can be applied ([`may_lower_oom_score`]).
pub fn app_spec(
    cfg: &ContainerConfig,
    pause_pid: i32,
    cgroups_path: &str,
    may_lower_oom: bool,
) -> Value {
    let mut env = cfg.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let cwd = if cfg.working_dir.is_empty() {
        "/"
    } else {
        cfg.working_dir.as_str()
    };
    let ns = |t: &str, n: &str| json!({"type": t, "path": format!("/proc/{pause_pid}/ns/{n}")});
    let mut resources = linux_resources(&cfg.resources);
    resources["devices"]
        .as_array_mut()
        .expect("array")
        .extend(allowed_device_rules());
    let mut process = json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": cfg.command,
        "env": env,
        "cwd": cwd,
        "capabilities": caps(&[]),
        // No rlimits: containers inherit the node's, as under containerd's CRI plugin.
        "noNewPrivileges": false,
    });
    if let Some(adj) = effective_oom_score_adj(cfg.resources.oom_score_adj, may_lower_oom) {
        process["oomScoreAdj"] = json!(adj);
    }
    json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": false},
        "mounts": standard_mounts(),
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": [
                {"type": "pid"}, {"type": "mount"},
                ns("network", "net"), ns("ipc", "ipc"), ns("uts", "uts")
            ],
            "devices": default_devices(),
            "maskedPaths": masked_paths(),
            "readonlyPaths": readonly_paths(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};

    #[test]
    fn app_spec_is_valid_oci_and_joins_the_sandbox() {
        let cfg = ContainerConfig {
            name: "c".into(),
            command: vec!["/bin/echo".into(), "hi".into()],
            env: vec!["A=b".into()],
            resources: ContainerResources {
                memory_limit: Some(32 << 20),
                cpu_quota: Some(50_000),
                cpu_period: Some(100_000),
                oom_score_adj: Some(500),
                ..Default::default()
            },
            ..Default::default()
        };
        let v = app_spec(&cfg, 4242, "/kubepods/podx/c1", false);
        let spec: Spec = serde_json::from_value(v).expect("valid OCI spec");
        let linux = spec.linux().as_ref().unwrap();
        let nss = linux.namespaces().as_ref().unwrap();
        let net = nss
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(
            net.path().as_ref().unwrap().to_str(),
            Some("/proc/4242/ns/net")
        );
        let pid = nss
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Pid)
            .unwrap();
        assert!(pid.path().is_none());
        let mem = linux
            .resources()
            .as_ref()
            .unwrap()
            .memory()
            .as_ref()
            .unwrap();
        assert_eq!(mem.limit(), Some(32 << 20));
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.oom_score_adj(), Some(500));
        assert!(process.env().as_ref().unwrap()[0].starts_with("PATH="));
        assert!(spec.hostname().is_none());
        assert_eq!(effective_oom_score_adj(Some(-997), false), None);
        assert_eq!(effective_oom_score_adj(Some(-997), true), Some(-997));
        assert_eq!(effective_oom_score_adj(Some(1000), false), Some(1000));
    }

    #[test]
    fn pause_spec_owns_namespaces() {
        let libs = HostLibs {
            binds: vec![("/usr/lib".into(), "/usr/lib".into())],
        };
        let v = pause_spec(
            Path::new("/r/pause"),
            "web-0",
            "/kubepods/podx/s1",
            &libs,
            Some(-998),
        );
        let spec: Spec = serde_json::from_value(v).expect("valid OCI spec");
        assert_eq!(spec.hostname().as_deref(), Some("web-0"));
        let nss = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap();
        assert_eq!(nss.len(), 5);
        assert!(nss.iter().all(|n| n.path().is_none()));
        assert_eq!(spec.process().as_ref().unwrap().oom_score_adj(), Some(-998));
    }
}
