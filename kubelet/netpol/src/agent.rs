//! The agent loop: watches NetworkPolicies; while any exists it also watches Pods and
//! Namespaces (a node without policies keeps no copy of the cluster's pods), and re-applies
//! the ruleset whenever the rendered script changes.

use std::sync::Arc;
use std::time::Duration;

use bramble_proxy::proxier::watch;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::NetpolError;
use crate::model::build_model;
use crate::rules::{self, TABLE};

/// Pods and Namespaces, watched while policies exist.
struct Peers {
    pods: Store<Pod>,
    namespaces: Store<Namespace>,
    tasks: [JoinHandle<()>; 2],
}

impl Peers {
    async fn start(client: &Client, notify: &Arc<Notify>) -> Peers {
        let (pods, a) = watch(Api::<Pod>::all(client.clone()), notify.clone());
        let (namespaces, b) = watch(Api::<Namespace>::all(client.clone()), notify.clone());
        let _ = pods.wait_until_ready().await;
        let _ = namespaces.wait_until_ready().await;
        Peers {
            pods,
            namespaces,
            tasks: [a, b],
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn apply(script: &str) -> Result<(), NetpolError> {
    let script = script.to_string();
    tokio::task::spawn_blocking(move || bramble_proxy::nft::apply(&script))
        .await
        .map_err(|e| bramble_proxy::ProxyError::Nft(format!("sync task: {e}")))??;
    Ok(())
}

/// Enforces the policies for node `node_name` until the task is dropped; failed applies are
/// retried every few seconds.
pub async fn run(client: Client, node_name: String) -> Result<(), NetpolError> {
    let notify = Arc::new(Notify::new());
    let (policies, _policy_task) = watch(Api::<NetworkPolicy>::all(client.clone()), notify.clone());
    let _ = policies.wait_until_ready().await;
    let mut peers: Option<Peers> = None;
    let mut applied: Option<String> = None;
    loop {
        let mut synced = true;
        let current = policies.state();
        if current.is_empty() {
            // Nothing isolates anything: no table, no pod cache.
            peers = None;
            if applied.is_some() {
                let _ = bramble_proxy::nft::delete_table("inet", TABLE);
                applied = None;
            }
        } else {
            if peers.is_none() {
                peers = Some(Peers::start(&client, &notify).await);
            }
            let p = peers.as_ref().expect("peers started");
            let model = build_model(&node_name, &current, &p.pods.state(), &p.namespaces.state());
            let script = rules::render(&model);
            if applied.as_deref() != Some(script.as_str()) {
                tracing::debug!(isolated_pods = model.len(), "applying network policy rules");
                match apply(&script).await {
                    Ok(()) => applied = Some(script),
                    Err(e) => {
                        synced = false;
                        tracing::error!(error = %e, "applying network policy rules");
                    }
                }
            }
        }
        let retry = if synced {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(3)
        };
        let _ = tokio::time::timeout(retry, notify.notified()).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Spawns [`run`] on the current runtime, restarting it after an error.
pub fn spawn(client: Client, node_name: String) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(client.clone(), node_name.clone()).await {
                tracing::error!(error = %e, "network policy agent stopped; restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
