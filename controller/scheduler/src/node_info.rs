//! What the scheduler knows about a node: its allocatable resources, the pods bound to it
//! (requests, host ports, labels for affinity) and the images it holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use bramble_informer::pod::Pod;

use bramble_api::pod_resources::{pod_requests, resource_list, ResourceList};

/// Upstream's defaults for containers without requests, used only for scoring
/// (`DefaultMilliCPURequest`, `DefaultMemoryRequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// 200 MiB, see [`DEFAULT_MILLI_CPU_REQUEST`].
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Requested or allocatable amounts: cpu in millicores, everything else in units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Millicores.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// Extended and hugepage resources by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// From a resource list (`pods` is left out; see [`NodeInfo::allowed_pods`]).
    pub fn from_list(list: &ResourceList) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            match name.as_str() {
                "cpu" => r.milli_cpu = q.milli_value(),
                "memory" => r.memory = q.value(),
                "ephemeral-storage" => r.ephemeral_storage = q.value(),
                "pods" => {}
                other => {
                    r.scalar.insert(other.to_string(), q.value());
                }
            }
        }
        r
    }

    /// `self += other`.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// `self -= other`.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// True when nothing is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// A pod with the values the scheduler derives from it once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod as stored.
    pub pod: Arc<Pod>,
    /// Effective requests (init container max rule, sidecars, overhead), as upstream's
    /// `PodRequests`.
    pub requests: Resources,
    /// Requests with upstream's non-zero defaults for cpu and memory (scoring only).
    pub non_zero: Resources,
    /// Resolved priority (`spec.priority`, else its PriorityClass, else the global default).
    pub priority: i32,
    /// Host ports the pod asks for.
    pub host_ports: Vec<HostPort>,
}

impl PodInfo {
    /// Computes requests; `priority` comes from [`crate::priority::PriorityResolver`].
    pub fn new(pod: Arc<Pod>, priority: i32) -> PodInfo {
        let spec = pod
            .spec
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_default();
        let requests = Resources::from_list(&pod_requests(&spec));
        let mut non_zero = requests.clone();
        non_zero.milli_cpu = non_zero_cpu_and_memory(&spec).0;
        non_zero.memory = non_zero_cpu_and_memory(&spec).1;
        PodInfo {
            host_ports: host_ports(&pod),
            pod,
            requests,
            non_zero,
            priority,
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        pod_key(&self.pod)
    }

    /// `metadata.uid` (empty if missing).
    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or("")
    }
}

/// The uid of the pod's controller owner reference.
pub fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Per-container non-zero requests as upstream's `GetNonzeroRequests`: a container that
/// requests no cpu counts 100m, no memory 200Mi; init containers as a floor.
fn non_zero_cpu_and_memory(spec: &serde_json::Value) -> (i64, i64) {
    let per = |c: &serde_json::Value| {
        let list = resource_list(c.pointer("/resources/requests"));
        let cpu = list
            .get("cpu")
            .map(|q| q.milli_value())
            .filter(|v| *v != 0)
            .unwrap_or(DEFAULT_MILLI_CPU_REQUEST);
        let mem = list
            .get("memory")
            .map(|q| q.value())
            .filter(|v| *v != 0)
            .unwrap_or(DEFAULT_MEMORY_REQUEST);
        (cpu, mem)
    };
    let mut sum = (0, 0);
    for c in spec
        .get("containers")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let (cpu, mem) = per(c);
        sum.0 += cpu;
        sum.1 += mem;
    }
    for c in spec
        .get("initContainers")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let (cpu, mem) = per(c);
        sum.0 = sum.0.max(cpu);
        sum.1 = sum.1.max(mem);
    }
    sum
}

/// A host port in use: protocol, host IP (`0.0.0.0` for any) and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// `0.0.0.0` when unset.
    pub ip: String,
    /// The host port.
    pub port: i32,
}

impl HostPort {
    /// True when both would bind the same socket (`0.0.0.0` overlaps every address).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// The host ports a pod asks for.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for p in c.ports.iter().flatten() {
            if let Some(port) = p.host_port.filter(|p| *p > 0) {
                out.push(HostPort {
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    ip: p
                        .host_ip
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    port,
                });
            }
        }
    }
    out
}

/// A node with what is bound to it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node as stored.
    pub node: Arc<Node>,
    /// `status.allocatable` (falls back to `status.capacity`).
    pub allocatable: Resources,
    /// `allocatable.pods` (110 when missing, the kubelet default).
    pub allowed_pods: i64,
    /// Sum of the requests of the pods bound here.
    pub requested: Resources,
    /// Sum of the non-zero requests (scoring).
    pub non_zero_requested: Resources,
    /// Pods bound here (including ones the scheduler assumed but the cache has not seen bound).
    pub pods: Vec<PodInfo>,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
    /// Image name -> size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    /// Controller owner uid -> how many of its pods are here (default spreading).
    pub owners: HashMap<String, i64>,
}

impl NodeInfo {
    /// A node with no pods yet.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let status = node.status.as_ref();
        let alloc_map = status
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(|m| serde_json::to_value(m).unwrap_or_default());
        let list = resource_list(alloc_map.as_ref());
        let allowed_pods = list.get("pods").map(|q| q.value()).unwrap_or(110);
        let mut images = HashMap::new();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in img.names.iter().flatten() {
                images.insert(name.clone(), img.size_bytes.unwrap_or(0));
            }
        }
        NodeInfo {
            allocatable: Resources::from_list(&list),
            allowed_pods,
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: Vec::new(),
            used_ports: Vec::new(),
            images,
            owners: HashMap::new(),
            node,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// A label of the node.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }

    /// Accounts for a pod bound here.
    pub fn add_pod(&mut self, pod: PodInfo) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if let Some(uid) = controller_uid(&pod.pod) {
            *self.owners.entry(uid.to_string()).or_default() += 1;
        }
        self.pods.push(pod);
    }

    /// Removes a pod (by uid), e.g. a preemption victim; returns whether it was here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid() == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero);
        if let Some(uid) = controller_uid(&pod.pod) {
            *self.owners.entry(uid.to_string()).or_default() -= 1;
        }
        self.used_ports = self
            .pods
            .iter()
            .flat_map(|p| p.host_ports.iter().cloned())
            .collect();
        true
    }
}
