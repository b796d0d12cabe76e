//! The nftables ruleset for a node's pod policies: one `inet` table whose forward-hook chain
//! lets replies of tracked connections through, then sends traffic to an isolated pod to its
//! ingress chain and traffic from an isolated pod to its egress chain (verdict maps keyed by
//! pod IP). A chain `return`s when a rule allows the packet and drops it otherwise, so a
//! packet between two isolated pods on this node passes both checks.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::model::{Allow, Direction, NodePolicies, PortMatch};

/// The nftables table the agent owns (family `inet`).
pub const TABLE: &str = "bramble-netpol";

fn port_match(p: &PortMatch) -> String {
    match p.range {
        None => format!("meta l4proto {}", p.protocol),
        Some((a, b)) if a == b => format!("{} dport {a}", p.protocol),
        Some((a, b)) => format!("{} dport {a}-{b}", p.protocol),
    }
}

/// The statements matching the ports of `allow` (one per protocol; one empty statement
/// when any port passes).
fn port_statements(allow: &Allow) -> Vec<String> {
    let Some(ports) = &allow.ports else {
        return vec![String::new()];
    };
    let mut by_protocol: Vec<(String, Vec<&PortMatch>)> = Vec::new();
    for p in ports {
        match by_protocol
            .iter_mut()
            .find(|(proto, _)| *proto == p.protocol)
        {
            Some((_, list)) => list.push(p),
            None => by_protocol.push((p.protocol.clone(), vec![p])),
        }
    }
    let mut out = Vec::new();
    for (protocol, list) in by_protocol {
        if list.iter().any(|p| p.range.is_none()) {
            out.push(format!("meta l4proto {protocol}"));
        } else if list.len() == 1 {
            out.push(port_match(list[0]));
        } else {
            let items: Vec<String> = list
                .iter()
                .filter_map(|p| p.range)
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            out.push(format!("{protocol} dport {{ {} }}", items.join(", ")));
        }
    }
    out
}

/// The rules of one direction's chain: `return` for each allowed match, then `drop`.
fn chain_body(direction: Direction, allows: &[Allow]) -> String {
    let field = match direction {
        Direction::Ingress => "ip saddr",
        Direction::Egress => "ip daddr",
    };
    let mut body = String::new();
    for allow in allows {
        // Peer matches: the /32s in one set, each CIDR (with its exceptions) on its own
        // (an anonymous set must not hold overlapping intervals).
        let peers: Vec<String> = match &allow.peers {
            None => vec![String::new()],
            Some(nets) => {
                let mut hosts = BTreeSet::new();
                let mut out = Vec::new();
                for n in nets {
                    if n.except.is_empty() && n.cidr.ends_with("/32") {
                        hosts.insert(n.cidr.trim_end_matches("/32").to_string());
                    } else if n.except.is_empty() {
                        out.push(format!("{field} {}", n.cidr));
                    } else {
                        out.push(format!(
                            "{field} {} {field} != {{ {} }}",
                            n.cidr,
                            n.except.join(", ")
                        ));
                    }
                }
                if !hosts.is_empty() {
                    let hosts: Vec<String> = hosts.into_iter().collect();
                    out.insert(0, format!("{field} {{ {} }}", hosts.join(", ")));
                }
                out
            }
        };
        for peer in &peers {
            for ports in port_statements(allow) {
                let stmt: Vec<&str> = [peer.as_str(), ports.as_str(), "return"]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                let _ = writeln!(body, "    {}", stmt.join(" "));
            }
        }
    }
    body.push_str("    drop\n");
    body
}

/// The whole table for `policies` (deletes and recreates it in one transaction).
pub fn render(policies: &NodePolicies) -> String {
    let mut chains = String::new();
    let mut ingress_map = Vec::new();
    let mut egress_map = Vec::new();
    for (i, pod) in policies.iter().enumerate() {
        for (direction, allows, map, name) in [
            (
                Direction::Ingress,
                &pod.ingress,
                &mut ingress_map,
                "ingress",
            ),
            (Direction::Egress, &pod.egress, &mut egress_map, "egress"),
        ] {
            let Some(allows) = allows else { continue };
            let chain = format!("{name}-{i}");
            let _ = write!(
                chains,
                "  chain {chain} {{\n    comment \"{}\"\n{}  }}\n",
                pod.pod,
                chain_body(direction, allows)
            );
            map.push(format!("{} : jump {chain}", pod.ip));
        }
    }
    let mut forward = String::from(
        "  chain forward {\n    type filter hook forward priority filter; policy accept;\n    ct state established,related accept\n",
    );
    if !ingress_map.is_empty() {
        let _ = writeln!(
            forward,
            "    ip daddr vmap {{ {} }}",
            ingress_map.join(", ")
        );
    }
    if !egress_map.is_empty() {
        let _ = writeln!(forward, "    ip saddr vmap {{ {} }}", egress_map.join(", "));
    }
    forward.push_str("  }\n");
    format!(
        "add table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n{forward}{chains}}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Net, PodPolicy};

    fn pod(ingress: Option<Vec<Allow>>, egress: Option<Vec<Allow>>) -> NodePolicies {
        vec![PodPolicy {
            pod: "default/web".into(),
            ip: "10.42.1.5".parse().unwrap(),
            ingress,
            egress,
        }]
    }

    #[test]
    fn default_deny_is_a_chain_that_only_drops() {
        let s = render(&pod(Some(vec![]), None));
        assert!(
            s.contains("ip daddr vmap { 10.42.1.5 : jump ingress-0 }"),
            "{s}"
        );
        assert!(
            s.contains("chain ingress-0 {\n    comment \"default/web\"\n    drop\n  }"),
            "{s}"
        );
        assert!(!s.contains("ip saddr vmap"), "{s}");
        assert!(s.contains("ct state established,related accept"), "{s}");
    }

    #[test]
    fn peers_and_ports_become_return_rules_before_the_drop() {
        let allow = Allow {
            peers: Some(vec![
                Net {
                    cidr: "10.42.0.7/32".into(),
                    except: vec![],
                },
                Net {
                    cidr: "10.42.0.9/32".into(),
                    except: vec![],
                },
                Net {
                    cidr: "192.168.0.0/16".into(),
                    except: vec!["192.168.1.0/24".into()],
                },
            ]),
            ports: Some(vec![
                PortMatch {
                    protocol: "tcp".into(),
                    range: Some((80, 80)),
                },
                PortMatch {
                    protocol: "tcp".into(),
                    range: Some((8000, 8080)),
                },
                PortMatch {
                    protocol: "udp".into(),
                    range: None,
                },
            ]),
        };
        let s = render(&pod(Some(vec![allow]), None));
        let body = "    ip saddr { 10.42.0.7, 10.42.0.9 } tcp dport { 80, 8000-8080 } return\n\
                    \x20   ip saddr { 10.42.0.7, 10.42.0.9 } meta l4proto udp return\n\
                    \x20   ip saddr 192.168.0.0/16 ip saddr != { 192.168.1.0/24 } tcp dport { 80, 8000-8080 } return\n\
                    \x20   ip saddr 192.168.0.0/16 ip saddr != { 192.168.1.0/24 } meta l4proto udp return\n\
                    \x20   drop\n";
        assert!(s.contains(body), "{s}");
    }

    #[test]
    fn any_peer_any_port_returns_and_egress_matches_destinations() {
        let s = render(&pod(
            None,
            Some(vec![Allow {
                peers: Some(vec![Net {
                    cidr: "10.0.0.0/8".into(),
                    except: vec![],
                }]),
                ports: Some(vec![PortMatch {
                    protocol: "udp".into(),
                    range: Some((53, 53)),
                }]),
            }]),
        ));
        assert!(
            s.contains("ip saddr vmap { 10.42.1.5 : jump egress-0 }"),
            "{s}"
        );
        assert!(
            s.contains("    ip daddr 10.0.0.0/8 udp dport 53 return\n    drop\n"),
            "{s}"
        );
        let s = render(&pod(
            Some(vec![Allow {
                peers: None,
                ports: None,
            }]),
            None,
        ));
        assert!(s.contains("    return\n    drop\n"), "{s}");
    }

    #[test]
    fn no_isolated_pod_leaves_an_empty_forward_chain() {
        let s = render(&Vec::new());
        assert!(!s.contains("vmap"), "{s}");
        assert!(s.starts_with("add table inet bramble-netpol\ndelete table inet bramble-netpol\n"));
    }
}
