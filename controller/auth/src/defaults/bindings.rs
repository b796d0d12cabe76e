//! The default ClusterRoleBindings and the namespaced Role and RoleBinding kubeadm adds.

use serde_json::{json, Value};

use super::{meta, named, INGRESS_ROLE, NETWORK_POLICY_ROLE};

fn binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": meta(name, &[]),
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": subjects})
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

fn user(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

/// The default ClusterRoleBindings (upstream's, and kubeadm's for joining nodes).
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding(
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        binding(
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        // Upstream binds no subject: the Node authorizer grants nodes their rights.
        binding("system:node", "system:node", vec![]),
        binding(
            NETWORK_POLICY_ROLE,
            NETWORK_POLICY_ROLE,
            vec![group(crate::node::NODES_GROUP)],
        ),
        binding(
            INGRESS_ROLE,
            INGRESS_ROLE,
            vec![group(crate::node::NODES_GROUP)],
        ),
        binding(
            "system:node-proxier",
            "system:node-proxier",
            vec![user("system:kube-proxy")],
        ),
        binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        binding(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            vec![group("system:bootstrappers")],
        ),
        binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![group("system:bootstrappers")],
        ),
        binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group("system:nodes")],
        ),
    ]
}

/// Namespaced defaults: kubeadm's Role and RoleBinding that let anyone read the
/// `cluster-info` ConfigMap in `kube-public` (CA discovery before a joining node has
/// credentials).
pub fn namespaced() -> Vec<Value> {
    let mut role_meta = meta("kubeadm:bootstrap-signer-clusterinfo", &[]);
    role_meta["namespace"] = json!("kube-public");
    let mut rb_meta = role_meta.clone();
    rb_meta["name"] = json!("kubeadm:bootstrap-signer-clusterinfo");
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": role_meta,
               "rules": [named(&["get"], &[""], &["configmaps"], &["cluster-info"])]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": rb_meta,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "kubeadm:bootstrap-signer-clusterinfo"},
               "subjects": [user("system:anonymous")]}),
    ]
}
