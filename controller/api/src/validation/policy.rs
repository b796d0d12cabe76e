//! PodDisruptionBudget (policy/v1) and HorizontalPodAutoscaler (autoscaling/v2).

use serde_json::Value;

use super::compute::quantity;
use super::field::{invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path};
use super::meta::label_selector;
use super::names::is_path_segment_name;
use super::obj::{self, named};
use super::workloads::{not_more_than_100_percent, positive_int_or_percent};

/// `ValidatePodDisruptionBudgetSpec`.
pub fn pdb(o: &Value) -> ErrorList {
    let sp = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(o, "spec").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    let (min, max) = (
        obj::get(spec, "minAvailable"),
        obj::get(spec, "maxUnavailable"),
    );
    if min.is_some() && max.is_some() {
        errs.push(invalid(
            &sp,
            BadValue::Json(spec.clone()),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (f, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if v.is_some() {
            errs.extend(positive_int_or_percent(v, &sp.child(f)));
            errs.extend(not_more_than_100_percent(v, &sp.child(f)));
        }
    }
    if let Some(sel) = obj::get(spec, "selector") {
        errs.extend(label_selector(sel, &sp.child("selector")));
    }
    if let Some(p) = obj::opt_s(spec, "unhealthyPodEvictionPolicy") {
        if p != "IfHealthyBudget" && p != "AlwaysAllow" {
            errs.push(not_supported(
                &sp.child("unhealthyPodEvictionPolicy"),
                named(p),
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    errs
}

fn metric_target(t: Option<&Value>, p: &Path) -> ErrorList {
    let empty = Value::Null;
    let t = t.unwrap_or(&empty);
    let mut errs = ErrorList::new();
    let ty = obj::s(t, "type");
    if ty.is_empty() {
        errs.push(required(
            &p.child("type"),
            "must specify a metric target type",
        ));
    }
    if ty != "Utilization" && ty != "Value" && ty != "AverageValue" {
        errs.push(invalid(
            &p.child("type"),
            named(ty),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for f in ["value", "averageValue"] {
        if let Some(v) = obj::get(t, f) {
            match quantity(v, &p.child(f)) {
                Ok(q) if q.nanos() <= 0 => {
                    errs.push(invalid_str(&p.child(f), &q.canonical(), "must be positive"))
                }
                Ok(_) => {}
                Err(e) => errs.extend(e),
            }
        }
    }
    if let Some(u) = obj::opt_i(t, "averageUtilization") {
        if u < 1 {
            errs.push(invalid(
                &p.child("averageUtilization"),
                BadValue::Int(u),
                "must be greater than 0",
            ));
        }
    }
    errs
}

fn metric(m: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ty = obj::s(m, "type");
    let types = [
        "Object",
        "Pods",
        "Resource",
        "External",
        "ContainerResource",
    ];
    if ty.is_empty() {
        errs.push(required(
            &p.child("type"),
            "must specify a metric source type",
        ));
    }
    if !types.contains(&ty) {
        errs.push(not_supported(&p.child("type"), named(ty), &types));
    }
    let field = match ty {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => return errs,
    };
    let Some(src) = obj::get(m, field) else {
        errs.push(required(
            &p.child(field),
            "must populate information for the given metric source",
        ));
        return errs;
    };
    let sp = p.child(field);
    if field == "resource" || field == "containerResource" {
        if obj::s(src, "name").is_empty() {
            errs.push(required(&sp.child("name"), "must specify a resource name"));
        }
        if field == "containerResource" && obj::s(src, "container").is_empty() {
            errs.push(required(&sp.child("container"), "must specify a container"));
        }
    } else if obj::at(src, &["metric", "name"])
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        errs.push(required(
            &sp.child("metric").child("name"),
            "must specify a metric name",
        ));
    }
    errs.extend(metric_target(obj::get(src, "target"), &sp.child("target")));
    errs
}

/// `ValidateHorizontalPodAutoscaler` spec part.
pub fn hpa(o: &Value) -> ErrorList {
    let sp = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(o, "spec").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    let min = obj::opt_i(spec, "minReplicas");
    let max = obj::i(spec, "maxReplicas");
    if let Some(m) = min {
        if m < 1 {
            errs.push(invalid(
                &sp.child("minReplicas"),
                BadValue::Int(m),
                "must be greater than or equal to 1",
            ));
        }
    }
    if max < 1 {
        errs.push(invalid(
            &sp.child("maxReplicas"),
            BadValue::Int(max),
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(invalid(
            &sp.child("maxReplicas"),
            BadValue::Int(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let rp = sp.child("scaleTargetRef");
    let target = obj::get(spec, "scaleTargetRef").unwrap_or(&empty);
    let mut ref_errs = ErrorList::new();
    for f in ["kind", "name"] {
        let v = obj::s(target, f);
        if v.is_empty() {
            ref_errs.push(required(&rp.child(f), ""));
        } else {
            ref_errs.extend(
                is_path_segment_name(v)
                    .into_iter()
                    .map(|m| invalid_str(&rp.child(f), v, &m)),
            );
        }
    }
    if !ref_errs.is_empty() {
        errs.extend(ref_errs);
        return errs;
    }
    let mut metric_errs = ErrorList::new();
    for (i, m) in obj::arr(spec, "metrics").iter().enumerate() {
        metric_errs.extend(metric(m, &sp.child("metrics").index(i)));
    }
    if !metric_errs.is_empty() {
        errs.extend(metric_errs);
        return errs;
    }
    if let Some(b) = obj::get(spec, "behavior") {
        let bp = sp.child("behavior");
        for dir in ["scaleUp", "scaleDown"] {
            if let Some(rules) = obj::get(b, dir) {
                errs.extend(scaling_rules(rules, &bp.child(dir)));
            }
        }
    }
    errs
}

/// `validateScalingRules` for one direction of `spec.behavior`.
fn scaling_rules(rules: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(w) = obj::opt_i(rules, "stabilizationWindowSeconds") {
        let wp = p.child("stabilizationWindowSeconds");
        if w < 0 {
            errs.push(invalid(
                &wp,
                BadValue::Int(w),
                "must be greater than or equal to zero",
            ));
        }
        if w > 3600 {
            errs.push(invalid(
                &wp,
                BadValue::Int(w),
                "must be less than or equal to 3600",
            ));
        }
    }
    if let Some(sp) = obj::opt_s(rules, "selectPolicy") {
        if !["Max", "Min", "Disabled"].contains(&sp) {
            errs.push(not_supported(
                &p.child("selectPolicy"),
                named(sp),
                &["Disabled", "Max", "Min"],
            ));
        }
    }
    let pp = p.child("policies");
    let policies = obj::arr(rules, "policies");
    if policies.is_empty() {
        errs.push(required(&pp, "must specify at least one Policy"));
    }
    for (i, pol) in policies.iter().enumerate() {
        let ip = pp.index(i);
        let t = obj::s(pol, "type");
        if t != "Pods" && t != "Percent" {
            errs.push(not_supported(
                &ip.child("type"),
                named(t),
                &["Percent", "Pods"],
            ));
        }
        let v = obj::i(pol, "value");
        if v <= 0 {
            errs.push(invalid(
                &ip.child("value"),
                BadValue::Int(v),
                "must be greater than zero",
            ));
        }
        let ps = obj::i(pol, "periodSeconds");
        if ps <= 0 {
            errs.push(invalid(
                &ip.child("periodSeconds"),
                BadValue::Int(ps),
                "must be greater than zero",
            ));
        }
        if ps > 1800 {
            errs.push(invalid(
                &ip.child("periodSeconds"),
                BadValue::Int(ps),
                "must be less than or equal to 1800",
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
    fn pdb_min_xor_max() {
        let p = json!({"spec": {"minAvailable": 1, "maxUnavailable": "150%"}});
        let out = render(&pdb(&p));
        assert!(out[0].starts_with("spec: Invalid value: {"), "{out:?}");
        assert!(out[0].ends_with("minAvailable and maxUnavailable cannot be both set"));
        assert_eq!(
            out[1],
            "spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
        );
    }

    #[test]
    fn hpa_behavior() {
        let h = json!({"spec": {"minReplicas": 1, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 4000, "policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}}});
        assert_eq!(render(&hpa(&h)), vec![
            "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600",
            "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero",
        ]);
    }

    #[test]
    fn hpa_bounds() {
        let h = json!({"spec": {"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]}});
        assert_eq!(render(&hpa(&h)), vec![
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        ]);
    }
}
