//! The controller side, run once per cluster in `bramble controller`: the default `bramble`
//! IngressClass (created once, so an administrator may change or drop its default mark), the
//! RBAC that lets every kubelet's ingress read Ingresses, IngressClasses and TLS Secrets, and
//! `status.loadBalancer.ingress` of the served Ingresses: the Ready nodes' IPs (every node's
//! ingress answers, as for LoadBalancer Services).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressLoadBalancerIngress};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Notify;

use bramble_netctl::cache::{json_of, watch as cache};
use bramble_netctl::lb::node_ips;

use crate::class::{ingress_class, served, CLASS_NAME};
use crate::error::IngressError;

/// The ClusterRole (and its binding to `system:nodes`) of the kubelets' ingress.
pub const ROLE_NAME: &str = "system:bramble-ingress";
/// The ClusterRole letting the kubelets' ingress read TLS Secrets. It is created but not bound:
/// RBAC cannot narrow a grant to `kubernetes.io/tls` Secrets, and binding it to
/// `system:nodes` lets every node read every Secret, which the Node authorizer exists to
/// prevent. An administrator who wants TLS termination by the built-in ingress binds it
/// (`kubectl create clusterrolebinding bramble-ingress-tls
/// --clusterrole=system:bramble-ingress-tls --group=system:nodes`); without it the ingress
/// serves its default certificate.
pub const TLS_ROLE_NAME: &str = "system:bramble-ingress-tls";
const MANAGER: &str = "bramble-ingress";

/// The RBAC objects of every node's ingress: its reads (bound to `system:nodes`) and the
/// unbound [`TLS_ROLE_NAME`] role.
pub fn rbac() -> (ClusterRole, ClusterRoleBinding, ClusterRole) {
    let role = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": ROLE_NAME},
        "rules": [
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
             "verbs": ["get", "list", "watch"]},
        ],
    }))
    .expect("valid ClusterRole");
    let binding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": ROLE_NAME},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE_NAME},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}],
    }))
    .expect("valid ClusterRoleBinding");
    let tls_role = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": TLS_ROLE_NAME},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
        ],
    }))
    .expect("valid ClusterRole");
    (role, binding, tls_role)
}

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
    let (role, binding, tls_role) = rbac();
    let pp = PatchParams::apply(MANAGER).force();
    Api::<ClusterRole>::all(client.clone())
        .patch(ROLE_NAME, &pp, &Patch::Apply(&role))
        .await?;
    Api::<ClusterRole>::all(client.clone())
        .patch(TLS_ROLE_NAME, &pp, &Patch::Apply(&tls_role))
        .await?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(ROLE_NAME, &pp, &Patch::Apply(&binding))
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_binds_the_nodes_group_to_reads_only_and_not_to_secrets() {
        let (role, binding, tls_role) = rbac();
        for rule in role.rules.unwrap() {
            assert_eq!(rule.verbs, ["get", "list", "watch"]);
            assert!(!rule
                .resources
                .unwrap_or_default()
                .contains(&"secrets".into()));
        }
        assert_eq!(binding.subjects.unwrap()[0].name, "system:nodes");
        assert_eq!(binding.role_ref.name, ROLE_NAME);
        let tls_rules = tls_role.rules.unwrap();
        assert_eq!(
            tls_rules[0].resources.as_deref(),
            Some(&["secrets".into()][..])
        );
        assert_eq!(tls_rules[0].verbs, ["get", "list", "watch"]);
    }
}
