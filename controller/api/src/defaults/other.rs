//! Defaults for the remaining groups: autoscaling, scheduling, storage, rbac,
//! apiextensions, discovery and networking.

use serde_json::{json, Value};

use super::{as_map, child, each, get_obj, set_if_empty, set_if_nil};

/// `SetDefaults_HorizontalPodAutoscaler` (autoscaling/v2): minReplicas 1, a CPU 80% metric
/// when none is given, and scale-up/scale-down rules filled in when `behavior` is set.
pub fn hpa(h: &mut Value) {
    let spec = child(h, "spec");
    set_if_nil(spec, "minReplicas", json!(1));
    let no_metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if no_metrics {
        as_map(spec).insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(b) = get_obj(spec, "behavior") {
        let up = child(b, "scaleUp");
        set_if_nil(up, "stabilizationWindowSeconds", json!(0));
        set_if_nil(up, "selectPolicy", json!("Max"));
        set_if_nil(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                   {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        let down = child(b, "scaleDown");
        set_if_nil(down, "stabilizationWindowSeconds", json!(300));
        set_if_nil(down, "selectPolicy", json!("Max"));
        set_if_nil(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

/// `SetDefaults_PriorityClass`: preemptionPolicy PreemptLowerPriority.
pub fn priority_class(pc: &mut Value) {
    set_if_nil(pc, "preemptionPolicy", json!("PreemptLowerPriority"));
}

/// `SetDefaults_StorageClass`: reclaimPolicy Delete, volumeBindingMode Immediate.
pub fn storage_class(sc: &mut Value) {
    set_if_nil(sc, "reclaimPolicy", json!("Delete"));
    set_if_nil(sc, "volumeBindingMode", json!("Immediate"));
}

/// `SetDefaults_RoleBinding`/`ClusterRoleBinding` and `SetDefaults_Subject`.
pub fn role_binding(rb: &mut Value) {
    if let Some(rr) = get_obj(rb, "roleRef") {
        set_if_empty(rr, "apiGroup", "rbac.authorization.k8s.io");
    }
    each(rb, "subjects", |s| {
        if s.get("apiGroup")
            .and_then(Value::as_str)
            .is_some_and(|g| !g.is_empty())
        {
            return;
        }
        match s.get("kind").and_then(Value::as_str) {
            Some("ServiceAccount") => set_if_nil(s, "apiGroup", json!("")),
            Some("User") | Some("Group") => {
                set_if_empty(s, "apiGroup", "rbac.authorization.k8s.io")
            }
            _ => {}
        }
    });
}

/// `SetDefaults_CustomResourceDefinition(Spec)`: singular, listKind, conversion None.
pub fn crd(c: &mut Value) {
    let spec = child(c, "spec");
    let names = child(spec, "names");
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let plural_singular_missing = names
        .get("singular")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if plural_singular_missing && !kind.is_empty() {
        as_map(names).insert("singular".into(), json!(kind.to_lowercase()));
    }
    if !kind.is_empty() {
        set_if_empty(names, "listKind", &format!("{kind}List"));
    }
    set_if_nil(spec, "conversion", json!({"strategy": "None"}));
    if let Some(conv) = get_obj(spec, "conversion") {
        if let Some(svc) = conv.pointer_mut("/webhook/clientConfig/service") {
            set_if_nil(svc, "port", json!(443));
        }
    }
}

/// `SetDefaults_EndpointPort` (discovery/v1): protocol TCP, name "".
pub fn endpoint_slice(s: &mut Value) {
    each(s, "ports", |p| {
        set_if_nil(p, "protocol", json!("TCP"));
        set_if_nil(p, "name", json!(""));
    });
}

/// `SetDefaults_NetworkPolicy(Port)`: port protocol TCP, policyTypes from the rules given.
pub fn network_policy(np: &mut Value) {
    let spec = child(np, "spec");
    for dir in ["ingress", "egress"] {
        each(spec, dir, |rule| {
            each(rule, "ports", |p| set_if_nil(p, "protocol", json!("TCP")))
        });
    }
    let no_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if no_types {
        let has_egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let mut types = vec![json!("Ingress")];
        if has_egress {
            types.push(json!("Egress"));
        }
        as_map(spec).insert("policyTypes".into(), Value::Array(types));
    }
}

/// `SetDefaults_IngressClass`: parameters default to cluster scope.
pub fn ingress_class(ic: &mut Value) {
    if let Some(params) = ic.pointer_mut("/spec/parameters").filter(|p| p.is_object()) {
        set_if_nil(params, "scope", json!("Cluster"));
    }
}
