//! The process a direct exec starts ([`crate::exec_direct`]), and how it is started.
//!
//! The helper starts it with `clone(CLONE_VM | CLONE_VFORK)` on a stack of its own, as
//! `posix_spawn` does: the child runs in the helper's memory, and the helper is suspended
//! until the child has called `execve` (or exited). A plain `fork` copied the helper's page
//! tables for every exec probe, and write-protected all its memory, so the helper then took
//! a copy-on-write fault on every page it wrote afterwards: together most of the helper's
//! CPU time with exec probes (perf, 30 pods with two exec probes each at one second).
//!
//! Sharing memory sets the rules of the child's code: everything it needs is prepared by
//! the helper before the clone ([`Prepared`]), the child reads it only by reference and
//! frees nothing it did not allocate itself, and whatever it allocates (libcontainer's
//! capability and seccomp helpers, an error message) it frees before `execve` or `_exit`.
//! The helper is single-threaded and suspended meanwhile, so no allocator lock is held.
//! All signals are blocked around the clone; the child restores the helper's mask right
//! before `execve`.
//!
//! Why the child gave up it writes into a buffer of the shared memory before `_exit`, as
//! glibc's `posix_spawn` reports its child's errno: the helper reads it when the clone
//! returns. (A report pipe closed by `execve` made the helper wait a second time per exec:
//! the vfork wait ends when `execve` drops the helper's memory, a moment before the
//! close-on-exec descriptors are closed.)

use std::ffi::{c_void, CStr, CString};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use libcontainer::oci_spec::runtime::{LinuxSeccomp, Process};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};

/// What the child needs, all allocated by the helper before the clone.
pub(crate) struct Prepared<'a> {
    /// The exec's process (user, rlimits, capabilities, cwd).
    process: Process,
    /// The container's seccomp filter.
    seccomp: Option<LinuxSeccomp>,
    /// Namespaces to join, in order (the mount namespace last).
    namespaces: &'a [(OwnedFd, CloneFlags)],
    /// The `cgroup.procs` files of the container's cgroups.
    cgroup_procs: &'a [CString],
    /// `oom_score_adj` to write, if the process sets one.
    oom_score_adj: Option<String>,
    /// The working directory.
    cwd: CString,
    /// Supplementary groups.
    gids: Vec<Gid>,
    /// The command as given (for messages).
    name: String,
    /// Whether `name` is looked up in `PATH` (it has no `/`).
    search: bool,
    /// The paths `execve` tries, in order (`PATH` entries joined with `name`, or `name`).
    candidates: Vec<CString>,
    /// `argv`, and a NULL-terminated array pointing into it.
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// `envp`, and a NULL-terminated array pointing into it.
    envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
}

fn pointers(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

impl<'a> Prepared<'a> {
    /// Builds the `argv`/`envp` pointer arrays once every field is set.
    fn finish(mut self) -> Self {
        self.argv_ptrs = pointers(&self.argv);
        self.envp_ptrs = pointers(&self.envp);
        self
    }

    /// The exec of `argv` (trying `candidates` in turn) with `envp`, in the container whose
    /// namespaces and cgroups are given, as `process` (its user, rlimits, capabilities).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        process: Process,
        seccomp: Option<LinuxSeccomp>,
        namespaces: &'a [(OwnedFd, CloneFlags)],
        cgroup_procs: &'a [CString],
        cwd: CString,
        name: String,
        candidates: Vec<CString>,
        argv: Vec<CString>,
        envp: Vec<CString>,
    ) -> Self {
        let oom_score_adj = process.oom_score_adj().map(|a| a.to_string());
        let gids = process
            .user()
            .additional_gids()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|g| Gid::from_raw(*g))
            .collect();
        Prepared {
            process,
            seccomp,
            namespaces,
            cgroup_procs,
            oom_score_adj,
            cwd,
            gids,
            search: !name.contains('/'),
            name,
            candidates,
            argv,
            argv_ptrs: Vec::new(),
            envp,
            envp_ptrs: Vec::new(),
        }
        .finish()
    }
}

/// Longest report of a failed exec kept (longer ones are cut).
const REPORT_MAX: usize = 1024;

/// What [`child_main`] gets: the prepared exec, its stdio, the signal mask to restore; and
/// where it reports why it gave up (`report_len` bytes of `report`; 0: it called `execve`).
struct Arg<'a> {
    prepared: &'a Prepared<'a>,
    stdio: [RawFd; 3],
    mask: SigSet,
    report: [u8; REPORT_MAX],
    report_len: usize,
}

/// Size of the child's stack (libseccomp and libcontainer's helpers run on it).
const STACK_SIZE: usize = 256 * 1024;
const PAGE: usize = 4096;

/// The child's stack: mapped once, below it a guard page. Only one child runs on it at a
/// time (the helper is suspended until the child leaves it).
fn stack_top() -> std::io::Result<usize> {
    static STACK: OnceLock<usize> = OnceLock::new();
    if let Some(top) = STACK.get() {
        return Ok(*top);
    }
    // SAFETY: a fresh anonymous mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK_SIZE + PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the lowest page of the mapping just made.
    if unsafe { libc::mprotect(base, PAGE, libc::PROT_NONE) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(*STACK.get_or_init(|| base as usize + PAGE + STACK_SIZE))
}

/// Starts the child (`clone` with `CLONE_VM | CLONE_VFORK | CLONE_PARENT`); returns once it
/// has called `execve` or exited: its pid, and why it gave up when it did not get to
/// `execve` (it has exited then). Its stdio is `stdio`. Call only in the single-threaded
/// helper.
pub(crate) fn spawn(
    prepared: &Prepared<'_>,
    stdio: [RawFd; 3],
) -> nix::Result<(i32, Option<String>)> {
    let top = stack_top().map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let mut mask = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut mask),
    )?;
    let mut arg = Arg {
        prepared,
        stdio,
        mask,
        report: [0; REPORT_MAX],
        report_len: 0,
    };
    // SAFETY: the child runs on its own stack in the helper's memory while the helper is
    // suspended (CLONE_VFORK); `arg` outlives it; see the module's rules for its code.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT | libc::SIGCHLD,
            &mut arg as *mut Arg as *mut c_void,
        )
    };
    let errno = nix::Error::last();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
    if pid < 0 {
        return Err(errno);
    }
    // The child has left the shared memory (execve or _exit): what it wrote is final.
    let report = (arg.report_len > 0)
        .then(|| String::from_utf8_lossy(&arg.report[..arg.report_len]).into_owned());
    Ok((pid, report))
}

extern "C" fn child_main(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `spawn` passes a live `Arg` and waits (suspended) while the child runs.
    let arg = unsafe { &mut *(arg as *mut Arg) };
    let err = setup(arg);
    let mut len = err.len().min(REPORT_MAX);
    while !err.is_char_boundary(len) {
        len -= 1;
    }
    // An empty message still has to say that the exec failed.
    let bytes = if len == 0 {
        &b"exec failed"[..]
    } else {
        &err.as_bytes()[..len]
    };
    arg.report[..bytes.len()].copy_from_slice(bytes);
    arg.report_len = bytes.len();
    drop(err);
    // SAFETY: leave without running the helper's destructors or atexit handlers.
    unsafe { libc::_exit(127) }
}

fn last_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Joins the container and execs; returns only why it could not.
fn setup(arg: &Arg) -> String {
    match join_and_exec(arg) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Writes `data` to the file at `path` (open, write, close: no allocation).
fn write_file(path: &CStr, data: &[u8]) -> Result<(), std::io::Error> {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a live buffer and the descriptor just opened.
    let n = unsafe { libc::write(fd, data.as_ptr() as *const c_void, data.len()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    if n < 0 {
        return Err(err);
    }
    Ok(())
}

fn join_and_exec(arg: &Arg) -> Result<std::convert::Infallible, String> {
    let p = arg.prepared;
    for (i, fd) in arg.stdio.iter().enumerate() {
        // SAFETY: dup2 onto this process's standard descriptors (cleared CLOEXEC).
        if unsafe { libc::dup2(*fd, i as RawFd) } < 0 {
            return Err(last_error("dup2"));
        }
    }
    for f in p.cgroup_procs {
        write_file(f, b"0").map_err(|e| format!("join cgroup {}: {e}", f.to_string_lossy()))?;
    }
    if let Some(adj) = &p.oom_score_adj {
        write_file(c"/proc/self/oom_score_adj", adj.as_bytes())
            .map_err(|e| format!("oom_score_adj: {e}"))?;
    }
    for (fd, flag) in p.namespaces {
        nix::sched::setns(fd.as_fd(), *flag).map_err(|e| format!("setns {flag:?}: {e}"))?;
    }
    let syscall = libcontainer::syscall::syscall::create_syscall();
    let pr = &p.process;
    for r in pr.rlimits().as_deref().unwrap_or(&[]) {
        syscall
            .set_rlimit(r)
            .map_err(|e| format!("setrlimit {:?}: {e}", r.typ()))?;
    }
    let nnp = pr.no_new_privileges() == Some(true);
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    }
    if let Some(mask) = pr.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    // As libcontainer's init: chdir before the user changes, again after if denied.
    let chdir = || {
        // SAFETY: a NUL-terminated path.
        (unsafe { libc::chdir(p.cwd.as_ptr()) } == 0)
            .then_some(())
            .ok_or_else(nix::Error::last)
    };
    let chdir_later = match chdir() {
        Ok(()) => false,
        Err(nix::Error::EPERM) | Err(nix::Error::EACCES) => true,
        Err(e) => return Err(format!("chdir {}: {e}", p.cwd.to_string_lossy())),
    };
    syscall
        .set_groups(&p.gids)
        .map_err(|e| format!("setgroups: {e}"))?;
    syscall
        .set_id(
            Uid::from_raw(pr.user().uid()),
            Gid::from_raw(pr.user().gid()),
        )
        .map_err(|e| format!("set uid/gid: {e}"))?;
    // Everything above 2 closes at execve.
    // SAFETY: marks descriptors close-on-exec.
    if unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3,
            libc::c_int::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } != 0
    {
        return Err(last_error("close_range"));
    }
    if let (Some(s), false) = (&p.seccomp, nnp) {
        load_seccomp(s)?;
    }
    libcontainer::capabilities::reset_effective(syscall.as_ref())
        .map_err(|e| format!("capabilities: {e}"))?;
    if let Some(caps) = pr.capabilities() {
        libcontainer::capabilities::drop_privileges(caps, syscall.as_ref())
            .map_err(|e| format!("capabilities: {e}"))?;
    }
    drop(syscall);
    if chdir_later {
        chdir().map_err(|e| format!("chdir {}: {e}", p.cwd.to_string_lossy()))?;
    }
    if let (Some(s), true) = (&p.seccomp, nnp) {
        load_seccomp(s)?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&arg.mask), None)
        .map_err(|e| format!("sigprocmask: {e}"))?;
    exec(p)
}

/// `execve` of each candidate in turn, as `execvp`: a missing or non-executable candidate
/// moves on to the next one; any other error stops.
fn exec(p: &Prepared<'_>) -> Result<std::convert::Infallible, String> {
    for path in &p.candidates {
        // SAFETY: NUL-terminated path and NULL-terminated arrays of live strings.
        unsafe { libc::execve(path.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr()) };
        let e = nix::Error::last();
        let next = p.search
            && matches!(
                e,
                nix::Error::ENOENT | nix::Error::ENOTDIR | nix::Error::EACCES
            );
        if !next {
            return Err(format!("exec {:?}: {e}", p.name));
        }
    }
    Err(format!(
        "exec: {:?}: executable file not found in $PATH",
        p.name
    ))
}

fn load_seccomp(s: &LinuxSeccomp) -> Result<(), String> {
    let notify = libcontainer::seccomp::initialize_seccomp(s)
        .map_err(|e| format!("load seccomp filter: {e}"))?;
    // Notify actions need a listener this path has none of.
    if let Some(fd) = notify {
        // SAFETY: a descriptor initialize_seccomp returned to us.
        unsafe { libc::close(fd) };
    }
    Ok(())
}
