//! The controller side, run once per cluster in `bramble controller`: the default `bramble`
//! IngressClass (created once, so an administrator may change or drop its default mark) and
//! `status.loadBalancer.ingress` of the served Ingresses: the Ready nodes' IPs (every node's
//! ingress answers, as for LoadBalancer Services). Its RBAC is among the bootstrap roles
//! (`bramble_auth::defaults::INGRESS_ROLE`), written before the API serves, so no kubelet
//! meets a 403 while this controller starts.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressLoadBalancerIngress};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Notify;

use bramble_netctl::cache::{json_of, watch as cache};
use bramble_netctl::lb::node_ips;

use crate::class::{ingress_class, served, CLASS_NAME};
use crate::error::IngressError;

async fn bootstrap(client: &Client) -> Result<(), IngressError> {
    let classes: Api<IngressClass> = Api::all(client.clone());
    match classes
        .create(&PostParams::default(), &ingress_class())
        .await
    {
        Ok(_) => tracing::info!(class = CLASS_NAME, "created the default IngressClass"),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// What `status.loadBalancer.ingress` of a served Ingress should be.
pub fn desired_status(nodes: &[Arc<Node>]) -> Vec<IngressLoadBalancerIngress> {
    node_ips(nodes)
        .into_iter()
        .map(|ip| IngressLoadBalancerIngress {
            ip: Some(ip),
            ..Default::default()
        })
        .collect()
}

fn current_status(ing: &Ingress) -> Vec<IngressLoadBalancerIngress> {
    ing.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.clone())
        .unwrap_or_default()
}

/// Bootstraps, then keeps the status of served Ingresses in step with the nodes.
pub async fn run(client: Client) -> Result<(), IngressError> {
    bootstrap(&client).await?;
    let notify = Arc::new(Notify::new());
    let all = watcher::Config::default;
    let ingresses = cache(Api::<Ingress>::all(client.clone()), all(), notify.clone());
    let classes = cache(
        Api::<IngressClass>::all(client.clone()),
        all(),
        notify.clone(),
    );
    let nodes = cache(Api::<Node>::all(client.clone()), all(), notify.clone());
    let _ = ingresses.wait_until_ready().await;
    let _ = classes.wait_until_ready().await;
    let _ = nodes.wait_until_ready().await;
    loop {
        let classes = classes.state();
        let want = desired_status(&nodes.state());
        for ing in ingresses.state() {
            if !served(&ing, &classes) || ing.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if json_of(&want) == json_of(&current_status(&ing)) {
                continue;
            }
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            let name = ing.metadata.name.clone().unwrap_or_default();
            let patch = json!({"status": {"loadBalancer": {"ingress": want}}});
            if let Err(e) = Api::<Ingress>::namespaced(client.clone(), &ns)
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(ingress = %format!("{ns}/{name}"), error = %e, "Ingress status");
            }
        }
        // Failed writes are retried at the next change or after 30 s.
        let _ = tokio::time::timeout(Duration::from_secs(30), notify.notified()).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Spawns [`run`] on the current runtime, restarting it after an error.
pub fn spawn(client: Client) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(client.clone()).await {
                tracing::error!(error = %e, "ingress status controller stopped; restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
