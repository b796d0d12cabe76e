//! The node heartbeat (upstream `nodelease` controller): a `coordination.k8s.io/v1` Lease
//! named after the node in `kube-node-lease`, owned by the Node, renewed every quarter of
//! its duration (10 s for the default 40 s).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::error::KubeletError;

/// The namespace node leases live in.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// `MicroTime` of now (RFC 3339, microseconds).
pub fn now_micro() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The Lease object for `node` (uid of the Node for the owner reference, when known).
pub fn lease_object(node: &str, node_uid: Option<&str>, duration_seconds: i32) -> Value {
    let mut meta = json!({"name": node, "namespace": LEASE_NAMESPACE});
    if let Some(uid) = node_uid {
        meta["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Node", "name": node, "uid": uid,
        }]);
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": now_micro(),
        },
    })
}

/// Renews the node's Lease.
pub struct LeaseRenewer {
    client: Client,
    node: String,
    duration_seconds: i32,
}

impl LeaseRenewer {
    /// A renewer for `node`.
    pub fn new(client: Client, node: impl Into<String>, duration_seconds: i32) -> Self {
        LeaseRenewer {
            client,
            node: node.into(),
            duration_seconds,
        }
    }

    /// How often the lease is renewed (a quarter of its duration, as upstream).
    pub fn interval(&self) -> Duration {
        Duration::from_secs((self.duration_seconds.max(4) / 4) as u64)
    }

    /// Creates the lease or renews it once; `Ok(false)` when it is not yet owned by the Node
    /// (the Node is not registered yet).
    pub async fn renew(&self) -> Result<bool, KubeletError> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let patch = json!({"spec": {
            "holderIdentity": self.node,
            "leaseDurationSeconds": self.duration_seconds,
            "renewTime": now_micro(),
        }});
        match leases
            .patch(&self.node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(lease) => {
                // Created before the Node existed: own it now (upstream's setNodeOwnerFunc).
                if lease
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(|o| o.is_empty())
                {
                    let nodes: Api<Node> = Api::all(self.client.clone());
                    if let Some(uid) = nodes
                        .get_opt(&self.node)
                        .await?
                        .and_then(|n| n.metadata.uid)
                    {
                        let owner = lease_object(&self.node, Some(&uid), self.duration_seconds);
                        let patch = json!({"metadata": {"ownerReferences": owner["metadata"]["ownerReferences"]}});
                        leases
                            .patch(&self.node, &PatchParams::default(), &Patch::Merge(&patch))
                            .await?;
                    } else {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                let nodes: Api<Node> = Api::all(self.client.clone());
                let uid = nodes
                    .get_opt(&self.node)
                    .await?
                    .and_then(|n| n.metadata.uid);
                let lease: Lease = serde_json::from_value(lease_object(
                    &self.node,
                    uid.as_deref(),
                    self.duration_seconds,
                ))?;
                leases.create(&PostParams::default(), &lease).await?;
                debug!(node = %self.node, "lease created");
                Ok(uid.is_some())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Renews every [`LeaseRenewer::interval`] (retrying sooner after a failure) until
    /// `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = match self.renew().await {
                Ok(true) => self.interval(),
                Ok(false) => Duration::from_millis(500),
                Err(e) => {
                    warn!(error = %e, "renewing node lease");
                    Duration::from_millis(500)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_is_owned_by_the_node() {
        let l = lease_object("n1", Some("u-1"), 40);
        assert_eq!(l["metadata"]["namespace"], LEASE_NAMESPACE);
        assert_eq!(l["metadata"]["ownerReferences"][0]["kind"], "Node");
        assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
        let _: Lease = serde_json::from_value(l).expect("valid Lease");
    }
}
