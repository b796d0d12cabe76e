//! End-to-end checks of `validate`: ResourceInfo dispatch, ObjectMeta rules per kind, and the
//! exact causes upstream returns.

use serde_json::{json, Value};

use super::*;

fn identity(v: Value) -> Result<Value, String> {
    Ok(v)
}

/// A ResourceInfo like the registry builds (decode set for built-ins).
pub(crate) fn info(group: &str, kind: &str, namespaced: bool, builtin: bool) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: "v1".into(),
        resource: format!("{}s", kind.to_lowercase()),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: vec![],
        categories: vec![],
        verbs: vec![],
        subresources: vec![],
        decode: if builtin { Some(identity) } else { None },
    }
}

fn causes(info: &ResourceInfo, o: &Value, old: Option<&Value>) -> Vec<String> {
    validate(info, o, old)
        .into_iter()
        .map(|c| format!("{} {}: {}", c.reason, c.field, c.message))
        .collect()
}

fn defaulted_pod(name: &str) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}});
    crate::defaults::apply(&info("", "Pod", true, true), &mut pod);
    pod
}

#[test]
fn defaulted_pod_is_valid() {
    assert_eq!(
        causes(&info("", "Pod", true, true), &defaulted_pod("web"), None),
        Vec::<String>::new()
    );
}

#[test]
fn pod_name_uses_subdomain_rule_with_upstream_text() {
    let out = causes(
        &info("", "Pod", true, true),
        &defaulted_pod("Foo_Bar"),
        None,
    );
    assert_eq!(out, vec![
        "FieldValueInvalid metadata.name: Invalid value: \"Foo_Bar\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ]);
}

#[test]
fn pod_restart_policy_and_image_required() {
    let mut pod = defaulted_pod("web");
    pod["spec"]["restartPolicy"] = json!("Sometimes");
    pod["spec"]["containers"][0]["image"] = json!("");
    let out = causes(&info("", "Pod", true, true), &pod, None);
    assert_eq!(out, vec![
        "FieldValueRequired spec.containers[0].image: Required value",
        "FieldValueNotSupported spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    ]);
}

#[test]
fn pod_update_message() {
    let i = info("", "Pod", true, true);
    let mut old = defaulted_pod("web");
    old["metadata"]["resourceVersion"] = json!("3");
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    assert!(causes(&i, &new, Some(&old)).is_empty());
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let out = validate(&i, &new, Some(&old));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].reason, "FieldValueForbidden");
    assert_eq!(out[0].field, "spec");
    assert!(out[0].message.starts_with(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    ));
}

#[test]
fn namespace_and_service_names_are_labels() {
    let ns = json!({"metadata": {"name": "a.b"}});
    assert_eq!(
        causes(&info("", "Namespace", false, true), &ns, None),
        vec!["FieldValueInvalid metadata.name: Invalid value: \"a.b\": must not contain dots",]
    );
    let mut svc = json!({"metadata": {"name": "1web", "namespace": "default"},
        "spec": {"ports": [{"port": 80}]}});
    crate::defaults::apply(&info("", "Service", true, true), &mut svc);
    let out = causes(&info("", "Service", true, true), &svc, None);
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with(
        "FieldValueInvalid metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist"
    ));
}

#[test]
fn cluster_scoped_refuses_namespace_and_rbac_uses_path_segments() {
    let i = info("rbac.authorization.k8s.io", "ClusterRole", false, true);
    let cr = json!({"metadata": {"name": "system:controller:x"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
    assert!(causes(&i, &cr, None).is_empty());
    let cr = json!({"metadata": {"name": "a/b", "namespace": "x"}, "rules": []});
    assert_eq!(
        causes(&i, &cr, None),
        vec![
            "FieldValueInvalid metadata.name: Invalid value: \"a/b\": may not contain '/'",
            "FieldValueForbidden metadata.namespace: Forbidden: not allowed on this type",
        ]
    );
}

#[test]
fn custom_resources_get_meta_rules_only() {
    let i = info("example.com", "Widget", true, false);
    let w = json!({"metadata": {"name": "w1", "namespace": "d", "finalizers": ["custom"]}, "spec": {"anything": 1}});
    assert!(causes(&i, &w, None).is_empty());
    let w = json!({"metadata": {"namespace": "d"}});
    assert_eq!(
        causes(&i, &w, None),
        vec!["FieldValueRequired metadata.name: Required value: name or generateName is required"]
    );
}

#[test]
fn name_helpers() {
    let pods = info("", "Pod", true, true);
    assert_eq!(
        validate_name(&pods, ".."),
        vec!["may not be '..'".to_string()]
    );
    assert_eq!(
        validate_name(&pods, "a%b"),
        vec!["may not contain '%'".to_string()]
    );
    assert!(validate_name(&pods, "web-1").is_empty());
    assert!(validate_generate_name(&pods, "web-").is_empty());
    assert!(!validate_generate_name(&pods, "Web-").is_empty());
    assert_eq!(
        validate_path_segment("."),
        vec!["may not be '.'".to_string()]
    );
}

#[test]
fn configmap_update_on_immutable() {
    let i = info("", "ConfigMap", true, true);
    let old = json!({"metadata": {"name": "c", "namespace": "d", "resourceVersion": "1"}, "immutable": true, "data": {"a": "1"}});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(
        causes(&i, &new, Some(&old)),
        vec!["FieldValueForbidden data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn deployment_selector_mismatch_through_validate() {
    let i = info("apps", "Deployment", true, true);
    let mut d = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    crate::defaults::apply(&i, &mut d);
    assert_eq!(causes(&i, &d, None), vec![
        "FieldValueInvalid spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
    ]);
}

#[test]
fn mirror_pods_need_a_node() {
    let i = info("", "Pod", true, true);
    let mut pod = defaulted_pod("static-web");
    pod["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
    assert_eq!(causes(&i, &pod, None), vec![
        "FieldValueInvalid metadata.annotations[kubernetes.io/config.mirror]: Invalid value: \"hash\": must set spec.nodeName if mirror pod annotation is set",
    ]);
    pod["spec"]["nodeName"] = json!("board-1");
    assert!(causes(&i, &pod, None).is_empty());
}

#[test]
fn odd_inputs_do_not_panic() {
    let i = info("", "Pod", true, true);
    let mut pod = defaulted_pod("p");
    pod["metadata"]["generateName"] = json!("é-");
    pod["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "[']"}}}]);
    pod["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": "é-"}}]);
    let out = causes(&i, &pod, None);
    assert!(!out.is_empty());
    for garbage in [
        json!(null),
        json!([]),
        json!("x"),
        json!({"spec": []}),
        json!({"metadata": 5, "spec": {"containers": {}}}),
    ] {
        let _ = validate(&i, &garbage, None);
        let _ = validate(&i, &garbage, Some(&garbage));
        let mut g = garbage.clone();
        crate::defaults::apply(&i, &mut g);
    }
}
