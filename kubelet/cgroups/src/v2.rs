//! cgroup v2: the unified hierarchy, controllers enabled through parents' `cgroup.subtree_control`.

use std::path::{Path, PathBuf};

use crate::convert::cpu_shares_to_weight;
use crate::error::{CgroupError, Result};
use crate::fsutil::{
    check_relative, flat_key, mkdir_all, parse_pids, parse_u64, read, read_opt, rmdir_tree, write,
};
use crate::manager::{working_set, CgroupManager, CgroupStats, CgroupVersion, Resources};

/// Controllers the kubelet enables for pod cgroups when the kernel offers them.
pub const V2_CONTROLLERS: &[&str] = &["cpu", "cpuset", "memory", "pids", "io", "hugetlb"];

/// CFS period used when a quota is written without an explicit period (upstream default).
const DEFAULT_PERIOD: u64 = 100_000;

/// cgroup v2 manager rooted at the unified mount.
#[derive(Debug, Clone)]
pub struct V2Manager {
    /// The unified mount point, e.g. `/sys/fs/cgroup`.
    pub root: PathBuf,
}

impl V2Manager {
    /// A manager for the unified hierarchy at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory of `rel`.
    pub fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// Controllers the root offers, among [`V2_CONTROLLERS`].
    fn available(&self) -> Result<Vec<&'static str>> {
        let p = self.root.join("cgroup.controllers");
        let text = read(&p)?;
        let offered: Vec<&str> = text.split_whitespace().collect();
        Ok(V2_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| offered.contains(c))
            .collect())
    }

    /// Enables the available controllers in `dir/cgroup.subtree_control` (one write).
    fn enable_in(&self, dir: &Path, wanted: &[&str]) -> Result<()> {
        let file = dir.join("cgroup.subtree_control");
        let current = read_opt(&file)?.unwrap_or_default();
        let have: Vec<&str> = current.split_whitespace().collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|c| !have.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        write(&file, &missing.join(" "))
    }
}

impl CgroupManager for V2Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn create(&self, path: &Path, resources: &Resources) -> Result<()> {
        let rel = check_relative(path)?;
        if rel.as_os_str().is_empty() {
            return Err(CgroupError::BadPath(path.to_owned()));
        }
        let wanted = self.available()?;
        // Every ancestor (the root included) must delegate the controllers to its children.
        let mut dir = self.root.clone();
        for comp in rel.components() {
            self.enable_in(&dir, &wanted)?;
            dir.push(comp);
            if !dir.is_dir() {
                mkdir_all(&dir)?;
            }
        }
        self.update(&rel, resources)
    }

    fn update(&self, path: &Path, r: &Resources) -> Result<()> {
        let rel = check_relative(path)?;
        let dir = self.path(&rel);
        if let Some(shares) = r.cpu_shares {
            write(
                &dir.join("cpu.weight"),
                &cpu_shares_to_weight(shares).to_string(),
            )?;
        }
        if r.cpu_quota.is_some() || r.cpu_period.is_some() {
            let period = r.cpu_period.unwrap_or(DEFAULT_PERIOD);
            let quota = match r.cpu_quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        if let Some(mem) = r.memory_limit {
            let v = if mem < 0 {
                "max".to_string()
            } else {
                mem.to_string()
            };
            write(&dir.join("memory.max"), &v)?;
        }
        if let Some(pids) = r.pids_limit {
            let v = if pids < 0 {
                "max".to_string()
            } else {
                pids.to_string()
            };
            write(&dir.join("pids.max"), &v)?;
        }
        if let Some(cpus) = &r.cpuset_cpus {
            write(&dir.join("cpuset.cpus"), cpus)?;
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
                path: self.path(&rel),
                pids: procs,
            });
        }
        rmdir_tree(&self.path(&rel))
    }

    fn exists(&self, path: &Path) -> bool {
        check_relative(path)
            .map(|rel| self.path(&rel).is_dir())
            .unwrap_or(false)
    }

    fn add_pid(&self, path: &Path, pid: u32) -> Result<()> {
        let rel = check_relative(path)?;
        write(&self.path(&rel).join("cgroup.procs"), &pid.to_string())
    }

    fn pids(&self, path: &Path) -> Result<Vec<u32>> {
        let rel = check_relative(path)?;
        let p = self.path(&rel).join("cgroup.procs");
        match read_opt(&p)? {
            Some(text) => parse_pids(&p, &text),
            None => Ok(Vec::new()),
        }
    }

    fn stats(&self, path: &Path) -> Result<CgroupStats> {
        let rel = check_relative(path)?;
        let dir = self.path(&rel);
        let mut s = CgroupStats::default();
        let cpu_stat = dir.join("cpu.stat");
        if let Some(t) = read_opt(&cpu_stat)? {
            s.cpu_usage_nanos = flat_key(&cpu_stat, &t, "usage_usec")?.map(|u| u * 1000);
            s.cpu_periods = flat_key(&cpu_stat, &t, "nr_periods")?;
            s.cpu_throttled_periods = flat_key(&cpu_stat, &t, "nr_throttled")?;
            s.cpu_throttled_nanos = flat_key(&cpu_stat, &t, "throttled_usec")?.map(|u| u * 1000);
        }
        let current = dir.join("memory.current");
        if let Some(t) = read_opt(&current)? {
            s.memory_usage_bytes = parse_u64(&current, &t)?;
            let stat = dir.join("memory.stat");
            let inactive = match read_opt(&stat)? {
                Some(text) => flat_key(&stat, &text, "inactive_file")?,
                None => None,
            };
            s.memory_working_set_bytes = working_set(s.memory_usage_bytes, inactive);
        }
        let events = dir.join("memory.events");
        if let Some(t) = read_opt(&events)? {
            s.oom_kills = flat_key(&events, &t, "oom_kill")?;
        }
        let pids = dir.join("pids.current");
        if let Some(t) = read_opt(&pids)? {
            s.pids_current = parse_u64(&pids, &t)?;
        }
        Ok(s)
    }
}
