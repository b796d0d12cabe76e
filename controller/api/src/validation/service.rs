//! Services and Endpoints as upstream's `ValidateService`, `ValidateServiceUpdate` and
//! `ValidateEndpoints` check them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::{json, Value};

use super::container::{port_num_or_name, protocol};
use super::field::{
    duplicate, forbidden, gorepr, invalid, invalid_str, not_supported, required, BadValue,
    ErrorList, Path,
};
use super::meta::{label_name, labels, FIELD_IMMUTABLE};
use super::names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_port_num};
use super::obj::{self, named};

/// Upstream's `IsValidIP` message.
pub const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// `ValidateNonSpecialIP` (after the IP parsed).
pub fn non_special_ip(ip: &str, p: &str) -> ErrorList {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return vec![invalid_str(p, ip, "must be a valid IP address")];
    };
    let mut errs = ErrorList::new();
    if addr.is_unspecified() {
        errs.push(invalid_str(
            p,
            ip,
            &format!("may not be unspecified ({ip})"),
        ));
    }
    if addr.is_loopback() {
        errs.push(invalid_str(
            p,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match addr {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        errs.push(invalid_str(
            p,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match addr {
        IpAddr::V4(a) => a.octets()[0] == 224 && a.octets()[1] == 0 && a.octets()[2] == 0,
        IpAddr::V6(a) => (a.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(invalid_str(
            p,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

fn valid_ip(ip: &str, p: &str) -> ErrorList {
    if ip.parse::<IpAddr>().is_ok() {
        vec![]
    } else {
        vec![invalid_str(p, ip, INVALID_IP)]
    }
}

fn valid_cidr(cidr: &str, p: &str) -> ErrorList {
    let ok = cidr.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<IpAddr>().is_ok_and(|a| {
            let max = if a.is_ipv4() { 32 } else { 128 };
            bits.parse::<u8>().is_ok_and(|b| b <= max)
        })
    });
    if ok {
        vec![]
    } else {
        vec![invalid_str(
            p,
            cidr,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        )]
    }
}

fn service_port(
    sp: &Value,
    require_name: bool,
    names: &mut BTreeSet<String>,
    p: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = obj::s(sp, "name");
    if require_name && name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(
            is_dns1123_label(name)
                .into_iter()
                .map(|m| invalid_str(&p.child("name"), name, &m)),
        );
        if !names.insert(name.to_string()) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.into())));
        }
    }
    let port = obj::i(sp, "port");
    for m in is_valid_port_num(port) {
        errs.push(invalid(&p.child("port"), BadValue::Int(port), &m));
    }
    errs.extend(protocol(obj::s(sp, "protocol"), &p.child("protocol")));
    errs.extend(port_num_or_name(
        sp.get("targetPort"),
        &p.child("targetPort"),
    ));
    if let Some(ap) = obj::opt_s(sp, "appProtocol") {
        errs.extend(
            is_qualified_name(ap)
                .into_iter()
                .map(|m| invalid_str(&p.child("appProtocol"), ap, &m)),
        );
    }
    errs
}

fn externally_accessible(spec: &Value) -> bool {
    let t = obj::s(spec, "type");
    t == "LoadBalancer"
        || t == "NodePort"
        || (t == "ClusterIP" && !obj::arr(spec, "externalIPs").is_empty())
}

/// `ValidateService` (+ `ValidateServiceUpdate` when `old` is set), ObjectMeta excluded.
pub fn service(svc: &Value, old: Option<&Value>) -> ErrorList {
    let sp = Path::new("spec");
    let empty = Value::Null;
    let spec = obj::get(svc, "spec").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    if let Some(old) = old {
        errs.extend(service_update(
            spec,
            obj::get(old, "spec").unwrap_or(&empty),
        ));
    }
    let t = obj::s(spec, "type");
    let cluster_ips = obj::strings(spec, "clusterIPs");
    let headless = cluster_ips.first() == Some(&"None") || obj::s(spec, "clusterIP") == "None";
    let ports = obj::arr(spec, "ports");
    if ports.is_empty() && !headless && t != "ExternalName" {
        errs.push(required(&sp.child("ports"), ""));
    }
    match t {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(invalid_str(
                &sp.child("clusterIPs").index(0),
                "None",
                &format!("may not be set to 'None' for {t} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !obj::arr(spec, "ipFamilies").is_empty() {
                errs.push(forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if obj::get(spec, "ipFamilyPolicy").is_some() {
                errs.push(forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = obj::s(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(required(&sp.child("externalName"), ""));
            } else {
                errs.extend(
                    is_dns1123_subdomain(cname)
                        .into_iter()
                        .map(|m| invalid_str(&sp.child("externalName"), cname, &m)),
                );
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(service_port(
            port,
            ports.len() > 1,
            &mut names,
            &sp.child("ports").index(i),
        ));
    }
    if obj::get(spec, "selector").is_some() {
        errs.extend(labels(spec, "selector", &sp.child("selector")));
    }
    match obj::s(spec, "sessionAffinity") {
        "" => errs.push(required(&sp.child("sessionAffinity"), "")),
        "ClientIP" => errs.extend(client_ip_config(spec, &sp.child("sessionAffinityConfig"))),
        "None" => {
            if obj::get(spec, "sessionAffinityConfig").is_some() {
                errs.push(forbidden(
                    &sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(not_supported(
            &sp.child("sessionAffinity"),
            named(other),
            &["ClientIP", "None"],
        )),
    }
    if t != "ExternalName" {
        errs.extend(cluster_ip_fields(spec, &sp));
    }
    for (i, ip) in obj::strings(spec, "externalIPs").iter().enumerate() {
        let p = sp.child("externalIPs").index(i);
        let e = valid_ip(ip, &p);
        if e.is_empty() {
            errs.extend(non_special_ip(ip, &p));
        } else {
            errs.extend(e);
        }
    }
    match t {
        "" => errs.push(required(&sp.child("type"), "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(not_supported(
            &sp.child("type"),
            named(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    let mut node_ports = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let pp = sp.child("ports").index(i);
        let np = obj::i(port, "nodePort");
        if t == "ClusterIP" && np != 0 {
            errs.push(forbidden(
                &pp.child("nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if np != 0 && !(30000..=32767).contains(&np) && t != "ClusterIP" {
            errs.push(invalid(
                &pp.child("nodePort"),
                BadValue::Int(np),
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            ));
        }
        let proto = obj::s(port, "protocol");
        if np != 0 && !node_ports.insert((proto, np)) {
            errs.push(duplicate(&pp.child("nodePort"), BadValue::Int(np)));
        }
        let p = obj::i(port, "port");
        if !keys.insert((proto, p)) {
            errs.push(duplicate(
                &pp,
                BadValue::GoRepr(gorepr::service_port_key(proto, p)),
            ));
        }
    }
    let ranges = obj::strings(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let fp = sp.child("LoadBalancerSourceRanges");
        if t != "LoadBalancer" {
            errs.push(forbidden(
                &fp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(valid_cidr(r.trim(), &fp.index(i)));
        }
    }
    if obj::get(spec, "allocateLoadBalancerNodePorts").is_some() && t != "LoadBalancer" {
        errs.push(forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if t == "LoadBalancer" && obj::get(spec, "allocateLoadBalancerNodePorts").is_none() {
        errs.push(required("allocateLoadBalancerNodePorts", ""));
    }
    errs.extend(traffic_policies(spec, &sp));
    errs
}

fn client_ip_config(spec: &Value, p: &Path) -> ErrorList {
    let msg = "when session affinity type is ClientIP";
    let Some(cfg) = obj::get(spec, "sessionAffinityConfig") else {
        return vec![required(p, msg)];
    };
    let Some(cip) = obj::get(cfg, "clientIP") else {
        return vec![required(&p.child("clientIP"), msg)];
    };
    let tp = p.child("clientIP").child("timeoutSeconds");
    match obj::opt_i(cip, "timeoutSeconds") {
        None => vec![required(&tp, msg)],
        Some(t) if t <= 0 || t > 86400 => vec![invalid(
            &tp,
            BadValue::Int(t),
            "must be greater than 0 and less than 86400",
        )],
        _ => vec![],
    }
}

fn cluster_ip_fields(spec: &Value, sp: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let cip = obj::s(spec, "clusterIP");
    let cips = obj::strings(spec, "clusterIPs");
    let cp = sp.child("clusterIPs");
    if !cip.is_empty() && !cips.is_empty() && cips[0] != cip {
        errs.push(invalid(
            &cp,
            BadValue::GoRepr(gorepr::string_slice(spec.get("clusterIPs"), "string")),
            "first value must match `clusterIP`",
        ));
    } else if cip.is_empty() && !cips.is_empty() {
        errs.push(invalid(
            &cp,
            BadValue::GoRepr(gorepr::string_slice(spec.get("clusterIPs"), "string")),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = Vec::new();
    for (i, fam) in obj::strings(spec, "ipFamilies").iter().enumerate() {
        let fp = sp.child("ipFamilies").index(i);
        if *fam != "IPv4" && *fam != "IPv6" {
            errs.push(not_supported(&fp, named(fam), &["IPv4", "IPv6"]));
        }
        if seen.contains(fam) {
            errs.push(duplicate(&fp, named(fam)));
        }
        seen.push(fam);
    }
    if let Some(pol) = obj::opt_s(spec, "ipFamilyPolicy") {
        if !["SingleStack", "PreferDualStack", "RequireDualStack"].contains(&pol) {
            errs.push(not_supported(
                &sp.child("ipFamilyPolicy"),
                named(pol),
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    for (i, ip) in cips.iter().enumerate() {
        if i == 0 && *ip == "None" {
            if cips.len() > 1 {
                errs.push(invalid(
                    &cp,
                    BadValue::GoRepr(gorepr::string_slice(spec.get("clusterIPs"), "string")),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        errs.extend(valid_ip(ip, &cp.index(i)));
    }
    if cips.len() > 2 {
        errs.push(invalid(
            &cp,
            BadValue::GoRepr(gorepr::string_slice(spec.get("clusterIPs"), "string")),
            "may only hold up to 2 values",
        ));
    }
    if cips.is_empty() && !cip.is_empty() && cip != "None" {
        errs.extend(valid_ip(cip, &sp.child("clusterIP")));
    }
    errs
}

fn traffic_policies(spec: &Value, sp: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let t = obj::s(spec, "type");
    let etp = obj::s(spec, "externalTrafficPolicy");
    let ep = sp.child("externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(invalid(
                &ep,
                named(etp),
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(required(&ep, ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(not_supported(&ep, named(etp), &["Cluster", "Local"]));
    }
    let hc = obj::i(spec, "healthCheckNodePort");
    let needs_hc = t == "LoadBalancer" && etp == "Local";
    let hp = sp.child("healthCheckNodePort");
    if !needs_hc {
        if hc != 0 {
            errs.push(invalid(&hp, BadValue::Int(hc), "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
        }
    } else if hc != 0 {
        for m in is_valid_port_num(hc) {
            errs.push(invalid(&hp, BadValue::Int(hc), &m));
        }
    }
    match obj::opt_s(spec, "internalTrafficPolicy") {
        None if ["NodePort", "LoadBalancer", "ClusterIP"].contains(&t) => {
            errs.push(required(&sp.child("internalTrafficPolicy"), ""));
        }
        Some(p) if p != "Cluster" && p != "Local" => {
            errs.push(not_supported(
                &sp.child("internalTrafficPolicy"),
                named(p),
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if let Some(td) = obj::opt_s(spec, "trafficDistribution") {
        if td != "PreferClose" {
            errs.push(not_supported(
                &sp.child("trafficDistribution"),
                BadValue::Str(td.into()),
                &["PreferClose"],
            ));
        }
    }
    errs
}

fn service_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let (nt, ot) = (obj::s(new, "type"), obj::s(old, "type"));
    if nt != "ExternalName" && ot != "ExternalName" {
        let old_primary = obj::strings(old, "clusterIPs")
            .first()
            .copied()
            .unwrap_or(obj::s(old, "clusterIP"));
        let new_primary = obj::strings(new, "clusterIPs")
            .first()
            .copied()
            .unwrap_or(obj::s(new, "clusterIP"));
        // An update that omits the address keeps the allocated one (upstream's
        // `patchAllocatedValues` runs before validation; the server carries it after).
        if !old_primary.is_empty() && !new_primary.is_empty() && old_primary != new_primary {
            let v = match obj::get(new, "clusterIPs") {
                Some(v) => BadValue::GoRepr(gorepr::string_slice(Some(v), "string")),
                None => {
                    BadValue::GoRepr(gorepr::string_slice(Some(&json!([new_primary])), "string"))
                }
            };
            errs.push(invalid("spec.clusterIPs[0]", v, "may not change once set"));
        }
    }
    let needs_hc = |s: &Value| {
        obj::s(s, "type") == "LoadBalancer" && obj::s(s, "externalTrafficPolicy") == "Local"
    };
    let new_hc = obj::i(new, "healthCheckNodePort");
    if needs_hc(new) && needs_hc(old) && new_hc != 0 && new_hc != obj::i(old, "healthCheckNodePort")
    {
        errs.push(forbidden("spec.healthCheckNodePort", FIELD_IMMUTABLE));
    }
    errs
}

/// `ValidateEndpoints` (ObjectMeta excluded).
pub fn endpoints(ep: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("subsets");
    for (i, ss) in obj::arr(ep, "subsets").iter().enumerate() {
        let p = path.index(i);
        let (addrs, not_ready) = (obj::arr(ss, "addresses"), obj::arr(ss, "notReadyAddresses"));
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (kind, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                let ap = p.child(kind).index(j);
                let ip = obj::s(a, "ip");
                errs.extend(valid_ip(ip, &ap.child("ip")));
                let host = obj::s(a, "hostname");
                if !host.is_empty() {
                    errs.extend(
                        is_dns1123_label(host)
                            .into_iter()
                            .map(|m| invalid_str(&ap.child("hostname"), host, &m)),
                    );
                }
                if let Some(n) = obj::opt_s(a, "nodeName") {
                    errs.extend(
                        is_dns1123_subdomain(n)
                            .into_iter()
                            .map(|m| invalid_str(&ap.child("nodeName"), n, &m)),
                    );
                }
                errs.extend(non_special_ip(ip, &ap.child("ip")));
            }
        }
        let ports = obj::arr(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            errs.extend(endpoint_port(
                port,
                ports.len() > 1,
                &p.child("ports").index(j),
            ));
        }
    }
    errs
}

/// `validateEndpointPort` (shared with EndpointSlice).
pub fn endpoint_port(port: &Value, require_name: bool, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = obj::s(port, "name");
    if require_name && name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(
            is_dns1123_label(name)
                .into_iter()
                .map(|m| invalid_str(&p.child("name"), name, &m)),
        );
    }
    let n = obj::i(port, "port");
    for m in is_valid_port_num(n) {
        errs.push(invalid(&p.child("port"), BadValue::Int(n), &m));
    }
    errs.extend(protocol(obj::s(port, "protocol"), &p.child("protocol")));
    if let Some(ap) = obj::opt_s(port, "appProtocol") {
        errs.extend(label_name(ap, &p.child("appProtocol")));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(errs: &ErrorList) -> Vec<String> {
        errs.iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    fn svc() -> Value {
        json!({"spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}})
    }

    #[test]
    fn defaulted_service_is_valid() {
        assert_eq!(render(&service(&svc(), None)), Vec::<String>::new());
    }

    #[test]
    fn ports_and_types() {
        let mut s = svc();
        s["spec"]["ports"] = json!([]);
        s["spec"]["type"] = json!("Weird");
        assert_eq!(render(&service(&s, None)), vec![
            "spec.ports: Required value",
            "spec.type: Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        ]);
        let mut s = svc();
        s["spec"]["ports"] = json!([{"port": 0, "protocol": "HTTP", "targetPort": 1, "nodePort": 31000},
                                    {"name": "b", "port": 81, "protocol": "TCP", "targetPort": "http"}]);
        let out = render(&service(&s, None));
        assert_eq!(out, vec![
            "spec.ports[0].name: Required value",
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        ]);
    }

    #[test]
    fn node_port_range_and_cluster_ip_immutable() {
        let mut s = svc();
        s["spec"]["type"] = json!("NodePort");
        s["spec"]["externalTrafficPolicy"] = json!("Cluster");
        s["spec"]["ports"][0]["nodePort"] = json!(80);
        assert_eq!(render(&service(&s, None)), vec![
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ]);
        let mut old = svc();
        old["spec"]["clusterIP"] = json!("10.43.0.10");
        old["spec"]["clusterIPs"] = json!(["10.43.0.10"]);
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.43.0.11");
        new["spec"]["clusterIPs"] = json!(["10.43.0.11"]);
        assert_eq!(
            render(&service(&new, Some(&old)))[0],
            "spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.11\"}: may not change once set"
        );
        let mut replaced = old.clone();
        let spec = replaced["spec"].as_object_mut().unwrap();
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
        assert!(service(&replaced, Some(&old)).is_empty());
    }

    #[test]
    fn endpoints_checks() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}]}]});
        assert_eq!(render(&endpoints(&ep)), vec![
            "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ]);
    }
}
