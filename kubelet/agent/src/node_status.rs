//! Node registration and status (upstream `kubelet_node_status.go`): the Node object with
//! capacity, allocatable, labels, addresses, nodeInfo and conditions, re-reported when it
//! changes and at least every `node_status_report_frequency`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{KubeletConfig, KUBELET_VERSION, RUNTIME_VERSION};
use crate::error::KubeletError;
use crate::eviction::{PressureState, Signal};
use crate::node_info::{probe, MachineInfo};

/// RFC 3339 `now`, seconds precision (`metav1.Time`).
pub fn now_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What the node reports and enforces: capacity, and allocatable = capacity minus
/// `kubeReserved`, `systemReserved` and the hard eviction thresholds (upstream's
/// `GetNodeAllocatableReservation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAllocatable {
    /// Allocatable cpu, millicores.
    pub cpu_milli: u64,
    /// Allocatable memory, bytes.
    pub memory: u64,
    /// Allocatable ephemeral storage, bytes.
    pub ephemeral_storage: u64,
    /// Memory pods may use together, bytes (the `kubepods` cgroup limit: capacity minus
    /// the reservations, without the eviction threshold).
    pub kubepods_memory: u64,
    /// Cpu pods may use together, millicores (`kubepods` shares).
    pub kubepods_cpu_milli: u64,
}

fn reserved(cfg: &KubeletConfig, resource: &str, milli: bool) -> u64 {
    [&cfg.kube_reserved, &cfg.system_reserved]
        .iter()
        .filter_map(|m| m.get(resource))
        .map(|q| if milli { q.milli_value() } else { q.value() }.max(0) as u64)
        .sum()
}

/// Allocatable of machine `m` under `cfg`'s reservations and hard eviction thresholds.
pub fn node_allocatable(m: &MachineInfo, cfg: &KubeletConfig) -> NodeAllocatable {
    let cpu = (m.cpus * 1000).saturating_sub(reserved(cfg, "cpu", true));
    let memory = m
        .memory_bytes
        .saturating_sub(reserved(cfg, "memory", false));
    let storage =
        m.ephemeral_storage_bytes
            .saturating_sub(reserved(cfg, "ephemeral-storage", false));
    let evict =
        |signal, capacity: u64| cfg.eviction.hard_amount(signal, capacity as i64).max(0) as u64;
    NodeAllocatable {
        cpu_milli: cpu,
        memory: memory.saturating_sub(evict(Signal::MemoryAvailable, m.memory_bytes)),
        ephemeral_storage: storage
            .saturating_sub(evict(Signal::NodeFsAvailable, m.ephemeral_storage_bytes)),
        kubepods_memory: memory,
        kubepods_cpu_milli: cpu,
    }
}

/// `1500m`, or whole cores as `2`.
fn cpu_quantity(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// Capacity and allocatable of a machine (cpu, memory, pods, ephemeral-storage), as
/// upstream reports them: memory in `Ki`, storage in `Ki` for capacity and bytes for
/// allocatable.
pub fn resources(m: &MachineInfo, cfg: &KubeletConfig) -> (Value, Value) {
    let capacity = json!({
        "cpu": m.cpus.to_string(),
        "ephemeral-storage": format!("{}Ki", m.ephemeral_storage_bytes / 1024),
        "memory": format!("{}Ki", m.memory_bytes / 1024),
        "pods": cfg.max_pods.to_string(),
    });
    let a = node_allocatable(m, cfg);
    let allocatable = json!({
        "cpu": cpu_quantity(a.cpu_milli),
        "ephemeral-storage": a.ephemeral_storage.to_string(),
        "memory": format!("{}Ki", a.memory / 1024),
        "pods": cfg.max_pods.to_string(),
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

/// Evaluates the four conditions (upstream's setters): the pressure conditions as the
/// eviction manager holds them, Ready from the network plugin.
pub fn conditions(pressure: &PressureState, network: Result<(), String>) -> Vec<Condition> {
    let mem_pressure = pressure.has("MemoryPressure");
    let disk_pressure = pressure.has("DiskPressure");
    let pid_pressure = pressure.has("PIDPressure");
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
        if pid_pressure {
            Condition {
                type_: "PIDPressure",
                status: "True",
                reason: "KubeletHasInsufficientPID",
                message: "kubelet has insufficient PID available".into(),
            }
        } else {
            Condition {
                type_: "PIDPressure",
                status: "False",
                reason: "KubeletHasSufficientPID",
                message: "kubelet has sufficient PID available".into(),
            }
        },
        ready,
    ]
}

/// As upstream's `fastStatusUpdateOnce`: after start, until the node reported Ready or
/// [`NODE_READY_GRACE_PERIOD`] passed, whether the node could turn Ready (the network plugin
/// has its configuration, e.g. once the pod CIDR is known) is checked this often and reported
/// at once, instead of at the next regular status update.
pub const FAST_STATUS_CHECK: Duration = Duration::from_millis(100);
/// Upstream's `nodeReadyGracePeriod`.
pub const NODE_READY_GRACE_PERIOD: Duration = Duration::from_secs(120);

/// Whether the kubelet still looks for readiness every [`FAST_STATUS_CHECK`]: the last
/// report was not Ready and the kubelet started less than [`NODE_READY_GRACE_PERIOD`] ago.
pub fn fast_status_phase(reported_ready: bool, since_start: Duration) -> bool {
    !reported_ready && since_start < NODE_READY_GRACE_PERIOD
}

/// Registers the node and keeps its status current.
pub struct NodeStatusManager {
    cfg: KubeletConfig,
    api: Api<Node>,
    machine: MachineInfo,
    node_ip: IpAddr,
    images: bramble_images::ImageStore,
    pressure: Arc<PressureState>,
    /// (conditions, when each last transitioned) of the last report.
    last: Option<(Vec<Condition>, Vec<String>)>,
    last_report: Option<Instant>,
    last_images: Value,
    /// Whether the API holds Ready=True from this kubelet's last successful report.
    ready_stored: bool,
}

impl NodeStatusManager {
    /// A manager for the node `cfg.node_name`.
    pub fn new(
        cfg: KubeletConfig,
        client: Client,
        node_ip: IpAddr,
        images: bramble_images::ImageStore,
        pressure: Arc<PressureState>,
    ) -> Self {
        let machine = probe(&cfg.data_dir);
        NodeStatusManager {
            api: Api::all(client),
            cfg,
            machine,
            node_ip,
            images,
            pressure,
            last: None,
            last_report: None,
            last_images: Value::Null,
            ready_stored: false,
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
                // As upstream: read the existing Node and write only when the kubelet's labels
                // are not all on it (a reboot usually finds them).
                let existing = self.api.get(&self.cfg.node_name).await?;
                let have = existing.metadata.labels.unwrap_or_default();
                let want = typed.metadata.labels.clone().unwrap_or_default();
                if want.iter().any(|(k, v)| have.get(k) != Some(v)) {
                    let patch = json!({"metadata": {"labels": node["metadata"]["labels"]}});
                    self.api
                        .patch(
                            &self.cfg.node_name,
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await?;
                }
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
        let conds = conditions(&self.pressure, network);
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
        let (capacity, allocatable) = resources(&self.machine, &self.cfg);
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

    /// Whether the last report said Ready=True.
    fn reported_ready(&self) -> bool {
        self.last.as_ref().is_some_and(|(conds, _)| {
            conds
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
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
        let ready = self.reported_ready();
        if ready != self.ready_stored {
            // As upstream's NodeReady / NodeNotReady event: when the node's readiness changed.
            info!(node = %self.cfg.node_name, ready, "node status: Ready changed");
        }
        self.ready_stored = ready;
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
        let started = Instant::now();
        let mut force = true;
        loop {
            if let Err(e) = self.update(force).await {
                warn!(error = %e, "updating node status");
                force = true;
            } else {
                force = false;
            }
            if fast_status_phase(self.reported_ready(), started.elapsed()) {
                let due = Instant::now() + self.cfg.node_status_update_frequency;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(FAST_STATUS_CHECK) => {}
                        _ = shutdown.changed() => return,
                    }
                    if Instant::now() >= due || self.cfg.network.status().is_ok() {
                        break;
                    }
                }
                continue;
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

    fn machine() -> MachineInfo {
        MachineInfo {
            cpus: 4,
            memory_bytes: 4 << 30,
            ephemeral_storage_bytes: 100 << 30,
            kernel_version: "6.1".into(),
            os_image: "x".into(),
            architecture: "arm64".into(),
            boot_id: String::new(),
            machine_id: String::new(),
            system_uuid: String::new(),
        }
    }

    #[test]
    fn readiness_is_looked_for_often_only_until_reported_or_the_grace_period() {
        assert!(fast_status_phase(false, Duration::ZERO));
        assert!(fast_status_phase(false, Duration::from_secs(119)));
        assert!(!fast_status_phase(true, Duration::from_secs(1)));
        assert!(!fast_status_phase(false, NODE_READY_GRACE_PERIOD));
    }

    #[test]
    fn allocatable_subtracts_the_eviction_reserve() {
        let cfg = KubeletConfig::new("n");
        let (cap, alloc) = resources(&machine(), &cfg);
        assert_eq!(cap["memory"], "4194304Ki");
        assert_eq!(alloc["memory"], "4091904Ki");
        assert_eq!(cap["cpu"], "4");
        assert_eq!(alloc["cpu"], "4");
        assert_eq!(alloc["pods"], "110");
        assert_eq!(
            alloc["ephemeral-storage"],
            ((100u64 << 30) * 9 / 10).to_string()
        );
    }

    #[test]
    fn allocatable_subtracts_reservations() {
        let mut cfg = KubeletConfig::new("n");
        crate::config_file::parse(
            "kubeReserved: {cpu: 250m, memory: 512Mi}\nsystemReserved: {cpu: 250m, memory: 512Mi, ephemeral-storage: 10Gi}\nevictionHard: {memory.available: 256Mi, nodefs.available: 5Gi}\n",
        )
        .unwrap()
        .apply(&mut cfg)
        .unwrap();
        let a = node_allocatable(&machine(), &cfg);
        assert_eq!(a.cpu_milli, 3500);
        assert_eq!(a.memory, (4 << 30) - (1 << 30) - (256 << 20));
        assert_eq!(a.kubepods_memory, 3 << 30);
        assert_eq!(a.ephemeral_storage, 85 << 30);
        let (_, alloc) = resources(&machine(), &cfg);
        assert_eq!(alloc["cpu"], "3500m");
    }

    #[test]
    fn conditions_follow_pressure() {
        let calm = PressureState::default();
        let c = conditions(&calm, Ok(()));
        assert_eq!(
            c.iter().map(|c| c.type_).collect::<Vec<_>>(),
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        assert!(c.iter().take(3).all(|c| c.status == "False"));
        assert_eq!(c[3].reason, "KubeletReady");
        let pressed = PressureState::default();
        pressed.set(["MemoryPressure", "PIDPressure"].into_iter().collect());
        let c = conditions(&pressed, Err("no cni".into()));
        assert_eq!(c[0].reason, "KubeletHasInsufficientMemory");
        assert_eq!(c[1].status, "False");
        assert_eq!(c[2].reason, "KubeletHasInsufficientPID");
        assert_eq!(c[3].status, "False");
        assert!(c[3].message.contains("NetworkReady=false"));
    }
}
