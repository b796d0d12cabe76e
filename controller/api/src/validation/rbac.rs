//! RBAC kinds (rbac.authorization.k8s.io/v1) as upstream's `pkg/apis/rbac/validation`
//! checks them. Names of all four kinds are path-segment names (checked by ObjectMeta).

use serde_json::Value;

use super::field::{
    go_quote, gorepr, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::label_selector;
use super::names::{is_dns1123_subdomain, is_path_segment_name};
use super::obj;

const GROUP: &str = "rbac.authorization.k8s.io";

fn policy_rule(rule: &Value, namespaced: bool, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if obj::arr(rule, "verbs").is_empty() {
        errs.push(required(
            &p.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !obj::arr(rule, "nonResourceURLs").is_empty() {
        let urls = rule.get("nonResourceURLs").cloned().unwrap_or(Value::Null);
        if namespaced {
            errs.push(invalid(
                &p.child("nonResourceURLs"),
                BadValue::GoRepr(gorepr::string_slice(Some(&urls), "string")),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !obj::arr(rule, "apiGroups").is_empty()
            || !obj::arr(rule, "resources").is_empty()
            || !obj::arr(rule, "resourceNames").is_empty()
        {
            errs.push(invalid(
                &p.child("nonResourceURLs"),
                BadValue::GoRepr(gorepr::string_slice(Some(&urls), "string")),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if obj::arr(rule, "apiGroups").is_empty() {
        errs.push(required(
            &p.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if obj::arr(rule, "resources").is_empty() {
        errs.push(required(
            &p.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

/// `ValidateRole` / `ValidateClusterRole` (ObjectMeta excluded).
pub fn role(o: &Value, namespaced: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, r) in obj::arr(o, "rules").iter().enumerate() {
        errs.extend(policy_rule(r, namespaced, &Path::new("rules").index(i)));
    }
    if !namespaced {
        if let Some(agg) = obj::get(o, "aggregationRule") {
            let ap = Path::new("aggregationRule").child("clusterRoleSelectors");
            let sels = obj::arr(agg, "clusterRoleSelectors");
            if sels.is_empty() {
                errs.push(required(
                    &ap,
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, s) in sels.iter().enumerate() {
                errs.extend(label_selector(s, &ap.index(i)));
            }
        }
    }
    errs
}

fn subject(s: &Value, namespaced: bool, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = obj::s(s, "name");
    if name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    }
    let api_group = obj::s(s, "apiGroup");
    match obj::s(s, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                errs.extend(
                    is_dns1123_subdomain(name)
                        .into_iter()
                        .map(|m| invalid_str(&p.child("name"), name, &m)),
                );
            }
            if !api_group.is_empty() {
                errs.push(not_supported(
                    &p.child("apiGroup"),
                    BadValue::Str(api_group.into()),
                    &[""],
                ));
            }
            if !namespaced && obj::s(s, "namespace").is_empty() {
                errs.push(required(&p.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errs.push(not_supported(
                    &p.child("apiGroup"),
                    BadValue::Str(api_group.into()),
                    &[GROUP],
                ));
            }
        }
        other => errs.push(not_supported(
            &p.child("kind"),
            BadValue::Str(other.into()),
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding` (+ roleRef immutable on update).
pub fn binding(o: &Value, old: Option<&Value>, namespaced: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Value::Null;
    let rr = obj::get(o, "roleRef").unwrap_or(&empty);
    let rp = Path::new("roleRef");
    let g = obj::s(rr, "apiGroup");
    if g != GROUP {
        errs.push(not_supported(
            &rp.child("apiGroup"),
            BadValue::Str(g.into()),
            &[GROUP],
        ));
    }
    let kind = obj::s(rr, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(not_supported(
            &rp.child("kind"),
            BadValue::Str(kind.into()),
            kinds,
        ));
    }
    let name = obj::s(rr, "name");
    if name.is_empty() {
        errs.push(required(&rp.child("name"), ""));
    } else {
        errs.extend(
            is_path_segment_name(name)
                .into_iter()
                .map(|m| invalid_str(&rp.child("name"), name, &m)),
        );
    }
    for (i, s) in obj::arr(o, "subjects").iter().enumerate() {
        errs.extend(subject(s, namespaced, &Path::new("subjects").index(i)));
    }
    if let Some(old) = old {
        if !obj::same(o.get("roleRef"), old.get("roleRef")) {
            errs.push(invalid(
                "roleRef",
                BadValue::GoRepr(format!(
                    "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                    go_quote(obj::s(rr, "apiGroup")),
                    go_quote(obj::s(rr, "kind")),
                    go_quote(obj::s(rr, "name"))
                )),
                "cannot change roleRef",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(errs: &ErrorList) -> Vec<String> {
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    #[test]
    fn rules_need_verbs_groups_resources() {
        let r = json!({"rules": [{"resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert_eq!(render(&role(&r, true)), vec![
            "rules[0].verbs: Required value: verbs must contain at least one value",
            "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
            "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
        ]);
    }

    #[test]
    fn bindings() {
        let b = json!({"roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}, {"kind": "Robot", "name": "x"}]});
        assert_eq!(render(&binding(&b, None, false)), vec![
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            "subjects[0].namespace: Required value",
            "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
        ]);
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("other");
        let out = render(&binding(&changed, Some(&b), true));
        assert_eq!(out.last().unwrap(), "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef");
    }
}
