//! Scheduling fields of a PodSpec: tolerations, node and pod (anti-)affinity and topology
//! spread constraints, as upstream's `ValidateTolerations`/`validateAffinity` check them.

use serde_json::Value;

use super::field::{
    duplicate, forbidden, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::{label_name, label_selector};
use super::names::{is_dns1123_label, is_valid_label_value};
use super::obj::{self, named};

/// `ValidateTolerations`.
pub fn tolerations(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in list.iter().enumerate() {
        let p = path.index(i);
        let key = obj::s(t, "key");
        let op = obj::s(t, "operator");
        let effect = obj::s(t, "effect");
        let value = obj::s(t, "value");
        if !key.is_empty() {
            errs.extend(label_name(key, &p.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(invalid(&p.child("operator"), named(op), "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
        }
        if obj::get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(invalid(
                &p.child("effect"),
                named(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid_str(&p.child("operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid_str(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &p.child("operator"),
                named(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(not_supported(
                &p.child("effect"),
                named(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

fn node_selector_requirement(rq: &Value, p: &Path, check_values: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = obj::strings(rq, "values");
    match obj::s(rq, "operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(required(
                    &p.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(forbidden(
                    &p.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(required(
                    &p.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        other => errs.push(invalid(
            &p.child("operator"),
            named(other),
            "not a valid selector operator",
        )),
    }
    errs.extend(label_name(obj::s(rq, "key"), &p.child("key")));
    if check_values {
        for (i, v) in values.iter().enumerate() {
            let vp = p.child("values").index(i);
            errs.extend(
                is_valid_label_value(v)
                    .into_iter()
                    .map(|m| invalid_str(&vp, v, &m)),
            );
        }
    }
    errs
}

fn node_selector_term(term: &Value, p: &Path, check_values: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    for (j, rq) in obj::arr(term, "matchExpressions").iter().enumerate() {
        errs.extend(node_selector_requirement(
            rq,
            &p.child("matchExpressions").index(j),
            check_values,
        ));
    }
    for (j, rq) in obj::arr(term, "matchFields").iter().enumerate() {
        let fp = p.child("matchFields").index(j);
        let op = obj::s(rq, "operator");
        if op == "In" || op == "NotIn" {
            if obj::arr(rq, "values").len() != 1 {
                errs.push(required(&fp.child("values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"));
            }
        } else {
            errs.push(invalid(
                &fp.child("operator"),
                named(op),
                "not a valid selector operator",
            ));
        }
        let key = obj::s(rq, "key");
        if key != "metadata.name" {
            errs.push(invalid_str(
                &fp.child("key"),
                key,
                "not a valid field selector key",
            ));
        }
    }
    errs
}

/// `validateAffinity`.
pub fn affinity(a: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(na) = obj::get(a, "nodeAffinity") {
        let np = p.child("nodeAffinity");
        if let Some(req) = obj::get(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            let rp = np
                .child("requiredDuringSchedulingIgnoredDuringExecution")
                .child("nodeSelectorTerms");
            let terms = obj::arr(req, "nodeSelectorTerms");
            if terms.is_empty() {
                errs.push(required(&rp, "must have at least one node selector term"));
            }
            for (i, t) in terms.iter().enumerate() {
                errs.extend(node_selector_term(t, &rp.index(i), true));
            }
        }
        for (i, t) in obj::arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let tp = np
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            let w = obj::i(t, "weight");
            if !(1..=100).contains(&w) {
                errs.push(invalid(
                    &tp.child("weight"),
                    BadValue::Int(w),
                    "must be in the range 1-100",
                ));
            }
            if let Some(pref) = obj::get(t, "preference") {
                errs.extend(node_selector_term(pref, &tp.child("preference"), false));
            }
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = obj::get(a, kind) else {
            continue;
        };
        let kp = p.child(kind);
        for (i, t) in obj::arr(pa, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            errs.extend(pod_affinity_term(
                t,
                &kp.child("requiredDuringSchedulingIgnoredDuringExecution")
                    .index(i),
            ));
        }
        for (i, t) in obj::arr(pa, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let tp = kp
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            let w = obj::i(t, "weight");
            if !(1..=100).contains(&w) {
                errs.push(invalid(
                    &tp.child("weight"),
                    BadValue::Int(w),
                    "must be in the range 1-100",
                ));
            }
            if let Some(term) = obj::get(t, "podAffinityTerm") {
                errs.extend(pod_affinity_term(term, &tp.child("podAffinityTerm")));
            }
        }
    }
    errs
}

fn pod_affinity_term(t: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(sel) = obj::get(t, "labelSelector") {
        errs.extend(label_selector(sel, &p.child("labelSelector")));
    }
    if let Some(sel) = obj::get(t, "namespaceSelector") {
        errs.extend(label_selector(sel, &p.child("namespaceSelector")));
    }
    for ns in obj::strings(t, "namespaces") {
        errs.extend(
            is_dns1123_label(ns)
                .into_iter()
                .map(|m| invalid_str(&p.child("namespace"), ns, &m)),
        );
    }
    let key = obj::s(t, "topologyKey");
    if key.is_empty() {
        errs.push(required(&p.child("topologyKey"), "can not be empty"));
    }
    errs.extend(label_name(key, &p.child("topologyKey")));
    errs
}

pub fn topology_spread(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        let skew = obj::i(c, "maxSkew");
        if skew <= 0 {
            errs.push(invalid(
                &p.child("maxSkew"),
                BadValue::Int(skew),
                "must be greater than zero",
            ));
        }
        let key = obj::s(c, "topologyKey");
        if key.is_empty() {
            errs.push(required(&p.child("topologyKey"), "can not be empty"));
        } else {
            errs.extend(label_name(key, &p.child("topologyKey")));
        }
        let wu = obj::s(c, "whenUnsatisfiable");
        if !["DoNotSchedule", "ScheduleAnyway"].contains(&wu) {
            errs.push(not_supported(
                &p.child("whenUnsatisfiable"),
                named(wu),
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        let pair = (key.to_string(), wu.to_string());
        if seen.contains(&pair) {
            errs.push(duplicate(&p, BadValue::Str(format!("{{{key}, {wu}}}"))));
        }
        seen.push(pair);
        if let Some(sel) = obj::get(c, "labelSelector") {
            errs.extend(label_selector(sel, &p.child("labelSelector")));
        }
    }
    errs
}
