//! The cluster as one scheduling cycle sees it: nodes with their pods, and pods nominated
//! to nodes by preemption.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::node_info::{NodeInfo, PodInfo};

/// Nodes (in a stable order) with the pods bound or assumed on them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// All nodes.
    pub nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Pending pods that preemption nominated to a node (`status.nominatedNodeName`).
    pub nominated: Vec<(String, PodInfo)>,
    /// How many bound pods declare pod (anti-)affinity (the affinity plugin skips its scan
    /// when none do and the incoming pod has none).
    pub pods_with_affinity: usize,
    /// Image name -> how many nodes hold it (ImageLocality's spread factor).
    pub image_nodes: HashMap<String, usize>,
}

impl Snapshot {
    /// A snapshot of these nodes, no pods yet.
    pub fn new(nodes: impl IntoIterator<Item = Arc<Node>>) -> Snapshot {
        Snapshot::from_infos(nodes.into_iter().map(NodeInfo::new).collect())
    }

    /// A snapshot of prepared node infos without pods (cached by the caller).
    pub fn from_infos(mut nodes: Vec<NodeInfo>) -> Snapshot {
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
        let mut image_nodes: HashMap<String, usize> = HashMap::new();
        for n in &nodes {
            for name in n.images.keys() {
                *image_nodes.entry(name.clone()).or_default() += 1;
            }
        }
        Snapshot {
            nodes,
            index,
            nominated: Vec::new(),
            pods_with_affinity: 0,
            image_nodes,
        }
    }

    /// Accounts for a pod bound (or assumed) on `node`; pods on unknown nodes are ignored.
    pub fn add_pod(&mut self, node: &str, pod: PodInfo) {
        if let Some(&i) = self.index.get(node) {
            if crate::interpod::has_pod_affinity(&pod.pod) {
                self.pods_with_affinity += 1;
            }
            self.nodes[i].add_pod(pod);
        }
    }

    /// Records a pending pod nominated to `node`.
    pub fn add_nominated(&mut self, node: &str, pod: PodInfo) {
        self.nominated.push((node.to_string(), pod));
    }

    /// Forgets a nomination (the pod got scheduled or deleted).
    pub fn remove_nominated(&mut self, uid: &str) {
        self.nominated.retain(|(_, p)| p.uid() != uid);
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// The node with this name, mutable.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        self.index.get(name).map(|&i| &mut self.nodes[i])
    }

    /// Index of a node by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Pods nominated to `node` with at least `priority`, except the pod `uid` itself: their
    /// requests are reserved for them when lower-priority pods are filtered.
    pub fn nominated_on<'a>(
        &'a self,
        node: &'a str,
        priority: i32,
        uid: &'a str,
    ) -> impl Iterator<Item = &'a PodInfo> + 'a {
        self.nominated
            .iter()
            .filter(move |(n, p)| n == node && p.priority >= priority && p.uid() != uid)
            .map(|(_, p)| p)
    }
}
