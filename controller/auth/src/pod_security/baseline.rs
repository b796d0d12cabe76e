//! The baseline level's checks (upstream IDs in the returned pairs).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;

use super::{containers, join_quote, pluralize, violation, Violation};

/// Capabilities a baseline container may add (the container runtime's defaults).
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls a baseline pod may set.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// SELinux types a baseline pod may use.
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// Runs the baseline checks.
pub(super) fn check(
    spec: &PodSpec,
    annotations: &BTreeMap<String, String>,
) -> Vec<(&'static str, Violation)> {
    let cs = containers(spec);
    let psc = spec.security_context.clone().unwrap_or_default();
    let mut out = Vec::new();

    // hostNamespaces
    let mut host = Vec::new();
    for (on, name) in [
        (spec.host_network, "hostNetwork"),
        (spec.host_pid, "hostPID"),
        (spec.host_ipc, "hostIPC"),
    ] {
        if on == Some(true) {
            host.push(format!("{name}=true"));
        }
    }
    if !host.is_empty() {
        out.push((
            "hostNamespaces",
            violation("host namespaces", host.join(", ")),
        ));
    }

    // privileged
    let privileged: Vec<String> = cs
        .iter()
        .filter(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        })
        .map(|c| c.name.clone())
        .collect();
    if !privileged.is_empty() {
        out.push((
            "privileged",
            violation(
                "privileged",
                format!(
                    "{} must not set securityContext.privileged=true",
                    pluralize("container", &privileged)
                ),
            ),
        ));
    }

    // capabilities_baseline
    let mut bad_containers = Vec::new();
    let mut bad_caps: Vec<String> = Vec::new();
    for c in &cs {
        let adds = c
            .security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|c| c.add.clone())
            .unwrap_or_default();
        let mut bad = false;
        for cap in adds {
            if !DEFAULT_CAPABILITIES.contains(&cap.as_str()) {
                bad = true;
                if !bad_caps.contains(&cap) {
                    bad_caps.push(cap);
                }
            }
        }
        if bad {
            bad_containers.push(c.name.clone());
        }
    }
    if !bad_containers.is_empty() {
        bad_caps.sort();
        out.push((
            "capabilities_baseline",
            violation(
                "non-default capabilities",
                format!(
                    "{} must not include {} in securityContext.capabilities.add",
                    pluralize("container", &bad_containers),
                    join_quote(&bad_caps)
                ),
            ),
        ));
    }

    // hostPathVolumes
    let host_paths: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.clone())
        .collect();
    if !host_paths.is_empty() {
        out.push((
            "hostPathVolumes",
            violation("hostPath volumes", pluralize("volume", &host_paths)),
        ));
    }

    // hostPorts
    let mut port_containers = Vec::new();
    let mut ports: Vec<String> = Vec::new();
    for c in &cs {
        let mut uses = false;
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|p| *p != 0) {
                uses = true;
                if !ports.contains(&hp.to_string()) {
                    ports.push(hp.to_string());
                }
            }
        }
        if uses {
            port_containers.push(c.name.clone());
        }
    }
    if !port_containers.is_empty() {
        let plural = port_containers.len() > 1;
        out.push((
            "hostPorts",
            violation(
                "hostPort",
                format!(
                    "{} {} {} {}",
                    pluralize("container", &port_containers),
                    if plural { "use" } else { "uses" },
                    if ports.len() > 1 {
                        "hostPorts"
                    } else {
                        "hostPort"
                    },
                    ports.join(", ")
                ),
            ),
        ));
    }

    // appArmorProfile
    let allowed_apparmor =
        |v: &str| v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
    let mut apparmor: Vec<String> = annotations
        .iter()
        .filter(|(k, v)| k.starts_with(APPARMOR_ANNOTATION) && !allowed_apparmor(v))
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let unconfined = |p: &Option<k8s_openapi::api::core::v1::AppArmorProfile>| {
        p.as_ref().is_some_and(|p| p.type_ == "Unconfined")
    };
    if unconfined(&psc.app_armor_profile) {
        apparmor.push("pod \"Unconfined\"".into());
    }
    for c in &cs {
        if unconfined(
            &c.security_context
                .as_ref()
                .and_then(|s| s.app_armor_profile.clone()),
        ) {
            apparmor.push(format!("container {:?} \"Unconfined\"", c.name));
        }
    }
    if !apparmor.is_empty() {
        let reason = if apparmor.len() > 1 {
            "forbidden AppArmor profiles"
        } else {
            "forbidden AppArmor profile"
        };
        out.push(("appArmorProfile", violation(reason, apparmor.join(", "))));
    }

    // seLinuxOptions
    let bad_selinux = |o: &k8s_openapi::api::core::v1::SELinuxOptions| {
        let mut why = Vec::new();
        if let Some(t) = o.type_.as_deref().filter(|t| !SELINUX_TYPES.contains(t)) {
            why.push(format!("type {t:?}"));
        }
        if let Some(u) = o.user.as_deref().filter(|u| !u.is_empty()) {
            why.push(format!("user {u:?}"));
        }
        if let Some(r) = o.role.as_deref().filter(|r| !r.is_empty()) {
            why.push(format!("role {r:?}"));
        }
        why
    };
    let mut selinux = Vec::new();
    if let Some(o) = &psc.se_linux_options {
        let why = bad_selinux(o);
        if !why.is_empty() {
            selinux.push(format!(
                "pod set forbidden securityContext.seLinuxOptions: {}",
                why.join("; ")
            ));
        }
    }
    for c in &cs {
        if let Some(o) = c
            .security_context
            .as_ref()
            .and_then(|s| s.se_linux_options.as_ref())
        {
            let why = bad_selinux(o);
            if !why.is_empty() {
                selinux.push(format!(
                    "container {:?} set forbidden securityContext.seLinuxOptions: {}",
                    c.name,
                    why.join("; ")
                ));
            }
        }
    }
    if !selinux.is_empty() {
        out.push((
            "seLinuxOptions",
            violation("seLinuxOptions", selinux.join("; ")),
        ));
    }

    // procMount
    let unmasked: Vec<String> = cs
        .iter()
        .filter(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.proc_mount.as_deref())
                .is_some_and(|m| m != "Default")
        })
        .map(|c| c.name.clone())
        .collect();
    if !unmasked.is_empty() {
        out.push((
            "procMount",
            violation(
                "procMount",
                format!(
                    "{} must not set securityContext.procMount to \"Unmasked\"",
                    pluralize("container", &unmasked)
                ),
            ),
        ));
    }

    // seccompProfile_baseline
    let mut seccomp = Vec::new();
    let is_unconfined = |p: Option<&k8s_openapi::api::core::v1::SeccompProfile>| {
        p.is_some_and(|p| p.type_ == "Unconfined")
    };
    if is_unconfined(psc.seccomp_profile.as_ref()) {
        seccomp
            .push("pod must not set securityContext.seccompProfile.type to \"Unconfined\"".into());
    }
    let bad: Vec<String> = cs
        .iter()
        .filter(|c| {
            is_unconfined(
                c.security_context
                    .as_ref()
                    .and_then(|s| s.seccomp_profile.as_ref()),
            )
        })
        .map(|c| c.name.clone())
        .collect();
    if !bad.is_empty() {
        seccomp.push(format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            pluralize("container", &bad)
        ));
    }
    if !seccomp.is_empty() {
        out.push((
            "seccompProfile_baseline",
            violation("seccompProfile", seccomp.join("; ")),
        ));
    }

    // sysctls
    let sysctls: Vec<String> = psc
        .sysctls
        .iter()
        .flatten()
        .filter(|s| !SAFE_SYSCTLS.contains(&s.name.as_str()))
        .map(|s| s.name.clone())
        .collect();
    if !sysctls.is_empty() {
        out.push((
            "sysctls",
            violation("forbidden sysctls", sysctls.join(", ")),
        ));
    }
    out
}
