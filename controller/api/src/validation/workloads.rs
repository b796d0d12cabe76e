//! apps/v1 workloads: Deployment, ReplicaSet, DaemonSet and StatefulSet, as upstream's
//! `pkg/apis/apps/validation` checks them.

use serde_json::Value;

use super::field::{
    forbidden, gorepr, invalid, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::{
    label_selector, nonnegative, selector_is_empty, selector_matches, FIELD_IMMUTABLE,
};
use super::names::is_valid_percent;
use super::obj::{self, named};
use super::pod::template_spec;

/// `ValidatePositiveIntOrPercent`.
pub fn positive_int_or_percent(v: Option<&Value>, p: &str) -> ErrorList {
    match v {
        Some(Value::String(s)) => is_valid_percent(s)
            .into_iter()
            .map(|m| invalid(p, ios(v), &m))
            .collect(),
        Some(Value::Number(n)) => nonnegative(n.as_i64().unwrap_or(-1), p),
        None | Some(Value::Null) => vec![],
        Some(_) => vec![invalid(
            p,
            ios(v),
            "must be an integer or percentage (e.g '5%')",
        )],
    }
}

/// `getIntOrPercentValue`.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s.trim_end_matches('%').parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// `IsNotMoreThan100Percent`.
pub fn not_more_than_100_percent(v: Option<&Value>, p: &str) -> ErrorList {
    match v {
        Some(Value::String(s))
            if is_valid_percent(s).is_empty() && int_or_percent_value(v) > 100 =>
        {
            vec![invalid(p, ios(v), "must not be greater than 100%")]
        }
        _ => vec![],
    }
}

/// Selector + template checks shared by the four workloads.
fn selector_and_template(
    spec: &Value,
    sp: &Path,
    what: &str,
    kind_for_deadline: &str,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let selector = obj::get(spec, "selector");
    match selector {
        None => errs.push(required(&sp.child("selector"), "")),
        Some(sel) => {
            errs.extend(label_selector(sel, &sp.child("selector")));
            if selector_is_empty(sel) {
                errs.push(invalid(
                    &sp.child("selector"),
                    BadValue::GoRepr(gorepr::label_selector(Some(sel))),
                    &format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
    let tp = sp.child("template");
    let template = obj::get(spec, "template");
    if let (Some(sel), Some(t)) = (selector, template) {
        let labels = obj::at(t, &["metadata", "labels"])
            .cloned()
            .unwrap_or(Value::Null);
        if !selector_is_empty(sel) && !selector_matches(sel, &labels) {
            errs.push(invalid(
                &tp.child("metadata").child("labels"),
                BadValue::GoRepr(gorepr::string_map(obj::at(t, &["metadata", "labels"]))),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs.extend(template_spec(template, &tp));
    if let Some(t) = template {
        let rp = obj::at(t, &["spec", "restartPolicy"])
            .and_then(Value::as_str)
            .unwrap_or("");
        if rp != "Always" {
            errs.push(not_supported(
                &tp.child("spec").child("restartPolicy"),
                named(rp),
                &["Always"],
            ));
        }
        if obj::at(t, &["spec", "activeDeadlineSeconds"]).is_some() {
            errs.push(forbidden(
                &tp.child("spec").child("activeDeadlineSeconds"),
                &format!("activeDeadlineSeconds in {kind_for_deadline} is not Supported"),
            ));
        }
    }
    errs
}

fn spec_of(o: &Value) -> Value {
    obj::get(o, "spec").cloned().unwrap_or(Value::Null)
}

fn selector_immutable(o: &Value, old: Option<&Value>) -> ErrorList {
    let Some(old) = old else { return vec![] };
    let (new_sel, old_sel) = (
        obj::at(o, &["spec", "selector"]),
        obj::at(old, &["spec", "selector"]),
    );
    if obj::same(new_sel, old_sel) {
        return vec![];
    }
    vec![invalid(
        "spec.selector",
        BadValue::GoRepr(gorepr::label_selector(new_sel)),
        FIELD_IMMUTABLE,
    )]
}

/// `%#v` of an IntOrString field (v1.33 prints IntOrString values that way).
fn ios(v: Option<&Value>) -> BadValue {
    BadValue::GoRepr(gorepr::int_or_string(v))
}

/// `%#v` of an update strategy struct whose `rollingUpdate` pointer is nil; JSON otherwise.
fn strategy_repr(strategy: &Value, go_type: &str, ru_type: &str) -> BadValue {
    if obj::get(strategy, "rollingUpdate").is_some() {
        return BadValue::Json(strategy.clone());
    }
    BadValue::GoRepr(format!(
        "{go_type}{{Type:{}, RollingUpdate:({ru_type})(nil)}}",
        super::field::go_quote(obj::s(strategy, "type"))
    ))
}

/// `ValidateDeployment` (+ update), ObjectMeta excluded.
pub fn deployment(o: &Value, old: Option<&Value>) -> ErrorList {
    let spec = spec_of(o);
    let sp = Path::new("spec");
    let mut errs = nonnegative(obj::i(&spec, "replicas"), &sp.child("replicas"));
    errs.extend(selector_and_template(
        &spec,
        &sp,
        "deployment",
        "ReplicaSet",
    ));
    let strategy = obj::get(&spec, "strategy").cloned().unwrap_or(Value::Null);
    let stp = sp.child("strategy");
    match obj::s(&strategy, "type") {
        "Recreate" => {
            if obj::get(&strategy, "rollingUpdate").is_some() {
                errs.push(forbidden(
                    &stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match obj::get(&strategy, "rollingUpdate") {
            None => errs.push(required(
                &stp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                errs.extend(positive_int_or_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(positive_int_or_percent(ms, &rp.child("maxSurge")));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(invalid(
                        &rp.child("maxUnavailable"),
                        ios(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
            }
        },
        _ => errs.push(not_supported(
            &stp,
            strategy_repr(
                &strategy,
                "apps.DeploymentStrategy",
                "*apps.RollingUpdateDeployment",
            ),
            &["Recreate", "RollingUpdate"],
        )),
    }
    let min_ready = obj::i(&spec, "minReadySeconds");
    errs.extend(nonnegative(min_ready, &sp.child("minReadySeconds")));
    if let Some(r) = obj::opt_i(&spec, "revisionHistoryLimit") {
        errs.extend(nonnegative(r, &sp.child("revisionHistoryLimit")));
    }
    if let Some(pd) = obj::opt_i(&spec, "progressDeadlineSeconds") {
        let p = sp.child("progressDeadlineSeconds");
        errs.extend(nonnegative(pd, &p));
        if pd <= min_ready {
            errs.push(invalid(
                &p,
                BadValue::Int(pd),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs.extend(selector_immutable(o, old));
    errs
}

/// `ValidateReplicaSet` (+ update), ObjectMeta excluded.
pub fn replica_set(o: &Value, old: Option<&Value>) -> ErrorList {
    let spec = spec_of(o);
    let sp = Path::new("spec");
    let mut errs = nonnegative(obj::i(&spec, "replicas"), &sp.child("replicas"));
    errs.extend(nonnegative(
        obj::i(&spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
    ));
    errs.extend(selector_and_template(
        &spec,
        &sp,
        "deployment",
        "ReplicaSet",
    ));
    errs.extend(selector_immutable(o, old));
    errs
}

/// `ValidateDaemonSet` (+ update), ObjectMeta excluded.
pub fn daemon_set(o: &Value, old: Option<&Value>) -> ErrorList {
    let spec = spec_of(o);
    let sp = Path::new("spec");
    let mut errs = selector_and_template(&spec, &sp, "daemonset", "DaemonSet");
    errs.extend(nonnegative(
        obj::i(&spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
    ));
    errs.extend(nonnegative(
        obj::i(&spec, "templateGeneration"),
        &sp.child("templateGeneration"),
    ));
    let strategy = obj::get(&spec, "updateStrategy")
        .cloned()
        .unwrap_or(Value::Null);
    let stp = sp.child("updateStrategy");
    match obj::s(&strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match obj::get(&strategy, "rollingUpdate") {
            None => errs.push(required(&stp.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                errs.extend(positive_int_or_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(positive_int_or_percent(ms, &rp.child("maxSurge")));
                errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(not_more_than_100_percent(ms, &rp.child("maxSurge")));
                let (has_u, has_s) = (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0);
                if has_u && has_s {
                    errs.push(invalid(
                        &rp.child("maxSurge"),
                        ios(ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_u && !has_s {
                    errs.push(required(
                        &rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        _ => errs.push(not_supported(
            &stp,
            strategy_repr(
                &strategy,
                "apps.DaemonSetUpdateStrategy",
                "*apps.RollingUpdateDaemonSet",
            ),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(r) = obj::opt_i(&spec, "revisionHistoryLimit") {
        errs.extend(nonnegative(r, &sp.child("revisionHistoryLimit")));
    }
    errs.extend(selector_immutable(o, old));
    errs
}

/// `ValidateStatefulSet` (+ update), ObjectMeta excluded.
pub fn stateful_set(o: &Value, old: Option<&Value>) -> ErrorList {
    let spec = spec_of(o);
    let sp = Path::new("spec");
    let mut errs = ErrorList::new();
    match obj::s(&spec, "podManagementPolicy") {
        "" => errs.push(required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(
            &sp.child("podManagementPolicy"),
            named(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = obj::get(&spec, "updateStrategy")
        .cloned()
        .unwrap_or(Value::Null);
    let stp = sp.child("updateStrategy");
    match obj::s(&strategy, "type") {
        "" => errs.push(required(&stp, "")),
        "OnDelete" => {
            if let Some(ru) = obj::get(&strategy, "rollingUpdate") {
                errs.push(invalid(
                    &stp.child("rollingUpdate"),
                    BadValue::Json(ru.clone()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = obj::get(&strategy, "rollingUpdate") {
                let rp = stp.child("rollingUpdate");
                errs.extend(nonnegative(obj::i(ru, "partition"), &rp.child("partition")));
                if let Some(mu) = obj::get(ru, "maxUnavailable") {
                    errs.extend(positive_int_or_percent(
                        Some(mu),
                        &rp.child("maxUnavailable"),
                    ));
                    if int_or_percent_value(Some(mu)) == 0 {
                        errs.push(invalid(
                            &rp.child("maxUnavailable"),
                            ios(Some(mu)),
                            "must be greater than 0",
                        ));
                    }
                    errs.extend(not_more_than_100_percent(
                        Some(mu),
                        &rp.child("maxUnavailable"),
                    ));
                }
            }
        }
        _ => errs.push(invalid(
            &stp,
            strategy_repr(
                &strategy,
                "apps.StatefulSetUpdateStrategy",
                "*apps.RollingUpdateStatefulSetStrategy",
            ),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(pol) = obj::get(&spec, "persistentVolumeClaimRetentionPolicy") {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for f in ["whenDeleted", "whenScaled"] {
            let v = obj::s(pol, f);
            if v != "Retain" && v != "Delete" {
                errs.push(not_supported(&pp.child(f), named(v), &["Retain", "Delete"]));
            }
        }
    }
    errs.extend(nonnegative(
        obj::i(&spec, "replicas"),
        &sp.child("replicas"),
    ));
    errs.extend(nonnegative(
        obj::i(&spec, "minReadySeconds"),
        &sp.child("minReadySeconds"),
    ));
    // Claim templates become pod volumes when the controller creates pods: mounts may use them.
    let mut with_claims = spec.clone();
    let claims: Vec<Value> = obj::arr(&spec, "volumeClaimTemplates")
        .iter()
        .map(|c| {
            obj::at(c, &["metadata", "name"])
                .and_then(Value::as_str)
                .unwrap_or("")
        })
        .filter(|n| !n.is_empty())
        .map(|n| serde_json::json!({"name": n, "persistentVolumeClaim": {"claimName": n}}))
        .collect();
    if let Some(ps) = with_claims
        .pointer_mut("/template/spec")
        .and_then(Value::as_object_mut)
    {
        let vols = ps.entry("volumes").or_insert_with(|| Value::Array(vec![]));
        if let Some(v) = vols.as_array_mut() {
            v.extend(claims);
        }
    }
    errs.extend(selector_and_template(
        &with_claims,
        &sp,
        "statefulset",
        "StatefulSet",
    ));
    if let Some(old) = old {
        let os = spec_of(old);
        let strip = |s: &Value| {
            let mut s = s.clone();
            if let Some(m) = s.as_object_mut() {
                for f in [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "revisionHistoryLimit",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ] {
                    m.remove(f);
                }
            }
            s
        };
        if !obj::same(Some(&strip(&spec)), Some(&strip(&os))) {
            errs.push(forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
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

    fn deploy(labels: Value) -> Value {
        json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30}}}})
    }

    #[test]
    fn valid_deployment() {
        assert!(deployment(&deploy(json!({"app": "web"})), None).is_empty());
    }

    #[test]
    fn selector_mismatch_message() {
        assert_eq!(render(&deployment(&deploy(json!({"app": "api"})), None)), vec![
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`",
        ]);
    }

    #[test]
    fn strategy_and_replicas() {
        let mut d = deploy(json!({"app": "web"}));
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": "0%"});
        assert_eq!(render(&deployment(&d, None)), vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ]);
    }

    #[test]
    fn selector_is_immutable() {
        let old = deploy(json!({"app": "web", "v": "1"}));
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"v": "1"}});
        assert_eq!(
            render(&deployment(&new, Some(&old))),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"v\":\"1\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
            ]
        );
    }

    #[test]
    fn statefulset_mounts_may_use_claim_templates() {
        let mut s = deploy(json!({"app": "web"}));
        s["spec"]["podManagementPolicy"] = json!("OrderedReady");
        s["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        s["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"}, "spec": {}}]);
        s["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": "/d"}]);
        assert_eq!(render(&stateful_set(&s, None)), Vec::<String>::new());
        s["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "other", "mountPath": "/d"}]);
        assert_eq!(
            render(&stateful_set(&s, None)),
            vec!["spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"other\"",]
        );
    }

    #[test]
    fn daemonset_strategy() {
        let mut d = deploy(json!({"app": "web"}));
        d["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
        assert_eq!(render(&daemon_set(&d, None)), vec![
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
        ]);
    }
}
