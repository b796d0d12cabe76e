//! Remaining core/v1 kinds: Namespace, Node, Event, PersistentVolume(Claim), ResourceQuota and
//! LimitRange, as upstream's core validation checks them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::compute::{is_standard_resource, quantity, quantity_value};
use super::field::{
    duplicate, forbidden, gorepr, invalid, invalid_str, not_supported, required, BadValue,
    ErrorList, Path,
};
use super::meta::{finalizer_name, label_name, FIELD_IMMUTABLE};
use super::names::{is_qualified_name, is_valid_label_value};
use super::obj::{self, named};
use super::qty::Qty;

/// `ValidateNamespace` spec part.
pub fn namespace(ns: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Value::Null;
    let spec = obj::get(ns, "spec").unwrap_or(&empty);
    for f in obj::strings(spec, "finalizers") {
        errs.extend(finalizer_name(f, "spec.finalizers", true));
    }
    errs
}

fn taints(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let p = path.index(i);
        let (key, value, effect) = (obj::s(t, "key"), obj::s(t, "value"), obj::s(t, "effect"));
        errs.extend(label_name(key, &p.child("key")));
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(invalid_str(&p.child("value"), value, &msgs.join(";")));
        }
        match effect {
            "" => errs.push(required(&p.child("effect"), "")),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            other => errs.push(not_supported(
                &p.child("effect"),
                named(other),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
        if seen.contains(&(effect, key)) {
            let mut e = duplicate(&p, BadValue::Json(t.clone()));
            e.detail = "taints must be unique by key and effect pair".into();
            errs.push(e);
            continue;
        }
        seen.push((effect, key));
    }
    errs
}

/// `ValidateNode` / `ValidateNodeUpdate` (ObjectMeta excluded).
pub fn node(n: &Value, old: Option<&Value>) -> ErrorList {
    let empty = Value::Null;
    let spec = obj::get(n, "spec").unwrap_or(&empty);
    // Upstream reports node taints under `metadata.taints` (a long-standing quirk).
    let mut errs = taints(
        obj::arr(spec, "taints"),
        &Path::new("metadata").child("taints"),
    );
    for section in ["capacity", "allocatable"] {
        let Some(status) = obj::get(n, "status") else {
            break;
        };
        for k in obj::keys(status, section) {
            let p = Path::new("status").child(section).child(k);
            match quantity(&status[section][k], &p) {
                Ok(q) => errs.extend(quantity_value(k, &q, &p)),
                Err(e) => errs.extend(e),
            }
        }
    }
    let cidrs = obj::strings(spec, "podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        let ok = c.split_once('/').is_some_and(|(ip, b)| {
            ip.parse::<std::net::IpAddr>().is_ok() && b.parse::<u8>().is_ok()
        });
        if !ok {
            errs.push(invalid_str(
                &Path::new("spec").child("podCIDRs").index(i),
                c,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    if let Some(old) = old {
        let os = obj::get(old, "spec").unwrap_or(&empty);
        let old_cidrs = obj::strings(os, "podCIDRs");
        if !old_cidrs.is_empty() && old_cidrs != cidrs {
            errs.push(forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        let old_pid = obj::s(os, "providerID");
        if !old_pid.is_empty() && old_pid != obj::s(spec, "providerID") {
            errs.push(forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        if obj::s(os, "externalID") != obj::s(spec, "externalID") {
            errs.push(forbidden("spec.externalID", "may not be updated"));
        }
    }
    errs
}

/// Core v1 Event (`legacyValidateEvent` for a v1 request).
pub fn event(e: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let ns = obj::at(e, &["metadata", "namespace"])
        .and_then(Value::as_str)
        .unwrap_or("");
    let empty = Value::Null;
    let involved = obj::get(e, "involvedObject").unwrap_or(&empty);
    let ins = obj::s(involved, "namespace");
    let p = "involvedObject.namespace";
    let mismatch = "does not match event.namespace";
    if obj::s(e, "eventTime").is_empty() {
        if ins.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(invalid_str(p, ins, mismatch));
            }
        } else if ins != ns {
            errs.push(invalid_str(p, ins, mismatch));
        }
    } else {
        if ins.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(invalid_str(p, ins, mismatch));
        }
        let rc = obj::s(e, "reportingComponent");
        if rc.is_empty() {
            errs.push(required("reportingComponent", ""));
        }
        errs.extend(label_name(rc, "reportingComponent"));
        for (f, limit) in [
            ("reportingInstance", 128),
            ("action", 128),
            ("reason", 128),
            ("message", 1024),
        ] {
            let v = obj::s(e, f);
            if v.is_empty() && f != "message" {
                errs.push(required(f, ""));
            }
            if v.len() > limit {
                errs.push(invalid_str(
                    f,
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        let t = obj::s(e, "type");
        if t != "Normal" && t != "Warning" {
            errs.push(invalid_str("type", "", &format!("has invalid value: {t}")));
        }
    }
    for m in super::names::is_dns1123_subdomain(ns) {
        errs.push(invalid_str("namespace", ns, &m));
    }
    errs
}

fn quota_resource_name(name: &str, p: &str) -> ErrorList {
    let errs: ErrorList = is_qualified_name(name)
        .into_iter()
        .map(|m| invalid(p, named(name), &m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !is_standard_resource(name) {
        return vec![
            invalid(
                p,
                named(name),
                "must be a standard resource type or fully qualified",
            ),
            invalid(p, named(name), "must be a standard resource for quota"),
        ];
    }
    vec![]
}

/// `ValidateResourceQuota` (+ scopes immutable on update), ObjectMeta excluded.
pub fn resource_quota(rq: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Value::Null;
    let spec = obj::get(rq, "spec").unwrap_or(&empty);
    for (section, base) in [("hard", Path::new("spec").child("hard"))] {
        for k in obj::keys(spec, section) {
            let p = base.key(k);
            errs.extend(quota_resource_name(k, &p));
            match quantity(&spec[section][k], &p) {
                Ok(q) => errs.extend(quantity_value(k, &q, &p)),
                Err(e) => errs.extend(e),
            }
        }
    }
    let scopes = obj::strings(spec, "scopes");
    let known = [
        "Terminating",
        "NotTerminating",
        "BestEffort",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
        "VolumeAttributesClass",
    ];
    for s in &scopes {
        if !known.contains(s) {
            errs.push(invalid(
                "spec.scopes",
                BadValue::GoRepr(gorepr::string_slice(
                    spec.get("scopes"),
                    "core.ResourceQuotaScope",
                )),
                "unsupported scope",
            ));
        }
    }
    for (a, b) in [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ] {
        if scopes.contains(&a) && scopes.contains(&b) {
            errs.push(invalid(
                "spec.scopes",
                BadValue::GoRepr(gorepr::string_slice(
                    spec.get("scopes"),
                    "core.ResourceQuotaScope",
                )),
                "conflicting scopes",
            ));
        }
    }
    if let Some(old) = old {
        let os = obj::get(old, "spec").unwrap_or(&empty);
        let mut a = scopes.clone();
        let mut b = obj::strings(os, "scopes");
        a.sort();
        a.dedup();
        b.sort();
        b.dedup();
        if a != b {
            errs.push(invalid(
                "spec.scopes",
                BadValue::GoRepr(gorepr::string_slice(
                    spec.get("scopes"),
                    "core.ResourceQuotaScope",
                )),
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs
}

/// `ValidateLimitRange`, ObjectMeta excluded.
pub fn limit_range(lr: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Value::Null;
    let spec = obj::get(lr, "spec").unwrap_or(&empty);
    let mut types = Vec::new();
    for (i, limit) in obj::arr(spec, "limits").iter().enumerate() {
        let p = Path::new("spec").child("limits").index(i);
        let t = obj::s(limit, "type");
        let msgs = is_qualified_name(t);
        if !msgs.is_empty() {
            errs.extend(
                msgs.into_iter()
                    .map(|m| invalid(&p.child("type"), named(t), &m)),
            );
        } else if !t.contains('/') && !["Pod", "Container", "PersistentVolumeClaim"].contains(&t) {
            errs.push(invalid(
                &p.child("type"),
                named(t),
                "must be a standard limit type or fully qualified",
            ));
        }
        if types.contains(&t) {
            errs.push(duplicate(&p.child("type"), named(t)));
        }
        types.push(t);
        let mut q: BTreeMap<(&str, &str), Qty> = BTreeMap::new();
        for section in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            if t == "Pod" && (section == "default" || section == "defaultRequest") {
                if !obj::keys(limit, section).is_empty() {
                    errs.push(forbidden(
                        &p.child(section),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
                continue;
            }
            for k in obj::keys(limit, section) {
                let kp = p.child(section).key(k);
                match quantity(&limit[section][k], &kp) {
                    Ok(v) => {
                        q.insert((section, k), v);
                    }
                    Err(e) => errs.extend(e),
                }
            }
        }
        if t == "PersistentVolumeClaim"
            && !q.contains_key(&("min", "storage"))
            && !q.contains_key(&("max", "storage"))
        {
            errs.push(required(
                &p.child("limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        let mut keys: Vec<&str> = q.keys().map(|(_, k)| *k).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let get = |s: &'static str| q.get(&(s, k));
            let (min, max, def, dreq) = (
                get("min"),
                get("max"),
                get("default"),
                get("defaultRequest"),
            );
            let c = |x: &Qty| x.canonical();
            if let (Some(mn), Some(mx)) = (min, max) {
                if mn > mx {
                    errs.push(invalid(
                        &p.child("min").key(k),
                        BadValue::Str(c(mn)),
                        &format!("min value {} is greater than max value {}", c(mn), c(mx)),
                    ));
                }
            }
            if let (Some(dr), Some(mn)) = (dreq, min) {
                if mn > dr {
                    errs.push(invalid(
                        &p.child("defaultRequest").key(k),
                        BadValue::Str(c(dr)),
                        &format!(
                            "min value {} is greater than default request value {}",
                            c(mn),
                            c(dr)
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(mx)) = (dreq, max) {
                if dr > mx {
                    errs.push(invalid(
                        &p.child("defaultRequest").key(k),
                        BadValue::Str(c(dr)),
                        &format!(
                            "default request value {} is greater than max value {}",
                            c(dr),
                            c(mx)
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(d)) = (dreq, def) {
                if dr > d {
                    errs.push(invalid(
                        &p.child("defaultRequest").key(k),
                        BadValue::Str(c(dr)),
                        &format!(
                            "default request value {} is greater than default limit value {}",
                            c(dr),
                            c(d)
                        ),
                    ));
                }
            }
            if let (Some(d), Some(mn)) = (def, min) {
                if mn > d {
                    errs.push(invalid(
                        &p.child("default").key(k),
                        BadValue::Str(c(mn)),
                        &format!("min value {} is greater than default value {}", c(mn), c(d)),
                    ));
                }
            }
            if let (Some(d), Some(mx)) = (def, max) {
                if d > mx {
                    errs.push(invalid(
                        &p.child("default").key(k),
                        BadValue::Str(c(mx)),
                        &format!("default value {} is greater than max value {}", c(d), c(mx)),
                    ));
                }
            }
            if let Some(r) = get("maxLimitRequestRatio") {
                if r.nanos() < 1_000_000_000 {
                    errs.push(invalid(
                        &p.child("maxLimitRequestRatio").key(k),
                        BadValue::Str(c(r)),
                        &format!("ratio {} is less than 1", c(r)),
                    ));
                }
            }
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
    fn quota_and_limit_range() {
        let rq = json!({"spec": {"hard": {"pods": "1.5", "bogus": "1"}}});
        let out = render(&resource_quota(&rq, None));
        assert_eq!(out, vec![
            "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource type or fully qualified",
            "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource for quota",
            "spec.hard[pods]: Invalid value: \"1500m\": must be an integer",
        ]);
        let lr = json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}});
        assert_eq!(render(&limit_range(&lr)), vec![
            "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1",
        ]);
    }

    #[test]
    fn node_taints_and_events() {
        let n = json!({"spec": {"taints": [{"key": "a", "effect": "Bad"}]}});
        assert_eq!(render(&node(&n, None)), vec![
            "metadata.taints[0].effect: Unsupported value: \"Bad\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
        ]);
        let e = json!({"metadata": {"namespace": "a"}, "involvedObject": {"namespace": "b"}});
        assert_eq!(
            render(&event(&e)),
            vec!["involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"]
        );
    }
}
