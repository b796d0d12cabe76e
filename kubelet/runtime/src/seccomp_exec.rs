//! The container's seccomp filter on `exec`'d processes, as runc and containerd apply it.
//!
//! libcontainer's tenant builder (its `exec`) rebuilds the spec's `linux` section without
//! `seccomp`, so a process started in a running container would run unconfined. The exec
//! shim therefore passes libcontainer an [`Executor`] that loads the container's filter in
//! the new process, after libcontainer has joined the namespaces, set the user and dropped
//! capabilities, immediately before `execve`. Loading a filter takes `CAP_SYS_ADMIN` or
//! `no_new_privs`; at that point the process only has its container's capabilities, so
//! without `CAP_SYS_ADMIN` no_new_privs is set first (runc instead loads the filter before
//! dropping capabilities, which libcontainer's tenant path gives no hook for).

use std::collections::HashMap;
use std::path::Path;

use libcontainer::oci_spec::runtime::{LinuxSeccomp, Spec};
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};

/// `CAP_SYS_ADMIN`'s bit.
const CAP_SYS_ADMIN: u32 = 21;

/// The container's filter, from its bundle's `config.json` (`None`: unconfined, e.g.
/// privileged containers).
pub fn container_seccomp(bundle: &Path) -> Result<Option<LinuxSeccomp>, String> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|e| format!("load {}: {e}", path.display()))?;
    Ok(spec.linux().as_ref().and_then(|l| l.seccomp().clone()))
}

/// libcontainer's default executor preceded by loading `seccomp`.
#[derive(Clone)]
pub struct SeccompExecutor {
    /// The filter to load.
    pub seccomp: LinuxSeccomp,
}

impl SeccompExecutor {
    fn load(&self) -> Result<(), ExecutorError> {
        let nnp = nix::sys::prctl::get_no_new_privs().unwrap_or(false);
        if !nnp && !crate::spec::has_effective_capability(CAP_SYS_ADMIN) {
            nix::sys::prctl::set_no_new_privs()
                .map_err(|e| ExecutorError::Other(format!("set no_new_privs: {e}")))?;
        }
        let notify = libcontainer::seccomp::initialize_seccomp(&self.seccomp)
            .map_err(|e| ExecutorError::Other(format!("load seccomp filter: {e}")))?;
        // Notify actions need a listener the exec path has none of; close the descriptor
        // so the process does not inherit it.
        if let Some(fd) = notify {
            let _ = nix::unistd::close(fd);
        }
        Ok(())
    }
}

impl Executor for SeccompExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        self.load()?;
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        DefaultExecutor {}.setup_envs(envs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_filter_is_read() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = crate::protocol::ContainerConfig {
            command: vec!["/bin/true".into()],
            ..Default::default()
        };
        cfg.security.seccomp = crate::protocol::SeccompProfile::RuntimeDefault;
        let spec = crate::spec::app_spec(&cfg, 1, "/k/c", false);
        std::fs::write(
            d.path().join("config.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        let s = container_seccomp(d.path()).unwrap().expect("a filter");
        assert!(!s.syscalls().as_ref().unwrap().is_empty());
        cfg.security.seccomp = crate::protocol::SeccompProfile::Unconfined;
        let spec = crate::spec::app_spec(&cfg, 1, "/k/c", false);
        std::fs::write(
            d.path().join("config.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        assert!(container_seccomp(d.path()).unwrap().is_none());
    }
}
