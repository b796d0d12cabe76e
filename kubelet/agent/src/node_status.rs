//! Node registration and status (upstream `kubelet_node_status.go`): the Node object with
//! capacity, allocatable, labels, addresses, nodeInfo and conditions, re-reported when it
//! changes and at least every `node_status_report_frequency`.

use std::net::IpAddr;
use std::time::Instant;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{KubeletConfig, KUBELET_VERSION, RUNTIME_VERSION};
use crate::error::KubeletError;
use crate::node_info::{probe, MachineInfo};

/// Memory kept free for the system: upstream's default hard eviction threshold
/// `memory.available<100Mi`, subtracted from allocatable.
pub const EVICTION_HARD_MEMORY: u64 = 100 << 20;
/// Upstream's default `nodefs.available<10%`.
pub const EVICTION_HARD_NODEFS_PERCENT: u64 = 10;

/// RFC 3339 `now`, seconds precision (`metav1.Time`).
pub fn now_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Capacity and allocatable of a machine (cpu, memory, pods, ephemeral-storage), as
/// upstream reports them: memory in `Ki`, storage in `Ki` for capacity and bytes after the
/// eviction reserve for allocatable.
pub fn resources(m: &MachineInfo, max_pods: u32) -> (Value, Value) {
    let capacity = json!({
        "cpu": m.cpus.to_string(),
        "ephemeral-storage": format!("{}Ki", m.ephemeral_storage_bytes / 1024),
        "memory": format!("{}Ki", m.memory_bytes / 1024),
        "pods": max_pods.to_string(),
    });
    let alloc_mem = m.memory_bytes.saturating_sub(EVICTION_HARD_MEMORY);
    let alloc_storage =
        m.ephemeral_storage_bytes - m.ephemeral_storage_bytes * EVICTION_HARD_NODEFS_PERCENT / 100;
    let allocatable = json!({
        "cpu": m.cpus.to_string(),
        "ephemeral-storage": alloc_storage.to_string(),
        "memory": format!("{}Ki", alloc_mem / 1024),
        "pods": max_pods.to_string(),
    });
    (capacity, allocatable)
}

/// The labels the kubelet sets on its node (upstream's well-known set plus `--node-labels`).
pub fn node_labels(cfg: &KubeletConfig, arch: &str) -> Value {
    let mut labels = serde_json::Map::new();
    for (k, v) in [
        ("beta.kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("kubernetes.io/hostname", cfg.node_name.as_str()),
        ("kubernetes.io/os", "linux"),
    ] {
        labels.insert(k.into(), json!(v));
    }
    for (k, v) in &cfg.node_labels {
        labels.insert(k.clone(), json!(v));
    }
    Value::Object(labels)
}

/// The Node object the kubelet registers.
pub fn initial_node(cfg: &KubeletConfig, m: &MachineInfo) -> Value {
    let mut spec = json!({});
    if !cfg.register_with_taints.is_empty() {
        spec["taints"] = serde_json::to_value(&cfg.register_with_taints).unwrap_or(Value::Null);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.node_name,
            "labels": node_labels(cfg, &m.architecture),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": spec,
    })
}

/// One node condition as the kubelet evaluates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Ready`, `MemoryPressure`, ...
    pub type_: &'static str,
    /// `True` or `False`.
    pub status: &'static str,
    /// Upstream's reason.
    pub reason: &'static str,
    /// Upstream's message.
    pub message: String,
}

/// Evaluates the four conditions (upstream's setters): pressure from `MemAvailable` and the
/// data filesystem's free space against the default hard eviction thresholds.
pub fn conditions(
    mem_available: Option<u64>,
    fs_free_percent: Option<u64>,
    network: Result<(), String>,
) -> Vec<Condition> {
    let mem_pressure = mem_available.is_some_and(|a| a < EVICTION_HARD_MEMORY);
    let disk_pressure = fs_free_percent.is_some_and(|p| p < EVICTION_HARD_NODEFS_PERCENT);
    let ready = match network {
        Ok(()) => Condition {
            type_: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "kubelet is posting ready status".into(),
        },
        Err(e) => Condition {
            type_: "Ready",
            status: "False",
            reason: "KubeletNotReady",
            message: format!(
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:{e}"
            ),
        },
    };
    vec![
        if mem_pressure {
            Condition {
                type_: "MemoryPressure",
                status: "True",
                reason: "KubeletHasInsufficientMemory",
                message: "kubelet has insufficient memory available".into(),
            }
        } else {
            Condition {
                type_: "MemoryPressure",
                status: "False",
                reason: "KubeletHasSufficientMemory",
                message: "kubelet has sufficient memory available".into(),
            }
        },
        if disk_pressure {
            Condition {
                type_: "DiskPressure",
                status: "True",
                reason: "KubeletHasDiskPressure",
                message: "kubelet has disk pressure".into(),
            }
        } else {
            Condition {
                type_: "DiskPressure",
                status: "False",
                reason: "KubeletHasNoDiskPressure",
                message: "kubelet has no disk pressure".into(),
            }
        },
        Condition {
            type_: "PIDPressure",
            status: "False",
            reason: "KubeletHasSufficientPID",
            message: "kubelet has sufficient PID available".into(),
        },
        ready,
    ]
}

fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

fn fs_free_percent(path: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    (s.f_blocks > 0).then(|| s.f_bavail * 100 / s.f_blocks)
}

/// Registers the node and keeps its status current.
pub struct NodeStatusManager {
    cfg: KubeletConfig,
    api: Api<Node>,
    machine: MachineInfo,
    node_ip: IpAddr,
    images: bramble_images::ImageStore,
    /// (conditions, when each last transitioned) of the last report.
    last: Option<(Vec<Condition>, Vec<String>)>,
    last_report: Option<Instant>,
    last_images: Value,
}

impl NodeStatusManager {
    /// A manager for the node `cfg.node_name`.
    pub fn new(
        cfg: KubeletConfig,
        client: Client,
        node_ip: IpAddr,
        images: bramble_images::ImageStore,
    ) -> Self {
        let machine = probe(&cfg.data_dir);
        NodeStatusManager {
            api: Api::all(client),
            cfg,
            machine,
            node_ip,
            images,
            last: None,
            last_report: None,
            last_images: Value::Null,
        }
    }

    /// The machine facts reported.
    pub fn machine(&self) -> &MachineInfo {
        &self.machine
    }

    /// Creates the Node, or adopts an existing one (re-applying the kubelet's labels), as
    /// upstream's `registerWithAPIServer`.
    pub async fn register(&self) -> Result<(), KubeletError> {
        let node = initial_node(&self.cfg, &self.machine);
        let typed: Node = serde_json::from_value(node.clone())?;
        match self.api.create(&PostParams::default(), &typed).await {
            Ok(_) => info!(node = %self.cfg.node_name, "node registered"),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let patch = json!({"metadata": {"labels": node["metadata"]["labels"]}});
                self.api
                    .patch(
                        &self.cfg.node_name,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
                info!(node = %self.cfg.node_name, "node already registered, adopted");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// The status patch for the current state; `None` when nothing changed and a report is
    /// not due.
    fn status_patch(&mut self, force: bool) -> Option<Value> {
        let network = self.cfg.network.status().map_err(|e| e.to_string());
        let conds = conditions(
            mem_available(),
            fs_free_percent(&self.cfg.data_dir),
            network,
        );
        let now = now_time();
        let transitions: Vec<String> = conds
            .iter()
            .enumerate()
            .map(|(i, c)| match &self.last {
                Some((old, times)) if old[i].status == c.status => times[i].clone(),
                _ => now.clone(),
            })
            .collect();
        let images: Value = self
            .images
            .node_status_images(50)
            .map(|list| {
                list.into_iter()
                    .map(|i| json!({"names": i.names, "sizeBytes": i.size_bytes}))
                    .collect()
            })
            .unwrap_or_else(|_| json!([]));
        let changed =
            self.last.as_ref().map(|(c, _)| c) != Some(&conds) || images != self.last_images;
        let due = self
            .last_report
            .is_none_or(|t| t.elapsed() >= self.cfg.node_status_report_frequency);
        if !(force || changed || due) {
            return None;
        }
        let (capacity, allocatable) = resources(&self.machine, self.cfg.max_pods);
        let m = &self.machine;
        let conditions: Vec<Value> = conds
            .iter()
            .zip(&transitions)
            .map(|(c, t)| {
                json!({
                    "type": c.type_, "status": c.status, "reason": c.reason, "message": c.message,
                    "lastHeartbeatTime": now, "lastTransitionTime": t,
                })
            })
            .collect();
        let patch = json!({"status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": self.node_ip.to_string()},
                {"type": "Hostname", "address": self.cfg.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.cfg.kubelet_port}},
            "nodeInfo": {
                "machineID": m.machine_id,
                "systemUUID": m.system_uuid,
                "bootID": m.boot_id,
                "kernelVersion": m.kernel_version,
                "osImage": m.os_image,
                "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": m.architecture,
            },
            "images": images,
        }});
        self.last = Some((conds, transitions));
        self.last_images = images;
        Some(patch)
    }

    /// Writes the node status now (or only when changed/due unless `force`).
    pub async fn update(&mut self, force: bool) -> Result<(), KubeletError> {
        let Some(patch) = self.status_patch(force) else {
            return Ok(());
        };
        self.api
            .patch_status(
                &self.cfg.node_name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        self.last_report = Some(Instant::now());
        Ok(())
    }

    /// Registers (retrying until it works), then updates status every
    /// `node_status_update_frequency` until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut delay = std::time::Duration::from_millis(200);
        loop {
            match self.register().await {
                Ok(()) => break,
                Err(e) => warn!(error = %e, "registering node"),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
            delay = (delay * 2).min(std::time::Duration::from_secs(7));
        }
        let mut force = true;
        loop {
            if let Err(e) = self.update(force).await {
                warn!(error = %e, "updating node status");
                force = true;
            } else {
                force = false;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.node_status_update_frequency) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocatable_subtracts_the_eviction_reserve() {
        let m = MachineInfo {
            cpus: 4,
            memory_bytes: 4 << 30,
            ephemeral_storage_bytes: 100 << 30,
            kernel_version: "6.1".into(),
            os_image: "x".into(),
            architecture: "arm64".into(),
            boot_id: String::new(),
            machine_id: String::new(),
            system_uuid: String::new(),
        };
        let (cap, alloc) = resources(&m, 110);
        assert_eq!(cap["memory"], "4194304Ki");
        assert_eq!(alloc["memory"], "4091904Ki");
        assert_eq!(cap["cpu"], "4");
        assert_eq!(alloc["pods"], "110");
        assert_eq!(
            alloc["ephemeral-storage"],
            ((100u64 << 30) * 9 / 10).to_string()
        );
    }

    #[test]
    fn conditions_follow_thresholds() {
        let c = conditions(Some(1 << 30), Some(50), Ok(()));
        assert_eq!(
            c.iter().map(|c| c.type_).collect::<Vec<_>>(),
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        assert!(c.iter().take(3).all(|c| c.status == "False"));
        assert_eq!(c[3].reason, "KubeletReady");
        let c = conditions(Some(10 << 20), Some(5), Err("no cni".into()));
        assert_eq!(c[0].reason, "KubeletHasInsufficientMemory");
        assert_eq!(c[1].status, "True");
        assert_eq!(c[3].status, "False");
        assert!(c[3].message.contains("NetworkReady=false"));
    }
}
