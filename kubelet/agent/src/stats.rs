//! Resource usage from cgroup statistics (the kubelet's cAdvisor part): every sampling
//! interval the node (root cgroup), each pod (its pod cgroup) and each running container
//! (its container cgroup) are read; cpu rates (`usageNanoCores`) come from the difference
//! of cumulative usage between two samples. The latest sample is kept as upstream's
//! Summary API document ([`bramble_kubelet_server::stats::StatsProvider`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bramble_cgroups::{manager_for, CgroupManager, CgroupStats};
use bramble_runtime::{ContainerRuntime, ContainerState};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::warn;

use crate::error::KubeletError;
use crate::eviction::signals::meminfo_working_set;
use crate::node_status::now_time;
use crate::pod_spec::{pod_ids, pod_resources, qos_class};
use crate::runtime_pod::{container_name, group, is_running};
use crate::streaming::PodTable;

/// How often usage is sampled (cAdvisor's housekeeping is 10-15 s).
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Samples usage and keeps the latest Summary.
pub struct StatsCollector {
    cgroups: Box<dyn CgroupManager>,
    parent: PathBuf,
    node_name: String,
    memory_capacity: u64,
    nodefs: PathBuf,
    imagefs: PathBuf,
    start_time: String,
    /// Cumulative cpu nanoseconds and when, per cgroup path.
    previous: Mutex<HashMap<PathBuf, (u64, Instant)>>,
    latest: RwLock<Option<Value>>,
}

impl bramble_kubelet_server::stats::StatsProvider for StatsCollector {
    fn summary(&self) -> Option<Value> {
        self.latest.read().expect("stats").clone()
    }
}

fn fs_stats(path: &Path, now: &str) -> Value {
    let mut dir = path.to_path_buf();
    while !dir.exists() && dir.pop() {}
    match rustix::fs::statvfs(&dir) {
        Ok(s) => {
            let cap = s.f_blocks * s.f_frsize;
            let avail = s.f_bavail * s.f_frsize;
            json!({
                "time": now, "availableBytes": avail, "capacityBytes": cap,
                "usedBytes": cap - s.f_bfree * s.f_frsize,
                "inodesFree": s.f_ffree, "inodes": s.f_files, "inodesUsed": s.f_files - s.f_ffree,
            })
        }
        Err(_) => json!({"time": now}),
    }
}

impl StatsCollector {
    /// A collector over the hierarchy at `cgroup_root` with `kubepods` under `parent`.
    pub fn new(
        cgroup_root: &Path,
        parent: &Path,
        node_name: &str,
        memory_capacity: u64,
        nodefs: &Path,
        imagefs: &Path,
    ) -> Result<Self, KubeletError> {
        Ok(StatsCollector {
            cgroups: manager_for(cgroup_root)?,
            parent: parent.to_path_buf(),
            node_name: node_name.to_string(),
            memory_capacity,
            nodefs: nodefs.to_path_buf(),
            imagefs: imagefs.to_path_buf(),
            start_time: now_time(),
            previous: Mutex::new(HashMap::new()),
            latest: RwLock::new(None),
        })
    }

    /// Nanocores used since the previous sample of `path` (`None` on the first).
    fn rate(&self, path: &Path, usage: u64, at: Instant) -> Option<u64> {
        let mut prev = self.previous.lock().expect("stats");
        let old = prev.insert(path.to_path_buf(), (usage, at));
        let (u0, t0) = old?;
        let dt = at.duration_since(t0).as_nanos();
        (dt > 0 && usage >= u0).then(|| ((usage - u0) as u128 * 1_000_000_000 / dt) as u64)
    }

    fn cpu_memory(&self, path: &Path, s: &CgroupStats, at: Instant, now: &str) -> (Value, Value) {
        let mut cpu = json!({"time": now});
        if let Some(u) = s.cpu_usage_nanos {
            cpu["usageCoreNanoSeconds"] = json!(u);
            if let Some(r) = self.rate(path, u, at) {
                cpu["usageNanoCores"] = json!(r);
            }
        }
        let mut memory = json!({"time": now});
        if let Some(u) = s.memory_usage_bytes {
            memory["usageBytes"] = json!(u);
        }
        if let Some(ws) = s.memory_working_set_bytes {
            memory["workingSetBytes"] = json!(ws);
        }
        (cpu, memory)
    }

    fn node(&self, at: Instant, now: &str) -> Value {
        let s = self.cgroups.stats(Path::new("")).unwrap_or_default();
        let (cpu, mut memory) = self.cpu_memory(Path::new(""), &s, at, now);
        let ws = s.memory_working_set_bytes.or_else(|| {
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| meminfo_working_set(&m))
        });
        if let Some(ws) = ws {
            memory["workingSetBytes"] = json!(ws);
            memory["availableBytes"] = json!(self.memory_capacity.saturating_sub(ws));
        }
        json!({
            "nodeName": self.node_name,
            "startTime": self.start_time,
            "cpu": cpu,
            "memory": memory,
            "fs": fs_stats(&self.nodefs, now),
            "runtime": {"imageFs": fs_stats(&self.imagefs, now)},
        })
    }

    /// Takes one sample of the node and of `pods` with their runtime containers.
    pub fn sample(&self, pods: &PodTable, containers: Vec<ContainerState>) -> Value {
        let at = Instant::now();
        let now = now_time();
        let mut by_uid = group(containers);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for pod in pods.all() {
            let (ns, name, uid) = pod_ids(&pod);
            let Some(rp) = by_uid.remove(&uid) else {
                continue;
            };
            if !rp.sandbox().is_some_and(is_running) {
                continue;
            }
            let qos = pod_resources(&pod)
                .map(|r| qos_class(&pod, &r))
                .unwrap_or(bramble_cgroups::QosClass::BestEffort);
            let path = self
                .parent
                .join(bramble_cgroups::qos::pod_cgroup_path(qos, &uid));
            let Ok(ps) = self.cgroups.stats(&path) else {
                continue;
            };
            seen.push(path.clone());
            let (cpu, memory) = self.cpu_memory(&path, &ps, at, &now);
            let mut cs = Vec::new();
            for c in rp.containers.iter().filter(|c| is_running(c)) {
                let Some(cname) = container_name(c) else {
                    continue;
                };
                let Ok(s) = self.cgroups.stats(&c.meta.cgroup_path) else {
                    continue;
                };
                seen.push(c.meta.cgroup_path.clone());
                let (cpu, memory) = self.cpu_memory(&c.meta.cgroup_path, &s, at, &now);
                cs.push(json!({
                    "name": cname, "startTime": c.meta.created_at, "cpu": cpu, "memory": memory,
                }));
            }
            let start = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| json!(t))
                .unwrap_or(Value::Null);
            out.push(json!({
                "podRef": {"name": name, "namespace": ns, "uid": uid},
                "startTime": start,
                "containers": cs,
                "cpu": cpu,
                "memory": memory,
                "process_stats": {"process_count": ps.pids_current.unwrap_or(0)},
            }));
        }
        self.previous
            .lock()
            .expect("stats")
            .retain(|p, _| p.as_os_str().is_empty() || seen.contains(p));
        json!({"node": self.node(at, &now), "pods": out})
    }

    /// Samples every [`SAMPLE_INTERVAL`] until `shutdown` turns true.
    pub async fn run<R: ContainerRuntime + 'static>(
        self: Arc<Self>,
        runtime: Arc<R>,
        pods: Arc<PodTable>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            match runtime.list_containers().await {
                Ok(all) => {
                    let me = self.clone();
                    let pods = pods.clone();
                    if let Ok(summary) =
                        tokio::task::spawn_blocking(move || me.sample(&pods, all)).await
                    {
                        *self.latest.write().expect("stats") = Some(summary);
                    }
                }
                Err(e) => warn!(error = %e, "listing containers for stats"),
            }
            tokio::select! {
                _ = tokio::time::sleep(SAMPLE_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rate_from_two_samples() {
        let c = StatsCollector {
            cgroups: Box::new(bramble_cgroups::V1Manager::new("/nonexistent")),
            parent: PathBuf::new(),
            node_name: "n".into(),
            memory_capacity: 1 << 30,
            nodefs: "/".into(),
            imagefs: "/".into(),
            start_time: now_time(),
            previous: Mutex::new(HashMap::new()),
            latest: RwLock::new(None),
        };
        let t0 = Instant::now();
        let p = Path::new("kubepods/pod1");
        assert_eq!(c.rate(p, 1_000, t0), None);
        // 0.5 s of cpu over 2 s: a quarter core.
        assert_eq!(
            c.rate(p, 1_000 + 500_000_000, t0 + Duration::from_secs(2)),
            Some(250_000_000)
        );
    }

    #[test]
    fn samples_the_node() {
        let root = Path::new("/sys/fs/cgroup");
        if bramble_cgroups::detect(root).is_err() {
            return;
        }
        let c = StatsCollector::new(
            root,
            Path::new(""),
            "n",
            1 << 40,
            Path::new("/"),
            Path::new("/"),
        )
        .unwrap();
        let s = c.sample(&PodTable::default(), Vec::new());
        assert!(s["node"]["memory"]["workingSetBytes"].as_u64().unwrap() > 0);
        assert_eq!(s["pods"], json!([]));
    }
}
