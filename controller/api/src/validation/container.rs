//! Containers as upstream's `validateContainerCommon`, `validateContainers` and
//! `validateInitContainers` check them: names, images, ports, env, mounts, probes, resources.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::field::{
    duplicate, forbidden, invalid, invalid_str, not_found, not_supported, required, BadValue,
    ErrorList, Path,
};
use super::meta::nonnegative;
use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_http_header_name, is_relaxed_env_var_name,
    is_valid_port_name, is_valid_port_num,
};
use super::obj::{self, bad, named};
use super::volumes::{config_key, local_descending_path, object_field_selector};

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Context a container is checked in.
pub struct Ctx<'a> {
    pub volumes: &'a BTreeMap<String, &'a Value>,
    pub grace_period: Option<i64>,
}

/// `validateContainers` for `spec.containers`.
pub fn containers(list: &[Value], ctx: &Ctx, path: &Path) -> ErrorList {
    if list.is_empty() {
        return vec![required(path, "")];
    }
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        errs.extend(common(c, ctx, &p));
        let name = obj::s(c, "name");
        if !names.insert(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.into())));
        }
        if let Some(lc) = obj::get(c, "lifecycle") {
            errs.extend(lifecycle(lc, ctx, &p.child("lifecycle")));
        }
        errs.extend(probe(c, "livenessProbe", ctx, &p, true));
        errs.extend(probe(c, "readinessProbe", ctx, &p, false));
        errs.extend(probe(c, "startupProbe", ctx, &p, true));
        if obj::get(c, "restartPolicy").is_some() {
            errs.push(forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(list, path));
    errs
}

/// `validateInitContainers` for `spec.initContainers`.
pub fn init_containers(list: &[Value], regular: &[Value], ctx: &Ctx, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| obj::s(c, "name")).collect();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        errs.extend(common(c, ctx, &p));
        let mut restart_always = false;
        if let Some(rp) = obj::opt_s(c, "restartPolicy") {
            if rp != "Always" {
                errs.push(not_supported(
                    &p.child("restartPolicy"),
                    named(rp),
                    &["Always"],
                ));
            }
            restart_always = rp == "Always";
        }
        let name = obj::s(c, "name");
        if names.contains(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.into())));
        } else if !name.is_empty() {
            names.insert(name);
        }
        errs.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if restart_always {
            if let Some(lc) = obj::get(c, "lifecycle") {
                errs.extend(lifecycle(lc, ctx, &p.child("lifecycle")));
            }
            errs.extend(probe(c, "livenessProbe", ctx, &p, true));
            errs.extend(probe(c, "readinessProbe", ctx, &p, false));
            errs.extend(probe(c, "startupProbe", ctx, &p, true));
        } else {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if obj::get(c, f).is_some() {
                    errs.push(forbidden(
                        &p.child(f),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// `validateContainerOnlyForPod`: images may not carry surrounding whitespace in a Pod.
pub fn only_for_pod(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, c) in list.iter().enumerate() {
        let image = obj::s(c, "image");
        if image.len() != image.trim().len() {
            errs.push(invalid_str(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    errs
}

fn common(c: &Value, ctx: &Ctx, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = obj::s(c, "name");
    if name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else {
        for m in is_dns1123_label(name) {
            errs.push(invalid_str(&p.child("name"), name, &m));
        }
    }
    if obj::s(c, "image").is_empty() {
        errs.push(required(&p.child("image"), ""));
    }
    match obj::s(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(&p.child("terminationMessagePolicy"), "")),
        other => errs.push(not_supported(
            &p.child("terminationMessagePolicy"),
            named(other),
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(ports(obj::arr(c, "ports"), &p.child("ports")));
    errs.extend(env(obj::arr(c, "env"), &p.child("env")));
    errs.extend(env_from(obj::arr(c, "envFrom"), &p.child("envFrom")));
    errs.extend(volume_mounts(c, ctx, &p.child("volumeMounts")));
    match obj::s(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(required(&p.child("imagePullPolicy"), "")),
        other => errs.push(not_supported(
            &p.child("imagePullPolicy"),
            named(other),
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = obj::get(c, "resources") {
        errs.extend(super::compute::resources(r, &p.child("resources")));
    }
    if let Some(sc) = obj::get(c, "securityContext") {
        errs.extend(super::compute::security_context(
            sc,
            &p.child("securityContext"),
        ));
    }
    errs
}

fn ports(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, port) in list.iter().enumerate() {
        let p = path.index(i);
        let name = obj::s(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(invalid_str(&p.child("name"), name, &m));
                }
            } else if !names.insert(name) {
                errs.push(duplicate(&p.child("name"), BadValue::Str(name.into())));
            }
        }
        let cp = obj::i(port, "containerPort");
        if cp == 0 {
            errs.push(required(&p.child("containerPort"), ""));
        } else {
            for m in is_valid_port_num(cp) {
                errs.push(invalid(&p.child("containerPort"), BadValue::Int(cp), &m));
            }
        }
        let hp = obj::i(port, "hostPort");
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                errs.push(invalid(&p.child("hostPort"), BadValue::Int(hp), &m));
            }
        }
        errs.extend(protocol(obj::s(port, "protocol"), &p.child("protocol")));
    }
    errs
}

/// Port protocol: required, one of TCP, UDP, SCTP.
pub fn protocol(proto: &str, p: &str) -> ErrorList {
    match proto {
        "TCP" | "UDP" | "SCTP" => vec![],
        "" => vec![required(p, "")],
        other => vec![not_supported(p, named(other), &["SCTP", "TCP", "UDP"])],
    }
}

fn host_port_conflicts(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in list.iter().enumerate() {
        for (pi, port) in obj::arr(c, "ports").iter().enumerate() {
            let hp = obj::i(port, "hostPort");
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{hp}",
                obj::s(port, "protocol"),
                obj::s(port, "hostIP")
            );
            if !seen.insert(key.clone()) {
                let p = path.index(ci).child("ports").index(pi).child("hostPort");
                errs.push(duplicate(&p, BadValue::Str(key)));
            }
        }
    }
    errs
}

fn env(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in list.iter().enumerate() {
        let p = path.index(i);
        let name = obj::s(ev, "name");
        if name.is_empty() {
            errs.push(required(&p.child("name"), ""));
        } else {
            for m in is_relaxed_env_var_name(name) {
                errs.push(invalid_str(&p.child("name"), name, &m));
            }
        }
        let Some(vf) = obj::get(ev, "valueFrom") else {
            continue;
        };
        let vp = p.child("valueFrom");
        let mut n = 0;
        if let Some(fr) = obj::get(vf, "fieldRef") {
            n += 1;
            errs.extend(object_field_selector(
                fr,
                ENV_FIELD_PATHS,
                &vp.child("fieldRef"),
            ));
        }
        if let Some(rf) = obj::get(vf, "resourceFieldRef") {
            n += 1;
            let res = obj::s(rf, "resource");
            let rp = vp.child("resourceFieldRef");
            let ok = [
                "limits.cpu",
                "limits.ephemeral-storage",
                "limits.memory",
                "requests.cpu",
                "requests.ephemeral-storage",
                "requests.memory",
            ];
            if res.is_empty() {
                errs.push(required(&rp.child("resource"), ""));
            } else if !ok.contains(&res)
                && !res.starts_with("requests.hugepages-")
                && !res.starts_with("limits.hugepages-")
            {
                errs.push(not_supported(
                    &rp.child("resource"),
                    BadValue::Str(res.into()),
                    &ok,
                ));
            }
        }
        for kind in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(r) = obj::get(vf, kind) {
                n += 1;
                let kp = vp.child(kind);
                let name = obj::s(r, "name");
                for m in is_dns1123_subdomain(name) {
                    errs.push(invalid_str(&kp.child("name"), name, &m));
                }
                errs.extend(config_key(obj::s(r, "key"), &kp.child("key")));
            }
        }
        if n == 0 {
            errs.push(invalid_str(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !obj::s(ev, "value").is_empty() {
            errs.push(invalid_str(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(invalid_str(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn env_from(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in list.iter().enumerate() {
        let p = path.index(i);
        let prefix = obj::s(ev, "prefix");
        if !prefix.is_empty() {
            for m in is_relaxed_env_var_name(prefix) {
                errs.push(invalid_str(&p.child("prefix"), prefix, &m));
            }
        }
        let mut n = 0;
        for kind in ["configMapRef", "secretRef"] {
            if let Some(r) = obj::get(ev, kind) {
                n += 1;
                let name = obj::s(r, "name");
                if name.is_empty() {
                    errs.push(required(&p.child(kind).child("name"), ""));
                } else {
                    let masked = super::names::mask_trailing_dash(name);
                    for m in is_dns1123_subdomain(&masked) {
                        errs.push(invalid_str(&p.child(kind).child("name"), name, &m));
                    }
                }
            }
        }
        if n == 0 {
            errs.push(invalid_str(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(invalid_str(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn volume_mounts(c: &Value, ctx: &Ctx, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut mount_points = BTreeSet::new();
    let privileged =
        obj::at(c, &["securityContext", "privileged"]).and_then(Value::as_bool) == Some(true);
    for (i, m) in obj::arr(c, "volumeMounts").iter().enumerate() {
        let p = path.index(i);
        let name = obj::s(m, "name");
        if name.is_empty() {
            errs.push(required(&p.child("name"), ""));
        }
        if !ctx.volumes.contains_key(name) {
            errs.push(not_found(&p.child("name"), BadValue::Str(name.into())));
        }
        let mp = obj::s(m, "mountPath");
        if mp.is_empty() {
            errs.push(required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(mp) {
            errs.push(invalid_str(&p.child("mountPath"), mp, "must be unique"));
        }
        let sub = obj::s(m, "subPath");
        if !sub.is_empty() {
            errs.extend(local_descending_path(sub, &path.child("subPath")));
        }
        let expr = obj::s(m, "subPathExpr");
        if !expr.is_empty() {
            if !sub.is_empty() {
                errs.push(invalid_str(
                    &p.child("subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(expr, &path.child("subPathExpr")));
        }
        if let Some(prop) = obj::opt_s(m, "mountPropagation") {
            let pp = path.child("mountPropagation");
            if !["Bidirectional", "HostToContainer", "None"].contains(&prop) {
                errs.push(not_supported(
                    &pp,
                    named(prop),
                    &["Bidirectional", "HostToContainer", "None"],
                ));
            }
            if prop == "Bidirectional" && !privileged {
                errs.push(forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
    }
    errs
}

fn probe(c: &Value, kind: &str, ctx: &Ctx, p: &Path, success_must_be_one: bool) -> ErrorList {
    let Some(pr) = obj::get(c, kind) else {
        return vec![];
    };
    let pp = p.child(kind);
    let mut errs = handler(pr, ctx, &pp, false);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(nonnegative(obj::i(pr, f), &pp.child(f)));
    }
    if let Some(t) = obj::opt_i(pr, "terminationGracePeriodSeconds") {
        if t <= 0 {
            errs.push(invalid(
                &pp.child("terminationGracePeriodSeconds"),
                BadValue::Int(t),
                "must be greater than 0",
            ));
        }
    }
    let st = obj::i(pr, "successThreshold");
    if success_must_be_one && st != 1 {
        errs.push(invalid(
            &pp.child("successThreshold"),
            BadValue::Int(st),
            "must be 1",
        ));
    }
    if kind == "readinessProbe" && obj::get(pr, "terminationGracePeriodSeconds").is_some() {
        errs.push(invalid(
            &pp.child("terminationGracePeriodSeconds"),
            bad(pr.get("terminationGracePeriodSeconds")),
            "must not be set for readinessProbes",
        ));
    }
    errs
}

fn lifecycle(lc: &Value, ctx: &Ctx, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for hook in ["postStart", "preStop"] {
        if let Some(h) = obj::get(lc, hook) {
            errs.extend(handler(h, ctx, &p.child(hook), true));
        }
    }
    errs
}

/// `validateHandler`: exactly one of exec, httpGet, tcpSocket, grpc (probes) or sleep (hooks).
fn handler(h: &Value, ctx: &Ctx, p: &Path, lifecycle: bool) -> ErrorList {
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    let mut errs = ErrorList::new();
    let mut n = 0;
    for k in kinds {
        let Some(v) = obj::get(h, k) else { continue };
        let kp = p.child(k);
        if n > 0 {
            errs.push(forbidden(&kp, "may not specify more than 1 handler type"));
            continue;
        }
        n += 1;
        match *k {
            "exec" => {
                if obj::arr(v, "command").is_empty() {
                    errs.push(required(&kp.child("command"), ""));
                }
            }
            "httpGet" => {
                if obj::s(v, "path").is_empty() {
                    errs.push(required(&kp.child("path"), ""));
                }
                errs.extend(port_num_or_name(v.get("port"), &kp.child("port")));
                let scheme = obj::s(v, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(not_supported(
                        &kp.child("scheme"),
                        named(scheme),
                        &["HTTP", "HTTPS"],
                    ));
                }
                for hdr in obj::arr(v, "httpHeaders") {
                    let hn = obj::s(hdr, "name");
                    for m in is_http_header_name(hn) {
                        errs.push(invalid_str(&kp.child("httpHeaders"), hn, &m));
                    }
                }
            }
            "tcpSocket" => errs.extend(port_num_or_name(v.get("port"), &kp.child("port"))),
            "grpc" => {
                let port = obj::i(v, "port");
                for m in is_valid_port_num(port) {
                    errs.push(invalid(&kp.child("port"), BadValue::Int(port), &m));
                }
            }
            _ => {
                let secs = obj::i(v, "seconds");
                if let Some(g) = ctx.grace_period {
                    if secs < 0 || secs > g {
                        errs.push(invalid(
                            &kp,
                            BadValue::Int(secs),
                            &format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                        ));
                    }
                }
            }
        }
    }
    if n == 0 {
        errs.push(required(p, "must specify a handler type"));
    }
    errs
}

/// `ValidatePortNumOrName` on an IntOrString.
pub fn port_num_or_name(v: Option<&Value>, p: &str) -> ErrorList {
    match v {
        Some(Value::String(s)) => is_valid_port_name(s)
            .into_iter()
            .map(|m| invalid_str(p, s, &m))
            .collect(),
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            is_valid_port_num(n)
                .into_iter()
                .map(|m| invalid(p, BadValue::Int(n), &m))
                .collect()
        }
    }
}
