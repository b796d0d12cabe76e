//! What a direct exec ([`crate::exec_direct`]) needs of its container beyond the spec: the
//! namespaces to join, the cgroups to enter and the home directory of the container's user.
//! All of it holds while the container's init runs, so the helper keeps it per container
//! ([`ExecTargets`]) instead of opening six namespace files, reading `/proc/<pid>/cgroup` and
//! the container's `/etc/passwd` for every exec probe.
//!
//! An entry is tied to the init process by a pidfd: once that process has exited (the
//! container stopped or restarted) the entry is dropped and the next exec reads the new
//! init's namespaces; a recycled pid never matches a kept entry. Entries of stopped
//! containers are dropped at each relist, so a kept namespace descriptor never holds a
//! stopped container's namespaces (its mounts, its network) alive for long.
//!
//! One difference from reading `/etc/passwd` at each exec (as runc does): `HOME`, when the
//! exec's environment has none, comes from the file as it was at the container's first
//! exec.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;

use crate::exec_direct::DirectExecError;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DirectExecError + '_ {
    move |source| DirectExecError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Namespaces an exec joins, in order; the mount namespace last (it changes the root).
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// A running container as an exec joins it.
pub struct ExecTarget {
    /// The container's init, and a pidfd of it (readable once it has exited).
    init_pid: i32,
    init: OwnedFd,
    /// Namespaces to join, in order (the mount namespace last); those the helper shares
    /// are left out.
    pub(crate) namespaces: Vec<(OwnedFd, CloneFlags)>,
    /// The init's PID namespace, when it is not the helper's.
    pub(crate) pidns: Option<OwnedFd>,
    /// The `cgroup.procs` files of the init's cgroups.
    pub(crate) cgroup_procs: Vec<CString>,
    /// `uid`'s home directory in the container's `/etc/passwd`, else `/`.
    home: String,
}

impl ExecTarget {
    /// Reads what an exec as `uid` in the container whose init is `init_pid` needs.
    pub fn open(init_pid: i32, uid: u32) -> Result<Self, DirectExecError> {
        let init = pidfd_open(init_pid).map_err(io(Path::new("pidfd_open")))?;
        let mut namespaces = Vec::new();
        for (name, flag) in NAMESPACES {
            if let Some(f) = foreign_ns(init_pid, name)? {
                namespaces.push((OwnedFd::from(f), flag));
            }
        }
        let pidns = foreign_ns(init_pid, "pid")?.map(OwnedFd::from);
        let cgroup_procs = cgroup_procs_files(init_pid)?
            .into_iter()
            .map(|f| crate::exec_direct::cstring(f.as_os_str().as_encoded_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let home = home_of(init_pid, uid);
        let target = ExecTarget {
            init_pid,
            init,
            namespaces,
            pidns,
            cgroup_procs,
            home,
        };
        // Everything above was read through the pid: if the process exited meanwhile, the
        // pid may name another process by now.
        if target.exited() {
            return Err(DirectExecError::Io {
                path: PathBuf::from(format!("/proc/{init_pid}")),
                source: std::io::Error::from_raw_os_error(libc::ESRCH),
            });
        }
        Ok(target)
    }

    /// The init's pid.
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// `HOME` for the exec (the container user's home directory).
    pub fn home(&self) -> &str {
        &self.home
    }

    /// Descriptors this target holds.
    fn fds(&self) -> usize {
        1 + self.namespaces.len() + usize::from(self.pidns.is_some())
    }

    /// Whether the init has exited (a `poll` that does not wait).
    fn exited(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.init.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call.
        unsafe { libc::poll(&mut p, 1, 0) != 0 }
    }
}

/// Exec targets by container id, each valid while its init runs. They hold at most a
/// quarter of the open-file soft limit (the state cache takes half); beyond it a target is
/// read for each exec.
pub struct ExecTargets {
    entries: HashMap<String, Rc<ExecTarget>>,
    budget: usize,
}

impl Default for ExecTargets {
    fn default() -> Self {
        ExecTargets {
            entries: HashMap::new(),
            budget: crate::state_cache::open_files_share(4),
        }
    }
}

impl ExecTargets {
    /// The target of container `id`, whose init is `init_pid`, for an exec as `uid`: the
    /// kept one while that init runs, else read afresh (and kept when the budget allows).
    pub fn get(
        &mut self,
        id: &str,
        init_pid: i32,
        uid: u32,
    ) -> Result<Rc<ExecTarget>, DirectExecError> {
        if let Some(t) = self.entries.get(id) {
            if t.init_pid == init_pid && !t.exited() {
                return Ok(t.clone());
            }
            self.entries.remove(id);
        }
        let t = Rc::new(ExecTarget::open(init_pid, uid)?);
        let held: usize = self.entries.values().map(|e| e.fds()).sum();
        if held + t.fds() <= self.budget {
            self.entries.insert(id.to_string(), t.clone());
        }
        Ok(t)
    }

    /// Drops the targets whose init has exited.
    pub fn prune(&mut self) {
        self.entries.retain(|_, t| !t.exited());
    }

    /// Forgets `id` (deleted).
    pub fn forget(&mut self, id: &str) {
        self.entries.remove(id);
    }

    /// How many targets are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The helper's own namespaces (device, inode) by name, read once: the helper never
/// changes them (it sets only its children's PID namespace, around a clone).
fn own_ns(name: &str) -> Option<(u64, u64)> {
    static OWN: OnceLock<HashMap<&'static str, (u64, u64)>> = OnceLock::new();
    OWN.get_or_init(|| {
        NAMESPACES
            .iter()
            .map(|(n, _)| *n)
            .chain(["pid"])
            .filter_map(|n| {
                let m = std::fs::metadata(format!("/proc/self/ns/{n}")).ok()?;
                Some((n, (m.dev(), m.ino())))
            })
            .collect()
    })
    .get(name)
    .copied()
}

/// Opens `/proc/<pid>/ns/<name>` when it differs from the helper's own.
fn foreign_ns(pid: i32, name: &str) -> Result<Option<std::fs::File>, DirectExecError> {
    let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
    let f = std::fs::File::open(&theirs).map_err(io(&theirs))?;
    let same = match (f.metadata(), own_ns(name)) {
        (Ok(a), Some(ours)) => (a.dev(), a.ino()) == ours,
        _ => false,
    };
    Ok((!same).then_some(f))
}

/// A cgroup filesystem mount: (mount point, v2, super options).
type CgroupMount = (PathBuf, bool, Vec<String>);

/// The helper's cgroup mounts, read from `mountinfo` once (they do not move while the node
/// runs; `mountinfo` itself grows with every container's rootfs).
fn cgroup_mounts() -> Result<&'static [CgroupMount], DirectExecError> {
    static MOUNTS: OnceLock<Vec<CgroupMount>> = OnceLock::new();
    if let Some(m) = MOUNTS.get() {
        return Ok(m);
    }
    let path = Path::new("/proc/self/mountinfo");
    let mountinfo = std::fs::read_to_string(path).map_err(io(path))?;
    let mounts = mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mount_point = pre.split(' ').nth(4)?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let opts = post.nth(1)?.split(',').map(str::to_string).collect();
            matches!(fstype, "cgroup" | "cgroup2")
                .then(|| (PathBuf::from(mount_point), fstype == "cgroup2", opts))
        })
        .collect();
    Ok(MOUNTS.get_or_init(|| mounts))
}

/// The `cgroup.procs` files of the cgroups `pid` is in (v1 hierarchies found by their
/// controllers, v2 by type).
fn cgroup_procs_files(pid: i32) -> Result<Vec<PathBuf>, DirectExecError> {
    let cg_path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let cgroups = std::fs::read_to_string(&cg_path).map_err(io(&cg_path))?;
    let mounts = cgroup_mounts()?;
    let mut files = Vec::new();
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mount = if ctrls.is_empty() {
            mounts.iter().find(|m| m.1)
        } else {
            mounts
                .iter()
                .find(|m| !m.1 && ctrls.split(',').all(|c| m.2.iter().any(|o| o == c)))
        };
        if let Some((mp, _, _)) = mount {
            files.push(mp.join(path.trim_start_matches('/')).join("cgroup.procs"));
        }
    }
    Ok(files)
}

/// The home directory of `uid` in the container's `/etc/passwd` (read through the init's
/// root, symlinks resolved inside it), else `/`.
fn home_of(init_pid: i32, uid: u32) -> String {
    let passwd = || -> Option<String> {
        let root = std::fs::File::open(format!("/proc/{init_pid}/root")).ok()?;
        let how = nix::fcntl::OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT);
        let fd = nix::fcntl::openat2(root.as_raw_fd(), "etc/passwd", how).ok()?;
        // SAFETY: a fresh descriptor openat2 returned.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut s = String::new();
        f.read_to_string(&mut s).ok()?;
        Some(s)
    };
    passwd()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// A process in a network namespace of its own (`unshare -n`), and that namespace's
    /// inode.
    fn in_new_netns() -> (Child, u64) {
        let mut child = Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn()
            .expect("unshare");
        let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let path = format!("/proc/{}/ns/net", child.id());
        // unshare execs sleep once the namespace is made.
        for _ in 0..2000 {
            if let Ok(m) = std::fs::metadata(&path) {
                if m.ino() != own {
                    return (child, m.ino());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("unshare -n never entered a new network namespace");
    }

    fn net_ino(t: &ExecTarget) -> Option<u64> {
        let (fd, _) = t
            .namespaces
            .iter()
            .find(|(_, f)| *f == CloneFlags::CLONE_NEWNET)?;
        let f = std::fs::File::from(fd.try_clone().unwrap());
        Some(f.metadata().unwrap().ino())
    }

    #[test]
    fn a_target_holds_its_inits_namespaces_and_cgroups() {
        let (mut child, ino) = in_new_netns();
        let pid = child.id() as i32;
        let t = ExecTarget::open(pid, 0).expect("open");
        assert_eq!(net_ino(&t), Some(ino));
        // The namespaces the helper shares with the process are not joined.
        assert!(!t
            .namespaces
            .iter()
            .any(|(_, f)| *f == CloneFlags::CLONE_NEWIPC));
        assert!(t.pidns.is_none());
        assert!(!t.cgroup_procs.is_empty());
        assert!(t
            .cgroup_procs
            .iter()
            .all(|c| c.to_string_lossy().ends_with("/cgroup.procs")));
        // Root's home in this host's /etc/passwd.
        assert_eq!(t.home(), "/root");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_restarted_container_gets_its_new_namespaces() {
        let mut targets = ExecTargets::default();
        let (mut first, first_ino) = in_new_netns();
        let first_pid = first.id() as i32;
        let a = targets.get("c", first_pid, 0).expect("first");
        assert_eq!(net_ino(&a), Some(first_ino));
        // Kept while the init runs.
        let again = targets.get("c", first_pid, 0).expect("again");
        assert!(Rc::ptr_eq(&a, &again));
        assert_eq!(targets.len(), 1);
        // The init exits (a zombie until reaped, so its pid is not reused yet): the kept
        // target is stale, and the same pid no longer yields one.
        first.kill().unwrap();
        while !a.exited() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        targets.prune();
        assert!(targets.is_empty());
        // A zombie's pidfd reads as exited: the pid yields no target.
        assert!(targets.get("c", first_pid, 0).is_err());
        first.wait().unwrap();
        // The container's next init, in new namespaces: its own target.
        let (mut second, second_ino) = in_new_netns();
        assert_ne!(second_ino, first_ino);
        let b = targets.get("c", second.id() as i32, 0).expect("second");
        assert_eq!(net_ino(&b), Some(second_ino));
        assert_eq!(b.init_pid(), second.id() as i32);
        // Deleting the container forgets it.
        targets.forget("c");
        assert!(targets.is_empty());
        second.kill().unwrap();
        second.wait().unwrap();
    }

    #[test]
    fn a_kept_target_whose_init_exited_is_read_again() {
        let mut targets = ExecTargets::default();
        let (mut first, _) = in_new_netns();
        let pid = first.id() as i32;
        let kept = targets.get("c", pid, 0).expect("first");
        first.kill().unwrap();
        first.wait().unwrap();
        // Not pruned: `get` itself notices the init is gone and does not return the kept
        // target (reading the pid again fails, or finds whatever process has it now).
        match targets.get("c", pid, 0) {
            Err(_) => assert!(targets.is_empty()),
            Ok(t) => assert!(!Rc::ptr_eq(&t, &kept)),
        }
    }
}
