//! Following the node's `spec.podCIDRs` (assigned by the controller's node IPAM) so the
//! default configuration can be written once they are known.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;

use crate::network::CniNetworkConfig;
use crate::pod_network::CniPodNetwork;

/// The pod CIDRs of a Node: `spec.podCIDRs`, else `spec.podCIDR`.
pub fn pod_cidrs_of(node: &Node) -> Vec<String> {
    let Some(spec) = &node.spec else {
        return Vec::new();
    };
    match &spec.pod_cidrs {
        Some(list) if !list.is_empty() => list.clone(),
        _ => spec
            .pod_cidr
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect(),
    }
}

/// The kubelet's CNI network: plugins and configuration from `config`, with the default
/// bridge configuration over this node's pod CIDRs as soon as the Node shows them (a watch
/// task on the current tokio runtime follows the Node). Until then, and while the
/// configuration directory is empty, [`crate::CniPodNetwork`] reports not ready.
pub fn kubelet_network(
    config: CniNetworkConfig,
    node_name: &str,
    client: kube::Client,
) -> Arc<CniPodNetwork> {
    let network = Arc::new(CniPodNetwork::new(config));
    let follower = network.clone();
    let api: Api<Node> = Api::all(client);
    let selector = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, selector).default_backoff().boxed();
        let mut current: Vec<String> = Vec::new();
        while let Some(event) = events.next().await {
            let node = match event {
                Ok(Event::Apply(n) | Event::InitApply(n)) => n,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "watching the node for its pod CIDRs");
                    continue;
                }
            };
            let cidrs = pod_cidrs_of(&node);
            if !cidrs.is_empty() && cidrs != current {
                tracing::info!(pod_cidrs = ?cidrs, "node pod CIDRs known");
                follower.set_pod_cidrs(cidrs.clone());
                current = cidrs;
            }
        }
    });
    network
}
