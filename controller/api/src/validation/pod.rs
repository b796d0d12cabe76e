//! Pod specs and pod templates as upstream's `ValidatePodSpec`, `ValidatePodCreate` and
//! `ValidatePodTemplateSpec` check them.

use serde_json::Value;

use super::container::{self, Ctx};
use super::field::{
    duplicate, forbidden, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::{annotations, labels};
use super::names::{
    inclusive_range_error, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
};
use super::obj::{self, named};
use super::scheduling::{affinity, tolerations, topology_spread};

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
    for f in ["serviceAccountName", "nodeName"] {
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
    for f in ["priorityClassName", "runtimeClassName"] {
        let v = obj::s(spec, f);
        if !v.is_empty() || (f == "runtimeClassName" && obj::get(spec, f).is_some()) {
            errs.extend(
                is_dns1123_subdomain(v)
                    .into_iter()
                    .map(|m| invalid_str(&path.child(f), v, &m)),
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
    errs.extend(super::compute::seccomp_profile(
        sc,
        &p.child("seccompProfile"),
    ));
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
            BadValue::GoRepr(super::field::gorepr::string_slice(
                c.get("nameservers"),
                "string",
            )),
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
            BadValue::GoRepr(super::field::gorepr::string_slice(
                c.get("searches"),
                "string",
            )),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(invalid(
            &p.child("searches"),
            BadValue::GoRepr(super::field::gorepr::string_slice(
                c.get("searches"),
                "string",
            )),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    // RelaxedDNSSearchValidation (on by default in v1.33): `.` alone and underscores allowed.
    for (i, s) in searches.iter().enumerate() {
        if *s == "." {
            continue;
        }
        let s = s.strip_suffix('.').unwrap_or(s);
        let sp = p.child("searches").index(i);
        errs.extend(
            super::names::is_dns1123_subdomain_with_underscore(s)
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

/// Upstream's mirror-pod annotation (static pods the kubelet reflects into the API).
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// `ValidatePodSpecificAnnotations`: mirror pods need a node; deletion cost is an int32.
pub fn pod_annotations(pod: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let ap = Path::new("metadata").child("annotations");
    let ann = |k: &str| obj::at(pod, &["metadata", "annotations", k]).and_then(Value::as_str);
    if let Some(v) = ann(MIRROR_POD_ANNOTATION) {
        if obj::at(pod, &["spec", "nodeName"])
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            errs.push(invalid_str(
                &ap.key(MIRROR_POD_ANNOTATION),
                v,
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    if let Some(v) = ann(DELETION_COST_ANNOTATION) {
        if v.parse::<i32>().is_err() {
            errs.push(invalid_str(
                &ap.key(DELETION_COST_ANNOTATION),
                v,
                "must be a 32bit integer",
            ));
        }
    }
    errs
}

/// `ValidatePodCreate` minus ObjectMeta (checked by the caller): the spec plus pod-only rules.
pub fn pod_create(pod: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(pod, "spec").unwrap_or(&empty);
    let mut errs = pod_annotations(pod);
    errs.extend(pod_spec(spec, &spec_path, SpecOf::Pod));
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
             "env": [{"name": "A=B"}],
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
        assert!(out.iter().any(|o| o == "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='"), "{out:#?}");
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
