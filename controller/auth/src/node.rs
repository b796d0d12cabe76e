//! The Node authorizer (upstream's `node.NodeAuthorizer`): a kubelet, user
//! `system:node:<name>` in group `system:nodes`, may read only the Secrets, ConfigMaps and
//! PersistentVolumeClaims that pods bound to its node use, request tokens only for those pods'
//! service accounts, touch only its own Lease, and otherwise has the rules of `system:node`.
//! Writes to Nodes and Pods are limited further by NodeRestriction admission ([`restrict`]).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use bramble_pki::UserInfo;

use crate::attributes::Attributes;
use crate::rbac::{rule_allows, Decision};

pub use bramble_pki::{NODES_GROUP, NODE_USER_PREFIX};
/// The namespace of node heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// What a pod bound to a node refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRefs {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub service_account: String,
    pub secrets: Vec<String>,
    pub config_maps: Vec<String>,
    pub claims: Vec<String>,
}

/// Where the authorizer finds the pods bound to a node.
pub trait NodeGraph {
    fn pods_on_node(&self, node: &str) -> Vec<PodRefs>;
}

/// The node a user is the kubelet of, if any.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == NODES_GROUP) {
        return None;
    }
    user.name
        .strip_prefix(NODE_USER_PREFIX)
        .filter(|n| !n.is_empty())
}

/// What `pod` references: volumes (secret, configMap, projected, PVC), env and envFrom of
/// every container kind, image pull secrets, and its service account.
pub fn pod_refs(pod: &Pod) -> PodRefs {
    let mut r = PodRefs {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        ..PodRefs::default()
    };
    let Some(spec) = &pod.spec else {
        return r;
    };
    r.service_account = spec
        .service_account_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    for s in spec.image_pull_secrets.iter().flatten() {
        r.secrets.push(s.name.clone());
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            r.secrets.push(s);
        }
        if let Some(c) = &v.config_map {
            r.config_maps.push(c.name.clone());
        }
        if let Some(p) = &v.persistent_volume_claim {
            r.claims.push(p.claim_name.clone());
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = &src.secret {
                r.secrets.push(s.name.clone());
            }
            if let Some(c) = &src.config_map {
                r.config_maps.push(c.name.clone());
            }
        }
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for e in c.env.iter().flatten() {
            if let Some(vf) = &e.value_from {
                if let Some(s) = &vf.secret_key_ref {
                    r.secrets.push(s.name.clone());
                }
                if let Some(c) = &vf.config_map_key_ref {
                    r.config_maps.push(c.name.clone());
                }
            }
        }
        for ef in c.env_from.iter().flatten() {
            if let Some(s) = &ef.secret_ref {
                r.secrets.push(s.name.clone());
            }
            if let Some(c) = &ef.config_map_ref {
                r.config_maps.push(c.name.clone());
            }
        }
    }
    r
}

fn no_relationship(node: &str) -> Decision {
    Decision::NoOpinion(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

fn node_policy_rules() -> Vec<PolicyRule> {
    crate::defaults::node_rules()
        .into_iter()
        .filter_map(|v: Value| serde_json::from_value(v).ok())
        .collect()
}

/// Decides a request of a kubelet; other users get `NoOpinion` with no reason.
pub fn authorize(graph: &dyn NodeGraph, attrs: &Attributes) -> Decision {
    let Some(node) = node_name(&attrs.user) else {
        return Decision::NoOpinion(String::new());
    };
    if !attrs.resource_request {
        return Decision::NoOpinion(String::new());
    }
    let ns = attrs.namespace.as_str();
    match (
        attrs.api_group.as_str(),
        attrs.resource.as_str(),
        attrs.subresource.as_str(),
    ) {
        ("", kind @ ("secrets" | "configmaps" | "persistentvolumeclaims"), "") => {
            if !matches!(attrs.verb.as_str(), "get" | "list" | "watch") || attrs.name.is_empty() {
                return Decision::NoOpinion(format!(
                    "can only read individual {kind} a pod on node '{node}' references"
                ));
            }
            let found = graph.pods_on_node(node).iter().any(|p| {
                p.namespace == ns
                    && match kind {
                        "secrets" => p.secrets.contains(&attrs.name),
                        "configmaps" => p.config_maps.contains(&attrs.name),
                        _ => p.claims.contains(&attrs.name),
                    }
            });
            if found {
                Decision::Allow(String::new())
            } else {
                no_relationship(node)
            }
        }
        ("", "persistentvolumes", _) => no_relationship(node),
        ("", "serviceaccounts", "token") => {
            if attrs.verb != "create" {
                return Decision::NoOpinion(
                    "can only create tokens for individual service accounts".into(),
                );
            }
            let found = graph
                .pods_on_node(node)
                .iter()
                .any(|p| p.namespace == ns && p.service_account == attrs.name);
            if found {
                Decision::Allow(String::new())
            } else {
                no_relationship(node)
            }
        }
        ("coordination.k8s.io", "leases", "") => {
            if ns != NODE_LEASE_NAMESPACE {
                return Decision::NoOpinion(format!(
                    "can only access node lease in the {NODE_LEASE_NAMESPACE} namespace"
                ));
            }
            if attrs.verb != "create" && attrs.name != node {
                return Decision::NoOpinion(
                    "can only access node lease with the same name as the requesting node".into(),
                );
            }
            if matches!(
                attrs.verb.as_str(),
                "get" | "create" | "update" | "patch" | "delete"
            ) {
                Decision::Allow(String::new())
            } else {
                Decision::NoOpinion(
                    "can only get, create, update, patch, or delete a node lease".into(),
                )
            }
        }
        _ => {
            if node_policy_rules().iter().any(|r| rule_allows(attrs, r)) {
                Decision::Allow(String::new())
            } else {
                Decision::NoOpinion(String::new())
            }
        }
    }
}

/// NodeRestriction admission for a kubelet's write. `object_node` is, for pods, the node the
/// addressed (or new) pod is bound to; `object_name` the name of the addressed or new object;
/// `mirror` whether a new pod is a mirror pod. `Err` holds upstream's message.
pub fn restrict(
    node: &str,
    attrs: &Attributes,
    object_name: &str,
    object_node: Option<&str>,
    mirror: bool,
) -> Result<(), String> {
    let writes = matches!(
        attrs.verb.as_str(),
        "create" | "update" | "patch" | "delete" | "deletecollection"
    );
    if !writes || !attrs.api_group.is_empty() {
        return Ok(());
    }
    match (attrs.resource.as_str(), attrs.subresource.as_str()) {
        ("nodes", _) => {
            if attrs.verb == "deletecollection" || object_name != node {
                return Err(format!(
                    "node \"{node}\" is not allowed to modify node \"{object_name}\""
                ));
            }
            Ok(())
        }
        ("pods", sub) => {
            let bound = object_node.unwrap_or("");
            if attrs.verb == "create" && sub.is_empty() {
                if !mirror {
                    return Err(format!("pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"));
                }
                if bound != node {
                    return Err(format!(
                        "node \"{node}\" can only create pods with spec.nodeName set to itself"
                    ));
                }
                return Ok(());
            }
            if attrs.verb == "deletecollection" {
                return Err(format!("node \"{node}\" can only delete pods bound to it"));
            }
            if bound != node {
                return Err(format!(
                    "node \"{node}\" can only {} pods with spec.nodeName set to itself",
                    if sub.is_empty() {
                        attrs.verb.clone()
                    } else {
                        format!("{} {sub} of", attrs.verb)
                    }
                ));
            }
            if sub.is_empty() && matches!(attrs.verb.as_str(), "update" | "patch") {
                return Err(format!("node \"{node}\" can only update pod status"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct G(Vec<PodRefs>);
    impl NodeGraph for G {
        fn pods_on_node(&self, node: &str) -> Vec<PodRefs> {
            if node == "n1" {
                self.0.clone()
            } else {
                Vec::new()
            }
        }
    }

    fn kubelet(n: &str) -> UserInfo {
        UserInfo {
            name: format!("system:node:{n}"),
            uid: String::new(),
            groups: vec![NODES_GROUP.into(), "system:authenticated".into()],
        }
    }

    fn graph() -> G {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"nodeName": "n1", "serviceAccountName": "builder",
                "volumes": [{"name": "s", "secret": {"secretName": "tls"}},
                            {"name": "p", "projected": {"sources": [{"configMap": {"name": "cfg"}}]}}],
                "containers": [{"name": "c", "image": "x", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}]}]}
        }))
        .unwrap();
        G(vec![pod_refs(&pod)])
    }

    #[test]
    fn secrets_only_through_pods() {
        let g = graph();
        let get = |node: &str, res: &str, name: &str| {
            authorize(
                &g,
                &Attributes::resource(kubelet(node), "get", "", res, "", "default", name),
            )
        };
        assert!(get("n1", "secrets", "tls").allowed());
        assert!(get("n1", "secrets", "env-secret").allowed());
        assert!(get("n1", "configmaps", "cfg").allowed());
        let d = get("n1", "secrets", "other");
        assert_eq!(
            d.reason(),
            "no relationship found between node 'n1' and this object"
        );
        assert!(!get("n2", "secrets", "tls").allowed());
        let list = Attributes::resource(kubelet("n1"), "list", "", "secrets", "", "default", "");
        assert!(!authorize(&g, &list).allowed());
    }

    #[test]
    fn tokens_leases_and_rules() {
        let g = graph();
        let tok = |sa: &str| {
            Attributes::resource(
                kubelet("n1"),
                "create",
                "",
                "serviceaccounts",
                "token",
                "default",
                sa,
            )
        };
        assert!(authorize(&g, &tok("builder")).allowed());
        assert!(!authorize(&g, &tok("admin")).allowed());
        let lease = |name: &str| {
            Attributes::resource(
                kubelet("n1"),
                "update",
                "coordination.k8s.io",
                "leases",
                "",
                NODE_LEASE_NAMESPACE,
                name,
            )
        };
        assert!(authorize(&g, &lease("n1")).allowed());
        assert!(!authorize(&g, &lease("n2")).allowed());
        let pods = Attributes::resource(kubelet("n1"), "list", "", "pods", "", "", "");
        assert!(authorize(&g, &pods).allowed());
        let deploy = Attributes::resource(
            kubelet("n1"),
            "create",
            "apps",
            "deployments",
            "",
            "default",
            "",
        );
        assert!(!authorize(&g, &deploy).allowed());
        let alice = UserInfo {
            name: "alice".into(),
            ..UserInfo::default()
        };
        assert_eq!(
            authorize(
                &g,
                &Attributes::resource(alice, "get", "", "secrets", "", "default", "tls")
            ),
            Decision::NoOpinion(String::new())
        );
    }

    #[test]
    fn node_restriction() {
        let a = |verb: &str, res: &str, sub: &str| {
            Attributes::resource(kubelet("n1"), verb, "", res, sub, "default", "x")
        };
        assert!(restrict("n1", &a("patch", "nodes", "status"), "n1", None, false).is_ok());
        assert!(restrict("n1", &a("patch", "nodes", "status"), "n2", None, false).is_err());
        assert!(restrict("n1", &a("update", "pods", "status"), "p", Some("n1"), false).is_ok());
        assert!(restrict("n1", &a("update", "pods", "status"), "p", Some("n2"), false).is_err());
        assert!(restrict("n1", &a("delete", "pods", ""), "p", Some("n1"), false).is_ok());
        assert!(restrict("n1", &a("create", "pods", ""), "p", Some("n1"), false).is_err());
        assert!(restrict("n1", &a("create", "pods", ""), "p", Some("n1"), true).is_ok());
        assert!(restrict("n1", &a("update", "pods", ""), "p", Some("n1"), false).is_err());
    }
}
