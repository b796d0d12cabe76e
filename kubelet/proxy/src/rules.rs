//! Rendering the nftables ruleset (kube-proxy nftables mode's shape, one table rewritten in
//! one transaction).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::model::{Backend, ProxyConfig, ServicePortModel};

/// The packet mark asking `nat-postrouting` to masquerade (kube-proxy's 0x4000).
pub const MASQUERADE_MARK: &str = "0x00004000";

fn hash8(s: &str) -> String {
    Sha256::digest(s.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Chain names follow kube-proxy: `service-HASH-ns/name/proto/port`.
fn chain_id(m: &ServicePortModel) -> String {
    let id = if m.id.ends_with('/') {
        format!("{}p{}", m.id, m.port)
    } else {
        m.id.clone()
    };
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "/_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn service_chain(m: &ServicePortModel) -> String {
    format!("service-{}-{}", hash8(&m.id), chain_id(m))
}

fn external_chain(m: &ServicePortModel) -> String {
    format!("external-{}-{}", hash8(&m.id), chain_id(m))
}

fn endpoint_chain(m: &ServicePortModel, b: &Backend) -> String {
    let key = format!("{}/{}:{}", m.id, b.ip, b.port);
    format!(
        "endpoint-{}-{}__{}/{}",
        hash8(&key),
        chain_id(m),
        b.ip,
        b.port
    )
}

fn affinity_set(m: &ServicePortModel, b: &Backend) -> String {
    let key = format!("{}/{}:{}", m.id, b.ip, b.port);
    format!("affinity-{}", hash8(&key))
}

fn map_block(out: &mut String, name: &str, ty: &str, elements: &[String]) {
    let _ = writeln!(out, "  map {name} {{\n    type {ty} : verdict");
    if !elements.is_empty() {
        let _ = writeln!(out, "    elements = {{ {} }}", elements.join(",\n      "));
    }
    out.push_str("  }\n");
}

/// `numgen random` over the given backends' endpoint chains (affinity first).
fn balance(out: &mut String, m: &ServicePortModel, backends: &[&Backend]) {
    if let Some(_timeout) = m.affinity_timeout {
        for b in backends {
            let _ = writeln!(
                out,
                "    ip saddr @{} goto {}",
                affinity_set(m, b),
                endpoint_chain(m, b)
            );
        }
    }
    let arms: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{i} : goto {}", endpoint_chain(m, b)))
        .collect();
    let _ = writeln!(
        out,
        "    numgen random mod {} vmap {{ {} }}",
        backends.len(),
        arms.join(", ")
    );
}

/// The complete script for `nft -f -`: creates (or empties) the table and defines it anew.
pub fn render(config: &ProxyConfig, ports: &[ServicePortModel]) -> String {
    let t = &config.table;
    let mut service_ips = Vec::new();
    let mut node_ports = Vec::new();
    let mut no_ep_ips = Vec::new();
    let mut no_ep_node_ports = Vec::new();
    let mut chains = String::new();
    let mut sets = String::new();
    for m in ports {
        let has_backends = !m.backends.is_empty();
        let svc = service_chain(m);
        let ext = external_chain(m);
        let has_external = m.node_port.is_some() || !m.external_ips.is_empty();
        for ip in &m.cluster_ips {
            let e = format!("{ip} . {} . {}", m.protocol, m.port);
            if has_backends {
                service_ips.push(format!("{e} : goto {svc}"));
            } else {
                no_ep_ips.push(format!("{e} : goto reject-chain"));
            }
        }
        let local: Vec<&Backend> = m.backends.iter().filter(|b| b.local).collect();
        let external_usable = if m.external_local {
            !local.is_empty()
        } else {
            has_backends
        };
        for ip in &m.external_ips {
            let e = format!("{ip} . {} . {}", m.protocol, m.port);
            if external_usable || (m.external_local && has_backends) {
                service_ips.push(format!("{e} : goto {ext}"));
            } else {
                no_ep_ips.push(format!("{e} : goto reject-chain"));
            }
        }
        if let Some(np) = m.node_port {
            let e = format!("{} . {np}", m.protocol);
            if external_usable || (m.external_local && has_backends) {
                node_ports.push(format!("{e} : goto {ext}"));
            } else {
                no_ep_node_ports.push(format!("{e} : goto reject-chain"));
            }
        }
        if !has_backends {
            continue;
        }
        // The service chain: masquerade off-cluster sources, then balance.
        let _ = writeln!(chains, "  chain {svc} {{");
        for ip in &m.cluster_ips {
            let _ = writeln!(
                chains,
                "    ip daddr {ip} {} dport {} ip saddr != {} jump mark-for-masquerade",
                m.protocol, m.port, config.cluster_cidr
            );
        }
        let all: Vec<&Backend> = m.backends.iter().collect();
        balance(&mut chains, m, &all);
        chains.push_str("  }\n");
        if has_external {
            let _ = writeln!(chains, "  chain {ext} {{");
            if m.external_local {
                // Traffic from this node itself may use any endpoint (masqueraded); traffic
                // from outside keeps its source and goes to local endpoints only.
                chains.push_str("    fib saddr type local jump mark-for-masquerade\n");
                let _ = writeln!(chains, "    fib saddr type local goto {svc}");
                if local.is_empty() {
                    chains.push_str("    drop\n");
                } else {
                    balance(&mut chains, m, &local);
                }
            } else {
                chains.push_str("    jump mark-for-masquerade\n");
                let _ = writeln!(chains, "    goto {svc}");
            }
            chains.push_str("  }\n");
        }
        for b in &m.backends {
            let _ = writeln!(chains, "  chain {} {{", endpoint_chain(m, b));
            let _ = writeln!(chains, "    ip saddr {} jump mark-for-masquerade", b.ip);
            if let Some(timeout) = m.affinity_timeout {
                let set = affinity_set(m, b);
                let _ = writeln!(
                    sets,
                    "  set {set} {{\n    type ipv4_addr\n    flags dynamic,timeout\n    timeout {timeout}s\n  }}"
                );
                let _ = writeln!(chains, "    update @{set} {{ ip saddr }}");
            }
            let _ = writeln!(
                chains,
                "    meta l4proto {} dnat to {}:{}",
                m.protocol, b.ip, b.port
            );
            chains.push_str("  }\n");
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "add table ip {t}\ndelete table ip {t}\ntable ip {t} {{"
    );
    map_block(
        &mut out,
        "service-ips",
        "ipv4_addr . inet_proto . inet_service",
        &service_ips,
    );
    map_block(
        &mut out,
        "service-nodeports",
        "inet_proto . inet_service",
        &node_ports,
    );
    map_block(
        &mut out,
        "no-endpoint-services",
        "ipv4_addr . inet_proto . inet_service",
        &no_ep_ips,
    );
    map_block(
        &mut out,
        "no-endpoint-nodeports",
        "inet_proto . inet_service",
        &no_ep_node_ports,
    );
    out.push_str(&sets);
    out.push_str(
        "  chain reject-chain {\n    meta l4proto tcp reject with tcp reset\n    reject\n  }\n\
  chain endpoints-check {\n    ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports\n  }\n\
  chain filter-input {\n    type filter hook input priority -110; policy accept;\n    ct state new jump endpoints-check\n  }\n\
  chain filter-forward {\n    type filter hook forward priority -110; policy accept;\n    ct state new jump endpoints-check\n  }\n\
  chain filter-output {\n    type filter hook output priority -110; policy accept;\n    ct state new jump endpoints-check\n  }\n\
  chain mark-for-masquerade {\n    meta mark set meta mark | 0x00004000\n  }\n\
  chain masquerading {\n    meta mark & 0x00004000 == 0x00000000 return\n    meta mark set meta mark ^ 0x00004000\n    masquerade fully-random\n  }\n\
  chain services {\n    ip daddr . meta l4proto . th dport vmap @service-ips\n    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports\n  }\n\
  chain nat-prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    jump services\n  }\n\
  chain nat-output {\n    type nat hook output priority -100; policy accept;\n    jump services\n  }\n\
  chain nat-postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    jump masquerading\n  }\n",
    );
    out.push_str(&chains);
    out.push_str("}\n");
    out
}
