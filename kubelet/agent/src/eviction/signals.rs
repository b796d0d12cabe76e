//! Where eviction signals come from ([`SignalSource`], a seam): [`NodeSignals`] measures
//! them as upstream's summary provider does: `memory.available` = memory capacity minus
//! the root cgroup's working set (`/proc/meminfo` where the root has no memory counters,
//! as on cgroup v2), `allocatableMemory.available` = allocatable minus the `kubepods`
//! working set, `nodefs`/`imagefs` from `statvfs`, `pid.available` = `kernel.pid_max`
//! minus running processes; per pod the working set and process count of its cgroup.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bramble_cgroups::qos::KUBEPODS;
use bramble_cgroups::{manager_for, CgroupManager, QosClass};

use super::thresholds::{Observation, Signal};
use crate::error::KubeletError;

/// Usage of one pod.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodUsage {
    /// Working set of the pod cgroup, bytes.
    pub memory_working_set: u64,
    /// Processes in the pod cgroup.
    pub processes: u64,
}

/// One observation of every signal and of the pods asked about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    /// Available and capacity per signal (signals that could not be read are absent).
    pub signals: BTreeMap<Signal, Observation>,
    /// Usage per pod uid.
    pub pods: HashMap<String, PodUsage>,
    /// Working set per (pod uid, container name), for eviction messages.
    pub containers: HashMap<(String, String), u64>,
}

/// A pod whose usage is wanted: its uid, QoS (which decides its cgroup) and its app
/// containers' cgroups by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCgroupRef {
    /// Pod uid.
    pub uid: String,
    /// QoS class.
    pub qos: QosClass,
    /// (container name, cgroup path relative to the cgroup root) of running containers.
    pub containers: Vec<(String, PathBuf)>,
}

/// The seam: measured signals (real in the kubelet, scripted in unit tests).
pub trait SignalSource: Send + Sync {
    /// Observes every signal and the usage of `pods`.
    fn observe(&self, pods: &[PodCgroupRef]) -> Observations;
}

/// The node's real signals.
pub struct NodeSignals {
    cgroups: Box<dyn CgroupManager>,
    parent: PathBuf,
    memory_capacity: u64,
    allocatable_memory: u64,
    nodefs: PathBuf,
    imagefs: PathBuf,
}

/// A `/proc/meminfo` field in bytes.
pub fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find(|l| l.split(':').next() == Some(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The machine's working set from `/proc/meminfo` as cAdvisor computes it for a root
/// without memory counters: `MemTotal - MemFree - Inactive(file)`.
pub fn meminfo_working_set(meminfo: &str) -> Option<u64> {
    let total = meminfo_field(meminfo, "MemTotal")?;
    let free = meminfo_field(meminfo, "MemFree")?;
    let inactive = meminfo_field(meminfo, "Inactive(file)").unwrap_or(0);
    Some(total.saturating_sub(free).saturating_sub(inactive))
}

fn statvfs(path: &Path) -> Option<rustix::fs::StatVfs> {
    let mut dir = path.to_path_buf();
    while !dir.exists() {
        if !dir.pop() {
            return None;
        }
    }
    rustix::fs::statvfs(&dir).ok()
}

/// Running processes and the pid limit (`kernel.pid_max`).
fn pids() -> Option<(i64, i64)> {
    let max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysinfo only writes the struct it is given.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    Some((info.procs as i64, max))
}

impl NodeSignals {
    /// Signals of a node with `memory_capacity` bytes of which `allocatable_memory` may go
    /// to pods, `kubepods` under `parent` of the hierarchy at `cgroup_root`, the kubelet's
    /// data on `nodefs` and images on `imagefs`.
    pub fn new(
        cgroup_root: &Path,
        parent: &Path,
        memory_capacity: u64,
        allocatable_memory: u64,
        nodefs: &Path,
        imagefs: &Path,
    ) -> Result<Self, KubeletError> {
        Ok(NodeSignals {
            cgroups: manager_for(cgroup_root)?,
            parent: parent.to_path_buf(),
            memory_capacity,
            allocatable_memory,
            nodefs: nodefs.to_path_buf(),
            imagefs: imagefs.to_path_buf(),
        })
    }

    fn working_set(&self, path: &Path) -> Option<u64> {
        self.cgroups.stats(path).ok()?.memory_working_set_bytes
    }

    fn node_working_set(&self) -> Option<u64> {
        self.working_set(Path::new("")).or_else(|| {
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| meminfo_working_set(&m))
        })
    }

    fn fs(
        &self,
        out: &mut BTreeMap<Signal, Observation>,
        path: &Path,
        bytes: Signal,
        inodes: Signal,
    ) {
        if let Some(s) = statvfs(path) {
            out.insert(
                bytes,
                Observation {
                    available: (s.f_bavail * s.f_frsize) as i64,
                    capacity: (s.f_blocks * s.f_frsize) as i64,
                },
            );
            if s.f_files > 0 {
                out.insert(
                    inodes,
                    Observation {
                        available: s.f_favail as i64,
                        capacity: s.f_files as i64,
                    },
                );
            }
        }
    }
}

impl SignalSource for NodeSignals {
    fn observe(&self, pods: &[PodCgroupRef]) -> Observations {
        let mut obs = Observations::default();
        let cap = self.memory_capacity as i64;
        if let Some(ws) = self.node_working_set() {
            obs.signals.insert(
                Signal::MemoryAvailable,
                Observation {
                    available: cap - ws as i64,
                    capacity: cap,
                },
            );
        }
        if let Some(ws) = self.working_set(&self.parent.join(KUBEPODS)) {
            let alloc = self.allocatable_memory as i64;
            obs.signals.insert(
                Signal::AllocatableMemoryAvailable,
                Observation {
                    available: alloc - ws as i64,
                    capacity: alloc,
                },
            );
        }
        self.fs(
            &mut obs.signals,
            &self.nodefs,
            Signal::NodeFsAvailable,
            Signal::NodeFsInodesFree,
        );
        self.fs(
            &mut obs.signals,
            &self.imagefs,
            Signal::ImageFsAvailable,
            Signal::ImageFsInodesFree,
        );
        if let Some((procs, max)) = pids() {
            obs.signals.insert(
                Signal::PidAvailable,
                Observation {
                    available: max - procs,
                    capacity: max,
                },
            );
        }
        for p in pods {
            let path = self
                .parent
                .join(bramble_cgroups::qos::pod_cgroup_path(p.qos, &p.uid));
            if let Ok(s) = self.cgroups.stats(&path) {
                obs.pods.insert(
                    p.uid.clone(),
                    PodUsage {
                        memory_working_set: s.memory_working_set_bytes.unwrap_or(0),
                        processes: s.pids_current.unwrap_or(0),
                    },
                );
            }
            for (name, cg) in &p.containers {
                if let Some(ws) = self.working_set(cg) {
                    obs.containers.insert((p.uid.clone(), name.clone()), ws);
                }
            }
        }
        obs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_working_set_as_cadvisor() {
        let m = "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    500 kB\nInactive(file):  100 kB\n";
        assert_eq!(meminfo_field(m, "MemAvailable"), Some(500 * 1024));
        assert_eq!(meminfo_working_set(m), Some(700 * 1024));
    }

    #[test]
    fn observes_this_machine() {
        let root = Path::new("/sys/fs/cgroup");
        if bramble_cgroups::detect(root).is_err() {
            return;
        }
        let s = NodeSignals::new(
            root,
            Path::new(""),
            1 << 40,
            1 << 40,
            Path::new("/"),
            Path::new("/"),
        )
        .unwrap();
        let o = s.observe(&[]);
        assert!(o.signals[&Signal::MemoryAvailable].available > 0);
        assert!(o.signals[&Signal::NodeFsAvailable].capacity > 0);
        assert!(o.signals[&Signal::PidAvailable].available > 0);
    }
}
