//! What the NetworkPolicies mean for this node's pods, computed from the policies, pods and
//! namespaces (no I/O), with upstream's semantics:
//! - a pod is isolated for ingress (egress) when a policy in its namespace selects it and
//!   lists `Ingress` (`Egress`) in `policyTypes`; what it may receive (send) is then the
//!   union of those policies' rules, and nothing else;
//! - a rule without peers allows every peer, a rule without ports every port;
//! - a peer is a `podSelector` (pods of the policy's namespace), a `namespaceSelector` (every
//!   pod of the selected namespaces), both (the selected pods of the selected namespaces) or
//!   an `ipBlock` (a CIDR with `except`ions);
//! - a named port is the port of that name (and protocol) on the pod receiving the traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use bramble_api::selectors::LabelSelector;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Which way traffic crosses the isolated pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Traffic to the pod (`ingress` rules, peers are sources).
    Ingress,
    /// Traffic from the pod (`egress` rules, peers are destinations).
    Egress,
}

/// A set of peer addresses: a CIDR without its exceptions (a pod is a /32).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Net {
    /// `a.b.c.d/n`.
    pub cidr: String,
    /// CIDRs inside `cidr` that do not match.
    pub except: Vec<String>,
}

/// Ports of one protocol: a range, or every port when `None`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMatch {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// First and last port, inclusive.
    pub range: Option<(u16, u16)>,
}

/// One allowed combination of peers and ports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allow {
    /// The peers; `None` is any peer.
    pub peers: Option<Vec<Net>>,
    /// The ports; `None` is any port of any protocol.
    pub ports: Option<Vec<PortMatch>>,
}

/// The policy of one of this node's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPolicy {
    /// `namespace/name` (for comments and logs).
    pub pod: String,
    /// The pod's IPv4 address.
    pub ip: Ipv4Addr,
    /// What may reach the pod, when it is isolated for ingress.
    pub ingress: Option<Vec<Allow>>,
    /// What the pod may reach, when it is isolated for egress.
    pub egress: Option<Vec<Allow>>,
}

/// The policies of every isolated pod on this node, by pod IP.
pub type NodePolicies = Vec<PodPolicy>;

/// A pod as policies see it.
struct PodView<'a> {
    pod: &'a Pod,
    namespace: &'a str,
    ip: Ipv4Addr,
    labels: BTreeMap<String, String>,
}

fn pod_ipv4(pod: &Pod) -> Option<Ipv4Addr> {
    let spec = pod.spec.as_ref()?;
    if spec.host_network == Some(true) {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ips = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
    status
        .pod_ip
        .iter()
        .map(String::as_str)
        .chain(ips)
        .find_map(|ip| ip.parse().ok())
}

fn selector(v: Option<&impl serde::Serialize>) -> LabelSelector {
    v.and_then(|s| serde_json::to_value(s).ok())
        .and_then(|s| LabelSelector::from_label_selector(&s).ok())
        .unwrap_or_else(LabelSelector::nothing)
}

/// Policy types in effect: `spec.policyTypes`, or as upstream defaults them (Ingress, and
/// Egress when there are egress rules).
fn applies(spec: &NetworkPolicySpec, direction: Direction) -> bool {
    match &spec.policy_types {
        Some(types) => types.iter().any(|t| match direction {
            Direction::Ingress => t == "Ingress",
            Direction::Egress => t == "Egress",
        }),
        None => {
            direction == Direction::Ingress || spec.egress.as_ref().is_some_and(|e| !e.is_empty())
        }
    }
}

struct Cluster<'a> {
    pods: Vec<PodView<'a>>,
    namespaces: BTreeMap<&'a str, BTreeMap<String, String>>,
}

impl<'a> Cluster<'a> {
    fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        let mut labels = self.namespaces.get(ns).cloned().unwrap_or_default();
        // Every namespace carries its name as a label (upstream sets it at admission).
        labels.insert("kubernetes.io/metadata.name".into(), ns.to_string());
        labels
    }

    /// The pods a peer selects, for a policy in `policy_ns`; `None` for an ipBlock.
    fn peer_pods(&self, peer: &NetworkPolicyPeer, policy_ns: &str) -> Option<Vec<&PodView<'a>>> {
        if peer.ip_block.is_some() {
            return None;
        }
        // A missing podSelector selects every pod; a missing namespaceSelector means the
        // policy's own namespace.
        let ps = peer
            .pod_selector
            .as_ref()
            .map(|s| selector(Some(s)))
            .unwrap_or_else(LabelSelector::everything);
        let ns_sel = peer.namespace_selector.as_ref().map(|s| selector(Some(s)));
        let pods = self
            .pods
            .iter()
            .filter(|p| match &ns_sel {
                None => p.namespace == policy_ns,
                Some(ns_sel) => ns_sel.matches(&self.namespace_labels(p.namespace)),
            })
            .filter(|p| ps.matches(&p.labels))
            .collect();
        Some(pods)
    }
}

/// The port a policy port names on `pod` (by container port name and protocol).
fn named_port(pod: &Pod, name: &str, protocol: &str) -> Option<u16> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name)
                && p.protocol
                    .as_deref()
                    .unwrap_or("TCP")
                    .eq_ignore_ascii_case(protocol)
        })
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// The rule's ports resolved on `target` (the pod receiving the traffic): numbers as
/// given, names through `target`'s container ports (an unresolved name matches nothing).
fn ports_on(ports: &[NetworkPolicyPort], target: Option<&Pod>) -> Vec<PortMatch> {
    let mut out = Vec::new();
    for p in ports {
        let protocol = p.protocol.as_deref().unwrap_or("TCP");
        let range = match &p.port {
            None => None,
            Some(IntOrString::Int(n)) => {
                let first = u16::try_from(*n).unwrap_or(0);
                let last = p
                    .end_port
                    .and_then(|e| u16::try_from(e).ok())
                    .unwrap_or(first);
                Some((first, last.max(first)))
            }
            Some(IntOrString::String(name)) => {
                match target.and_then(|t| named_port(t, name, protocol)) {
                    Some(n) => Some((n, n)),
                    None => continue,
                }
            }
        };
        out.push(PortMatch {
            protocol: protocol.to_ascii_lowercase(),
            range,
        });
    }
    out.sort();
    out.dedup();
    out
}

fn has_named(ports: &[NetworkPolicyPort]) -> bool {
    ports
        .iter()
        .any(|p| matches!(p.port, Some(IntOrString::String(_))))
}

fn pod_net(ip: Ipv4Addr) -> Net {
    Net {
        cidr: format!("{ip}/32"),
        except: Vec::new(),
    }
}

/// The allows one rule gives `target` (the isolated pod).
fn rule_allows(
    cluster: &Cluster,
    direction: Direction,
    policy_ns: &str,
    peers: Option<&Vec<NetworkPolicyPeer>>,
    ports: Option<&Vec<NetworkPolicyPort>>,
    target: &PodView,
) -> Vec<Allow> {
    let ports = ports.filter(|p| !p.is_empty());
    // Peers: `None` is everyone; otherwise ipBlocks and pods.
    let mut blocks: Vec<Net> = Vec::new();
    let mut pods: Vec<&PodView> = Vec::new();
    let any_peer = match peers.filter(|p| !p.is_empty()) {
        None => true,
        Some(peers) => {
            for peer in peers {
                match cluster.peer_pods(peer, policy_ns) {
                    Some(selected) => pods.extend(selected),
                    None => {
                        if let Some(b) = &peer.ip_block {
                            blocks.push(Net {
                                cidr: b.cidr.clone(),
                                except: b.except.clone().unwrap_or_default(),
                            });
                        }
                    }
                }
            }
            false
        }
    };
    // Every selected peer as a net (`None`: any peer).
    let all_peers = || -> Option<Vec<Net>> {
        (!any_peer).then(|| {
            blocks
                .iter()
                .cloned()
                .chain(pods.iter().map(|p| pod_net(p.ip)))
                .collect()
        })
    };
    let Some(ports) = ports else {
        let peers = all_peers();
        return vec![Allow { peers, ports: None }];
    };
    if direction == Direction::Ingress || !has_named(ports) {
        // Ports resolve on the isolated pod (ingress) or are all numbers.
        let resolved = ports_on(ports, Some(target.pod));
        if resolved.is_empty() {
            return Vec::new();
        }
        let peers = all_peers();
        return vec![Allow {
            peers,
            ports: Some(resolved),
        }];
    }
    // Egress with named ports: each destination pod resolves them on itself; an ipBlock
    // only gets the numbered ones (a block has no port names).
    let destinations: Vec<&PodView> = if any_peer {
        cluster.pods.iter().collect()
    } else {
        pods
    };
    let mut out = Vec::new();
    let numbered = ports_on(ports, None);
    if !numbered.is_empty() {
        let peers = (!any_peer).then(|| blocks.clone());
        out.push(Allow {
            peers,
            ports: Some(numbered),
        });
    }
    for dest in destinations {
        let resolved = ports_on(ports, Some(dest.pod));
        if !resolved.is_empty() {
            out.push(Allow {
                peers: Some(vec![pod_net(dest.ip)]),
                ports: Some(resolved),
            });
        }
    }
    out
}

fn normalise(mut allows: Vec<Allow>) -> Vec<Allow> {
    for a in &mut allows {
        if let Some(p) = &mut a.peers {
            p.sort();
            p.dedup();
        }
    }
    // A rule whose peer list resolved to nobody allows nothing.
    allows.retain(|a| a.peers.as_ref().is_none_or(|p| !p.is_empty()));
    allows.sort();
    allows.dedup();
    allows
}

/// The policies in effect for every pod of node `node_name` that some policy isolates.
pub fn build_model(
    node_name: &str,
    policies: &[Arc<NetworkPolicy>],
    pods: &[Arc<Pod>],
    namespaces: &[Arc<Namespace>],
) -> NodePolicies {
    let cluster = Cluster {
        pods: pods
            .iter()
            .filter_map(|p| {
                Some(PodView {
                    pod: p,
                    namespace: p.metadata.namespace.as_deref()?,
                    ip: pod_ipv4(p)?,
                    labels: p.metadata.labels.clone().unwrap_or_default(),
                })
            })
            .collect(),
        namespaces: namespaces
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.as_deref()?,
                    n.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect(),
    };
    let mut out: BTreeMap<Ipv4Addr, PodPolicy> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for target in cluster
        .pods
        .iter()
        .filter(|p| p.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name))
    {
        if !seen.insert(target.ip) {
            continue;
        }
        let (mut ingress, mut egress): (Option<Vec<Allow>>, Option<Vec<Allow>>) = (None, None);
        for policy in policies {
            let Some(spec) = &policy.spec else { continue };
            let ns = policy.metadata.namespace.as_deref().unwrap_or_default();
            if ns != target.namespace || !selector(Some(&spec.pod_selector)).matches(&target.labels)
            {
                continue;
            }
            // Each direction's rules as (peers, ports) pairs.
            let ingress_rules = spec.ingress.iter().flatten().map(|r| (&r.from, &r.ports));
            let egress_rules = spec.egress.iter().flatten().map(|r| (&r.to, &r.ports));
            let directions: [(Direction, &mut Option<Vec<Allow>>, Vec<_>); 2] = [
                (Direction::Ingress, &mut ingress, ingress_rules.collect()),
                (Direction::Egress, &mut egress, egress_rules.collect()),
            ];
            for (direction, allows, rules) in directions {
                if !applies(spec, direction) {
                    continue;
                }
                let allows = allows.get_or_insert_with(Vec::new);
                for (peers, ports) in rules {
                    allows.extend(rule_allows(
                        &cluster,
                        direction,
                        ns,
                        peers.as_ref(),
                        ports.as_ref(),
                        target,
                    ));
                }
            }
        }
        if ingress.is_some() || egress.is_some() {
            out.insert(
                target.ip,
                PodPolicy {
                    pod: format!(
                        "{}/{}",
                        target.namespace,
                        target.pod.metadata.name.as_deref().unwrap_or_default()
                    ),
                    ip: target.ip,
                    ingress: ingress.map(normalise),
                    egress: egress.map(normalise),
                },
            );
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
