//! Compute resources (`resources.limits/requests`), quantities and container security
//! contexts, as upstream's `ValidateContainerResourceRequirements` and
//! `ValidateSecurityContext` check them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::field::{
    forbidden, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::names::{inclusive_range_error, is_qualified_name};
use super::obj::{self, named};
use super::qty::{Qty, QtyExt};
use super::volumes::local_descending_path;

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// `helper.IsStandardResourceName` (single-segment names upstream knows).
pub fn is_standard_resource(name: &str) -> bool {
    matches!(
        name,
        "cpu"
            | "memory"
            | "ephemeral-storage"
            | "storage"
            | "pods"
            | "services"
            | "replicationcontrollers"
            | "resourcequotas"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
            | "requests.cpu"
            | "requests.memory"
            | "requests.storage"
            | "requests.ephemeral-storage"
            | "limits.cpu"
            | "limits.memory"
            | "limits.ephemeral-storage"
    ) || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || name.starts_with("count/")
}

fn is_overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

/// `validateResourceName` + container rules for one resource key.
fn container_resource_name(name: &str, p: &str) -> ErrorList {
    let mut errs: ErrorList = is_qualified_name(name)
        .into_iter()
        .map(|m| invalid(p, named(name), &m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        if !is_standard_resource(name) {
            errs.push(invalid(
                p,
                named(name),
                "must be a standard resource type or fully qualified",
            ));
        }
        if !is_standard_container_resource(name) {
            errs.push(invalid(
                p,
                named(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !name.contains("kubernetes.io/") && name.starts_with("requests.") {
        errs.push(invalid(
            p,
            named(name),
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// A quantity string, or an error in upstream's decode wording.
pub fn quantity(v: &Value, p: &str) -> Result<Qty, ErrorList> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    Qty::parse(text.trim()).map_err(|m| vec![invalid_str(p, &text, &m.to_string())])
}

/// `ValidateResourceQuantityValue`: non-negative; integers for integer resources.
pub fn quantity_value(resource: &str, q: &Qty, p: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    if q.is_negative() {
        errs.push(invalid_str(p, &q.canonical(), super::meta::IS_NEGATIVE));
    }
    let integer = resource == "pods"
        || resource == "services"
        || resource.starts_with("count/")
        || resource.ends_with(".count");
    if integer && q.milli_value() % 1000 != 0 {
        errs.push(invalid(
            p,
            BadValue::Str(q.canonical()),
            "must be an integer",
        ));
    }
    errs
}

/// `ValidateContainerResourceRequirements`.
pub fn resources(r: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (lp, rp) = (p.child("limits"), p.child("requests"));
    let mut limits: BTreeMap<&str, Qty> = BTreeMap::new();
    let (mut lim_cpu_mem, mut req_cpu_mem, mut huge) = (false, false, false);
    for name in obj::keys(r, "limits") {
        let fp = lp.key(name);
        errs.extend(container_resource_name(name, &fp));
        match quantity(&r["limits"][name], &fp) {
            Ok(q) => {
                errs.extend(quantity_value(name, &q, &fp));
                limits.insert(name, q);
            }
            Err(e) => errs.extend(e),
        }
        huge |= name.starts_with("hugepages-");
        lim_cpu_mem |= name == "cpu" || name == "memory";
    }
    for name in obj::keys(r, "requests") {
        let fp = rp.key(name);
        errs.extend(container_resource_name(name, &fp));
        let q = match quantity(&r["requests"][name], &fp) {
            Ok(q) => q,
            Err(e) => {
                errs.extend(e);
                continue;
            }
        };
        errs.extend(quantity_value(name, &q, &fp));
        if let Some(limit) = limits.get(name) {
            if q != *limit && !is_overcommit_allowed(name) {
                errs.push(invalid_str(
                    &rp,
                    &q.canonical(),
                    &format!("must be equal to {name} limit of {}", limit.canonical()),
                ));
            } else if q > *limit {
                errs.push(invalid_str(
                    &rp,
                    &q.canonical(),
                    &format!(
                        "must be less than or equal to {name} limit of {}",
                        limit.canonical()
                    ),
                ));
            }
        } else if !is_overcommit_allowed(name) {
            errs.push(required(
                &lp,
                "Limit must be set for non overcommitable resources",
            ));
        }
        huge |= name.starts_with("hugepages-");
        req_cpu_mem |= name == "cpu" || name == "memory";
    }
    if !lim_cpu_mem && !req_cpu_mem && huge {
        errs.push(forbidden(p, "HugePages require cpu or memory"));
    }
    errs
}

/// `ValidateSecurityContext` (container level).
pub fn security_context(sc: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (f, group) in [("runAsUser", false), ("runAsGroup", true)] {
        if let Some(id) = obj::opt_i(sc, f) {
            if !(0..=i32::MAX as i64).contains(&id) {
                let _ = group;
                errs.push(invalid(
                    &p.child(f),
                    BadValue::Int(id),
                    &inclusive_range_error(0, i32::MAX as i64),
                ));
            }
        }
    }
    if let Some(pm) = obj::opt_s(sc, "procMount") {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(not_supported(
                &p.child("procMount"),
                named(pm),
                &["Default", "Unmasked"],
            ));
        }
    }
    errs.extend(seccomp_profile(sc, &p.child("seccompProfile")));
    if obj::get(sc, "allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
        if obj::b(sc, "privileged") {
            errs.push(invalid(
                p,
                BadValue::Json(sc.clone()),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds = obj::get(sc, "capabilities")
            .map(|c| obj::strings(c, "add"))
            .unwrap_or_default();
        if adds.contains(&"CAP_SYS_ADMIN") {
            errs.push(invalid(p, BadValue::Json(sc.clone()), "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"));
        }
    }
    errs
}

/// `validateSeccompProfileField` on `parent.seccompProfile`.
pub fn seccomp_profile(parent: &Value, p: &Path) -> ErrorList {
    let Some(sp) = obj::get(parent, "seccompProfile") else {
        return vec![];
    };
    let mut errs = ErrorList::new();
    let t = obj::s(sp, "type");
    match t {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(required(
            &p.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(not_supported(
            &p.child("type"),
            named(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if t == "Localhost" {
        match obj::opt_s(sp, "localhostProfile") {
            None => errs.push(required(
                &p.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(lp) => errs.extend(local_descending_path(lp, &p.child("localhostProfile"))),
        }
    } else if obj::get(sp, "localhostProfile").is_some() {
        errs.push(invalid(
            &p.child("localhostProfile"),
            BadValue::Json(sp.clone()),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}
