//! Upstream's bootstrap RBAC policy (`bootstrappolicy`): the default ClusterRoles and their
//! bindings, plus kubeadm's join roles. Every object carries the `kubernetes.io/bootstrapping:
//! rbac-defaults` label and the `rbac.authorization.kubernetes.io/autoupdate: "true"`
//! annotation; the API server writes them at start when missing and reconciles those that
//! keep the annotation.

use serde_json::{json, Value};

mod bindings;

pub use bindings::{cluster_role_bindings, namespaced};

/// The annotation that lets the API server reconcile a default object at start.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
const AGG_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";
const AGG_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGG_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";

const READ: &[&str] = &["get", "list", "watch"];
/// The role (and binding, to `system:nodes`) of the kubelets' NetworkPolicy agent.
pub const NETWORK_POLICY_ROLE: &str = "system:bramble-network-policy";
/// The role (and binding, to `system:nodes`) of the kubelets' built-in ingress: reads of
/// Ingresses, IngressClasses and the Services and EndpointSlices they route to.
pub const INGRESS_ROLE: &str = "system:bramble-ingress";
/// The role letting the kubelets' ingress read TLS Secrets. It is created but not bound: RBAC
/// cannot narrow a grant to `kubernetes.io/tls` Secrets, and binding it to `system:nodes` lets
/// every node read every Secret, which the Node authorizer exists to prevent. An administrator
/// who wants TLS termination by the built-in ingress binds it (`kubectl create
/// clusterrolebinding bramble-ingress-tls --clusterrole=system:bramble-ingress-tls
/// --group=system:nodes`); without it the ingress serves its default certificate.
pub const INGRESS_TLS_ROLE: &str = "system:bramble-ingress-tls";
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "resourceNames": names, "verbs": verbs})
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

fn meta(name: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for (k, v) in extra_labels {
        labels.insert((*k).into(), json!(v));
    }
    json!({"name": name, "labels": labels, "annotations": {AUTOUPDATE_ANNOTATION: "true"}})
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": meta(name, labels), "rules": rules})
}

fn aggregated(name: &str, labels: &[(&str, &str)], selector_label: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": meta(name, labels),
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]},
           "rules": []})
}

/// The rules upstream's `system:node` ClusterRole has (the Node authorizer uses them too).
pub fn node_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews", "subjectaccessreviews"],
        ),
        rule(READ, &[""], &["services"]),
        rule(&["create", "get", "list", "watch"], &[""], &["nodes"]),
        rule(&["patch", "update"], &[""], &["nodes/status"]),
        rule(&["patch", "update"], &[""], &["nodes"]),
        rule(
            &["create", "patch", "update"],
            &["", "events.k8s.io"],
            &["events"],
        ),
        rule(READ, &[""], &["pods"]),
        rule(&["create", "delete"], &[""], &["pods"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(&["get", "list", "watch"], &[""], &["configmaps", "secrets"]),
        rule(
            &["get"],
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[""], &["endpoints"]),
        rule(
            &["get", "list", "watch"],
            &["discovery.k8s.io"],
            &["endpointslices"],
        ),
        rule(
            &["create", "get", "list", "watch"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
        ),
        rule(
            &["create", "delete", "get", "patch", "update"],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        rule(
            &["get", "patch", "update"],
            &[""],
            &["persistentvolumeclaims/status"],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
        rule(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
        rule(READ, &["storage.k8s.io"], &["csidrivers"]),
    ]
}

fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

fn edit_rules() -> Vec<Value> {
    vec![
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(
            READ_WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            WRITE,
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        rule(WRITE, &["discovery.k8s.io"], &["endpointslices"]),
        rule(READ, &[""], &["secrets"]),
    ]
}

/// What every leader-elected control-plane component may do (upstream's `eventsRule()` and
/// its lease rules): write events, create leases, and keep its own lease `lease`.
fn leader_election_rules(lease: &str) -> Vec<Value> {
    vec![
        rule(
            &["create", "patch", "update"],
            &["", "events.k8s.io"],
            &["events"],
        ),
        rule(&["create"], &["coordination.k8s.io"], &["leases"]),
        named(
            &["get", "update"],
            &["coordination.k8s.io"],
            &["leases"],
            &[lease],
        ),
    ]
}

/// Delegated authentication and authorization: TokenReviews and SubjectAccessReviews.
fn delegated_auth_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
    ]
}

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let health = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(&["get"], &health)],
        ),
        aggregated("admin", &[], AGG_ADMIN),
        aggregated("edit", &[(AGG_ADMIN, "true")], AGG_EDIT),
        aggregated("view", &[(AGG_EDIT, "true")], AGG_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(AGG_ADMIN, "true")],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                rule(
                    READ_WRITE,
                    &["rbac.authorization.k8s.io"],
                    &["rolebindings", "roles"],
                ),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(AGG_EDIT, "true")],
            edit_rules(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(AGG_VIEW, "true")],
            view_rules(),
        ),
        cluster_role("system:node", &[], node_rules()),
        // Bramble's own: the NetworkPolicy agent in every kubelet (kubelet/netpol) resolves
        // policy peers from every pod and namespace, as kube-router's role in k3s does.
        cluster_role(
            NETWORK_POLICY_ROLE,
            &[],
            vec![
                rule(READ, &["networking.k8s.io"], &["networkpolicies"]),
                rule(READ, &[""], &["pods", "namespaces"]),
            ],
        ),
        cluster_role(
            INGRESS_ROLE,
            &[],
            vec![
                rule(
                    READ,
                    &["networking.k8s.io"],
                    &["ingresses", "ingressclasses"],
                ),
                rule(READ, &[""], &["services"]),
                rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
            ],
        ),
        cluster_role(INGRESS_TLS_ROLE, &[], vec![rule(READ, &[""], &["secrets"])]),
        cluster_role(
            "system:node-proxier",
            &[],
            vec![
                rule(&["list", "watch"], &[""], &["endpoints", "services"]),
                rule(&["get", "list", "watch"], &[""], &["nodes"]),
                rule(
                    &["create", "patch", "update"],
                    &["", "events.k8s.io"],
                    &["events"],
                ),
                rule(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            &[],
            vec![rule(
                &["create", "get", "list", "watch"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &[],
            vec![rule(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &[],
            vec![rule(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        cluster_role(
            "system:kube-scheduler",
            &[],
            [
                leader_election_rules("kube-scheduler"),
                vec![
                    rule(&["delete", "get", "list", "watch"], &[""], &["pods"]),
                    rule(&["create"], &[""], &["bindings", "pods/binding"]),
                    rule(&["patch", "update"], &[""], &["pods/status"]),
                    rule(
                        READ,
                        &[""],
                        &[
                            "namespaces",
                            "nodes",
                            "persistentvolumeclaims",
                            "persistentvolumes",
                            "replicationcontrollers",
                            "services",
                        ],
                    ),
                    rule(READ, &["apps"], &["replicasets", "statefulsets"]),
                    rule(READ, &["policy"], &["poddisruptionbudgets"]),
                    rule(
                        READ,
                        &["storage.k8s.io"],
                        &[
                            "csidrivers",
                            "csinodes",
                            "csistoragecapacities",
                            "storageclasses",
                        ],
                    ),
                ],
                delegated_auth_rules(),
            ]
            .concat(),
        ),
        cluster_role(
            "system:kube-controller-manager",
            &[],
            [
                leader_election_rules("kube-controller-manager"),
                vec![
                    rule(&["create"], &[""], &["secrets", "serviceaccounts"]),
                    rule(&["delete"], &[""], &["secrets"]),
                    rule(
                        &["get"],
                        &[""],
                        &["configmaps", "namespaces", "secrets", "serviceaccounts"],
                    ),
                    rule(&["update"], &[""], &["secrets", "serviceaccounts"]),
                ],
                delegated_auth_rules(),
                vec![
                    rule(&["list", "watch"], &["*"], &["*"]),
                    rule(&["create"], &[""], &["serviceaccounts/token"]),
                ],
            ]
            .concat(),
        ),
    ]
}

#[cfg(test)]
mod tests;
