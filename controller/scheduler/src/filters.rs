//! Filter plugins, in upstream's order: NodeUnschedulable, NodeName, TaintToleration (with the
//! node's Ready condition as a taint), NodeAffinity, NodePorts, NodeResourcesFit,
//! PodTopologySpread, InterPodAffinity. A node fails on the first plugin that rejects it.

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::interpod::InterPodState;
use crate::matching::{
    node_taints, pod_matches_node_selector_and_affinity, pod_tolerations, tolerated_by,
};
use crate::node_info::{NodeInfo, PodInfo, Resources};
use crate::snapshot::Snapshot;
use crate::spread::SpreadState;

/// `node.kubernetes.io/unschedulable`, the taint that mirrors `spec.unschedulable`.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// `node.kubernetes.io/not-ready`: Ready is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// `node.kubernetes.io/unreachable`: Ready is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Upstream's reasons.
pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// See [`ERR_UNSCHEDULABLE`].
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// See [`ERR_UNSCHEDULABLE`].
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// See [`ERR_UNSCHEDULABLE`].
pub const ERR_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// See [`ERR_UNSCHEDULABLE`].
pub const ERR_TOO_MANY_PODS: &str = "Too many pods";

/// Why a node was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Reasons as they appear in the FailedScheduling message.
    pub reasons: Vec<String>,
    /// `UnschedulableAndUnresolvable`: evicting pods would not help (preemption skips the node).
    pub unresolvable: bool,
}

impl Failure {
    fn new(reason: impl Into<String>, unresolvable: bool) -> Failure {
        Failure {
            reasons: vec![reason.into()],
            unresolvable,
        }
    }
}

/// What the cross-node plugins computed once for the incoming pod.
#[derive(Debug, Default)]
pub struct PreFilter {
    /// Topology spread counts.
    pub spread: SpreadState,
    /// Inter-pod affinity counts (`None` when neither the pod nor any bound pod has terms).
    pub interpod: Option<InterPodState>,
}

impl PreFilter {
    /// Computes the cross-node state for `pod` over `snap`.
    pub fn compute(pod: &PodInfo, snap: &Snapshot) -> PreFilter {
        let interpod = (crate::interpod::has_pod_affinity(&pod.pod) || snap.pods_with_affinity > 0)
            .then(|| InterPodState::compute(&pod.pod, snap));
        PreFilter {
            spread: SpreadState::compute(&pod.pod, snap),
            interpod,
        }
    }
}

/// The node's taints plus a NoSchedule taint standing for a Ready condition that is not True
/// when the node lifecycle controller has not tainted the node yet.
pub fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints = node_taints(node).to_vec();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    let key = match ready {
        Some("True") => None,
        Some("False") => Some(TAINT_NOT_READY),
        Some(_) => Some(TAINT_UNREACHABLE),
        None => Some(TAINT_NOT_READY),
    };
    if let Some(key) = key {
        if !taints.iter().any(|t| t.key == key) {
            taints.push(Taint {
                key: key.into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            });
        }
    }
    taints
}

/// NodeUnschedulable: `spec.unschedulable` unless the pod tolerates the unschedulable taint.
pub fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    let cordoned = node
        .node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let taint = Taint {
        key: TAINT_UNSCHEDULABLE.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if cordoned && !tolerated_by(pod_tolerations(&pod.pod), &taint) {
        return Err(Failure::new(ERR_UNSCHEDULABLE, true));
    }
    Ok(())
}

/// NodeName: a pod naming a node fits only there.
pub fn node_name(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(n) if !n.is_empty() && n != node.name() => Err(Failure::new(ERR_NODE_NAME, true)),
        _ => Ok(()),
    }
}

/// TaintToleration: every NoSchedule/NoExecute taint must be tolerated.
pub fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    let tolerations = pod_tolerations(&pod.pod);
    for taint in effective_taints(&node.node) {
        if (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !tolerated_by(tolerations, &taint)
        {
            return Err(Failure::new(
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value.as_deref().unwrap_or("")
                ),
                true,
            ));
        }
    }
    Ok(())
}

/// NodeAffinity: `nodeSelector` and required node affinity.
pub fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    if pod_matches_node_selector_and_affinity(&pod.pod, &node.node) {
        Ok(())
    } else {
        Err(Failure::new(ERR_NODE_AFFINITY, true))
    }
}

/// NodePorts: no requested host port may already be in use.
pub fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Result<(), Failure> {
    let wanted = &pod.host_ports;
    if wanted
        .iter()
        .any(|w| node.used_ports.iter().any(|u| u.conflicts(w)))
    {
        return Err(Failure::new(ERR_PORTS, false));
    }
    Ok(())
}

/// NodeResourcesFit: pod count, then every requested resource against allocatable minus what
/// bound pods (and higher-priority nominated pods) request. Several reasons at once.
pub fn resources_fit(
    pod: &PodInfo,
    node: &NodeInfo,
    reserved: &Resources,
    reserved_pods: i64,
) -> Result<(), Failure> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + reserved_pods + 1 > node.allowed_pods {
        reasons.push(crate::filters::ERR_TOO_MANY_PODS.to_string());
    }
    let req = &pod.requests;
    if !req.is_zero() {
        let used = |a: i64, b: i64| a + b;
        let alloc = &node.allocatable;
        let have = &node.requested;
        if req.milli_cpu > 0
            && req.milli_cpu > alloc.milli_cpu - used(have.milli_cpu, reserved.milli_cpu)
        {
            reasons.push("Insufficient cpu".into());
        }
        if req.memory > 0 && req.memory > alloc.memory - used(have.memory, reserved.memory) {
            reasons.push("Insufficient memory".into());
        }
        if req.ephemeral_storage > 0
            && req.ephemeral_storage
                > alloc.ephemeral_storage - used(have.ephemeral_storage, reserved.ephemeral_storage)
        {
            reasons.push("Insufficient ephemeral-storage".into());
        }
        for (name, amount) in &req.scalar {
            if *amount == 0 {
                continue;
            }
            let a = alloc.scalar.get(name).copied().unwrap_or(0);
            let h = have.scalar.get(name).copied().unwrap_or(0)
                + reserved.scalar.get(name).copied().unwrap_or(0);
            if *amount > a - h {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            reasons,
            unresolvable: false,
        })
    }
}

/// Runs every filter for one node; the first rejection wins.
pub fn filter_node(
    pod: &PodInfo,
    node: &NodeInfo,
    snap: &Snapshot,
    pre: &PreFilter,
) -> Result<(), Failure> {
    node_unschedulable(pod, node)?;
    node_name(pod, node)?;
    taint_toleration(pod, node)?;
    node_affinity(pod, node)?;
    node_ports(pod, node)?;
    let mut reserved = Resources::default();
    let mut reserved_pods = 0;
    for n in snap.nominated_on(node.name(), pod.priority, pod.uid()) {
        reserved.add(&n.requests);
        reserved_pods += 1;
    }
    resources_fit(pod, node, &reserved, reserved_pods)?;
    pre.spread
        .filter(node)
        .map_err(|(r, u)| Failure::new(r, u))?;
    if let Some(ip) = &pre.interpod {
        ip.filter(node).map_err(|(r, u)| Failure::new(r, u))?;
    }
    Ok(())
}
