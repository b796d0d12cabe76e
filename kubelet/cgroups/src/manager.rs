//! The seam: one trait for cgroup v1 and v2, the resources it applies and the stats it reads.

use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Which cgroup hierarchy a root holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One mount per controller (`cpu`, `memory`, ...) under the root.
    V1,
    /// The unified hierarchy mounted at the root.
    V2,
}

/// Tells whether `root` is a unified (v2) hierarchy or a directory of v1 controller mounts.
///
/// A v2 root has `cgroup.controllers`; a v1 root has per-controller directories such as
/// `memory` and `cpu` (a hybrid host with a v2 mount at `unified/` is v1 for the kubelet,
/// as upstream's libcontainer decides).
pub fn detect(root: &Path) -> Result<CgroupVersion> {
    if root.join("cgroup.controllers").is_file() {
        return Ok(CgroupVersion::V2);
    }
    if root.join("memory").is_dir() || root.join("cpu").is_dir() {
        return Ok(CgroupVersion::V1);
    }
    Err(CgroupError::UnknownRoot(root.to_owned()))
}

/// Resource settings of one cgroup, in upstream's `ResourceConfig` units (cgroup v1 units;
/// the v2 manager converts shares to `cpu.weight`). `None` leaves a setting untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// `cpu.shares` (v1) / converted to `cpu.weight` (v2).
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period; `-1` removes the quota.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds (upstream 100000).
    pub cpu_period: Option<u64>,
    /// Hard memory limit in bytes; `-1` removes it.
    pub memory_limit: Option<i64>,
    /// Maximum number of processes; `-1` removes the limit.
    pub pids_limit: Option<i64>,
    /// CPUs allowed (`cpuset.cpus` syntax, e.g. `0-1`).
    pub cpuset_cpus: Option<String>,
}

/// Usage figures read from a cgroup. A field is `None` when its control file is absent
/// (controller not enabled, or a kernel without that counter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Total CPU time consumed, nanoseconds (`cpuacct.usage` / `cpu.stat usage_usec`).
    pub cpu_usage_nanos: Option<u64>,
    /// CFS periods elapsed (`cpu.stat nr_periods`).
    pub cpu_periods: Option<u64>,
    /// CFS periods in which the cgroup was throttled (`cpu.stat nr_throttled`).
    pub cpu_throttled_periods: Option<u64>,
    /// Time throttled, nanoseconds (`throttled_time` / `throttled_usec`).
    pub cpu_throttled_nanos: Option<u64>,
    /// Memory usage in bytes (`memory.usage_in_bytes` / `memory.current`).
    pub memory_usage_bytes: Option<u64>,
    /// Working set as cAdvisor computes it: usage minus inactive file pages.
    pub memory_working_set_bytes: Option<u64>,
    /// Number of OOM kills inside the cgroup (`memory.oom_control` / `memory.events oom_kill`).
    pub oom_kills: Option<u64>,
    /// Processes currently in the cgroup (`pids.current`).
    pub pids_current: Option<u64>,
}

/// A cgroup hierarchy rooted at a directory (`/sys/fs/cgroup` on a node, a temp dir in tests).
/// Paths are relative to the root, e.g. `kubepods/burstable/pod<uid>`.
pub trait CgroupManager: Send + Sync {
    /// The hierarchy version this manager drives.
    fn version(&self) -> CgroupVersion;
    /// The root directory.
    fn root(&self) -> &Path;
    /// Creates the cgroup (and missing parents) and applies `resources`.
    fn create(&self, path: &Path, resources: &Resources) -> Result<()>;
    /// Applies `resources` to an existing cgroup.
    fn update(&self, path: &Path, resources: &Resources) -> Result<()>;
    /// Removes the cgroup and its descendants; fails with [`CgroupError::Busy`] while it has
    /// processes.
    fn remove(&self, path: &Path) -> Result<()>;
    /// Whether the cgroup exists (in every controller the manager uses).
    fn exists(&self, path: &Path) -> bool;
    /// Moves a process into the cgroup.
    fn add_pid(&self, path: &Path, pid: u32) -> Result<()>;
    /// Processes in the cgroup itself (not its descendants).
    fn pids(&self, path: &Path) -> Result<Vec<u32>>;
    /// Reads usage figures.
    fn stats(&self, path: &Path) -> Result<CgroupStats>;
}

/// Builds the manager matching `root`'s hierarchy.
pub fn manager_for(root: impl Into<PathBuf>) -> Result<Box<dyn CgroupManager>> {
    let root = root.into();
    Ok(match detect(&root)? {
        CgroupVersion::V1 => Box::new(crate::v1::V1Manager::new(root)),
        CgroupVersion::V2 => Box::new(crate::v2::V2Manager::new(root)),
    })
}

/// Working set as cAdvisor computes it: usage minus inactive file pages, floored at zero.
pub(crate) fn working_set(usage: Option<u64>, inactive_file: Option<u64>) -> Option<u64> {
    usage.map(|u| u.saturating_sub(inactive_file.unwrap_or(0)))
}
