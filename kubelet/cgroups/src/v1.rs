//! cgroup v1: one hierarchy per controller under the root (`<root>/cpu`, `<root>/memory`, ...).

use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::fsutil::{
    check_relative, flat_key, mkdir_all, parse_pids, parse_u64, read, read_opt, rmdir_tree, write,
};
use crate::manager::{working_set, CgroupManager, CgroupStats, CgroupVersion, Resources};

/// Controllers the kubelet creates a cgroup in, as upstream's cgroupfs driver joins them.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio", "devices", "hugetlb",
];

/// cgroup v1 manager rooted at a directory holding one mount per controller.
#[derive(Debug, Clone)]
pub struct V1Manager {
    /// The directory holding the controller mounts, e.g. `/sys/fs/cgroup`.
    pub root: PathBuf,
}

impl V1Manager {
    /// A manager for the v1 hierarchies under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory of `rel` in one controller's hierarchy.
    pub fn controller_path(&self, controller: &str, rel: &Path) -> PathBuf {
        self.root.join(controller).join(rel)
    }

    /// Controllers mounted under the root, among [`V1_CONTROLLERS`].
    fn mounted(&self) -> Vec<&'static str> {
        V1_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| self.root.join(c).is_dir())
            .collect()
    }

    /// A new cpuset cgroup starts with empty `cpus`/`mems`; copy them from the parent at every
    /// level so that processes can join (what `cgroup.clone_children` would do).
    fn init_cpuset(&self, rel: &Path) -> Result<()> {
        let base = self.root.join("cpuset");
        let mut dir = base.clone();
        for comp in rel.components() {
            let parent = dir.clone();
            dir.push(comp);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let cur = read_opt(&dir.join(file))?.unwrap_or_default();
                if cur.trim().is_empty() {
                    if let Some(v) = read_opt(&parent.join(file))? {
                        if !v.trim().is_empty() {
                            write(&dir.join(file), v.trim())?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl CgroupManager for V1Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn create(&self, path: &Path, resources: &Resources) -> Result<()> {
        let rel = check_relative(path)?;
        let mounted = self.mounted();
        if mounted.is_empty() {
            return Err(CgroupError::UnknownRoot(self.root.clone()));
        }
        for c in &mounted {
            mkdir_all(&self.controller_path(c, &rel))?;
        }
        if mounted.contains(&"cpuset") {
            self.init_cpuset(&rel)?;
        }
        self.update(&rel, resources)
    }

    fn update(&self, path: &Path, r: &Resources) -> Result<()> {
        let rel = check_relative(path)?;
        let cpu = self.controller_path("cpu", &rel);
        if let Some(shares) = r.cpu_shares {
            write(&cpu.join("cpu.shares"), &shares.to_string())?;
        }
        if let Some(period) = r.cpu_period {
            write(&cpu.join("cpu.cfs_period_us"), &period.to_string())?;
        }
        if let Some(quota) = r.cpu_quota {
            write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        if let Some(mem) = r.memory_limit {
            let p = self
                .controller_path("memory", &rel)
                .join("memory.limit_in_bytes");
            write(&p, &mem.to_string())?;
        }
        if let Some(pids) = r.pids_limit {
            let p = self.controller_path("pids", &rel).join("pids.max");
            let v = if pids < 0 {
                "max".to_string()
            } else {
                pids.to_string()
            };
            write(&p, &v)?;
        }
        if let Some(cpus) = &r.cpuset_cpus {
            write(
                &self.controller_path("cpuset", &rel).join("cpuset.cpus"),
                cpus,
            )?;
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let rel = check_relative(path)?;
        if rel.as_os_str().is_empty() {
            return Err(CgroupError::BadPath(path.to_owned()));
        }
        let procs = self.pids(&rel).unwrap_or_default();
        if !procs.is_empty() {
            return Err(CgroupError::Busy {
                path: self.controller_path("memory", &rel),
                pids: procs,
            });
        }
        for c in self.mounted() {
            rmdir_tree(&self.controller_path(c, &rel))?;
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let Ok(rel) = check_relative(path) else {
            return false;
        };
        let mounted = self.mounted();
        !mounted.is_empty()
            && mounted
                .iter()
                .all(|c| self.controller_path(c, &rel).is_dir())
    }

    fn add_pid(&self, path: &Path, pid: u32) -> Result<()> {
        let rel = check_relative(path)?;
        let mut seen = Vec::new();
        for c in self.mounted() {
            let dir = self.controller_path(c, &rel);
            // `cpu` and `cpuacct` are often one mount reached through two symlinks.
            let canon = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if seen.contains(&canon) {
                continue;
            }
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
            seen.push(canon);
        }
        Ok(())
    }

    fn pids(&self, path: &Path) -> Result<Vec<u32>> {
        let rel = check_relative(path)?;
        let mut all = Vec::new();
        for c in self.mounted() {
            let p = self.controller_path(c, &rel).join("cgroup.procs");
            if let Some(text) = read_opt(&p)? {
                for pid in parse_pids(&p, &text)? {
                    if !all.contains(&pid) {
                        all.push(pid);
                    }
                }
            }
        }
        Ok(all)
    }

    fn stats(&self, path: &Path) -> Result<CgroupStats> {
        let rel = check_relative(path)?;
        let mut s = CgroupStats::default();
        let usage = self.controller_path("cpuacct", &rel).join("cpuacct.usage");
        if let Some(t) = read_opt(&usage)? {
            s.cpu_usage_nanos = parse_u64(&usage, &t)?;
        }
        let cpu_stat = self.controller_path("cpu", &rel).join("cpu.stat");
        if let Some(t) = read_opt(&cpu_stat)? {
            s.cpu_periods = flat_key(&cpu_stat, &t, "nr_periods")?;
            s.cpu_throttled_periods = flat_key(&cpu_stat, &t, "nr_throttled")?;
            s.cpu_throttled_nanos = flat_key(&cpu_stat, &t, "throttled_time")?;
        }
        let mem = self.controller_path("memory", &rel);
        let usage_file = mem.join("memory.usage_in_bytes");
        if let Some(t) = read_opt(&usage_file)? {
            s.memory_usage_bytes = parse_u64(&usage_file, &t)?;
            let stat = mem.join("memory.stat");
            let text = read(&stat)?;
            let inactive = flat_key(&stat, &text, "total_inactive_file")?;
            s.memory_working_set_bytes = working_set(s.memory_usage_bytes, inactive);
        }
        let oom = mem.join("memory.oom_control");
        if let Some(t) = read_opt(&oom)? {
            s.oom_kills = flat_key(&oom, &t, "oom_kill")?;
        }
        let pids = self.controller_path("pids", &rel).join("pids.current");
        if let Some(t) = read_opt(&pids)? {
            s.pids_current = parse_u64(&pids, &t)?;
        }
        Ok(s)
    }
}
