//! The kubelet's configuration (what `bramble kubelet` flags fill in).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bramble_api::quantity::Quantity;
use k8s_openapi::api::core::v1::Taint;

use crate::error::KubeletError;
use crate::eviction::EvictionConfig;
use crate::network::{LoopbackOnly, PodNetwork};

/// Default `--data-dir`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/bramble/kubelet";
/// Default `--max-pods`, as upstream.
pub const DEFAULT_MAX_PODS: u32 = 110;
/// Default `--kubelet-port`, as upstream.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// `kubeletVersion` reported in `status.nodeInfo`.
pub const KUBELET_VERSION: &str = concat!("v1.33.0-bramble.", env!("CARGO_PKG_VERSION"));
/// `containerRuntimeVersion` reported in `status.nodeInfo`.
pub const RUNTIME_VERSION: &str = concat!("bramble://", env!("CARGO_PKG_VERSION"));

/// Everything the kubelet needs besides its API client.
#[derive(Clone)]
pub struct KubeletConfig {
    /// The Node object's name.
    pub node_name: String,
    /// Kubelet state: pod directories and container logs (`pods/<ns>_<name>_<uid>/...`).
    pub data_dir: PathBuf,
    /// The node's image store (shared with `bramble image`).
    pub image_dir: PathBuf,
    /// The container runtime's state root (containers survive kubelet restarts through it).
    pub runtime_dir: PathBuf,
    /// The cgroupfs mount (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// Cgroup under which `kubepods` is created, relative to `cgroup_root` (upstream's
    /// `--cgroup-root`); empty on a node.
    pub cgroup_parent: PathBuf,
    /// `status.capacity.pods`.
    pub max_pods: u32,
    /// `status.daemonEndpoints.kubeletEndpoint.Port`.
    pub kubelet_port: u16,
    /// The node's InternalIP; detected from the default route when `None`.
    pub node_ip: Option<IpAddr>,
    /// Extra node labels (`--node-labels`).
    pub node_labels: BTreeMap<String, String>,
    /// Taints registered with the node (`--register-with-taints`).
    pub register_with_taints: Vec<Taint>,
    /// The pod network plugin.
    pub network: Arc<dyn PodNetwork>,
    /// `--cluster-dns`/`--cluster-domain` (none: ClusterFirst pods get the node's DNS).
    pub cluster_dns: crate::pod_dns::ClusterDns,
    /// The `bramble` binary re-executed as the runtime helper (`/proc/self/exe`).
    pub exe: PathBuf,
    /// Registries reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// How often node status is checked (upstream `nodeStatusUpdateFrequency`, 10 s).
    pub node_status_update_frequency: Duration,
    /// How often node status is written when nothing changed (upstream
    /// `nodeStatusReportFrequency`, 5 min).
    pub node_status_report_frequency: Duration,
    /// Lease duration (upstream `nodeLeaseDurationSeconds`, 40); renewed every quarter of it.
    pub lease_duration_seconds: i32,
    /// The cluster CA (PEM) client certificates of the streaming server must chain to; the
    /// streaming server (logs, exec, attach, port-forward on `kubelet_port`) runs only when
    /// it is set.
    pub client_ca_pem: Option<String>,
    /// How often the runtime is relisted for container state changes (upstream PLEG: 1 s).
    pub relist_period: Duration,
    /// `kubeReserved`: resources (cpu, memory, ephemeral-storage, pid) kept from pods for
    /// Kubernetes daemons; subtracted from allocatable.
    pub kube_reserved: BTreeMap<String, Quantity>,
    /// `systemReserved`: resources kept for the OS; subtracted from allocatable.
    pub system_reserved: BTreeMap<String, Quantity>,
    /// Eviction thresholds, periods and image GC thresholds.
    pub eviction: EvictionConfig,
    /// `podPidsLimit`: the pids limit of every pod cgroup (`None`: unlimited).
    pub pod_pids_limit: Option<i64>,
    /// `--pod-manifest-path` / `staticPodPath`: the static pod directory (`None`:
    /// `<data_dir>/manifests`).
    pub static_pod_path: Option<PathBuf>,
    /// `fileCheckFrequency`: how often the static pod directory is read.
    pub file_check_frequency: Duration,
}

impl KubeletConfig {
    /// Defaults for a node called `node_name`, with loopback-only pod networking.
    pub fn new(node_name: impl Into<String>) -> Self {
        KubeletConfig {
            node_name: node_name.into(),
            data_dir: DEFAULT_DATA_DIR.into(),
            image_dir: bramble_images::cli::DEFAULT_DATA_DIR.into(),
            runtime_dir: bramble_runtime::client::default_state_root(),
            cgroup_root: "/sys/fs/cgroup".into(),
            cgroup_parent: PathBuf::new(),
            max_pods: DEFAULT_MAX_PODS,
            kubelet_port: DEFAULT_KUBELET_PORT,
            node_ip: None,
            node_labels: BTreeMap::new(),
            register_with_taints: Vec::new(),
            network: Arc::new(LoopbackOnly),
            cluster_dns: Default::default(),
            exe: "/proc/self/exe".into(),
            insecure_registries: Vec::new(),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(300),
            lease_duration_seconds: 40,
            relist_period: Duration::from_secs(1),
            client_ca_pem: None,
            kube_reserved: BTreeMap::new(),
            system_reserved: BTreeMap::new(),
            eviction: EvictionConfig::default(),
            pod_pids_limit: None,
            static_pod_path: None,
            file_check_frequency: Duration::from_secs(20),
        }
    }

    /// The static pod directory, and whether it is the default one.
    pub fn static_pods_dir(&self) -> (PathBuf, bool) {
        match &self.static_pod_path {
            Some(p) => (p.clone(), false),
            None => (self.data_dir.join("manifests"), true),
        }
    }
}

/// Parses `--node-labels` (`k=v,k2=v2`).
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, KubeletError> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if k.is_empty() {
            return Err(KubeletError::Config(format!("invalid node label {part:?}")));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Parses `--register-with-taints` (`key=value:Effect,key:Effect`), as upstream's
/// `ParseTaints`.
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, KubeletError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kv, effect) = part
            .rsplit_once(':')
            .ok_or_else(|| KubeletError::Config(format!("invalid taint spec: {part}")))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(KubeletError::Config(format!(
                "invalid taint effect: {effect}, unsupported taint effect"
            )));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(KubeletError::Config(format!("invalid taint spec: {part}")));
        }
        out.push(Taint {
            key: key.to_string(),
            value,
            effect: effect.to_string(),
            time_added: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_as_upstream() {
        let t = parse_taints(
            "dedicated=gpu:NoSchedule,node-role.kubernetes.io/control-plane:NoExecute",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].key, "dedicated");
        assert_eq!(t[0].value.as_deref(), Some("gpu"));
        assert_eq!(t[1].effect, "NoExecute");
        assert!(t[1].value.is_none());
        assert!(parse_taints("a=b:Sometimes").is_err());
        assert!(parse_taints("novalue").is_err());
    }

    #[test]
    fn labels_parse() {
        let l = parse_labels("a=1, node-role.kubernetes.io/worker=").unwrap();
        assert_eq!(l["a"], "1");
        assert_eq!(l["node-role.kubernetes.io/worker"], "");
        assert!(parse_labels("=x").is_err());
    }
}
