//! Pod and container `securityContext` to the runtime's [`SecurityConfig`], as upstream's
//! kubelet and containerd's CRI plugin resolve it: the container's settings override the
//! pod's; the user comes from `runAsUser`, else the image's `User` (names looked up in the
//! image's `/etc/passwd` and `/etc/group`); `runAsNonRoot` is verified against it; `fsGroup`
//! and `supplementalGroups` become supplementary groups; seccomp profiles `Localhost` are
//! read from `<data-dir>/seccomp`. Sysctls are admitted against upstream's safe set
//! ([`forbidden_sysctl`]).

use std::path::{Path, PathBuf};

use bramble_runtime::{SeccompProfile, SecurityConfig};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodSecurityContext, SeccompProfile as ApiSeccomp, SecurityContext,
};

use crate::pod_spec::{format_pod, host_network};

/// Why a container's security settings cannot be applied; `reason` is the container's
/// waiting reason (`CreateContainerConfigError` or `CreateContainerError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SecurityError {
    /// Waiting reason.
    pub reason: &'static str,
    /// Upstream's message.
    pub message: String,
}

fn config_error(message: String) -> SecurityError {
    SecurityError {
        reason: "CreateContainerConfigError",
        message,
    }
}

fn create_error(message: String) -> SecurityError {
    SecurityError {
        reason: "CreateContainerError",
        message,
    }
}

/// Upstream's namespaced sysctls that are safe to allow in any pod, with the namespace they
/// belong to.
const SAFE_SYSCTLS: &[(&str, Namespace)] = &[
    ("kernel.shm_rmid_forced", Namespace::Ipc),
    ("net.ipv4.ip_local_port_range", Namespace::Net),
    ("net.ipv4.tcp_syncookies", Namespace::Net),
    ("net.ipv4.ping_group_range", Namespace::Net),
    ("net.ipv4.ip_unprivileged_port_start", Namespace::Net),
    ("net.ipv4.ip_local_reserved_ports", Namespace::Net),
    ("net.ipv4.tcp_keepalive_time", Namespace::Net),
    ("net.ipv4.tcp_fin_timeout", Namespace::Net),
    ("net.ipv4.tcp_keepalive_intvl", Namespace::Net),
    ("net.ipv4.tcp_keepalive_probes", Namespace::Net),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Ipc,
    Net,
}

/// upstream `NormalizeName`: `net/ipv4/tcp_syncookies` -> `net.ipv4.tcp_syncookies`.
fn normalize_sysctl(name: &str) -> String {
    match (name.find('.'), name.find('/')) {
        (Some(d), Some(s)) if s < d => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        (None, Some(_)) => name.replace('/', "."),
        _ => name.to_string(),
    }
}

/// The kubelet's sysctl admission: the message of a rejection (reason `SysctlForbidden`)
/// when the pod asks for a sysctl outside the safe set or for a network one with
/// `hostNetwork` (IPC ones with `hostIPC`).
pub fn forbidden_sysctl(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let sysctls = spec.security_context.as_ref()?.sysctls.as_ref()?;
    let host_ipc = spec.host_ipc.unwrap_or(false);
    for s in sysctls {
        let name = normalize_sysctl(&s.name);
        let err = match SAFE_SYSCTLS.iter().find(|(n, _)| *n == name) {
            Some((_, Namespace::Net)) if host_network(pod) => {
                format!("{:?} not allowed with host net enabled", s.name)
            }
            Some((_, Namespace::Ipc)) if host_ipc => {
                format!("{:?} not allowed with host ipc enabled", s.name)
            }
            Some(_) => continue,
            None => format!("{:?} not allowlisted", s.name),
        };
        return Some(format!("forbidden sysctl: {err}"));
    }
    None
}

/// The image's `User`: a numeric uid, or a name to look up; and its optional group part.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageUser {
    uid: Option<u32>,
    name: Option<String>,
    group: Option<String>,
}

/// upstream `getImageUser`: an empty `User` is root.
fn image_user(user: Option<&str>) -> ImageUser {
    let user = user.unwrap_or("").trim();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g.to_string()).filter(|g| !g.is_empty())),
        None => (user, None),
    };
    if u.is_empty() {
        return ImageUser {
            uid: Some(0),
            name: None,
            group: g,
        };
    }
    match u.parse::<u32>() {
        Ok(uid) => ImageUser {
            uid: Some(uid),
            name: None,
            group: g,
        },
        Err(_) => ImageUser {
            uid: None,
            name: Some(u.to_string()),
            group: g,
        },
    }
}

/// A file of the image as the merged rootfs would show it (top layer first).
fn image_file(layers: &[PathBuf], rel: &str) -> Option<String> {
    layers
        .iter()
        .rev()
        .map(|l| l.join(rel))
        .find(|p| p.exists())
        .and_then(|p| std::fs::read_to_string(p).ok())
}

/// `(name, uid, gid)` entries of an `/etc/passwd`.
fn passwd_entries(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4)
                .then(|| Some((f[0].to_string(), f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .collect()
}

/// `(name, gid, members)` entries of an `/etc/group`.
fn group_entries(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| {
                let members = f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect();
                Some((f[0].to_string(), f[2].parse().ok()?, members))
            })?
        })
        .collect()
}

/// Container settings over pod settings (upstream `DetermineEffectiveSecurityContext`).
struct Effective<'a> {
    pod: Option<&'a PodSecurityContext>,
    c: Option<&'a SecurityContext>,
}

impl Effective<'_> {
    fn run_as_user(&self) -> Option<i64> {
        self.c
            .and_then(|c| c.run_as_user)
            .or_else(|| self.pod.and_then(|p| p.run_as_user))
    }
    fn run_as_group(&self) -> Option<i64> {
        self.c
            .and_then(|c| c.run_as_group)
            .or_else(|| self.pod.and_then(|p| p.run_as_group))
    }
    fn run_as_non_root(&self) -> bool {
        self.c
            .and_then(|c| c.run_as_non_root)
            .or_else(|| self.pod.and_then(|p| p.run_as_non_root))
            .unwrap_or(false)
    }
    fn seccomp(&self) -> Option<&ApiSeccomp> {
        self.c
            .and_then(|c| c.seccomp_profile.as_ref())
            .or_else(|| self.pod.and_then(|p| p.seccomp_profile.as_ref()))
    }
}

/// upstream `verifyRunAsNonRoot`.
fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    eff: &Effective<'_>,
    img: &ImageUser,
) -> Result<(), SecurityError> {
    if !eff.run_as_non_root() {
        return Ok(());
    }
    if let Some(uid) = eff.run_as_user() {
        if uid == 0 {
            return Err(config_error(format!(
                "container's runAsUser breaks non-root policy (pod: {:?}, container: {})",
                format_pod(pod),
                c.name
            )));
        }
        return Ok(());
    }
    match (img.uid, &img.name) {
        (Some(0), _) => Err(config_error(format!(
            "container has runAsNonRoot and image will run as root (pod: {:?}, container: {})",
            format_pod(pod),
            c.name
        ))),
        (None, Some(name)) => Err(config_error(format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root (pod: {:?}, container: {})",
            format_pod(pod),
            c.name
        ))),
        _ => Ok(()),
    }
}

fn id_of(v: i64, field: &str) -> Result<u32, SecurityError> {
    u32::try_from(v).map_err(|_| config_error(format!("{field}: {v} is not a valid id")))
}

/// Everything [`resolve`] reads.
pub struct SecurityInput<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The container.
    pub container: &'a Container,
    /// The image's `User`.
    pub image_user: Option<&'a str>,
    /// The image's layer directories, bottom first.
    pub layers: &'a [PathBuf],
    /// Where `Localhost` seccomp profiles live (`<data-dir>/seccomp`).
    pub seccomp_root: &'a Path,
}

/// The container's runtime security settings.
pub fn resolve(input: &SecurityInput<'_>) -> Result<SecurityConfig, SecurityError> {
    let (pod, c) = (input.pod, input.container);
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let eff = Effective { pod: psc, c: csc };
    let img = image_user(input.image_user);
    verify_run_as_non_root(pod, c, &eff, &img)?;

    let passwd = image_file(input.layers, "etc/passwd")
        .map(|t| passwd_entries(&t))
        .unwrap_or_default();
    let groups = image_file(input.layers, "etc/group")
        .map(|t| group_entries(&t))
        .unwrap_or_default();
    // The uid, and the passwd entry it came from (for its primary group and name).
    let (uid, entry) = match eff.run_as_user() {
        Some(u) => {
            let uid = id_of(u, "runAsUser")?;
            (uid, passwd.iter().find(|e| e.1 == uid))
        }
        None => match (img.uid, &img.name) {
            (Some(uid), _) => (uid, passwd.iter().find(|e| e.1 == uid)),
            (None, Some(name)) => {
                let e = passwd.iter().find(|e| &e.0 == name).ok_or_else(|| {
                    create_error(format!(
                        "failed to create containerd container: unable to find user {name}: no matching entries in passwd file"
                    ))
                })?;
                (e.1, Some(e))
            }
            (None, None) => (0, passwd.iter().find(|e| e.1 == 0)),
        },
    };
    let gid = match (eff.run_as_group(), &img.group) {
        (Some(g), _) => id_of(g, "runAsGroup")?,
        (None, Some(g)) if eff.run_as_user().is_none() => match g.parse::<u32>() {
            Ok(g) => g,
            Err(_) => groups.iter().find(|e| &e.0 == g).map(|e| e.1).ok_or_else(|| {
                create_error(format!(
                    "failed to create containerd container: unable to find group {g}: no matching entries in group file"
                ))
            })?,
        },
        _ => entry.map(|e| e.2).unwrap_or(0),
    };
    let mut additional_gids: Vec<u32> = Vec::new();
    if let Some((name, _, _)) = entry {
        additional_gids.extend(
            groups
                .iter()
                .filter(|g| g.2.iter().any(|m| m == name))
                .map(|g| g.1),
        );
    }
    if let Some(p) = psc {
        for g in p.supplemental_groups.as_deref().unwrap_or(&[]) {
            additional_gids.push(id_of(*g, "supplementalGroups")?);
        }
        if let Some(fs) = p.fs_group {
            additional_gids.push(id_of(fs, "fsGroup")?);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    additional_gids.retain(|g| seen.insert(*g));

    let caps = csc.and_then(|s| s.capabilities.as_ref());
    let privileged = csc.and_then(|s| s.privileged).unwrap_or(false);
    let seccomp = match eff.seccomp() {
        None => SeccompProfile::Unconfined,
        Some(p) => match p.type_.as_str() {
            "RuntimeDefault" => SeccompProfile::RuntimeDefault,
            "Unconfined" => SeccompProfile::Unconfined,
            "Localhost" => {
                let rel = p.localhost_profile.as_deref().unwrap_or("");
                let path = input.seccomp_root.join(rel);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    create_error(format!(
                        "failed to generate seccomp spec opts: cannot load seccomp profile {:?}: {e}",
                        path.display().to_string()
                    ))
                })?;
                let profile = bramble_runtime::seccomp::from_profile_json(&text).map_err(|e| {
                    create_error(format!(
                        "failed to generate seccomp spec opts: decoding seccomp profile {:?} failed: {e}",
                        path.display().to_string()
                    ))
                })?;
                SeccompProfile::Localhost { profile }
            }
            other => {
                return Err(config_error(format!(
                    "unsupported seccomp profile type {other:?}"
                )))
            }
        },
    };
    let sysctls = psc
        .and_then(|p| p.sysctls.as_ref())
        .map(|l| {
            l.iter()
                .map(|s| (normalize_sysctl(&s.name), s.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(SecurityConfig {
        uid,
        gid,
        additional_gids,
        capabilities_add: caps.and_then(|c| c.add.clone()).unwrap_or_default(),
        capabilities_drop: caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
        privileged,
        readonly_rootfs: csc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        no_new_privileges: csc.and_then(|s| s.allow_privilege_escalation) == Some(false)
            && !privileged,
        seccomp,
        sysctls,
        unmasked_proc: csc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked"),
    })
}

impl<R: bramble_runtime::ContainerRuntime + 'static> crate::pod_worker::PodWorker<R> {
    /// The kubelet's sysctl admission: a pod asking for a forbidden sysctl is rejected as
    /// upstream's (phase Failed, reason `SysctlForbidden`, a Warning event) and nothing of it
    /// runs. Returns whether it was rejected.
    pub(crate) fn reject_forbidden_sysctls(&mut self) -> bool {
        let Some(msg) = forbidden_sysctl(&self.pod) else {
            return false;
        };
        let (namespace, name, uid) = crate::pod_spec::pod_ids(&self.pod);
        let message = format!("Pod was rejected: {msg}");
        if self.pod.status.as_ref().and_then(|s| s.reason.as_deref()) != Some(SYSCTL_FORBIDDEN) {
            self.ctx.events.event(
                &self.pod,
                None,
                crate::events::EventType::Warning,
                SYSCTL_FORBIDDEN,
                msg,
            );
        }
        self.ctx.status.set(crate::status_manager::StatusUpdate {
            namespace,
            name,
            uid,
            status: serde_json::json!({
                "phase": "Failed", "reason": SYSCTL_FORBIDDEN, "message": message,
            }),
            delete: false,
        });
        true
    }
}

/// Upstream's rejection reason for a forbidden sysctl.
pub const SYSCTL_FORBIDDEN: &str = "SysctlForbidden";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn input_for<'a>(
        p: &'a Pod,
        user: Option<&'a str>,
        layers: &'a [PathBuf],
    ) -> SecurityInput<'a> {
        SecurityInput {
            pod: p,
            container: &p.spec.as_ref().unwrap().containers[0],
            image_user: user,
            layers,
            seccomp_root: Path::new("/nonexistent"),
        }
    }

    #[test]
    fn run_as_non_root_is_verified_as_upstream() {
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}]}}),
        );
        let err = resolve(&input_for(&p, None, &[])).unwrap_err();
        assert_eq!(err.reason, "CreateContainerConfigError");
        assert_eq!(
            err.message,
            r#"container has runAsNonRoot and image will run as root (pod: "p_ns(u)", container: c)"#
        );
        let err = resolve(&input_for(&p, Some("nobody"), &[])).unwrap_err();
        assert!(
            err.message.contains("image has non-numeric user (nobody)"),
            "{err}"
        );
        assert_eq!(
            resolve(&input_for(&p, Some("1000:1000"), &[])).unwrap().uid,
            1000
        );
        let p = pod(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 0},
                     "containers": [{"name": "c", "securityContext": {"runAsUser": 5}}]}}),
        );
        assert_eq!(resolve(&input_for(&p, None, &[])).unwrap().uid, 5);
    }

    #[test]
    fn users_groups_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("l1");
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::fs::write(
            layer.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            layer.join("etc/group"),
            "root:x:0:\napp:x:1002:\nextra:x:44:app\n",
        )
        .unwrap();
        let layers = [layer];
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "securityContext": {"fsGroup": 2000, "supplementalGroups": [3000],
                "sysctls": [{"name": "net/ipv4/tcp_syncookies", "value": "0"}]},
            "containers": [{"name": "c", "securityContext": {
                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}, "procMount": "Unmasked"}}]}}));
        let s = resolve(&input_for(&p, Some("app"), &layers)).unwrap();
        assert_eq!((s.uid, s.gid), (1001, 1002));
        assert_eq!(s.additional_gids, [44, 3000, 2000]);
        assert!(s.no_new_privileges && s.readonly_rootfs && s.unmasked_proc);
        assert_eq!(s.capabilities_drop, ["ALL"]);
        assert_eq!(s.seccomp, SeccompProfile::RuntimeDefault);
        assert_eq!(s.sysctls["net.ipv4.tcp_syncookies"], "0");
        let err = resolve(&input_for(&p, Some("ghost"), &layers)).unwrap_err();
        assert_eq!(err.reason, "CreateContainerError");
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}}}]}}),
        );
        let err = resolve(&input_for(&p, None, &layers)).unwrap_err();
        assert!(err.message.contains("cannot load seccomp profile"), "{err}");
    }

    #[test]
    fn sysctl_admission() {
        let p = |name: &str, host: bool| {
            pod(json!({"spec": {"hostNetwork": host, "containers": [],
                "securityContext": {"sysctls": [{"name": name, "value": "1"}]}}}))
        };
        assert_eq!(forbidden_sysctl(&p("net.ipv4.tcp_syncookies", false)), None);
        assert_eq!(forbidden_sysctl(&p("kernel.shm_rmid_forced", true)), None);
        assert_eq!(
            forbidden_sysctl(&p("kernel.msgmax", false)).as_deref(),
            Some(r#"forbidden sysctl: "kernel.msgmax" not allowlisted"#)
        );
        assert_eq!(
            forbidden_sysctl(&p("net.ipv4.tcp_syncookies", true)).as_deref(),
            Some(
                r#"forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled"#
            )
        );
        assert_eq!(
            normalize_sysctl("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
    }
}
