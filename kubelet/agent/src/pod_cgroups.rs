//! The pod side of upstream's container manager: `kubepods` and its QoS parents, one cgroup
//! per pod under its QoS parent with the pod-level requests and limits.

use std::path::{Path, PathBuf};

use bramble_cgroups::qos::{kubepods_resources, pod_cgroup_path, KUBEPODS};
use bramble_cgroups::{manager_for, CgroupManager, CgroupStats, PodResources, QosClass, Resources};

use crate::error::KubeletError;

/// Pod cgroups under `<cgroup root>/<parent>/kubepods`.
pub struct PodCgroups {
    mgr: Box<dyn CgroupManager>,
    parent: PathBuf,
    pids_limit: Option<i64>,
}

impl PodCgroups {
    /// Cgroups on the hierarchy at `root` (v1 or v2, detected), with `kubepods` under the
    /// relative `parent`.
    pub fn new(root: &Path, parent: &Path) -> Result<Self, KubeletError> {
        Ok(PodCgroups {
            mgr: manager_for(root)?,
            parent: parent.to_path_buf(),
            pids_limit: None,
        })
    }

    /// Limits every pod cgroup to `limit` processes (`podPidsLimit`).
    pub fn with_pids_limit(mut self, limit: Option<i64>) -> Self {
        self.pids_limit = limit;
        self
    }

    /// Creates `kubepods` (limited to node allocatable) and the Burstable and BestEffort
    /// parents.
    pub fn init(
        &self,
        allocatable_milli_cpu: u64,
        allocatable_memory: u64,
    ) -> Result<(), KubeletError> {
        let top = self.parent.join(KUBEPODS);
        self.mgr.create(
            &top,
            &kubepods_resources(allocatable_milli_cpu, allocatable_memory),
        )?;
        for qos in [QosClass::Burstable, QosClass::BestEffort] {
            let shares = if qos == QosClass::BestEffort {
                Some(2)
            } else {
                None
            };
            self.mgr.create(
                &self.parent.join(qos.parent_cgroup()),
                &Resources {
                    cpu_shares: shares,
                    ..Default::default()
                },
            )?;
        }
        Ok(())
    }

    /// The pod's cgroup, relative to the cgroup root.
    pub fn pod_path(&self, qos: QosClass, uid: &str) -> PathBuf {
        self.parent.join(pod_cgroup_path(qos, uid))
    }

    /// Creates (or updates) the pod cgroup with the pod-level resources.
    pub fn ensure_pod(
        &self,
        qos: QosClass,
        uid: &str,
        res: &PodResources,
    ) -> Result<PathBuf, KubeletError> {
        let path = self.pod_path(qos, uid);
        let r = res.pod_cgroup_resources(self.pids_limit);
        if self.mgr.exists(&path) {
            self.mgr.update(&path, &r)?;
        } else {
            self.mgr.create(&path, &r)?;
        }
        Ok(path)
    }

    /// Removes a pod cgroup (after its containers are gone).
    pub fn remove(&self, path: &Path) -> Result<(), KubeletError> {
        if self.mgr.exists(path) {
            self.mgr.remove(path)?;
        }
        Ok(())
    }

    /// Usage figures of a cgroup.
    pub fn stats(&self, path: &Path) -> Result<CgroupStats, KubeletError> {
        Ok(self.mgr.stats(path)?)
    }
}
