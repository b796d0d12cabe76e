//! NetworkPolicy (networking.k8s.io/v1): upstream's `ValidateNetworkPolicySpec`.

use std::net::IpAddr;

use serde_json::Value;

use super::field::{
    forbidden, invalid, invalid_str, not_supported, required, BadValue, ErrorList, Path,
};
use super::meta::label_selector;
use super::names::{is_valid_port_name, is_valid_port_num};
use super::obj::{self, named};

const CIDR_MESSAGE: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// A CIDR's network address and prefix length.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn to_bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// Whether `inner` lies in `outer` and is strictly smaller.
fn strict_subset((outer, outer_len): (IpAddr, u8), (inner, inner_len): (IpAddr, u8)) -> bool {
    let ((o, width), (i, iwidth)) = (to_bits(outer), to_bits(inner));
    if width != iwidth || inner_len <= outer_len {
        return false;
    }
    let shift = u32::from(width - outer_len);
    shift >= 128 || (o >> shift) == (i >> shift)
}

fn ip_block(b: &Value, p: &Path) -> ErrorList {
    let cidr = obj::s(b, "cidr");
    if cidr.is_empty() {
        return vec![required(&p.child("cidr"), "")];
    }
    let Some(outer) = parse_cidr(cidr) else {
        return vec![invalid_str(&p.child("cidr"), cidr, CIDR_MESSAGE)];
    };
    let mut errs = ErrorList::new();
    for (i, e) in obj::arr(b, "except").iter().enumerate() {
        let ep = p.child("except").index(i);
        let e = e.as_str().unwrap_or_default();
        match parse_cidr(e) {
            None => errs.push(invalid_str(&ep, e, CIDR_MESSAGE)),
            Some(inner) if !strict_subset(outer, inner) => {
                errs.push(invalid_str(&ep, e, "must be a strict subset of `cidr`"))
            }
            Some(_) => {}
        }
    }
    errs
}

fn peer(peer: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    for key in ["podSelector", "namespaceSelector"] {
        if let Some(sel) = obj::get(peer, key).filter(|v| !v.is_null()) {
            count += 1;
            errs.extend(label_selector(sel, &p.child(key)));
        }
    }
    let block = obj::get(peer, "ipBlock").filter(|v| !v.is_null());
    if let Some(b) = block {
        count += 1;
        errs.extend(ip_block(b, &p.child("ipBlock")));
    }
    if count == 0 {
        errs.push(required(p, "must specify a peer"));
    } else if count > 1 && block.is_some() {
        errs.push(forbidden(
            p,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

fn port(port: &Value, p: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(proto) = obj::get(port, "protocol").and_then(Value::as_str) {
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            errs.push(not_supported(
                &p.child("protocol"),
                named(proto),
                &["TCP", "UDP", "SCTP"],
            ));
        }
    }
    let end = obj::get(port, "endPort").and_then(Value::as_i64);
    let end_path = p.child("endPort");
    match obj::get(port, "port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(-1);
            errs.extend(
                is_valid_port_num(n)
                    .into_iter()
                    .map(|m| invalid(&p.child("port"), BadValue::Int(n), &m)),
            );
            if let Some(end) = end {
                if end < n {
                    errs.push(invalid(
                        &end_path,
                        BadValue::Int(n),
                        "must be greater than or equal to `port`",
                    ));
                }
                errs.extend(
                    is_valid_port_num(end)
                        .into_iter()
                        .map(|m| invalid(&end_path, BadValue::Int(end), &m)),
                );
            }
        }
        Some(Value::String(name)) => {
            if let Some(end) = end {
                errs.push(invalid(
                    &end_path,
                    BadValue::Int(end),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.extend(
                is_valid_port_name(name)
                    .into_iter()
                    .map(|m| invalid_str(&p.child("port"), name, &m)),
            );
        }
        _ => {
            if let Some(end) = end {
                errs.push(invalid(
                    &end_path,
                    BadValue::Int(end),
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

/// `ValidateNetworkPolicySpec` (ObjectMeta is checked by the caller).
pub fn network_policy(np: &Value) -> ErrorList {
    let empty = Value::Null;
    let spec = obj::get(np, "spec").unwrap_or(&empty);
    let sp = Path::new("spec");
    let mut errs = ErrorList::new();
    if let Some(sel) = obj::get(spec, "podSelector") {
        errs.extend(label_selector(sel, &sp.child("podSelector")));
    }
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in obj::arr(spec, dir).iter().enumerate() {
            let rp = sp.child(dir).index(i);
            for (j, p) in obj::arr(rule, "ports").iter().enumerate() {
                errs.extend(port(p, &rp.child("ports").index(j)));
            }
            for (j, p) in obj::arr(rule, peers).iter().enumerate() {
                errs.extend(peer(p, &rp.child(peers).index(j)));
            }
        }
    }
    let types = obj::arr(spec, "policyTypes");
    if types.len() > 2 {
        errs.push(invalid(
            &sp.child("policyTypes"),
            BadValue::Json(Value::Array(types.clone())),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or_default();
        if !matches!(t, "Ingress" | "Egress") {
            errs.push(not_supported(
                &sp.child("policyTypes").index(i),
                named(t),
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(np: Value) -> Vec<String> {
        network_policy(&np)
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    #[test]
    fn a_documentation_policy_is_valid() {
        let np = json!({"spec": {
            "podSelector": {"matchLabels": {"role": "db"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [
                {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                {"podSelector": {"matchLabels": {"role": "frontend"}}}],
                "ports": [{"protocol": "TCP", "port": 6379}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                        "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}]}});
        assert_eq!(fields(np), Vec::<String>::new());
    }

    #[test]
    fn bad_ports_peers_blocks_and_types_name_their_fields() {
        let np = json!({"spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Sideways"],
            "ingress": [{"from": [
                {},
                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/24", "10.0.0.0/8"]},
                 "podSelector": {}},
                {"ipBlock": {"cidr": "10.0.0/8"}}],
                "ports": [{"protocol": "ICMP", "port": 0},
                          {"port": 80, "endPort": 79},
                          {"port": "http", "endPort": 90}]}]}});
        let got = fields(np);
        let want = [
            "spec.ingress[0].ports[0].protocol",
            "spec.ingress[0].ports[0].port",
            "spec.ingress[0].ports[1].endPort",
            "spec.ingress[0].ports[2].endPort",
            "spec.ingress[0].from[0]",
            "spec.ingress[0].from[1].ipBlock.except[0]",
            "spec.ingress[0].from[1].ipBlock.except[1]",
            "spec.ingress[0].from[1]",
            "spec.ingress[0].from[2].ipBlock.cidr",
            "spec.policyTypes[1]",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(&format!("{w}: ")), "{g} vs {w}\n{got:#?}");
        }
        assert!(
            got[1].contains("must be between 1 and 65535, inclusive"),
            "{}",
            got[1]
        );
        assert!(
            got[6].contains("must be a strict subset of `cidr`"),
            "{}",
            got[6]
        );
        assert!(
            got[9].contains("supported values: \"Ingress\", \"Egress\""),
            "{}",
            got[9]
        );
    }
}
