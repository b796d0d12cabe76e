//! Ingress, IngressClass (networking.k8s.io/v1) and EndpointSlice (discovery.k8s.io/v1).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use super::container::protocol;
use super::field::{
    duplicate, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::{immutable, label_name};
use super::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_valid_port_name,
    is_valid_port_num, is_wildcard_dns1123_subdomain,
};
use super::obj::{self, named};
use super::service::non_special_ip;

fn backend(b: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (res, svc) = (obj::get(b, "resource"), obj::get(b, "service"));
    match (res, svc) {
        (Some(_), Some(_)) => {
            return vec![invalid_str(
                p,
                "",
                "cannot set both resource and service backends",
            )]
        }
        (Some(r), None) => {
            let rp = p.child("resource");
            if obj::s(r, "kind").is_empty() {
                errs.push(required(&rp.child("kind"), ""));
            }
            if obj::s(r, "name").is_empty() {
                errs.push(required(&rp.child("name"), ""));
            }
        }
        (None, Some(s)) => {
            let sp = p.child("service");
            let name = obj::s(s, "name");
            if name.is_empty() {
                errs.push(required(&sp.child("name"), ""));
            } else {
                errs.extend(
                    is_dns1035_label(name)
                        .into_iter()
                        .map(|m| invalid_str(&sp.child("name"), name, &m)),
                );
            }
            let empty = Value::Null;
            let port = obj::get(s, "port").unwrap_or(&empty);
            let (pname, pnum) = (obj::s(port, "name"), obj::i(port, "number"));
            if !pname.is_empty() && pnum != 0 {
                errs.push(invalid_str(
                    p,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                let pp = sp.child("port").child("name");
                errs.extend(
                    is_valid_port_name(pname)
                        .into_iter()
                        .map(|m| invalid_str(&pp, pname, &m)),
                );
            } else if pnum != 0 {
                let pp = sp.child("port").child("number");
                errs.extend(
                    is_valid_port_num(pnum)
                        .into_iter()
                        .map(|m| invalid(&pp, BadValue::Int(pnum), &m)),
                );
            } else {
                errs.push(required(p, "port name or number is required"));
            }
        }
        (None, None) => errs.push(invalid_str(
            p,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

fn http_path(path: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(pt) = obj::opt_s(path, "pathType") else {
        return vec![required(&p.child("pathType"), "pathType must be specified")];
    };
    let v = obj::s(path, "path");
    let pp = p.child("path");
    match pt {
        "Exact" | "Prefix" => {
            if !v.starts_with('/') {
                errs.push(invalid_str(&pp, v, "must be an absolute path"));
            }
            if !v.is_empty() {
                for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                    if v.contains(seq) {
                        errs.push(invalid_str(&pp, v, &format!("must not contain '{seq}'")));
                    }
                }
                for suf in ["/..", "/."] {
                    if v.ends_with(suf) {
                        errs.push(invalid_str(&pp, v, &format!("cannot end with '{suf}'")));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !v.is_empty() && !v.starts_with('/') {
                errs.push(invalid_str(&pp, v, "must be an absolute path"));
            }
        }
        other => errs.push(not_supported(
            &p.child("pathType"),
            named(other),
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    let empty = Value::Null;
    errs.extend(backend(
        obj::get(path, "backend").unwrap_or(&empty),
        &p.child("backend"),
    ));
    errs
}

/// `ValidateIngressSpec` (ObjectMeta excluded).
pub fn ingress(o: &Value) -> ErrorList {
    let sp = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(o, "spec").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    let rules = obj::arr(spec, "rules");
    let default_backend = obj::get(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        errs.push(invalid(
            &sp,
            BadValue::GoRepr(match spec.get("rules").and_then(Value::as_array) {
                Some(_) => "[]networking.IngressRule{}".into(),
                None => "[]networking.IngressRule(nil)".into(),
            }),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        errs.extend(backend(b, &sp.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = sp.child("rules").index(i);
        let host = obj::s(rule, "host");
        if !host.is_empty() {
            let hp = rp.child("host");
            if host.parse::<IpAddr>().is_ok() {
                errs.push(invalid_str(
                    &hp,
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            errs.extend(msgs.into_iter().map(|m| invalid_str(&hp, host, &m)));
        }
        if let Some(http) = obj::get(rule, "http") {
            let hp = rp.child("http");
            let paths = obj::arr(http, "paths");
            if paths.is_empty() {
                errs.push(required(&hp.child("paths"), ""));
            }
            for (j, path) in paths.iter().enumerate() {
                errs.extend(http_path(path, &hp.child("paths").index(j)));
            }
        }
    }
    for (i, tls) in obj::arr(spec, "tls").iter().enumerate() {
        for (j, h) in obj::strings(tls, "hosts").iter().enumerate() {
            let hp = sp.child("tls").index(i).child("hosts").index(j);
            let msgs = if h.contains('*') {
                is_wildcard_dns1123_subdomain(h)
            } else {
                is_dns1123_subdomain(h)
            };
            errs.extend(msgs.into_iter().map(|m| invalid_str(&hp, h, &m)));
        }
    }
    if let Some(cn) = obj::opt_s(spec, "ingressClassName") {
        errs.extend(
            is_dns1123_subdomain(cn)
                .into_iter()
                .map(|m| invalid_str(&sp.child("ingressClassName"), cn, &m)),
        );
    }
    errs
}

/// `ValidateIngressClass` spec part.
pub fn ingress_class(o: &Value) -> ErrorList {
    let empty = Value::Null;
    let spec = obj::get(o, "spec").unwrap_or(&empty);
    let c = obj::s(spec, "controller");
    let p = "spec.controller";
    if c.is_empty() {
        return vec![required(p, "")];
    }
    match c.split_once('/') {
        Some((host, path)) if !host.is_empty() && !path.is_empty() => is_dns1123_subdomain(host)
            .into_iter()
            .map(|m| invalid_str(p, host, &m))
            .collect(),
        _ => vec![invalid_str(
            p,
            c,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )],
    }
}

/// `ValidateEndpointSlice` (+ addressType immutable on update), ObjectMeta excluded.
pub fn endpoint_slice(o: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let at = obj::s(o, "addressType");
    match at {
        "" => errs.push(required("addressType", "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => errs.push(not_supported(
            "addressType",
            named(other),
            &["FQDN", "IPv4", "IPv6"],
        )),
    }
    for (i, ep) in obj::arr(o, "endpoints").iter().enumerate() {
        let p = Path::new("endpoints").index(i);
        let ap = p.child("addresses");
        let addrs = obj::strings(ep, "addresses");
        if addrs.is_empty() {
            errs.push(required(&ap, "must contain at least 1 address"));
        }
        for (j, a) in addrs.iter().enumerate() {
            let ip = ap.index(j);
            match at {
                "IPv4" | "IPv6" => {
                    let ok = match a.parse::<IpAddr>() {
                        Ok(IpAddr::V4(_)) => at == "IPv4",
                        Ok(IpAddr::V6(_)) => at == "IPv6",
                        Err(_) => false,
                    };
                    if ok {
                        errs.extend(non_special_ip(a, &ip));
                    } else {
                        errs.push(invalid_str(
                            &ip,
                            a,
                            &format!("must be a valid {at} address"),
                        ));
                    }
                }
                "FQDN" => {
                    let name = a.strip_suffix('.').unwrap_or(a);
                    let msgs = is_dns1123_subdomain(name);
                    if !msgs.is_empty() {
                        errs.push(invalid_str(&ip, name, &msgs.join(",")));
                    } else if name.split('.').count() < 2 {
                        errs.push(invalid_str(
                            &ip,
                            name,
                            "should be a domain with at least two segments separated by dots",
                        ));
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = obj::opt_s(ep, "nodeName") {
            errs.extend(
                is_dns1123_subdomain(n)
                    .into_iter()
                    .map(|m| invalid_str(&p.child("nodeName"), n, &m)),
            );
        }
        if let Some(h) = obj::opt_s(ep, "hostname") {
            errs.extend(
                is_dns1123_label(h)
                    .into_iter()
                    .map(|m| invalid_str(&p.child("hostname"), h, &m)),
            );
        }
    }
    let mut names = BTreeSet::new();
    for (i, port) in obj::arr(o, "ports").iter().enumerate() {
        let p = Path::new("ports").index(i);
        let name = obj::s(port, "name");
        if !name.is_empty() {
            errs.extend(
                is_dns1123_label(name)
                    .into_iter()
                    .map(|m| invalid_str(&p.child("name"), name, &m)),
            );
        }
        if !names.insert(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.into())));
        }
        errs.extend(protocol(obj::s(port, "protocol"), &p.child("protocol")));
        if let Some(ap) = obj::opt_s(port, "appProtocol") {
            errs.extend(label_name(ap, &p.child("appProtocol")));
        }
    }
    if let Some(old) = old {
        errs.extend(immutable(
            o.get("addressType"),
            old.get("addressType"),
            "addressType",
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

    #[test]
    fn ingress_rules() {
        assert_eq!(
            render(&ingress(&json!({"spec": {}}))),
            vec!["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
        );
        let i = json!({"spec": {"rules": [{"host": "1.2.3.4", "http": {"paths": [
            {"path": "/a", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "a", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}]}}]}});
        assert_eq!(
            render(&ingress(&i)),
            vec![
            "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address",
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
            "spec.rules[0].http.paths[1].path: Invalid value: \"a\": must be an absolute path",
            "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
        ]
        );
    }

    #[test]
    fn endpoint_slice_rules() {
        let s = json!({"addressType": "IPv4", "endpoints": [{"addresses": []}, {"addresses": ["::1"]}],
            "ports": [{"name": "http", "protocol": "TCP"}, {"name": "http", "protocol": "TCP"}]});
        assert_eq!(
            render(&endpoint_slice(&s, None)),
            vec![
                "endpoints[0].addresses: Required value: must contain at least 1 address",
                "endpoints[1].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address",
                "ports[1].name: Duplicate value: \"http\"",
            ]
        );
    }
}
