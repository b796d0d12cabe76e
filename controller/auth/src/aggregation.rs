//! ClusterRole aggregation, as upstream's clusterrole-aggregation controller: a ClusterRole
//! with an `aggregationRule` gets the union of the rules of every ClusterRole whose labels
//! match one of its `clusterRoleSelectors`.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// For every aggregated ClusterRole in `roles` whose rules differ from what aggregation gives,
/// its name and the rules it should have (in the order upstream collects them: matching roles
/// by name, rules deduplicated).
pub fn aggregate(roles: &[ClusterRole]) -> Vec<(String, Vec<PolicyRule>)> {
    let mut sorted: Vec<&ClusterRole> = roles.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut changes = Vec::new();
    for role in &sorted {
        let Some(rule) = &role.aggregation_rule else {
            continue;
        };
        let selectors = rule.cluster_role_selectors.as_deref().unwrap_or_default();
        let mut rules: Vec<PolicyRule> = Vec::new();
        for other in &sorted {
            if other.metadata.name == role.metadata.name {
                continue;
            }
            let labels = other.metadata.labels.clone().unwrap_or_default();
            if !selectors.iter().any(|s| selector_matches(s, &labels)) {
                continue;
            }
            for r in other.rules.as_deref().unwrap_or_default() {
                if !rules.contains(r) {
                    rules.push(r.clone());
                }
            }
        }
        let current = role.rules.clone().unwrap_or_default();
        if current != rules {
            changes.push((role.metadata.name.clone().unwrap_or_default(), rules));
        }
    }
    changes
}

/// Whether `labels` match a label selector (`matchLabels` and `matchExpressions`). An empty
/// selector matches everything, as upstream's `LabelSelectorAsSelector`.
pub fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = sel
        .match_labels
        .as_ref()
        .map(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .unwrap_or(true);
    let exprs_ok = sel
        .match_expressions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let have = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => have.is_some_and(|v| values.contains(v)),
                "NotIn" => have.is_none_or(|v| !values.contains(v)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            }
        });
    labels_ok && exprs_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(v: serde_json::Value) -> ClusterRole {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn unions_matching_roles_once() {
        let roles = vec![
            role(
                json!({"metadata": {"name": "view"}, "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}}),
            ),
            role(
                json!({"metadata": {"name": "a", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [{"apiGroups": ["x"], "resources": ["foos"], "verbs": ["get"]}]}),
            ),
            role(
                json!({"metadata": {"name": "b", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                "rules": [{"apiGroups": ["x"], "resources": ["foos"], "verbs": ["get"]},
                          {"apiGroups": ["y"], "resources": ["bars"], "verbs": ["list"]}]}),
            ),
            role(
                json!({"metadata": {"name": "c"}, "rules": [{"apiGroups": ["z"], "resources": ["*"], "verbs": ["*"]}]}),
            ),
        ];
        let changes = aggregate(&roles);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].0, "view");
        assert_eq!(changes[0].1.len(), 2);
        // once applied, nothing changes any more
        let mut applied = roles.clone();
        applied[0].rules = Some(changes[0].1.clone());
        assert!(aggregate(&applied).is_empty());
    }

    #[test]
    fn expressions() {
        let sel: LabelSelector = serde_json::from_value(json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "skip", "operator": "DoesNotExist"}]}))
        .unwrap();
        let mut l = BTreeMap::new();
        l.insert("tier".to_string(), "a".to_string());
        assert!(selector_matches(&sel, &l));
        l.insert("skip".into(), "1".into());
        assert!(!selector_matches(&sel, &l));
    }
}
