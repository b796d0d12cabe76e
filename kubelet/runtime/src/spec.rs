//! OCI runtime configs (`config.json`) for pause and app containers, written as JSON.
//!
//! The pause container gets new pid, mount, network, IPC and UTS namespaces; app containers
//! join the pause container's network, IPC and UTS namespaces by `/proc/<pid>/ns/*` path and
//! get their own mount and PID namespaces.

use std::path::Path;

use serde_json::{json, Value};

use crate::protocol::{
    ContainerConfig, ContainerResources, Mount, Propagation, SeccompProfile, SecurityConfig,
};

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
    has_effective_capability(CAP_SYS_RESOURCE)
}

/// This process's effective capability set (`CapEff` of `/proc/self/status`; empty when
/// unreadable).
fn effective_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Whether this process's effective set holds capability number `bit`.
pub fn has_effective_capability(bit: u32) -> bool {
    effective_capabilities() & (1 << bit) != 0
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
    host_network: bool,
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
    if host_network {
        // hostNetwork: the node's network and UTS namespaces (and so its hostname), as
        // upstream's runtimes do for NamespaceMode NODE.
        spec["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}]);
        if let Some(o) = spec.as_object_mut() {
            o.remove("hostname");
        }
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
    // containerd's WithTTY.
    if cfg.stdio.tty {
        env.push("TERM=xterm".to_string());
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
    let sec = &cfg.security;
    let cap_list = capability_set(sec);
    let mut process = json!({
        "terminal": cfg.stdio.tty,
        "user": {"uid": sec.uid, "gid": sec.gid},
        "args": cfg.command,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": cap_list, "effective": cap_list, "permitted": cap_list},
        // No rlimits: containers inherit the node's, as under containerd's CRI plugin.
    });
    // Only when set: libcontainer reads the field's presence, not its value, to decide
    // whether seccomp is loaded before capabilities are dropped (needed without no_new_privs,
    // where loading a filter takes CAP_SYS_ADMIN) or just before exec.
    if sec.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !sec.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(sec.additional_gids);
    }
    if let Some(adj) = effective_oom_score_adj(cfg.resources.oom_score_adj, may_lower_oom) {
        process["oomScoreAdj"] = json!(adj);
    }
    let mut mounts = standard_mounts();
    if sec.privileged {
        // Privileged containers get a writable /sys, as runc's and containerd's.
        for m in &mut mounts {
            if m["destination"] == "/sys" {
                m["options"] = json!(["nosuid", "noexec", "nodev"]);
            }
        }
    }
    mounts.extend(cfg.mounts.iter().map(volume_mount));
    let (devices, masked, readonly) = if sec.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
        (host_devices(), json!([]), json!([]))
    } else if sec.unmasked_proc {
        (default_devices(), json!([]), json!([]))
    } else {
        (default_devices(), masked_paths(), readonly_paths())
    };
    let mut linux = json!({
        "cgroupsPath": cgroups_path,
        "resources": resources,
        "namespaces": [
            {"type": "pid"}, {"type": "mount"},
            ns("network", "net"), ns("ipc", "ipc"), ns("uts", "uts")
        ],
        "devices": devices,
        "maskedPaths": masked,
        "readonlyPaths": readonly,
    });
    if let Some(p) = rootfs_propagation(&cfg.mounts) {
        linux["rootfsPropagation"] = json!(p);
    }
    if !sec.sysctls.is_empty() {
        linux["sysctl"] = json!(sec.sysctls);
    }
    // Privileged containers run unconfined, as upstream's.
    match (&sec.seccomp, sec.privileged) {
        (_, true) | (SeccompProfile::Unconfined, _) => {}
        (SeccompProfile::RuntimeDefault, false) => {
            linux["seccomp"] = crate::seccomp::runtime_default(&cap_list);
        }
        (SeccompProfile::Localhost { profile }, false) => linux["seccomp"] = profile.clone(),
    }
    json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": sec.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    })
}

/// A volume's bind mount with its propagation (CRI: None -> rprivate, HostToContainer ->
/// rslave, Bidirectional -> rshared).
fn volume_mount(m: &Mount) -> Value {
    let mut options = vec!["rbind"];
    options.push(match m.propagation {
        Propagation::Private => "rprivate",
        Propagation::HostToContainer => "rslave",
        Propagation::Bidirectional => "rshared",
    });
    if m.readonly {
        options.push("ro");
    }
    json!({"destination": m.container_path, "type": "bind", "source": m.host_path,
           "options": options})
}

/// The root's propagation: `rshared` when a mount is Bidirectional, `rslave` when one is
/// HostToContainer (as containerd), else the runtime's default.
fn rootfs_propagation(mounts: &[Mount]) -> Option<&'static str> {
    if mounts
        .iter()
        .any(|m| m.propagation == Propagation::Bidirectional)
    {
        Some("rshared")
    } else if mounts
        .iter()
        .any(|m| m.propagation == Propagation::HostToContainer)
    {
        Some("rslave")
    } else {
        None
    }
}

/// Capability names `CAP_*` this process holds: what privileged containers and `add: [ALL]`
/// get, as containerd's `WithAllCurrentCapabilities` (a kubelet in a sandbox without, say,
/// `CAP_SYS_RESOURCE` cannot hand it to a container; asking for it fails the container).
pub fn current_capabilities() -> Vec<String> {
    const NAMES: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    let held = effective_capabilities();
    NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| held & (1 << bit) != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// Normalises a Kubernetes capability name (`NET_ADMIN` or `CAP_NET_ADMIN`) to `CAP_*`.
fn cap_name(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") || upper == "ALL" {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The container's capability set as containerd computes it: the default set (every held one
/// when privileged); `drop: [ALL]` empties it, `add: [ALL]` fills it, then the named
/// additions (those this process holds), then the named drops.
pub fn capability_set(sec: &SecurityConfig) -> Vec<String> {
    let all = current_capabilities();
    if sec.privileged {
        return all;
    }
    let add: Vec<String> = sec.capabilities_add.iter().map(|c| cap_name(c)).collect();
    let drop: Vec<String> = sec.capabilities_drop.iter().map(|c| cap_name(c)).collect();
    let mut set: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    if drop.iter().any(|c| c == "ALL") {
        set.clear();
    }
    if add.iter().any(|c| c == "ALL") {
        set = all.clone();
    }
    for c in add.iter().filter(|c| *c != "ALL") {
        if !set.contains(c) && all.contains(c) {
            set.push(c.clone());
        }
    }
    set.retain(|c| !drop.contains(c));
    set
}

/// Every character and block device under the host's `/dev` (privileged containers), as
/// containerd's `WithDevices` of the host's; pseudo-terminal and shm/mqueue trees are left
/// to the container's own mounts.
fn host_devices() -> Value {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fn walk(dir: &Path, out: &mut Vec<Value>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                let name = e.file_name();
                if !matches!(
                    name.to_str(),
                    Some("pts" | "shm" | "mqueue" | ".lxc" | ".udev")
                ) {
                    walk(&path, out);
                }
                continue;
            }
            let typ = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let rdev = md.rdev();
            out.push(json!({
                "path": path, "type": typ,
                "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
                "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(),
            }));
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut out);
    // /dev/console belongs to the container's terminal, not the host's.
    out.retain(|d| d["path"] != "/dev/console" && d["path"] != "/dev/ptmx");
    Value::Array(out)
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
    fn security_and_mounts_reach_the_spec() {
        let mut cfg = ContainerConfig {
            name: "c".into(),
            command: vec!["/bin/true".into()],
            mounts: vec![
                Mount {
                    host_path: "/v/data".into(),
                    container_path: "/data".into(),
                    readonly: true,
                    propagation: Propagation::Private,
                },
                Mount {
                    host_path: "/v/shared".into(),
                    container_path: "/shared".into(),
                    readonly: false,
                    propagation: Propagation::HostToContainer,
                },
            ],
            security: SecurityConfig {
                uid: 1000,
                gid: 3000,
                additional_gids: vec![2000],
                capabilities_add: vec!["NET_ADMIN".into()],
                capabilities_drop: vec!["CHOWN".into(), "CAP_KILL".into()],
                readonly_rootfs: true,
                no_new_privileges: true,
                seccomp: SeccompProfile::RuntimeDefault,
                sysctls: [("net.ipv4.tcp_syncookies".to_string(), "0".to_string())].into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let v = app_spec(&cfg, 1, "/k/c", false);
        let spec: Spec = serde_json::from_value(v.clone()).expect("valid OCI spec");
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.user().gid(), 3000);
        assert_eq!(
            process.user().additional_gids().as_deref(),
            Some(&[2000][..])
        );
        assert_eq!(process.no_new_privileges(), Some(true));
        let eff = v["process"]["capabilities"]["effective"].to_string();
        assert!(
            eff.contains("CAP_NET_ADMIN") && !eff.contains("CAP_CHOWN"),
            "{eff}"
        );
        assert!(
            !eff.contains("CAP_KILL") && eff.contains("CAP_SETUID"),
            "{eff}"
        );
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_some());
        // Without no_new_privs the field is absent, so the filter is loaded while the
        // container still holds CAP_SYS_ADMIN.
        let mut nnp_off = cfg.clone();
        nnp_off.security.no_new_privileges = false;
        assert!(app_spec(&nnp_off, 1, "/k/c", false)["process"]
            .get("noNewPrivileges")
            .is_none());
        assert_eq!(linux.rootfs_propagation().as_deref(), Some("rslave"));
        assert_eq!(
            linux.sysctl().as_ref().unwrap()["net.ipv4.tcp_syncookies"],
            "0"
        );
        let mounts = spec.mounts().as_ref().unwrap();
        let data = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/data"))
            .unwrap();
        let opts = data.options().as_ref().unwrap();
        assert!(opts.contains(&"ro".to_string()) && opts.contains(&"rprivate".to_string()));
        assert!(!linux.masked_paths().as_ref().unwrap().is_empty());

        cfg.security = SecurityConfig {
            privileged: true,
            seccomp: SeccompProfile::RuntimeDefault,
            ..Default::default()
        };
        let v = app_spec(&cfg, 1, "/k/c", false);
        let spec: Spec = serde_json::from_value(v.clone()).expect("valid OCI spec");
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(linux.masked_paths().as_ref().unwrap().is_empty());
        assert!(v["process"]["capabilities"]["bounding"]
            .to_string()
            .contains("CAP_SYS_ADMIN"));
        assert!(linux.devices().as_ref().unwrap().len() >= 3);

        let drop_all = SecurityConfig {
            capabilities_drop: vec!["ALL".into()],
            capabilities_add: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        };
        assert_eq!(capability_set(&drop_all), ["CAP_NET_BIND_SERVICE"]);
    }

    #[test]
    fn pause_spec_owns_namespaces() {
        let libs = HostLibs {
            binds: vec![("/usr/lib".into(), "/usr/lib".into())],
        };
        let v = pause_spec(
            Path::new("/r/pause"),
            "web-0",
            false,
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
        let host = pause_spec(Path::new("/r/pause"), "web-0", true, "/k/s2", &libs, None);
        let spec: Spec = serde_json::from_value(host).expect("valid OCI spec");
        assert!(spec.hostname().is_none());
        let nss = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(!nss.iter().any(|n| matches!(
            n.typ(),
            LinuxNamespaceType::Network | LinuxNamespaceType::Uts
        )));
    }
}
