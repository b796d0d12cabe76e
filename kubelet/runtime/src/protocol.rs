//! Messages between the kubelet (`RuntimeClient`) and the runtime helper.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the pause (sandbox) container of a pod needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// `metadata.uid` of the pod.
    pub pod_uid: String,
    /// `metadata.name`.
    pub pod_name: String,
    /// `metadata.namespace`.
    pub pod_namespace: String,
    /// Hostname set in the pod's UTS namespace.
    pub hostname: String,
    /// The pod cgroup, relative to the cgroup root (e.g. `kubepods/burstable/pod<uid>`).
    pub cgroup_parent: PathBuf,
    /// `spec.hostNetwork`: the sandbox keeps the node's network and UTS namespaces (no
    /// pod network, the node's hostname).
    #[serde(default)]
    pub host_network: bool,
    /// The pod's `/etc/resolv.conf` (kept with the sandbox and bound into every app
    /// container, as CRI runtimes do); `None` leaves the image's file.
    #[serde(default)]
    pub resolv_conf: Option<String>,
}

/// cgroup settings of one container (upstream's container-level values: v1 units, the
/// runtime converts for v2). `None` leaves a setting unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerResources {
    /// `cpu.shares`.
    pub cpu_shares: Option<u64>,
    /// CFS quota, microseconds.
    pub cpu_quota: Option<i64>,
    /// CFS period, microseconds.
    pub cpu_period: Option<u64>,
    /// Memory hard limit, bytes.
    pub memory_limit: Option<i64>,
    /// Process count limit.
    pub pids_limit: Option<i64>,
    /// `oom_score_adj` of the container's processes.
    pub oom_score_adj: Option<i32>,
}

/// One app container of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The container's name in the pod spec.
    pub name: String,
    /// Unpacked image layer directories, bottom layer first (overlayfs lower dirs).
    pub image_layers: Vec<PathBuf>,
    /// Executable and arguments (`command` + `args`, already resolved against the image).
    pub command: Vec<String>,
    /// `NAME=value` environment (a default `PATH` is added when absent).
    pub env: Vec<String>,
    /// Working directory; `/` when empty.
    pub working_dir: String,
    /// cgroup settings of the container's own cgroup.
    pub resources: ContainerResources,
    /// CRI-format log file of the container's stdout/stderr.
    pub log_path: PathBuf,
    /// Free-form labels kept with the container (the kubelet's bookkeeping).
    pub labels: BTreeMap<String, String>,
    /// Volume bind mounts, in order (a later mount may sit inside an earlier one).
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// User, capabilities, seccomp and the other security settings.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Standard input and terminal (`stdin`, `stdinOnce`, `tty` of the container spec).
    #[serde(default)]
    pub stdio: StdioConfig,
}

/// How a container's standard input and terminal are set up (CRI `stdin`, `stdin_once`,
/// `tty`); see [`crate::attach`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StdioConfig {
    /// The container reads a stdin stream its shim keeps open; without it, `/dev/null`.
    pub stdin: bool,
    /// Stdin closes (the process reads end of file) when the first attach session that
    /// sent input ends.
    pub stdin_once: bool,
    /// The process runs on a pseudo-terminal (OCI `process.terminal`) whose master the shim
    /// holds.
    pub tty: bool,
}

/// How mounts made below a volume mount propagate (CRI `MountPropagation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// `None`: `rprivate`.
    #[default]
    Private,
    /// `HostToContainer`: `rslave`.
    HostToContainer,
    /// `Bidirectional`: `rshared`.
    Bidirectional,
}

/// A host path bound into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The host file or directory.
    pub host_path: PathBuf,
    /// Where it appears in the container.
    pub container_path: String,
    /// Mounted read-only.
    #[serde(default)]
    pub readonly: bool,
    /// Propagation mode.
    #[serde(default)]
    pub propagation: Propagation,
}

/// The seccomp filter of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SeccompProfile {
    /// No filter (upstream's default when no profile is asked for).
    #[default]
    Unconfined,
    /// The runtime's default profile ([`crate::seccomp::runtime_default`]).
    RuntimeDefault,
    /// A profile read from the node (`<data-dir>/seccomp/<file>`), as an OCI
    /// `linux.seccomp` object.
    Localhost {
        /// The OCI seccomp object.
        profile: serde_json::Value,
    },
}

/// The security settings of a container (pod and container `securityContext`, resolved by
/// the kubelet against the image).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    /// Process uid.
    pub uid: u32,
    /// Process gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the runtime default set (`CAP_` names, or `ALL`).
    pub capabilities_add: Vec<String>,
    /// Capabilities dropped from it (`CAP_` names, or `ALL`).
    pub capabilities_drop: Vec<String>,
    /// Every capability, every host device, `/sys` writable, nothing masked.
    pub privileged: bool,
    /// The root filesystem is mounted read-only.
    pub readonly_rootfs: bool,
    /// `no_new_privs` (`allowPrivilegeEscalation: false`).
    pub no_new_privileges: bool,
    /// The seccomp filter.
    pub seccomp: SeccompProfile,
    /// Namespaced sysctls to set.
    pub sysctls: BTreeMap<String, String>,
    /// `procMount: Unmasked`: no masked or read-only `/proc` paths.
    pub unmasked_proc: bool,
}

/// A process to run inside a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecConfig {
    /// Executable and arguments.
    pub command: Vec<String>,
    /// Extra `NAME=value` environment.
    pub env: Vec<String>,
    /// Working directory; the container's when empty.
    pub working_dir: String,
    /// Run with a terminal (OCI `process.terminal`, `kubectl exec -t`): the Exec request's
    /// first descriptor is then a Unix socket on which the exec shim sends the terminal's
    /// master (the other two are unused); the process's stdio is the slave.
    #[serde(default)]
    pub tty: bool,
}

/// Whether a container is a pod's pause container or an app container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // one per container, mostly App; boxing buys nothing
pub enum ContainerKind {
    /// The pause container owning the pod's namespaces.
    Sandbox {
        /// Its configuration.
        config: SandboxConfig,
    },
    /// An app container joined to a sandbox.
    App {
        /// The sandbox (pause container) id.
        sandbox_id: String,
        /// Its configuration.
        config: ContainerConfig,
    },
}

/// What the runtime keeps about a container, written at creation (`meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMeta {
    /// Container id.
    pub id: String,
    /// Sandbox or app container, with the configuration it was created from.
    #[serde(flatten)]
    pub kind: ContainerKind,
    /// The container's cgroup, relative to the cgroup root.
    pub cgroup_path: PathBuf,
    /// Where its stdout/stderr go.
    pub log_path: PathBuf,
    /// RFC 3339 creation time.
    pub created_at: String,
}

/// Lifecycle state, as CRI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatusKind {
    /// Created, not started.
    Created,
    /// Running (or paused).
    Running,
    /// Exited; see [`ExitInfo`].
    Exited,
    /// The runtime cannot tell.
    Unknown,
}

/// How a container ended, written by its shim when the process exits (`exit.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code as the kubelet reports it (128 + signal for a signalled process).
    pub exit_code: i32,
    /// The terminating signal, if any.
    pub signal: Option<i32>,
    /// The cgroup recorded an OOM kill.
    pub oom_killed: bool,
    /// RFC 3339 time of exit.
    pub finished_at: String,
    /// Upstream's reason: `Completed`, `Error` or `OOMKilled`.
    pub reason: String,
}

/// The state of one container as the helper sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// Creation metadata.
    pub meta: ContainerMeta,
    /// Lifecycle state.
    pub status: ContainerStatusKind,
    /// Host pid of the container's init process, while it exists.
    pub pid: Option<i32>,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// Exit details once exited.
    pub exit: Option<ExitInfo>,
    /// Pid of the per-container shim, if it still runs.
    pub shim_pid: Option<i32>,
}

/// One container as the PLEG's relist sees it (CRI `ListContainers` without labels):
/// enough to tell that something changed, without every container's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelistEntry {
    /// Container id.
    pub id: String,
    /// The pod's uid: a sandbox's own, an app container's sandbox's.
    pub pod_uid: String,
    /// Lifecycle state.
    pub status: ContainerStatusKind,
}

/// A request to the helper. `Exec` carries three descriptors (stdin, stdout, stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // transient, one message in flight at a time
pub enum Request {
    /// Create (not start) a container or sandbox.
    Create {
        /// New container id.
        id: String,
        /// What to create.
        kind: ContainerKind,
    },
    /// Start a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Send a signal to the container's init process.
    Kill {
        /// Container id.
        id: String,
        /// Signal number.
        signal: i32,
    },
    /// Delete the container (its state, rootfs and cgroup).
    Delete {
        /// Container id.
        id: String,
        /// Kill it first when still running.
        force: bool,
    },
    /// Read one container's state.
    State {
        /// Container id.
        id: String,
    },
    /// Read every container's state.
    List,
    /// Every container's id, pod and status only ([`RelistEntry`]; the PLEG's relist).
    Relist,
    /// Read the states of one pod's sandboxes and of the app containers in them.
    ListPod {
        /// The pod's uid (its sandboxes' `pod_uid`).
        pod_uid: String,
    },
    /// Run a process in a running container with the passed stdio descriptors.
    Exec {
        /// Container id.
        id: String,
        /// The process.
        config: ExecConfig,
    },
    /// Run a process in a running container with the passed stdio descriptors, without a
    /// shim ([`crate::exec_direct`]; no terminal). The answer carries a pidfd of the process,
    /// a child of the helper's parent, which must reap it.
    ExecDirect {
        /// Container id.
        id: String,
        /// The process.
        config: ExecConfig,
    },
    /// Make the container's shim reopen its log file (after rotation).
    ReopenLog {
        /// Container id.
        id: String,
    },
    /// Connect to a running container's attach socket ([`crate::attach`]); the answer
    /// carries the connected socket.
    Attach {
        /// Container id.
        id: String,
    },
}

/// Error classes the client maps to its own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such container.
    NotFound,
    /// The id is taken.
    AlreadyExists,
    /// The request does not fit the container's state or is malformed.
    Invalid,
    /// The runtime failed.
    Internal,
}

/// The helper's answer. `ExecStarted` carries one descriptor: a pipe that yields the exec
/// result as JSON ([`ExecResult`]) when the process ends; `ExecDirectStarted` carries a pidfd.
///
/// Adjacently tagged (`{"result": ..., "body": {...}}`, the tag first): an internally tagged
/// enum makes serde buffer the whole message before decoding it, which for a relist of
/// every container was most of the kubelet's idle CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "body", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // transient, one message in flight at a time
pub enum Response {
    /// Done.
    Ok,
    /// A container was created; its init pid.
    Created {
        /// Host pid of the container init.
        pid: i32,
    },
    /// One container.
    State {
        /// Its state.
        state: ContainerState,
    },
    /// Every container.
    List {
        /// Their states.
        states: Vec<ContainerState>,
    },
    /// Every container, briefly.
    Relisted {
        /// One entry per container.
        containers: Vec<RelistEntry>,
    },
    /// Connected to the container's shim; the socket comes as the one descriptor.
    Attached,
    /// The exec process runs.
    ExecStarted {
        /// Its host pid.
        pid: i32,
    },
    /// A direct exec's process (its pidfd attached): running, or, with `error`, exited
    /// before `execve`. Either way its parent must reap it.
    ExecDirectStarted {
        /// Its host pid.
        pid: i32,
        /// Why it could not exec.
        error: Option<String>,
    },
    /// The request failed.
    Error {
        /// Class of failure.
        kind: ErrorKind,
        /// What happened.
        message: String,
    },
}

/// Written to the exec result pipe when an exec'd process ends (or could not start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// Exit code (128 + signal when signalled); `None` when it could not start.
    pub exit_code: Option<i32>,
    /// Why it could not start.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_round_trip_with_the_tag_first() {
        let r = Response::ExecDirectStarted {
            pid: 7,
            error: Some("no".into()),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.starts_with(r#"{"result":"exec_direct_started","body":"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), r);
        let ok = serde_json::to_string(&Response::Ok).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&ok).unwrap(), Response::Ok);
        let list = Response::List { states: Vec::new() };
        let text = serde_json::to_string(&list).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), list);
    }
}
