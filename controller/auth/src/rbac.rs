//! RBAC evaluation as upstream's `rbac.RBACAuthorizer`: a request is allowed when a rule of a
//! role bound to the user (by a ClusterRoleBinding, or a RoleBinding in the request's
//! namespace) covers it. Members of `system:masters` are allowed everything.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use bramble_pki::{UserInfo, SYSTEM_MASTERS};

use crate::attributes::Attributes;

/// Where the authorizer finds roles and bindings (the API server reads them from the store).
pub trait RbacSource {
    fn cluster_role_bindings(&self) -> Vec<ClusterRoleBinding>;
    fn role_bindings(&self, namespace: &str) -> Vec<RoleBinding>;
    fn cluster_role(&self, name: &str) -> Option<ClusterRole>;
    fn role(&self, namespace: &str, name: &str) -> Option<Role>;
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    Deny(String),
    /// Neither: the next authorizer decides; the last one's no-opinion is a denial.
    NoOpinion(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The reason text (empty when there is none).
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(r) | Decision::Deny(r) | Decision::NoOpinion(r) => r,
        }
    }
}

/// Decides a request by RBAC.
pub fn authorize(src: &dyn RbacSource, attrs: &Attributes) -> Decision {
    if attrs.user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
        return Decision::Allow(String::new());
    }
    for crb in src.cluster_role_bindings() {
        if !binding_applies(&attrs.user, crb.subjects.as_deref(), "") {
            continue;
        }
        if rules_of(src, &crb.role_ref, "")
            .iter()
            .any(|r| rule_allows(attrs, r))
        {
            let name = crb.metadata.name.unwrap_or_default();
            return Decision::Allow(format!(
                "RBAC: allowed by ClusterRoleBinding {name:?} of ClusterRole {:?} to {}",
                crb.role_ref.name,
                describe(&attrs.user)
            ));
        }
    }
    if !attrs.namespace.is_empty() {
        for rb in src.role_bindings(&attrs.namespace) {
            if !binding_applies(&attrs.user, rb.subjects.as_deref(), &attrs.namespace) {
                continue;
            }
            if rules_of(src, &rb.role_ref, &attrs.namespace)
                .iter()
                .any(|r| rule_allows(attrs, r))
            {
                let name = rb.metadata.name.unwrap_or_default();
                return Decision::Allow(format!(
                    "RBAC: allowed by RoleBinding \"{name}/{}\" of {} {:?} to {}",
                    attrs.namespace,
                    rb.role_ref.kind,
                    rb.role_ref.name,
                    describe(&attrs.user)
                ));
            }
        }
    }
    Decision::NoOpinion(String::new())
}

/// Every rule that applies to `user` in `namespace` (cluster-wide rules included), for
/// SelfSubjectRulesReview.
pub fn rules_for(src: &dyn RbacSource, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
    if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
        return cluster_admin_rules();
    }
    let mut out = Vec::new();
    for crb in src.cluster_role_bindings() {
        if binding_applies(user, crb.subjects.as_deref(), "") {
            out.extend(rules_of(src, &crb.role_ref, ""));
        }
    }
    if !namespace.is_empty() {
        for rb in src.role_bindings(namespace) {
            if binding_applies(user, rb.subjects.as_deref(), namespace) {
                out.extend(rules_of(src, &rb.role_ref, namespace));
            }
        }
    }
    out
}

/// The rules of `cluster-admin`.
pub fn cluster_admin_rules() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            api_groups: Some(vec!["*".into()]),
            resources: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        },
        PolicyRule {
            non_resource_urls: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        },
    ]
}

fn describe(user: &UserInfo) -> String {
    format!("User {:?}", user.name)
}

fn rules_of(src: &dyn RbacSource, role_ref: &RoleRef, namespace: &str) -> Vec<PolicyRule> {
    match role_ref.kind.as_str() {
        "ClusterRole" => src
            .cluster_role(&role_ref.name)
            .and_then(|r| r.rules)
            .unwrap_or_default(),
        "Role" if !namespace.is_empty() => src
            .role(namespace, &role_ref.name)
            .and_then(|r| r.rules)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Whether one of `subjects` is `user` (`binding_namespace` completes service-account
/// subjects without a namespace, as upstream).
pub fn binding_applies(
    user: &UserInfo,
    subjects: Option<&[Subject]>,
    binding_namespace: &str,
) -> bool {
    subjects
        .unwrap_or_default()
        .iter()
        .any(|s| subject_matches(user, s, binding_namespace))
}

fn subject_matches(user: &UserInfo, s: &Subject, binding_namespace: &str) -> bool {
    match s.kind.as_str() {
        "User" => user.name == s.name,
        "Group" => user.groups.contains(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", s.name)
        }
        _ => false,
    }
}

/// Whether `rule` covers the request, as upstream's `RuleAllows`.
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if !has(&rule.verbs, &attrs.verb) {
        return false;
    }
    if attrs.resource_request {
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        if !has(groups, &attrs.api_group) {
            return false;
        }
        if !resource_matches(rule.resources.as_deref().unwrap_or_default(), attrs) {
            return false;
        }
        let names = rule.resource_names.as_deref().unwrap_or_default();
        names.is_empty() || names.contains(&attrs.name)
    } else {
        rule.non_resource_urls
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|u| {
                u == "*"
                    || *u == attrs.path
                    || (u.ends_with('*') && attrs.path.starts_with(&u[..u.len() - 1]))
            })
    }
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

fn resource_matches(resources: &[String], attrs: &Attributes) -> bool {
    let combined = attrs.combined_resource();
    resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem {
        crbs: Vec<ClusterRoleBinding>,
        rbs: Vec<RoleBinding>,
        crs: HashMap<String, ClusterRole>,
        roles: HashMap<(String, String), Role>,
    }

    impl RbacSource for Mem {
        fn cluster_role_bindings(&self) -> Vec<ClusterRoleBinding> {
            self.crbs.clone()
        }
        fn role_bindings(&self, ns: &str) -> Vec<RoleBinding> {
            self.rbs
                .iter()
                .filter(|b| b.metadata.namespace.as_deref() == Some(ns))
                .cloned()
                .collect()
        }
        fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
            self.crs.get(name).cloned()
        }
        fn role(&self, ns: &str, name: &str) -> Option<Role> {
            self.roles.get(&(ns.into(), name.into())).cloned()
        }
    }

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn mem() -> Mem {
        let mut m = Mem::default();
        m.roles.insert(
            ("dev".into(), "pod-reader".into()),
            serde_json::from_value(json!({"metadata": {"name": "pod-reader", "namespace": "dev"},
                "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
                          {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["get"]}]}))
            .unwrap(),
        );
        m.rbs.push(
            serde_json::from_value(json!({"metadata": {"name": "alice-reads", "namespace": "dev"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "bot"}]}))
            .unwrap(),
        );
        m.crs.insert(
            "health".into(),
            serde_json::from_value(json!({"metadata": {"name": "health"},
                "rules": [{"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}]}))
            .unwrap(),
        );
        m.crbs.push(
            serde_json::from_value(json!({"metadata": {"name": "health"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "health"},
                "subjects": [{"kind": "Group", "name": "system:authenticated"}]}))
            .unwrap(),
        );
        m
    }

    #[test]
    fn role_binding_grants_in_its_namespace_only() {
        let m = mem();
        let alice = user("alice", &["system:authenticated"]);
        let a = Attributes::resource(alice.clone(), "list", "", "pods", "", "dev", "");
        assert!(authorize(&m, &a).allowed());
        let a = Attributes::resource(alice.clone(), "list", "", "pods", "", "default", "");
        assert_eq!(authorize(&m, &a), Decision::NoOpinion(String::new()));
        let a = Attributes::resource(alice.clone(), "delete", "", "pods", "", "dev", "x");
        assert!(!authorize(&m, &a).allowed());
        let a = Attributes::resource(alice.clone(), "get", "", "pods", "log", "dev", "x");
        assert!(authorize(&m, &a).allowed());
        let a = Attributes::resource(alice.clone(), "get", "", "pods", "exec", "dev", "x");
        assert!(!authorize(&m, &a).allowed());
        let a = Attributes::resource(alice.clone(), "get", "", "configmaps", "", "dev", "one");
        assert!(authorize(&m, &a).allowed());
        let a = Attributes::resource(alice, "get", "", "configmaps", "", "dev", "two");
        assert!(!authorize(&m, &a).allowed());
    }

    #[test]
    fn service_account_and_group_subjects() {
        let m = mem();
        let bot = user("system:serviceaccount:dev:bot", &["system:serviceaccounts"]);
        let a = Attributes::resource(bot, "get", "", "pods", "", "dev", "p");
        assert!(authorize(&m, &a).allowed());
        let other = user("system:serviceaccount:prod:bot", &[]);
        let a = Attributes::resource(other, "get", "", "pods", "", "dev", "p");
        assert!(!authorize(&m, &a).allowed());
        let bob = user("bob", &["system:authenticated"]);
        assert!(authorize(
            &m,
            &Attributes::non_resource(bob.clone(), "get", "/healthz")
        )
        .allowed());
        assert!(authorize(
            &m,
            &Attributes::non_resource(bob.clone(), "get", "/apis/apps")
        )
        .allowed());
        assert!(!authorize(&m, &Attributes::non_resource(bob, "get", "/metrics")).allowed());
    }

    #[test]
    fn masters_bypass() {
        let m = Mem::default();
        let root = user("root", &[SYSTEM_MASTERS]);
        let a = Attributes::resource(root, "delete", "apps", "deployments", "", "x", "y");
        assert!(authorize(&m, &a).allowed());
    }

    #[test]
    fn wildcard_subresource_rules() {
        let rule = PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["*/status".into()]),
            verbs: vec!["update".into()],
            ..PolicyRule::default()
        };
        let u = user("u", &[]);
        assert!(rule_allows(
            &Attributes::resource(u.clone(), "update", "", "pods", "status", "d", "p"),
            &rule
        ));
        assert!(!rule_allows(
            &Attributes::resource(u, "update", "", "pods", "", "d", "p"),
            &rule
        ));
    }
}
