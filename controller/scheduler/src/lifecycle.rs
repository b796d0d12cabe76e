//! The node lifecycle controller: watches Nodes, Leases in `kube-node-lease` and Pods; a node
//! whose lease (or Ready heartbeat) has not changed for the grace period gets its conditions
//! set Unknown; every node's managed taints follow its conditions and `spec.unschedulable`;
//! pods on NoExecute-tainted nodes are deleted when their toleration runs out. Level-triggered:
//! every pass recomputes from the caches, so a restart loses nothing but the local clock of
//! the last heartbeat (each node gets a fresh grace period, as upstream).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bramble_informer::pod::Pod;
use bramble_informer::{Informer, SharedInformers};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::core::v1::Pod as ApiPod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::config::NodeLifecycleConfig;
use crate::error::Error;
use crate::events::{reference, EventRecorder, EventType};
use crate::lifecycle_logic::{
    condition_status, desired_taints, effective_tolerations, eviction_time, unknown_conditions,
};
use crate::matching::node_taints;
use crate::node_info::pod_key;
use crate::triggers::on_change;

/// The namespace kubelets renew their Leases in.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The controller; [`NodeLifecycleController::run`] drives it forever.
pub struct NodeLifecycleController {
    client: Client,
    cfg: NodeLifecycleConfig,
    recorder: Arc<EventRecorder>,
    informers: SharedInformers,
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What was last seen of a node's heartbeat and when (local clock).
struct Probe {
    seen: (Option<Timestamp>, Option<Timestamp>),
    at: Instant,
}

impl NodeLifecycleController {
    /// A controller talking to the API through `client`.
    pub fn new(
        client: Client,
        cfg: NodeLifecycleConfig,
        informers: &SharedInformers,
    ) -> NodeLifecycleController {
        let recorder = Arc::new(EventRecorder::new(client.clone(), "node-controller"));
        NodeLifecycleController {
            client,
            cfg,
            recorder,
            informers: informers.clone(),
        }
    }

    /// Runs until the process ends.
    pub async fn run(self) -> Result<(), Error> {
        let wake = Arc::new(Notify::new());
        let nodes = self.informers.get::<Node>();
        on_change(&nodes, &wake, |_, _| {});
        let leases = self.informers.get::<Lease>();
        on_change(&leases, &wake, |_, _| {});
        let pods = self.informers.get::<Pod>();
        on_change(&pods, &wake, |_, _| {});
        nodes.ready().await.map_err(|source| Error::Cache {
            kind: "Node",
            source,
        })?;
        leases.ready().await.map_err(|source| Error::Cache {
            kind: "Lease",
            source,
        })?;
        pods.ready().await.map_err(|source| Error::Cache {
            kind: "Pod",
            source,
        })?;
        info!("node lifecycle controller caches synced");
        let mut probes: HashMap<String, Probe> = HashMap::new();
        let mut deleting: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(self.cfg.monitor_period);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake.notified() => {}
            }
            self.pass(&nodes, &leases, &pods, &mut probes, &mut deleting)
                .await;
        }
    }

    async fn pass(
        &self,
        nodes: &Informer<Node>,
        leases: &Informer<Lease>,
        pods: &Informer<Pod>,
        probes: &mut HashMap<String, Probe>,
        deleting: &mut HashSet<String>,
    ) {
        let now = Instant::now();
        let lease_renew: HashMap<String, Option<Timestamp>> = leases
            .list_namespace(NODE_LEASE_NAMESPACE)
            .iter()
            .map(|l| {
                let renew = l
                    .spec
                    .as_ref()
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0);
                (l.name_any(), renew)
            })
            .collect();
        let mut current: HashMap<String, Node> = HashMap::new();
        for node in nodes.list() {
            let name = node.name_any();
            let heartbeat = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.last_heartbeat_time.as_ref())
                .map(|t| t.0);
            let seen = (lease_renew.get(&name).copied().flatten(), heartbeat);
            let probe = probes
                .entry(name.clone())
                .or_insert(Probe { seen, at: now });
            if probe.seen != seen {
                probe.seen = seen;
                probe.at = now;
            }
            let stale = now.duration_since(probe.at) >= self.cfg.grace_period;
            let node = match self.reconcile_node(node.as_ref().clone(), stale).await {
                Ok(n) => n,
                Err(e) => {
                    debug!(node = %name, error = %e, "node reconcile; retrying next pass");
                    node.as_ref().clone()
                }
            };
            current.insert(name, node);
        }
        probes.retain(|n, _| current.contains_key(n));
        // Pods need a look only on a node that is Unknown (ready pods are marked not ready)
        // or has NoExecute taints (evictions), or to forget finished evictions: otherwise the
        // scan below does nothing, and it ran on every pod change (10,000 unschedulable pods'
        // status writes rescanned every pod after nearly each one).
        let pods_affected = current.values().any(|n| {
            condition_status(n, "Ready") == Some("Unknown")
                || node_taints(n).iter().any(|t| t.effect == "NoExecute")
        });
        if !pods_affected && deleting.is_empty() {
            return;
        }
        let ts_now = Timestamp::now();
        let mut live = HashSet::new();
        for pod in pods.list() {
            let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
                continue;
            };
            let key = pod_key(&pod);
            live.insert(key.clone());
            if pod.metadata.deletion_timestamp.is_some() || deleting.contains(&key) {
                continue;
            }
            let Some(node) = current.get(node_name) else {
                continue;
            };
            if condition_status(node, "Ready") == Some("Unknown") && pod_ready(&pod) {
                if let Err(e) = self.mark_not_ready(&pod).await {
                    debug!(pod = %key, error = %e, "marking pod not ready");
                }
            }
            let taints = node_taints(node);
            if !taints.iter().any(|t| t.effect == "NoExecute") {
                continue;
            }
            let tolerations = effective_tolerations(&pod, self.cfg.default_toleration_seconds);
            let Some(at) = eviction_time(&tolerations, taints, ts_now) else {
                continue;
            };
            if at <= ts_now {
                deleting.insert(key.clone());
                if let Err(e) = self.evict(&pod).await {
                    warn!(pod = %key, error = %e, "taint eviction");
                    deleting.remove(&key);
                }
            }
        }
        deleting.retain(|k| live.contains(k));
    }

    /// Marks a stale node Unknown and brings its managed taints in line; returns the node as
    /// now stored.
    async fn reconcile_node(&self, mut node: Node, stale: bool) -> Result<Node, Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let name = node.name_any();
        if stale {
            if let Some(conditions) = unknown_conditions(&node, Timestamp::now()) {
                let was_ready = condition_status(&node, "Ready") == Some("True");
                node.status.get_or_insert_with(Default::default).conditions = Some(conditions);
                node = api
                    .replace_status(&name, &PostParams::default(), &node)
                    .await
                    .map_err(|e| Error::api(format!("marking node {name} Unknown"), e))?;
                info!(node = %name, "node lease expired: Ready=Unknown");
                if was_ready {
                    let msg = format!("Node {name} status is now: NodeNotReady");
                    if let Err(e) = self
                        .recorder
                        .record(
                            reference(&node),
                            EventType::Normal,
                            "NodeNotReady",
                            "NodeNotReady",
                            &msg,
                        )
                        .await
                    {
                        debug!(error = %e, "NodeNotReady event");
                    }
                }
            }
        }
        if let Some(taints) = desired_taints(&node, Timestamp::now()) {
            node.spec.get_or_insert_with(Default::default).taints = Some(taints);
            node = api
                .replace(&name, &PostParams::default(), &node)
                .await
                .map_err(|e| Error::api(format!("updating taints of node {name}"), e))?;
            debug!(node = %name, "taints updated");
        }
        Ok(node)
    }

    /// Sets the pod's Ready condition False, as upstream's `MarkPodsNotReady` does for pods
    /// on a node that stopped reporting.
    async fn mark_not_ready(&self, pod: &Pod) -> Result<(), Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.name_any();
        let patch = json!({"status": {"conditions": [{
            "type": "Ready", "status": "False",
            "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        }]}});
        Api::<ApiPod>::namespaced(self.client.clone(), ns)
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| Error::api(format!("marking pod {ns}/{name} not ready"), e))?;
        Ok(())
    }

    /// Deletes a pod whose NoExecute toleration ran out (DisruptionTarget condition first,
    /// as upstream's taint eviction controller).
    async fn evict(&self, pod: &Pod) -> Result<(), Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.name_any();
        let api: Api<ApiPod> = Api::namespaced(self.client.clone(), ns);
        let msg = format!("Marking for deletion Pod {ns}/{name}");
        if let Err(e) = self
            .recorder
            .record(
                reference(pod),
                EventType::Normal,
                "TaintManagerEviction",
                "Evicting",
                &msg,
            )
            .await
        {
            debug!(error = %e, "TaintManagerEviction event");
        }
        let cond = json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        }]}});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&cond))
            .await
        {
            debug!(error = %e, "DisruptionTarget condition");
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                info!(pod = %format!("{ns}/{name}"), "evicted by NoExecute taint");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::api(format!("deleting pod {ns}/{name}"), e)),
        }
    }
}
