//! LoadBalancer status from node addresses (k3s servicelb style: every Ready node's
//! InternalIP is an ingress address, since NodePorts answer on every node).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Node, Service};

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn internal_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
}

/// The addresses load balancers publish: the InternalIPs of Ready nodes (of all nodes when
/// none is Ready yet), sorted. The built-in Ingress controller publishes the same.
pub fn node_ips(nodes: &[Arc<Node>]) -> Vec<String> {
    let any_ready = nodes.iter().any(|n| node_ready(n));
    let mut ips: Vec<String> = nodes
        .iter()
        .filter(|n| !any_ready || node_ready(n))
        .filter_map(|n| internal_ip(n))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// The ingress list a LoadBalancer Service should show: [`node_ips`]. `None` for other
/// Service types.
pub fn desired_ingress(svc: &Service, nodes: &[Arc<Node>]) -> Option<Vec<LoadBalancerIngress>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return None;
    }
    Some(
        node_ips(nodes)
            .into_iter()
            .map(|ip| LoadBalancerIngress {
                ip: Some(ip),
                ..Default::default()
            })
            .collect(),
    )
}

/// The ingress list the Service shows now.
pub fn current_ingress(svc: &Service) -> Vec<LoadBalancerIngress> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ip: &str, ready: bool) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn ready_node_ips_for_load_balancers_only() {
        let lb: Service = serde_json::from_value(
            json!({"metadata": {"name": "l"}, "spec": {"type": "LoadBalancer"}}),
        )
        .unwrap();
        let cip: Service = serde_json::from_value(
            json!({"metadata": {"name": "c"}, "spec": {"type": "ClusterIP"}}),
        )
        .unwrap();
        let nodes = vec![
            node("b", "192.168.1.12", true),
            node("a", "192.168.1.11", true),
            node("c", "192.168.1.13", false),
        ];
        let ing = desired_ingress(&lb, &nodes).unwrap();
        let ips: Vec<_> = ing.iter().map(|i| i.ip.clone().unwrap()).collect();
        assert_eq!(ips, vec!["192.168.1.11", "192.168.1.12"]);
        assert!(desired_ingress(&cip, &nodes).is_none());
        let not_ready = vec![node("c", "192.168.1.13", false)];
        assert_eq!(desired_ingress(&lb, &not_ready).unwrap().len(), 1);
    }
}
