//! The helper's cache of container states. Every PLEG relist (each second) asks for every
//! container's state; reading one from disk takes libcontainer's `state.json` (parsed
//! whole), `/proc/<pid>/stat` twice, `exit.json`, `shim.pid` and `started_at`. Most of the
//! time nothing changed, and the helper can tell that from one `poll` of pidfds:
//! - an exited container's state is final once its shim is gone (the shim wrote `exit.json`
//!   and may run a moment longer; only a delete, which goes through the helper, changes
//!   it);
//! - a running container's state holds until its init process or its shim exits; each is
//!   watched through a pidfd, which turns readable when the process exits.
//!
//! Created containers (not started yet) are not cached: `start` changes them.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::protocol::{ContainerState, ContainerStatusKind};

/// A cached state and the processes whose exit ends it.
struct Entry {
    state: ContainerState,
    watch: Vec<OwnedFd>,
}

/// Container states by id, valid until a watched process exits or the id is forgotten.
/// Each entry holds up to two descriptors; they take at most half of the open-file soft
/// limit (the helper keeps the node's limit: containers inherit it), beyond which states are
/// read from disk.
pub struct StateCache {
    entries: HashMap<String, Entry>,
    budget: usize,
}

impl Default for StateCache {
    fn default() -> Self {
        StateCache {
            entries: HashMap::new(),
            budget: open_files_share(2),
        }
    }
}

/// One `divisor`-th of the open-file soft limit (1024 if it cannot be read): the descriptors
/// a cache of the helper may keep.
pub(crate) fn open_files_share(divisor: u64) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the rlimit struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    usize::try_from(soft / divisor).unwrap_or(usize::MAX)
}

impl StateCache {
    /// The cached state of `id`, if it still holds (none of its watched processes exited);
    /// a stale entry is dropped.
    pub fn get(&mut self, id: &str) -> Option<ContainerState> {
        let entry = self.entries.get(id)?;
        if any_exited(&entry.watch) {
            self.entries.remove(id);
            return None;
        }
        Some(entry.state.clone())
    }

    /// Remembers `state` (read from disk just now) when it can be cached.
    pub fn put(&mut self, id: &str, state: &ContainerState) {
        // The processes whose exit changes the state: the shim (while it runs, the state
        // names it), and a running container's init.
        let init = match state.status {
            ContainerStatusKind::Exited => None,
            ContainerStatusKind::Running if state.started_at.is_some() => match state.pid {
                Some(pid) => Some(pid),
                None => return,
            },
            _ => return,
        };
        let held: usize = self.entries.values().map(|e| e.watch.len()).sum();
        if held + 2 > self.budget {
            return;
        }
        let mut watch = Vec::with_capacity(2);
        for p in init.into_iter().chain(state.shim_pid) {
            match pidfd_open(p) {
                Some(fd) => watch.push(fd),
                // Gone already (or no pidfds on this kernel): not cached.
                None => return,
            }
        }
        // The state was read before the pidfds were opened: a process that exited in
        // between makes it stale already.
        if any_exited(&watch) {
            return;
        }
        self.entries.insert(
            id.to_string(),
            Entry {
                state: state.clone(),
                watch,
            },
        );
    }

    /// Forgets `id` (started, deleted).
    pub fn forget(&mut self, id: &str) {
        self.entries.remove(id);
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    // SAFETY: a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether any of the pidfds is readable (its process exited), in one `poll` that does not
/// wait. A failed poll counts as "exited" (the state is read again).
fn any_exited(fds: &[OwnedFd]) -> bool {
    if fds.is_empty() {
        return false;
    }
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs for the call.
    let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 0) };
    n != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ContainerKind, ContainerMeta, ExitInfo, SandboxConfig};

    fn state(status: ContainerStatusKind, pid: Option<i32>) -> ContainerState {
        ContainerState {
            meta: ContainerMeta {
                id: "c".into(),
                kind: ContainerKind::Sandbox {
                    config: SandboxConfig {
                        pod_uid: "u".into(),
                        pod_name: "p".into(),
                        pod_namespace: "default".into(),
                        hostname: "p".into(),
                        cgroup_parent: "kubepods/podu".into(),
                        host_network: false,
                        resolv_conf: None,
                    },
                },
                cgroup_path: "x".into(),
                log_path: "y".into(),
                created_at: "2024-01-01T00:00:00Z".into(),
            },
            status,
            pid,
            started_at: Some("2024-01-01T00:00:01Z".into()),
            exit: None,
            shim_pid: None,
        }
    }

    /// Polls until `id`'s entry is gone (its watched process exited), for at most 20 s.
    fn wait_uncached(cache: &mut StateCache, id: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while cache.get(id).is_some() {
            assert!(std::time::Instant::now() < deadline, "still cached");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn running_state_holds_until_its_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let st = state(ContainerStatusKind::Running, Some(child.id() as i32));
        let mut cache = StateCache::default();
        cache.put("c", &st);
        assert_eq!(cache.get("c"), Some(st.clone()));
        child.kill().expect("kill");
        // Exited (a zombie until waited for): the entry is stale.
        wait_uncached(&mut cache, "c");
        child.wait().expect("wait");
        // A process that is gone is not watched: nothing cached.
        cache.put("c", &st);
        assert_eq!(cache.get("c"), None);
    }

    #[test]
    fn exited_state_is_final_until_forgotten() {
        let mut st = state(ContainerStatusKind::Exited, None);
        st.exit = Some(ExitInfo {
            exit_code: 0,
            signal: None,
            oom_killed: false,
            finished_at: "2024-01-01T00:00:02Z".into(),
            reason: "Completed".into(),
        });
        let mut cache = StateCache::default();
        cache.put("c", &st);
        assert_eq!(cache.get("c"), Some(st.clone()));
        cache.forget("c");
        assert_eq!(cache.get("c"), None);
        // While its shim still runs, the state holds until the shim exits.
        let mut shim = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        st.shim_pid = Some(shim.id() as i32);
        cache.put("c", &st);
        assert_eq!(cache.get("c"), Some(st.clone()));
        shim.kill().expect("kill");
        wait_uncached(&mut cache, "c");
        shim.wait().expect("wait");
    }

    #[test]
    fn created_state_is_not_cached() {
        let mut cache = StateCache::default();
        let pid = std::process::id() as i32;
        cache.put("c", &state(ContainerStatusKind::Created, Some(pid)));
        assert_eq!(cache.get("c"), None);
        let mut no_start = state(ContainerStatusKind::Running, Some(pid));
        no_start.started_at = None;
        cache.put("c", &no_start);
        assert_eq!(cache.get("c"), None);
    }
}
