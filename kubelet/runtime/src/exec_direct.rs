//! Exec without a shim, for `exec_sync` (exec probes, preStop hooks): the helper starts one
//! process ([`crate::exec_child`], sharing the helper's memory until `execve`) that joins
//! the running container (its cgroups and the namespaces of its init, kept per container in
//! an [`ExecTarget`], the container's user, groups, rlimits, no_new_privs,
//! capabilities and seccomp filter, in the order libcontainer's init applies them) and
//! `execve`s the command. No shim, no libcontainer intermediate processes: one process per
//! exec, where the tenant path of [`crate::shim::launch_exec`] takes four (two forks of the
//! helper, libcontainer's intermediate and init) plus a `process.json` round trip on disk.
//!
//! The process is cloned with `CLONE_PARENT`, so its parent is the kubelet (the helper's
//! parent): the kubelet waits for it through the pidfd the helper sends back
//! ([`crate::ExecProcess::wait`]); the single-threaded helper never has to reap it. The PID
//! namespace is entered by setting the helper's namespace for children around the clone
//! (`setns(CLONE_NEWPID)` only affects children), then restoring it.
//!
//! Terminals (`kubectl exec -t`) keep the shim path.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libcontainer::oci_spec::runtime::{Process, Spec};
use nix::sched::CloneFlags;

use crate::exec_child::Prepared;
use crate::exec_target::ExecTarget;

use crate::protocol::ExecConfig;

/// Errors of starting a direct exec (before the child exists).
#[derive(Debug, thiserror::Error)]
pub enum DirectExecError {
    /// A system call in the helper failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was attempted.
        op: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Reading the container's namespaces, cgroups or spec failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The container's `config.json` is unusable.
    #[error("{0}")]
    Spec(String),
}

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> DirectExecError {
    move |source| DirectExecError::Sys { op, source }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DirectExecError + '_ {
    move |source| DirectExecError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A started direct exec: its host pid, a pidfd, and why it failed before `execve` (then
/// it has exited and the kubelet must still reap it).
pub struct Started {
    /// Host pid.
    pub pid: i32,
    /// pidfd of the process (the kubelet waits on it).
    pub pidfd: OwnedFd,
    /// Set when joining the container or `execve` failed.
    pub error: Option<String>,
}

/// `base` with `extra`'s `NAME=value` entries replacing those of the same name.
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let name = |kv: &str| kv.split_once('=').map_or(kv, |(k, _)| k).to_string();
    let mut env: Vec<String> = base.to_vec();
    for kv in extra {
        let key = name(kv);
        env.retain(|e| name(e) != key);
        env.push(kv.clone());
    }
    env
}

/// The exec'd process: the container's own (user, capabilities, rlimits...) with the exec's
/// command, environment and working directory, as containerd's CRI exec builds it.
pub fn exec_process(spec: &Spec, cfg: &ExecConfig) -> Result<Process, DirectExecError> {
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| DirectExecError::Spec("config.json has no process".into()))?;
    let env = merge_env(p.env().as_deref().unwrap_or(&[]), &cfg.env);
    p.set_args(Some(cfg.command.clone()))
        .set_env(Some(env))
        .set_terminal(Some(cfg.tty));
    if !cfg.working_dir.is_empty() {
        p.set_cwd(PathBuf::from(&cfg.working_dir));
    }
    Ok(p)
}

/// The container's OCI spec from its bundle (it does not change after creation, so the
/// helper keeps it for the next exec).
pub fn load_spec(bundle: &Path) -> Result<Spec, DirectExecError> {
    Spec::load(bundle.join("config.json")).map_err(|e| DirectExecError::Spec(format!("{e}")))
}

/// Runs `cfg` in the running container `target` (its init's namespaces and cgroups) whose
/// spec is `spec`, with `stdio` as its standard streams. Call only in the single-threaded
/// helper.
pub fn spawn(
    spec: &Spec,
    target: &ExecTarget,
    cfg: &ExecConfig,
    stdio: [OwnedFd; 3],
) -> Result<Started, DirectExecError> {
    if cfg.command.is_empty() {
        return Err(DirectExecError::Spec("exec needs a command".into()));
    }
    let process = exec_process(spec, cfg)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", target.home()));
    }
    let args = process.args().clone().unwrap_or_default();
    let name = args[0].clone();
    let candidates = candidates(&name, &env)
        .iter()
        .map(|c| cstring(c.as_os_str().as_encoded_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let argv = args
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = cstring(process.cwd().as_os_str().as_encoded_bytes())?;
    let prepared = Prepared::new(
        process,
        seccomp,
        &target.namespaces,
        &target.cgroup_procs,
        cwd,
        name,
        candidates,
        argv,
        envp,
    );
    let raw = [
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];

    let (pid, error) = if let Some(ns) = &target.pidns {
        let own = own_pidns()?;
        nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWPID).map_err(sys("setns pid"))?;
        let started = crate::exec_child::spawn(&prepared, raw);
        // The helper's own PID namespace is an ancestor of the container's: always allowed.
        let _ = nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWPID);
        started
    } else {
        crate::exec_child::spawn(&prepared, raw)
    }
    .map_err(sys("clone"))?;
    drop((stdio, prepared));
    // SAFETY: pidfd_open returns a new descriptor or -1. The child cannot have been reaped
    // (its parent, the kubelet, does not know it yet), so `pid` is still this process.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    if fd < 0 {
        return Err(DirectExecError::Sys {
            op: "pidfd_open",
            source: nix::Error::last(),
        });
    }
    // SAFETY: a fresh descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Started { pid, pidfd, error })
}

/// The helper's own PID namespace, opened once (the namespace of its children is set back
/// to it after each clone into a container's).
fn own_pidns() -> Result<&'static OwnedFd, DirectExecError> {
    static OWN: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = OWN.get() {
        return Ok(fd);
    }
    let path = Path::new("/proc/self/ns/pid");
    let f = std::fs::File::open(path).map_err(io(path))?;
    Ok(OWN.get_or_init(|| OwnedFd::from(f)))
}

pub(crate) fn cstring(b: &[u8]) -> Result<CString, DirectExecError> {
    CString::new(b).map_err(|_| {
        DirectExecError::Spec(format!(
            "{:?} contains a NUL byte",
            String::from_utf8_lossy(b)
        ))
    })
}

/// The paths `execve` tries for `name`, as `execvp`: `name` itself when it has a `/`, else
/// each entry of the process's `PATH` (an empty entry is the working directory).
fn candidates(name: &str, env: &[String]) -> Vec<PathBuf> {
    if name.contains('/') {
        return vec![PathBuf::from(name)];
    }
    let dirs = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/bin:/bin");
    dirs.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_env_replaces_the_containers_by_name() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let extra = vec!["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(&base, &extra), vec!["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn commands_are_looked_up_in_path() {
        let env = vec!["PATH=/nonexistent::/bin".to_string()];
        let want: Vec<PathBuf> = ["/nonexistent/sh", "./sh", "/bin/sh"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(candidates("sh", &env), want);
        assert_eq!(candidates("/x/y", &env), vec![PathBuf::from("/x/y")]);
        assert_eq!(
            candidates("sh", &[]),
            vec![PathBuf::from("/usr/bin/sh"), PathBuf::from("/bin/sh")]
        );
    }
}
