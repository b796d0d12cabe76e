//! The defaults parse as typed RBAC objects and grant what upstream grants.

use super::*;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

#[test]
fn defaults_are_valid_typed_objects() {
    let roles: Vec<ClusterRole> = cluster_roles()
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:node",
        "system:basic-user",
    ] {
        assert!(
            roles
                .iter()
                .any(|r| r.metadata.name.as_deref() == Some(name)),
            "{name}"
        );
    }
    let bindings: Vec<ClusterRoleBinding> = cluster_role_bindings()
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    for b in &bindings {
        assert!(roles
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some(&b.role_ref.name)));
    }
    let ns = namespaced();
    let _: Role = serde_json::from_value(ns[0].clone()).unwrap();
    let _: RoleBinding = serde_json::from_value(ns[1].clone()).unwrap();
}

#[test]
fn nodes_may_read_what_the_ingress_routes_but_not_secrets() {
    let roles: Vec<ClusterRole> = cluster_roles()
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let role = |name: &str| {
        roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap()
            .rules
            .clone()
            .unwrap()
    };
    for rule in role(INGRESS_ROLE) {
        assert_eq!(rule.verbs, READ);
        assert!(!rule.resources.unwrap().contains(&"secrets".into()));
    }
    let tls = role(INGRESS_TLS_ROLE);
    assert_eq!(tls[0].resources.as_deref(), Some(&["secrets".into()][..]));
    let bindings: Vec<ClusterRoleBinding> = cluster_role_bindings()
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let ingress = bindings.iter().find(|b| b.role_ref.name == INGRESS_ROLE);
    assert_eq!(
        ingress.unwrap().subjects.as_ref().unwrap()[0].name,
        "system:nodes"
    );
    assert!(
        !bindings.iter().any(|b| b.role_ref.name == INGRESS_TLS_ROLE),
        "the TLS role is bound on request"
    );
}

#[test]
fn view_aggregates_into_edit_into_admin() {
    let roles: Vec<ClusterRole> = cluster_roles()
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    // aggregation runs until nothing changes (view feeds edit, edit feeds admin)
    let mut roles = roles;
    for _ in 0..4 {
        for (name, rules) in crate::aggregation::aggregate(&roles) {
            let r = roles
                .iter_mut()
                .find(|r| r.metadata.name.as_deref() == Some(&name))
                .unwrap();
            r.rules = Some(rules);
        }
    }
    let admin = roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("admin"))
        .unwrap();
    let rules = admin.rules.as_ref().unwrap();
    assert!(rules.iter().any(|r| r
        .resources
        .as_ref()
        .unwrap()
        .contains(&"rolebindings".to_string())));
    assert!(rules.iter().any(|r| r
        .resources
        .as_ref()
        .unwrap()
        .contains(&"pods/log".to_string())));
}
