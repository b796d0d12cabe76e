//! Entry points the `bramble` multi-call binary dispatches to before anything else runs:
//! `bramble pause` and `bramble runtime-helper --fd N --state-root DIR --cgroup-root DIR`.
//! Also [`fork_helper`], for a kubelet that prefers forking to re-exec.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::helper::HelperConfig;
use crate::serve::serve;

/// If `args` (without argv\[0\]) name one of this crate's subcommands, runs it and returns
/// the process exit code; otherwise `None`. Call it first in `main`, before any thread or
/// async runtime starts.
pub fn dispatch(args: &[String]) -> Option<i32> {
    match args.first().map(String::as_str) {
        Some("pause") => Some(crate::pause::run()),
        Some("runtime-helper") => Some(run_helper(&args[1..])),
        _ => None,
    }
}

fn run_helper(args: &[String]) -> i32 {
    let mut fd = None;
    let mut state_root = crate::client::default_state_root();
    let mut cgroup_root = PathBuf::from("/sys/fs/cgroup");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--fd", Some(v)) => fd = v.parse::<i32>().ok(),
            ("--state-root", Some(v)) => state_root = PathBuf::from(v),
            ("--cgroup-root", Some(v)) => cgroup_root = PathBuf::from(v),
            _ => {
                eprintln!("runtime-helper: bad argument {a}");
                return 2;
            }
        }
    }
    let Some(fd) = fd.filter(|f| *f > 2) else {
        eprintln!("runtime-helper: --fd N (N > 2) is required");
        return 2;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRAMBLE_RUNTIME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libcgroups=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    // SAFETY: the parent handed us this descriptor number for our exclusive use.
    let conn = unsafe { OwnedFd::from_raw_fd(fd) };
    let cfg = HelperConfig {
        state_root,
        cgroup_root,
        pause_binary: PathBuf::from("/proc/self/exe"),
    };
    match serve(conn, cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("runtime-helper: {e}");
            1
        }
    }
}

/// Forks a helper serving `cfg` and returns the kubelet's end of its connection and its pid.
///
/// # Safety contract
/// Call only while the process is single-threaded (before building the tokio runtime or
/// spawning any thread): the child runs arbitrary code after `fork`.
pub fn fork_helper(cfg: HelperConfig) -> std::io::Result<(OwnedFd, i32)> {
    let (ours, theirs) = UnixStream::pair()?;
    // SAFETY: documented precondition: the caller is single-threaded.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let code = match serve(OwnedFd::from(theirs), cfg) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: leave the forked copy without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            Ok((OwnedFd::from(ours), child.as_raw()))
        }
    }
}
