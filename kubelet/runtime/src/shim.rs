//! Per-container shims, forked from the single-threaded helper.
//!
//! A container shim is the parent of one container's init process for its whole life: it calls
//! libcontainer's `build` (so the init, cloned with `CLONE_PARENT`, is its child), turns the
//! container's stdout/stderr pipes (or its terminal's master) into CRI log lines, holds its
//! stdin, serves attach sessions on the bundle's attach socket ([`crate::attach`]), and when
//! the process exits writes
//! `exit.json` (exit code, signal, OOM kill) into the bundle. It is double-forked and `setsid`,
//! so neither the helper nor the kubelet is its parent: containers and their exit codes outlive
//! both. It never execs: it is a copy-on-write image of the helper that touches little memory.
//!
//! An exec shim does the same for one `exec` process: libcontainer's tenant builder, wait,
//! then the [`ExecResult`] JSON written to a pipe whose read end went back to the client.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, setsid, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use crate::attach::{Hub, Input};
use crate::console::{send_fd, ConsoleSocket};
use crate::logs::{CriLogWriter, Stream};
use crate::protocol::{ExecConfig, ExecResult, ExitInfo, StdioConfig};
use crate::shim_io::{pump_until_exit, ContainerStdio};
use crate::state::{now_rfc3339, write_json, write_text};

/// Errors of launching a shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A system call in the helper failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was attempted.
        op: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The shim reported that libcontainer could not create the container or process.
    #[error("{0}")]
    Create(String),
    /// The shim died without reporting.
    #[error("shim exited without a report")]
    NoReport,
}

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
    move |source| ShimError::Sys { op, source }
}

/// What a container shim needs.
#[derive(Debug, Clone)]
pub struct ContainerShim {
    /// Container id.
    pub id: String,
    /// Bundle directory (config.json, exit.json, shim.pid).
    pub bundle: PathBuf,
    /// libcontainer's state root.
    pub libcontainer_root: PathBuf,
    /// CRI log file.
    pub log_path: PathBuf,
    /// cgroupfs root, for OOM detection.
    pub cgroup_root: PathBuf,
    /// The container's cgroup relative to the root.
    pub cgroup_path: PathBuf,
    /// Standard input and terminal ([`crate::attach`]).
    pub stdio: StdioConfig,
}

#[derive(Serialize, Deserialize)]
struct Report {
    pid: Option<i32>,
    error: Option<String>,
}

/// Closes every descriptor above 2 except `keep` (a forked child must not hold the helper's
/// socket, or the kubelet would never see the helper go away).
fn close_fds_except(keep: &[RawFd]) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing descriptors this fresh child inherited and will not use.
            unsafe { libc::close(fd) };
        }
    }
}

/// Points stdin/stdout at /dev/null and stderr (where the helper's tracing goes) at
/// `stderr_file`, or /dev/null.
fn redirect_stdio(stderr_file: Option<&Path>) {
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(f.as_raw_fd(), target) };
        }
    }
    if let Some(p) = stderr_file {
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            // SAFETY: as above.
            unsafe { libc::dup2(f.as_raw_fd(), 2) };
        }
    }
}

fn set_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Forks `A` (which `setsid`s, forks the real child `B` and exits) and waits for `A`, so `B`
/// is orphaned at once and adopted by init, never by the helper or the kubelet.
/// Must only be called from a single-threaded process (the helper).
fn double_fork(child: impl FnOnce() -> i32) -> Result<(), ShimError> {
    // SAFETY: the helper is single-threaded, so the child may run arbitrary code.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            let _ = setsid();
            // SAFETY: still single-threaded.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let code = child();
                    // SAFETY: leave without running the helper's destructors or atexit.
                    unsafe { libc::_exit(code) }
                }
                // SAFETY: as above.
                _ => unsafe { libc::_exit(0) },
            }
        }
        ForkResult::Parent { child } => {
            waitpid(child, None).map_err(sys("waitpid"))?;
            Ok(())
        }
    }
}

/// Reads the one-line report. Not to end of file: the container's init inherits the write
/// end until it execs at `start`, so EOF would only come after the helper answered.
fn read_report(r: std::fs::File) -> Result<Report, ShimError> {
    let mut line = String::new();
    let _ = std::io::BufReader::new(r).read_line(&mut line);
    serde_json::from_str(line.trim()).map_err(|_| ShimError::NoReport)
}

fn send_report(fd: OwnedFd, report: &Report) {
    let mut f = std::fs::File::from(fd);
    let mut line = serde_json::to_vec(report).unwrap_or_default();
    line.push(b'\n');
    let _ = f.write_all(&line);
}

/// Starts a container shim; returns the container init's host pid once libcontainer has
/// created it (state `created`, waiting for `start`).
pub fn launch_container(shim: &ContainerShim) -> Result<i32, ShimError> {
    let (rep_r, rep_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let rep_w_raw = rep_w.as_raw_fd();
    double_fork(|| {
        close_fds_except(&[rep_w_raw]);
        // SAFETY: rep_w_raw is kept open by close_fds_except and owned here alone.
        let rep = unsafe { OwnedFd::from_raw_fd(rep_w_raw) };
        container_shim_main(shim, rep)
    })?;
    drop(rep_w);
    let report = read_report(std::fs::File::from(rep_r))?;
    match (report.pid, report.error) {
        (Some(pid), _) => Ok(pid),
        (None, Some(e)) => Err(ShimError::Create(e)),
        (None, None) => Err(ShimError::NoReport),
    }
}

/// An error with its whole `source()` chain, for reports that cross a process boundary.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    // SAFETY: a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn oom_kills(cgroup_root: &Path, path: &Path) -> Option<u64> {
    let m = bramble_cgroups::manager_for(cgroup_root).ok()?;
    m.stats(path).ok()?.oom_kills
}

fn container_shim_main(shim: &ContainerShim, report: OwnedFd) -> i32 {
    redirect_stdio(Some(&shim.bundle.join("shim.log")));
    set_subreaper();
    let _ = write_text(
        &shim.bundle.join("shim.pid"),
        &std::process::id().to_string(),
    );
    let fail = |report: OwnedFd, msg: String| {
        send_report(
            report,
            &Report {
                pid: None,
                error: Some(msg),
            },
        );
        1
    };
    let mut log = match CriLogWriter::open(&shim.log_path) {
        Ok(l) => l,
        Err(e) => return fail(report, format!("open log {}: {e}", shim.log_path.display())),
    };
    let stdio = match ContainerStdio::new(shim.stdio) {
        Ok(s) => s,
        Err(e) => return fail(report, format!("container {} stdio: {e}", shim.id)),
    };
    let parent_cgroup = shim
        .cgroup_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let parent_ooms_before = oom_kills(&shim.cgroup_root, &parent_cgroup).unwrap_or(0);
    let ContainerStdio {
        child,
        console,
        outputs,
        input,
    } = stdio;
    let [i, o, e] = child;
    let built = ContainerBuilder::new(shim.id.clone(), SyscallType::default())
        .with_root_path(&shim.libcontainer_root)
        .and_then(|b| {
            b.with_stdin(i)
                .with_stdout(o)
                .with_stderr(e)
                .with_console_socket(console.as_ref().map(|c| c.path().to_path_buf()))
                .as_init(&shim.bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
        });
    let pid = match built.map(|c| c.pid()) {
        Ok(Some(pid)) => pid.as_raw(),
        Ok(None) => return fail(report, "libcontainer returned no pid".into()),
        Err(e) => {
            return fail(
                report,
                format!("create container {}: {}", shim.id, error_chain(&e)),
            )
        }
    };
    let kill = || {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    };
    // A terminal's master arrives on the console socket; it is both output and input.
    let (outputs, input) = match console {
        Some(console) => match console.receive_master(TERMINAL_WAIT) {
            Ok(master) => {
                let master = Rc::new(master);
                (
                    vec![(master.clone(), Stream::Stdout)],
                    Some(Input::Tty(master)),
                )
            }
            Err(err) => {
                kill();
                return fail(report, format!("container {} terminal: {err}", shim.id));
            }
        },
        None => (outputs, input.map(Input::Pipe)),
    };
    let mut hub = match Hub::bind(&shim.bundle, input, shim.stdio) {
        Ok(h) => h,
        Err(err) => {
            kill();
            return fail(report, format!("container {}: {err}", shim.id));
        }
    };
    let pidfd = pidfd_open(pid);
    send_report(
        report,
        &Report {
            pid: Some(pid),
            error: None,
        },
    );

    let status = pump_until_exit(&mut log, outputs, &mut hub, pid, pidfd);
    let own_ooms = oom_kills(&shim.cgroup_root, &shim.cgroup_path).unwrap_or(0);
    let parent_ooms = oom_kills(&shim.cgroup_root, &parent_cgroup).unwrap_or(0);
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
        _ => (255, None),
    };
    // v1 counts an OOM kill in the cgroup whose limit was hit: the container's own, or the
    // pod's (then the container must have died of SIGKILL).
    let oom_killed =
        own_ooms > 0 || (signal == Some(libc::SIGKILL) && parent_ooms > parent_ooms_before);
    let reason = if oom_killed {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let info = ExitInfo {
        exit_code,
        signal,
        oom_killed,
        finished_at: now_rfc3339(),
        reason: reason.to_string(),
    };
    let _ = write_json(&shim.bundle.join("exit.json"), &info);
    // After exit.json: a client slow to take the last output does not delay the exit report.
    hub.finish(Instant::now() + FLUSH_AFTER_EXIT);
    0
}

/// How long a terminal's master may take to arrive on the console socket.
const TERMINAL_WAIT: Duration = Duration::from_secs(10);
/// How long attached clients get to take the last output after the container exited.
const FLUSH_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Starts an exec shim running `cfg` in container `id` with the given stdio. Returns the
/// process's host pid and the read end of its result pipe.
pub fn launch_exec(
    libcontainer_root: &Path,
    bundle: &Path,
    id: &str,
    cfg: &ExecConfig,
    stdio: [OwnedFd; 3],
) -> Result<(i32, OwnedFd), ShimError> {
    let (rep_r, rep_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let (res_r, res_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let raws = [
        rep_w.as_raw_fd(),
        res_w.as_raw_fd(),
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];
    double_fork(|| {
        close_fds_except(&raws);
        // SAFETY: each raw descriptor survived close_fds_except and is owned here alone.
        let [rep, res, i, o, e] = raws.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        exec_shim_main(libcontainer_root, bundle, id, cfg, rep, res, [i, o, e])
    })?;
    drop((rep_w, res_w, stdio));
    let report = read_report(std::fs::File::from(rep_r))?;
    match (report.pid, report.error) {
        (Some(pid), _) => Ok((pid, res_r)),
        (None, Some(e)) => Err(ShimError::Create(e)),
        (None, None) => Err(ShimError::NoReport),
    }
}

/// The exec process as a whole OCI process (`process.json`): the container's own process
/// (user, groups, capabilities, no_new_privs, rlimits, ...) with the exec's args, environment
/// and working directory, as containerd's CRI exec does. Without it libcontainer's tenant
/// builder would run the process as root with no supplementary groups.
fn exec_process(bundle: &Path, cfg: &ExecConfig) -> Result<PathBuf, String> {
    let config = std::fs::read(bundle.join("config.json"))
        .map_err(|e| format!("read {}/config.json: {e}", bundle.display()))?;
    let spec: serde_json::Value =
        serde_json::from_slice(&config).map_err(|e| format!("config.json: {e}"))?;
    let mut process = spec["process"].clone();
    let mut env: Vec<String> = process["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for kv in &cfg.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    process["args"] = serde_json::json!(cfg.command);
    process["env"] = serde_json::json!(env);
    process["terminal"] = serde_json::Value::Bool(cfg.tty);
    if !cfg.working_dir.is_empty() {
        process["cwd"] = serde_json::json!(cfg.working_dir);
    }
    let path = bundle.join(format!("exec-{}.json", std::process::id()));
    write_json(&path, &process).map_err(|e| e.to_string())?;
    Ok(path)
}

fn exec_shim_main(
    root: &Path,
    bundle: &Path,
    id: &str,
    cfg: &ExecConfig,
    report: OwnedFd,
    result: OwnedFd,
    stdio: [OwnedFd; 3],
) -> i32 {
    redirect_stdio(None);
    set_subreaper();
    let fail = |report: OwnedFd, msg: String| {
        send_report(
            report,
            &Report {
                pid: None,
                error: Some(msg),
            },
        );
        1
    };
    let env: HashMap<String, String> = cfg
        .env
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let [i, o, e] = stdio;
    // With a terminal, `i` is the socket the master goes back on.
    let process = match exec_process(bundle, cfg) {
        Ok(p) => Some(p),
        Err(err) => return fail(report, format!("exec in {id}: {err}")),
    };
    let (console, tty_sock, [i, o, e]) = if cfg.tty {
        let console = match ConsoleSocket::bind() {
            Ok(c) => c,
            Err(err) => return fail(report, format!("exec in {id}: {err}")),
        };
        let null = || std::fs::File::open("/dev/null").map(OwnedFd::from);
        match (null(), null(), null()) {
            (Ok(a), Ok(b), Ok(c)) => (Some(console), Some(i), [a, b, c]),
            _ => return fail(report, "open /dev/null failed".into()),
        }
    } else {
        (None, None, [i, o, e])
    };
    let cwd = (!cfg.working_dir.is_empty()).then(|| PathBuf::from(&cfg.working_dir));
    let seccomp = match crate::seccomp_exec::container_seccomp(bundle) {
        Ok(s) => s,
        Err(err) => return fail(report, format!("exec in {id}: {err}")),
    };
    let built = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(root)
        .map(|b| match seccomp {
            Some(seccomp) => b.with_executor(crate::seccomp_exec::SeccompExecutor { seccomp }),
            None => b,
        })
        .and_then(|b| {
            b.with_stdin(i)
                .with_stdout(o)
                .with_stderr(e)
                .with_console_socket(console.as_ref().map(|c| c.path().to_path_buf()))
                .as_tenant()
                .with_process(process.clone())
                .with_container_args(cfg.command.clone())
                .with_env(env)
                .with_cwd(cwd)
                .with_detach(true)
                .build()
        });
    if let Some(p) = &process {
        let _ = std::fs::remove_file(p);
    }
    let pid = match built {
        Ok(pid) => pid,
        Err(err) => return fail(report, format!("exec in {id}: {}", error_chain(&err))),
    };
    if let (Some(console), Some(sock)) = (&console, &tty_sock) {
        let sent = console
            .receive_master(Duration::from_secs(10))
            .and_then(|master| send_fd(sock.as_raw_fd(), master.as_raw_fd()));
        if let Err(err) = sent {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            return fail(report, format!("exec in {id}: {err}"));
        }
    }
    drop((console, tty_sock));
    send_report(
        report,
        &Report {
            pid: Some(pid.as_raw()),
            error: None,
        },
    );
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => break Some(c),
            Ok(WaitStatus::Signaled(_, s, _)) => break Some(128 + s as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(_) => break None,
        }
    };
    let res = ExecResult {
        exit_code: code,
        error: code.is_none().then(|| "lost the exec process".to_string()),
    };
    let mut f = std::fs::File::from(result);
    let _ = f.write_all(&serde_json::to_vec(&res).unwrap_or_default());
    0
}
