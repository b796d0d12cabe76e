//! Pod specs and pod templates as upstream's `ValidatePodSpec`, `ValidatePodCreate` and
//! `ValidatePodTemplateSpec` check them.

use serde_json::Value;

use super::container::{self, Ctx};
use super::field::{
    duplicate, forbidden, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::{annotations, label_name, label_selector, labels};
use super::names::{
    inclusive_range_error, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value,
};
use super::obj::{self, bad, named};

/// Whether the spec belongs to a Pod (stricter host-network port rule) or a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecOf {
    Pod,
    Template,
}

/// `ValidatePodSpec`.
pub fn pod_spec(spec: &Value, path: &Path, of: SpecOf) -> ErrorList {
    let mut errs = ErrorList::new();
    let grace = obj::opt_i(spec, "terminationGracePeriodSeconds");
    if grace.is_none() {
        errs.push(required(&path.child("terminationGracePeriodSeconds"), ""));
    }
    let (vols, verrs) = super::volumes::volumes(obj::arr(spec, "volumes"), &path.child("volumes"));
    errs.extend(verrs);
    let ctx = Ctx {
        volumes: &vols,
        grace_period: grace,
    };
    let containers = obj::arr(spec, "containers");
    errs.extend(container::containers(
        containers,
        &ctx,
        &path.child("containers"),
    ));
    errs.extend(container::init_containers(
        obj::arr(spec, "initContainers"),
        containers,
        &ctx,
        &path.child("initContainers"),
    ));
    if obj::b(spec, "hostNetwork") {
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in obj::arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (obj::i(port, "hostPort"), obj::i(port, "containerPort"));
                if (of == SpecOf::Pod || hp != 0) && hp != cp {
                    let p = path
                        .child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort");
                    errs.push(invalid(
                        &p,
                        BadValue::Int(hp),
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    match obj::s(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&path.child("restartPolicy"), "")),
        other => errs.push(not_supported(
            &path.child("restartPolicy"),
            named(other),
            &["Always", "OnFailure", "Never"],
        )),
    }
    match obj::s(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(&path.child("dnsPolicy"), "")),
        other => errs.push(not_supported(
            &path.child("dnsPolicy"),
            named(other),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(labels(spec, "nodeSelector", &path.child("nodeSelector")));
    if let Some(sc) = obj::get(spec, "securityContext") {
        errs.extend(pod_security_context(sc, &path.child("securityContext")));
    }
    for (i, s) in obj::arr(spec, "imagePullSecrets").iter().enumerate() {
        if s.as_object().is_some_and(|m| m.keys().any(|k| k != "name")) {
            errs.push(invalid(
                &path.child("imagePullSecrets").index(i),
                BadValue::Json(s.clone()),
                "only name may be set",
            ));
        }
    }
    if let Some(a) = obj::get(spec, "affinity") {
        errs.extend(affinity(a, &path.child("affinity")));
    }
    errs.extend(dns_config(spec, &path.child("dnsConfig")));
    for (i, g) in obj::arr(spec, "readinessGates").iter().enumerate() {
        let t = obj::s(g, "conditionType");
        let p = path.child("readinessGates").index(i).child("conditionType");
        errs.extend(
            is_qualified_name(t)
                .into_iter()
                .map(|m| invalid_str(&p, t, &m)),
        );
    }
    let mut gates = Vec::new();
    for (i, g) in obj::arr(spec, "schedulingGates").iter().enumerate() {
        let n = obj::s(g, "name");
        let p = path.child("schedulingGates").index(i);
        errs.extend(
            is_qualified_name(n)
                .into_iter()
                .map(|m| invalid_str(&p, n, &m)),
        );
        if gates.contains(&n) {
            errs.push(duplicate(&p, BadValue::Str(n.into())));
        }
        gates.push(n);
    }
    errs.extend(topology_spread(
        obj::arr(spec, "topologySpreadConstraints"),
        &path.child("topologySpreadConstraints"),
    ));
    for f in ["serviceAccountName", "nodeName", "priorityClassName"] {
        let v = obj::s(spec, f);
        if !v.is_empty() {
            errs.extend(
                is_dns1123_subdomain(v)
                    .into_iter()
                    .map(|m| invalid_str(&path.child(f), v, &m)),
            );
        }
    }
    if let Some(ads) = obj::opt_i(spec, "activeDeadlineSeconds") {
        if ads < 1 || ads > i32::MAX as i64 {
            errs.push(invalid(
                &path.child("activeDeadlineSeconds"),
                BadValue::Int(ads),
                &inclusive_range_error(1, i32::MAX as i64),
            ));
        }
    }
    for f in ["hostname", "subdomain"] {
        let v = obj::s(spec, f);
        if !v.is_empty() {
            errs.extend(
                is_dns1123_label(v)
                    .into_iter()
                    .map(|m| invalid_str(&path.child(f), v, &m)),
            );
        }
    }
    errs.extend(tolerations(
        obj::arr(spec, "tolerations"),
        &path.child("tolerations"),
    ));
    for (i, ha) in obj::arr(spec, "hostAliases").iter().enumerate() {
        let p = path.child("hostAliases").index(i);
        let ip = obj::s(ha, "ip");
        if ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(invalid_str(
                &p.child("ip"),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
        for (j, h) in obj::strings(ha, "hostnames").iter().enumerate() {
            let hp = p.child("hostnames").index(j);
            errs.extend(
                is_dns1123_subdomain(h)
                    .into_iter()
                    .map(|m| invalid_str(&hp, h, &m)),
            );
        }
    }
    if let Some(pp) = obj::opt_s(spec, "preemptionPolicy") {
        match pp {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(required(&path.child("preemptionPolicy"), "")),
            other => errs.push(not_supported(
                &path.child("preemptionPolicy"),
                named(other),
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(os) = obj::get(spec, "os") {
        let n = obj::s(os, "name");
        if n.is_empty() {
            errs.push(required(&path.child("os").child("name"), ""));
        } else if n != "linux" && n != "windows" {
            errs.push(not_supported(
                &path.child("os").child("name"),
                named(n),
                &["linux", "windows"],
            ));
        }
    }
    errs
}

fn pod_security_context(sc: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let range = inclusive_range_error(0, i32::MAX as i64);
    for f in ["fsGroup", "runAsUser", "runAsGroup"] {
        if let Some(id) = obj::opt_i(sc, f) {
            if !(0..=i32::MAX as i64).contains(&id) {
                errs.push(invalid(&p.child(f), BadValue::Int(id), &range));
            }
        }
    }
    for (i, g) in obj::arr(sc, "supplementalGroups").iter().enumerate() {
        let id = g.as_i64().unwrap_or(-1);
        if !(0..=i32::MAX as i64).contains(&id) {
            errs.push(invalid(
                &p.child("supplementalGroups").index(i),
                BadValue::Int(id),
                &range,
            ));
        }
    }
    let mut seen = Vec::new();
    for (i, s) in obj::arr(sc, "sysctls").iter().enumerate() {
        let n = obj::s(s, "name");
        let np = p.child("sysctls").index(i).child("name");
        if n.is_empty() {
            errs.push(required(&np, ""));
        } else if seen.contains(&n) {
            errs.push(duplicate(&np, BadValue::Str(n.into())));
        }
        seen.push(n);
    }
    if let Some(pol) = obj::opt_s(sc, "fsGroupChangePolicy") {
        if pol != "OnRootMismatch" && pol != "Always" {
            errs.push(not_supported(
                &p.child("fsGroupChangePolicy"),
                named(pol),
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    errs.extend(container::seccomp_profile(sc, &p.child("seccompProfile")));
    errs
}

fn dns_config(spec: &Value, p: &Path) -> ErrorList {
    let cfg = obj::get(spec, "dnsConfig");
    if obj::s(spec, "dnsPolicy") == "None" {
        match cfg {
            None => {
                return vec![required(
                    p,
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                )]
            }
            Some(c) if obj::arr(c, "nameservers").is_empty() => {
                return vec![required(
                    &p.child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )]
            }
            _ => {}
        }
    }
    let Some(c) = cfg else { return vec![] };
    let mut errs = ErrorList::new();
    let ns = obj::arr(c, "nameservers");
    if ns.len() > 3 {
        errs.push(invalid(
            &p.child("nameservers"),
            bad(c.get("nameservers")),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        let n = n.as_str().unwrap_or("");
        if n.parse::<std::net::IpAddr>().is_err() {
            errs.push(invalid_str(
                &p.child("nameservers").index(i),
                n,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    let searches = obj::strings(c, "searches");
    if searches.len() > 32 {
        errs.push(invalid(
            &p.child("searches"),
            bad(c.get("searches")),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(invalid(
            &p.child("searches"),
            bad(c.get("searches")),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        let s = s.strip_suffix('.').unwrap_or(s);
        let sp = p.child("searches").index(i);
        errs.extend(
            is_dns1123_subdomain(s)
                .into_iter()
                .map(|m| invalid_str(&sp, s, &m)),
        );
    }
    for (i, o) in obj::arr(c, "options").iter().enumerate() {
        if obj::s(o, "name").is_empty() {
            errs.push(required(&p.child("options").index(i), "must not be empty"));
        }
    }
    errs
}

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
fn affinity(a: &Value, p: &Path) -> ErrorList {
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

fn topology_spread(list: &[Value], path: &Path) -> ErrorList {
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

/// `ValidatePodCreate` minus ObjectMeta (checked by the caller): the spec plus pod-only rules.
pub fn pod_create(pod: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(pod, "spec").unwrap_or(&empty);
    let mut errs = pod_spec(spec, &spec_path, SpecOf::Pod);
    if obj::s(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in obj::arr(spec, "volumes").iter().enumerate() {
            let Some(proj) = obj::get(vol, "projected") else {
                continue;
            };
            for (si, src) in obj::arr(proj, "sources").iter().enumerate() {
                if obj::get(src, "serviceAccountToken").is_some() {
                    let p = spec_path
                        .child("volumes")
                        .index(vi)
                        .child("projected")
                        .child("sources")
                        .index(si)
                        .child("serviceAccountToken");
                    errs.push(forbidden(
                        &p,
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    errs.extend(container::only_for_pod(
        obj::arr(spec, "containers"),
        &spec_path.child("containers"),
    ));
    errs.extend(container::only_for_pod(
        obj::arr(spec, "initContainers"),
        &spec_path.child("initContainers"),
    ));
    errs
}

/// Extra create-only rules (ephemeral containers, scheduling gates with a node).
pub fn pod_create_only(pod: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = Value::Null;
    let spec = obj::get(pod, "spec").unwrap_or(&empty);
    if !obj::arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !obj::s(spec, "nodeName").is_empty() && !obj::arr(spec, "schedulingGates").is_empty() {
        errs.push(forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

/// `ValidatePodTemplateSpec` at `path` (usually `spec.template`).
pub fn template_spec(template: Option<&Value>, path: &Path) -> ErrorList {
    let Some(t) = template else {
        return vec![required(path, "")];
    };
    // Upstream reports template labels at `<path>.labels` (ObjectMeta is embedded).
    let meta = obj::get(t, "metadata").cloned().unwrap_or(Value::Null);
    let mut errs = labels(&meta, "labels", &path.child("labels"));
    errs.extend(annotations(
        &meta,
        "annotations",
        &path.child("annotations"),
    ));
    let empty = Value::Null;
    let spec = obj::get(t, "spec").unwrap_or(&empty);
    errs.extend(pod_spec(spec, &path.child("spec"), SpecOf::Template));
    if !obj::arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
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

    fn good_spec() -> Value {
        json!({"containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Always",
            "terminationMessagePolicy": "File"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30})
    }

    #[test]
    fn good_spec_is_valid() {
        assert!(pod_spec(&good_spec(), &Path::new("spec"), SpecOf::Pod).is_empty());
    }

    #[test]
    fn containers_required_and_restart_policy() {
        let mut s = good_spec();
        s["containers"] = json!([]);
        s["restartPolicy"] = json!("Sometimes");
        assert_eq!(render(&pod_spec(&s, &Path::new("spec"), SpecOf::Pod)), vec![
            "spec.containers: Required value",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ]);
    }

    #[test]
    fn container_rules() {
        let mut s = good_spec();
        s["containers"] = json!([
            {"name": "Bad_Name", "image": "", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
             "ports": [{"containerPort": 70000, "protocol": "TCP"}],
             "env": [{"name": "1X"}],
             "volumeMounts": [{"name": "missing", "mountPath": "/m"}],
             "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}},
             "livenessProbe": {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}},
        ]);
        s["initContainers"] = json!([{"name": "Bad_Name", "image": "x", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}]);
        let out = render(&pod_spec(&s, &Path::new("spec"), SpecOf::Pod));
        assert!(
            out[0].starts_with(
                "spec.containers[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label"
            ),
            "{out:#?}"
        );
        let expect = [
            "spec.containers[0].image: Required value",
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
            "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
            "spec.containers[0].livenessProbe: Required value: must specify a handler type",
            "spec.initContainers[0].name: Duplicate value: \"Bad_Name\"",
        ];
        for e in expect {
            assert!(out.iter().any(|o| o == e), "missing {e}\n{out:#?}");
        }
        assert!(out.iter().any(|o| o.starts_with("spec.containers[0].env[0].name: Invalid value: \"1X\": a valid environment variable name")));
    }

    #[test]
    fn template_paths() {
        let t = json!({"metadata": {"labels": {"a": "-"}}, "spec": good_spec()});
        let out = render(&template_spec(
            Some(&t),
            &Path::new("spec").child("template"),
        ));
        assert_eq!(out.len(), 1);
        assert!(
            out[0].starts_with("spec.template.labels: Invalid value: \"-\""),
            "{out:?}"
        );
    }
}
