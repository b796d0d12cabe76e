//! Bramble's container runtime: pods and containers through youki's `libcontainer`, with no
//! runc and no containerd.
//!
//! # Why a helper process
//!
//! libcontainer creates containers with `fork`/`clone` and runs non-trivial code in the
//! children (allocation, file I/O, locks) before `exec`. In a multi-threaded process (the
//! kubelet's tokio runtime) a forked child inherits locks held by threads that do not exist
//! in it; youki issues 3011 and 3027 and runwasi 357 are the resulting undefined behaviour.
//! Bramble never calls libcontainer from a threaded process:
//!
//! 1. The kubelet starts a **runtime helper** ([`serve::serve`]): either by re-exec of its
//!    own binary (`bramble runtime-helper --fd 3`, [`RuntimeClient::spawn_helper`]; safe at any
//!    time, it is a plain `fork`+`exec`) or by [`fork_helper`] before the tokio runtime exists.
//!    The helper is single-threaded and handles one request at a time.
//! 2. The kubelet talks to it over a Unix socket pair with length-prefixed JSON
//!    ([`protocol`], [`frame`]); exec stdio travels as `SCM_RIGHTS` descriptors.
//! 3. For each container the helper double-forks a **shim** ([`shim`]) that calls
//!    libcontainer's `build`, so the container's init is the shim's child. The shim writes
//!    the container's output to a CRI-format log file ([`logs`]) and, when it exits, its exit
//!    code and OOM kill into `exit.json`. It also holds the container's stdin (a pipe, or a
//!    pseudo-terminal's master with `tty`) and serves `kubectl attach` on a Unix socket in
//!    the bundle ([`attach`]). The shim is `setsid` and orphaned at birth, so
//!    containers outlive the helper and the kubelet; a restarted kubelet spawns a new helper
//!    that reads everything back from the [`state`] directory.
//!
//! The shim never execs: it is a copy-on-write image of the helper, so its private memory is
//! what it touches (tens of KiB), well under the 1 MiB per-container budget.
//!
//! # Pods
//!
//! A sandbox is a pause container (`bramble pause`, [`pause`]) in a read-only rootfs holding
//! only the `bramble` binary; it owns new network, IPC and UTS namespaces. App containers get
//! an overlayfs rootfs over their image layers, join the pause container's network, IPC and
//! UTS namespaces by `/proc/<pid>/ns/*` and have their own mount and PID namespaces.

pub mod attach;
pub mod client;
pub mod console;
mod error;
mod exec_child;
pub mod exec_direct;
pub mod exec_target;
pub mod frame;
pub mod helper;
pub mod logs;
pub mod multicall;
pub mod pause;
pub mod protocol;
pub mod rootfs;
mod runtime;
pub mod seccomp;
pub mod seccomp_exec;
pub mod serve;
pub mod shim;
mod shim_io;
pub mod spec;
pub mod state;
mod state_cache;

pub use client::RuntimeClient;
pub use error::RuntimeError;
pub use helper::HelperConfig;
pub use multicall::{dispatch, fork_helper};
pub use protocol::{
    ContainerConfig, ContainerKind, ContainerMeta, ContainerResources, ContainerState,
    ContainerStatusKind, ExecConfig, ExitInfo, Mount, Propagation, RelistEntry, SandboxConfig,
    SeccompProfile, SecurityConfig, StdioConfig,
};
pub use runtime::{ContainerRuntime, ExecOutput, ExecProcess, SandboxStatus};
pub use serve::serve;
