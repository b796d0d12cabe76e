//! The runtime's default seccomp profile (`seccompProfile: RuntimeDefault`), as an OCI
//! `linux.seccomp` object that libcontainer loads through libseccomp.
//!
//! It has the effect of containerd's and Docker's default profile: the system calls those
//! leave out (kernel modules, reboot, clock setting, keyrings, `mount`, namespace creation,
//! `ptrace`, BPF, ...) fail with `EPERM`, except those the container's capabilities would
//! allow anyway (`CAP_SYS_ADMIN` gives back `mount`, `unshare` and `setns`, `CAP_SYS_PTRACE`
//! gives back `ptrace`, and so on, as the upstream profile's capability-conditional rules
//! do). `clone` with a namespace flag is refused without `CAP_SYS_ADMIN`, and `clone3`
//! returns `ENOSYS` so C libraries fall back to `clone`, as upstream does.
//!
//! Unlike upstream this is a deny list over an allowing default: names the node's libseccomp
//! does not know are skipped by libcontainer, so the profile works on every kernel either way.

use serde_json::{json, Value};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// System calls refused unless the container has the capability named with them
/// (`None`: refused always).
const DENIED: &[(&str, Option<&str>)] = &[
    ("acct", Some("CAP_SYS_PACCT")),
    ("add_key", None),
    ("bpf", Some("CAP_SYS_ADMIN")),
    ("clock_adjtime", Some("CAP_SYS_TIME")),
    ("clock_settime", Some("CAP_SYS_TIME")),
    ("create_module", Some("CAP_SYS_MODULE")),
    ("delete_module", Some("CAP_SYS_MODULE")),
    ("fanotify_init", Some("CAP_SYS_ADMIN")),
    ("finit_module", Some("CAP_SYS_MODULE")),
    ("fsconfig", Some("CAP_SYS_ADMIN")),
    ("fsmount", Some("CAP_SYS_ADMIN")),
    ("fsopen", Some("CAP_SYS_ADMIN")),
    ("fspick", Some("CAP_SYS_ADMIN")),
    ("get_kernel_syms", Some("CAP_SYS_MODULE")),
    ("get_mempolicy", Some("CAP_SYS_NICE")),
    ("init_module", Some("CAP_SYS_MODULE")),
    ("ioperm", Some("CAP_SYS_RAWIO")),
    ("iopl", Some("CAP_SYS_RAWIO")),
    ("kcmp", Some("CAP_SYS_PTRACE")),
    ("kexec_file_load", Some("CAP_SYS_BOOT")),
    ("kexec_load", Some("CAP_SYS_BOOT")),
    ("keyctl", None),
    ("lookup_dcookie", Some("CAP_SYS_ADMIN")),
    ("mbind", Some("CAP_SYS_NICE")),
    ("mount", Some("CAP_SYS_ADMIN")),
    ("mount_setattr", Some("CAP_SYS_ADMIN")),
    ("move_mount", Some("CAP_SYS_ADMIN")),
    ("move_pages", Some("CAP_SYS_NICE")),
    ("name_to_handle_at", Some("CAP_SYS_ADMIN")),
    ("nfsservctl", None),
    ("open_by_handle_at", Some("CAP_DAC_READ_SEARCH")),
    ("open_tree", Some("CAP_SYS_ADMIN")),
    ("perf_event_open", Some("CAP_PERFMON")),
    ("pivot_root", Some("CAP_SYS_ADMIN")),
    ("process_vm_readv", Some("CAP_SYS_PTRACE")),
    ("process_vm_writev", Some("CAP_SYS_PTRACE")),
    ("ptrace", Some("CAP_SYS_PTRACE")),
    ("query_module", Some("CAP_SYS_MODULE")),
    ("quotactl", Some("CAP_SYS_ADMIN")),
    ("quotactl_fd", Some("CAP_SYS_ADMIN")),
    ("reboot", Some("CAP_SYS_BOOT")),
    ("request_key", None),
    ("set_mempolicy", Some("CAP_SYS_NICE")),
    ("setns", Some("CAP_SYS_ADMIN")),
    ("settimeofday", Some("CAP_SYS_TIME")),
    ("stime", Some("CAP_SYS_TIME")),
    ("swapoff", Some("CAP_SYS_ADMIN")),
    ("swapon", Some("CAP_SYS_ADMIN")),
    ("syslog", Some("CAP_SYSLOG")),
    ("sysfs", None),
    ("_sysctl", None),
    ("umount", Some("CAP_SYS_ADMIN")),
    ("umount2", Some("CAP_SYS_ADMIN")),
    ("unshare", Some("CAP_SYS_ADMIN")),
    ("uselib", None),
    ("userfaultfd", None),
    ("ustat", None),
    ("vhangup", Some("CAP_SYS_TTY_CONFIG")),
    ("vm86", None),
    ("vm86old", None),
];

/// `clone` flags that create namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET).
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The default profile for a container holding `capabilities` (`CAP_` names).
pub fn runtime_default(capabilities: &[String]) -> Value {
    let has = |c: &str| capabilities.iter().any(|h| h == c);
    let denied: Vec<&str> = DENIED
        .iter()
        .filter(|(_, cap)| !cap.is_some_and(has))
        .map(|(name, _)| *name)
        .collect();
    let mut syscalls = vec![json!({
        "names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
    })];
    if !has("CAP_SYS_ADMIN") {
        for flag in CLONE_NAMESPACE_FLAGS {
            syscalls.push(json!({
                "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
        syscalls.push(json!({
            "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
        }));
    }
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls })
}

/// Reads a Localhost profile in the Docker/OCI JSON format (`defaultAction`,
/// `architectures`, `syscalls[].names|action|errnoRet|args`) into an OCI seccomp object;
/// fields the OCI object lacks (`archMap`, `includes`, ...) are dropped.
pub fn from_profile_json(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let default = v
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or("defaultAction is missing")?;
    let mut out = json!({ "defaultAction": default });
    for key in ["defaultErrnoRet", "architectures", "flags"] {
        if let Some(x) = v.get(key) {
            out[key] = x.clone();
        }
    }
    let mut syscalls = Vec::new();
    for s in v
        .get("syscalls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let mut names: Vec<Value> = s
            .get("names")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(n) = s.get("name") {
            names.push(n.clone());
        }
        let action = s
            .get("action")
            .and_then(Value::as_str)
            .ok_or("syscalls[].action is missing")?;
        let mut rule = json!({ "names": names, "action": action });
        for key in ["errnoRet", "args"] {
            if let Some(x) = s.get(key) {
                rule[key] = x.clone();
            }
        }
        syscalls.push(rule);
    }
    out["syscalls"] = Value::Array(syscalls);
    // Validate against the OCI type libcontainer reads.
    serde_json::from_value::<libcontainer::oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::oci_spec::runtime::LinuxSeccomp;

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn capabilities_give_syscalls_back() {
        let plain = runtime_default(&["CAP_CHOWN".into()]);
        serde_json::from_value::<LinuxSeccomp>(plain.clone()).expect("valid OCI seccomp");
        assert!(names(&plain).contains(&"mount".to_string()));
        assert!(names(&plain).contains(&"ptrace".to_string()));
        assert!(plain.to_string().contains("clone3"));
        let admin = runtime_default(&["CAP_SYS_ADMIN".into()]);
        assert!(!names(&admin).contains(&"mount".to_string()));
        assert!(names(&admin).contains(&"keyctl".to_string()));
        assert!(!admin.to_string().contains("clone3"));
    }

    #[test]
    fn localhost_profiles_are_read_and_checked() {
        let p = from_profile_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        assert_eq!(p["syscalls"][0]["names"][1], "mkdirat");
        assert!(p.get("archMap").is_none());
        assert!(from_profile_json(r#"{"syscalls":[]}"#).is_err());
        assert!(from_profile_json(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).is_err());
    }
}
