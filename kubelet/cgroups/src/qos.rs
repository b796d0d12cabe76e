//! Kubernetes QoS: class of a pod, pod and QoS-parent cgroup settings, `oom_score_adj`
//! (upstream `pkg/apis/core/v1/helper/qos`, `pkg/kubelet/cm`, `pkg/kubelet/qos/policy.go`).

use std::path::PathBuf;

use crate::convert::{milli_cpu_to_quota, milli_cpu_to_shares, MIN_SHARES, QUOTA_PERIOD};
use crate::manager::Resources;

/// Name of the cgroup holding every pod.
pub const KUBEPODS: &str = "kubepods";
/// `oom_score_adj` of Guaranteed (and node-critical) containers.
pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
/// `oom_score_adj` of BestEffort containers.
pub const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;
/// `oom_score_adj` of the pod's pause (infra) container.
pub const POD_INFRA_OOM_SCORE_ADJ: i32 = -998;

/// A pod's quality-of-service class (`status.qosClass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosClass {
    /// Every container has cpu and memory limits equal to its requests.
    Guaranteed,
    /// Some request or limit is set, but not Guaranteed.
    Burstable,
    /// No requests or limits at all.
    BestEffort,
}

impl QosClass {
    /// The API spelling (`Guaranteed`, `Burstable`, `BestEffort`).
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }

    /// The QoS parent cgroup, relative to the cgroup root (Guaranteed pods sit directly in
    /// `kubepods`).
    pub fn parent_cgroup(self) -> PathBuf {
        match self {
            QosClass::Guaranteed => PathBuf::from(KUBEPODS),
            QosClass::Burstable => PathBuf::from(KUBEPODS).join("burstable"),
            QosClass::BestEffort => PathBuf::from(KUBEPODS).join("besteffort"),
        }
    }
}

/// Requests and limits of one container, already parsed: millicores and bytes, 0 = unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// `resources.requests.cpu` in millicores.
    pub cpu_request_milli: u64,
    /// `resources.limits.cpu` in millicores.
    pub cpu_limit_milli: u64,
    /// `resources.requests.memory` in bytes.
    pub memory_request: u64,
    /// `resources.limits.memory` in bytes.
    pub memory_limit: u64,
}

/// The containers of one pod, split as in its spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResources {
    /// `spec.initContainers`.
    pub init_containers: Vec<ContainerResources>,
    /// `spec.containers`.
    pub containers: Vec<ContainerResources>,
}

impl PodResources {
    fn all(&self) -> impl Iterator<Item = &ContainerResources> {
        self.init_containers.iter().chain(self.containers.iter())
    }

    /// Effective request as upstream computes it: max(sum of app containers, largest init
    /// container), per resource. Returns (millicores, bytes).
    pub fn effective_requests(&self) -> (u64, u64) {
        let cpu: u64 = self.containers.iter().map(|c| c.cpu_request_milli).sum();
        let mem: u64 = self.containers.iter().map(|c| c.memory_request).sum();
        let init_cpu = self
            .init_containers
            .iter()
            .map(|c| c.cpu_request_milli)
            .max();
        let init_mem = self.init_containers.iter().map(|c| c.memory_request).max();
        (
            cpu.max(init_cpu.unwrap_or(0)),
            mem.max(init_mem.unwrap_or(0)),
        )
    }

    /// Effective limits, same rule as [`Self::effective_requests`]. Returns (millicores, bytes).
    pub fn effective_limits(&self) -> (u64, u64) {
        let cpu: u64 = self.containers.iter().map(|c| c.cpu_limit_milli).sum();
        let mem: u64 = self.containers.iter().map(|c| c.memory_limit).sum();
        let init_cpu = self.init_containers.iter().map(|c| c.cpu_limit_milli).max();
        let init_mem = self.init_containers.iter().map(|c| c.memory_limit).max();
        (
            cpu.max(init_cpu.unwrap_or(0)),
            mem.max(init_mem.unwrap_or(0)),
        )
    }

    /// The pod's QoS class, as upstream's `GetPodQOS` decides it from cpu and memory.
    pub fn qos_class(&self) -> QosClass {
        let mut req = (0u64, 0u64, false, false); // sums and "present" flags
        let mut lim = (0u64, 0u64, false, false);
        let mut guaranteed = true;
        for c in self.all() {
            if c.cpu_request_milli > 0 {
                req.0 += c.cpu_request_milli;
                req.2 = true;
            }
            if c.memory_request > 0 {
                req.1 += c.memory_request;
                req.3 = true;
            }
            if c.cpu_limit_milli > 0 {
                lim.0 += c.cpu_limit_milli;
                lim.2 = true;
            }
            if c.memory_limit > 0 {
                lim.1 += c.memory_limit;
                lim.3 = true;
            }
            if c.cpu_limit_milli == 0 || c.memory_limit == 0 {
                guaranteed = false;
            }
        }
        if !req.2 && !req.3 && !lim.2 && !lim.3 {
            return QosClass::BestEffort;
        }
        if guaranteed && req.2 && req.3 && req.0 == lim.0 && req.1 == lim.1 {
            return QosClass::Guaranteed;
        }
        QosClass::Burstable
    }

    /// Resources of the pod cgroup (upstream `ResourceConfigForPod`): shares from requests,
    /// CFS quota only when every container declares a cpu limit, memory limit only when
    /// every container declares one; BestEffort gets minimum shares. `pids_limit` is the
    /// kubelet's `podPidsLimit` (`None` or negative: unlimited).
    pub fn pod_cgroup_resources(&self, pids_limit: Option<i64>) -> Resources {
        let (cpu_req, _) = self.effective_requests();
        let (cpu_lim, mem_lim) = self.effective_limits();
        let cpu_limits_declared = self.all().all(|c| c.cpu_limit_milli > 0);
        let mem_limits_declared = self.all().all(|c| c.memory_limit > 0);
        let mut r = Resources {
            pids_limit: pids_limit.filter(|p| *p > 0),
            ..Resources::default()
        };
        match self.qos_class() {
            QosClass::BestEffort => r.cpu_shares = Some(MIN_SHARES),
            QosClass::Guaranteed | QosClass::Burstable => {
                r.cpu_shares = Some(milli_cpu_to_shares(cpu_req));
                if cpu_limits_declared {
                    r.cpu_quota = Some(milli_cpu_to_quota(cpu_lim, QUOTA_PERIOD));
                    r.cpu_period = Some(QUOTA_PERIOD);
                }
                if mem_limits_declared {
                    r.memory_limit = Some(mem_lim as i64);
                }
            }
        }
        r
    }
}

/// Resources of one container's own cgroup (upstream's container-level CRI settings):
/// shares from the request, quota from the limit, memory limit.
pub fn container_cgroup_resources(c: &ContainerResources, qos: QosClass) -> Resources {
    let mut r = Resources {
        cpu_shares: Some(if qos == QosClass::BestEffort {
            MIN_SHARES
        } else {
            milli_cpu_to_shares(c.cpu_request_milli)
        }),
        ..Resources::default()
    };
    if c.cpu_limit_milli > 0 {
        r.cpu_quota = Some(milli_cpu_to_quota(c.cpu_limit_milli, QUOTA_PERIOD));
        r.cpu_period = Some(QUOTA_PERIOD);
    }
    if c.memory_limit > 0 {
        r.memory_limit = Some(c.memory_limit as i64);
    }
    r
}

/// The pod cgroup path relative to the cgroup root: `<qos parent>/pod<uid>`.
pub fn pod_cgroup_path(qos: QosClass, pod_uid: &str) -> PathBuf {
    qos.parent_cgroup().join(format!("pod{pod_uid}"))
}

/// Settings of the QoS parents (upstream `qosContainerManager.setCPUCgroupConfig`):
/// `kubepods/burstable` gets shares for the sum of its pods' cpu requests, besteffort the
/// minimum. Returns (burstable, besteffort).
pub fn qos_parent_resources(pods: &[PodResources]) -> (Resources, Resources) {
    let burstable_milli: u64 = pods
        .iter()
        .filter(|p| p.qos_class() == QosClass::Burstable)
        .map(|p| p.effective_requests().0)
        .sum();
    let burstable = Resources {
        cpu_shares: Some(milli_cpu_to_shares(burstable_milli)),
        ..Resources::default()
    };
    let besteffort = Resources {
        cpu_shares: Some(MIN_SHARES),
        ..Resources::default()
    };
    (burstable, besteffort)
}

/// Settings of `kubepods` itself from node allocatable (upstream enforces allocatable on it):
/// shares for allocatable cpu, memory limit at allocatable memory, optional pids limit.
pub fn kubepods_resources(allocatable_milli_cpu: u64, allocatable_memory: u64) -> Resources {
    Resources {
        cpu_shares: Some(milli_cpu_to_shares(allocatable_milli_cpu)),
        memory_limit: (allocatable_memory > 0).then_some(allocatable_memory as i64),
        ..Resources::default()
    }
}

/// `oom_score_adj` of an app container (upstream `GetContainerOOMScoreAdjust`): Guaranteed
/// -997, BestEffort 1000, Burstable `1000 - 1000*memoryRequest/memoryCapacity` kept above
/// Guaranteed's (at least `1000 + -997 = 3`) and below BestEffort's (at most 999).
pub fn oom_score_adj(qos: QosClass, container_memory_request: u64, memory_capacity: u64) -> i32 {
    match qos {
        QosClass::Guaranteed => GUARANTEED_OOM_SCORE_ADJ,
        QosClass::BestEffort => BEST_EFFORT_OOM_SCORE_ADJ,
        QosClass::Burstable => {
            if memory_capacity == 0 {
                return BEST_EFFORT_OOM_SCORE_ADJ - 1;
            }
            let scaled = (1000u128 * container_memory_request as u128) / memory_capacity as u128;
            let adj = 1000i64 - scaled.min(2000) as i64;
            let floor = (1000 + GUARANTEED_OOM_SCORE_ADJ) as i64;
            if adj < floor {
                floor as i32
            } else if adj >= BEST_EFFORT_OOM_SCORE_ADJ as i64 {
                BEST_EFFORT_OOM_SCORE_ADJ - 1
            } else {
                adj as i32
            }
        }
    }
}
