//! What the proxy programs, computed from Services and EndpointSlices (no I/O).

use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Settings of the proxy on one node.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// This node's name (endpoints with this `nodeName` are local).
    pub node_name: String,
    /// The cluster's pod CIDR: ClusterIP traffic from outside it is masqueraded.
    pub cluster_cidr: String,
    /// nftables table name (family `ip`).
    pub table: String,
}

impl ProxyConfig {
    /// Defaults (cluster CIDR 10.42.0.0/16, table `bramble-proxy`) for a node.
    pub fn new(node_name: impl Into<String>) -> Self {
        ProxyConfig {
            node_name: node_name.into(),
            cluster_cidr: "10.42.0.0/16".into(),
            table: "bramble-proxy".into(),
        }
    }
}

/// One backend of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    /// Pod IP.
    pub ip: Ipv4Addr,
    /// Target port.
    pub port: u16,
    /// Whether the pod runs on this node.
    pub local: bool,
}

/// One port of one Service, with its backends.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePortModel {
    /// `namespace/name/protocol/portname` (the identity chains are named after).
    pub id: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Service port.
    pub port: u16,
    /// ClusterIPs (IPv4); empty for headless.
    pub cluster_ips: Vec<Ipv4Addr>,
    /// NodePort, if any.
    pub node_port: Option<u16>,
    /// `spec.externalIPs` and LoadBalancer ingress IPs.
    pub external_ips: Vec<Ipv4Addr>,
    /// Ready backends (or serving terminating ones when none is ready), sorted.
    pub backends: Vec<Backend>,
    /// ClientIP affinity timeout in seconds, when `sessionAffinity: ClientIP`.
    pub affinity_timeout: Option<u32>,
    /// `externalTrafficPolicy: Local`: external traffic only to local backends, unmasqueraded.
    pub external_local: bool,
}

fn ipv4s<'a>(it: impl IntoIterator<Item = &'a String>) -> Vec<Ipv4Addr> {
    it.into_iter().filter_map(|s| s.parse().ok()).collect()
}

/// The service ports to program, sorted by id.
pub fn build_model(
    config: &ProxyConfig,
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
) -> Vec<ServicePortModel> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let mut cluster_ips = ipv4s(spec.cluster_ips.iter().flatten());
        if cluster_ips.is_empty() {
            cluster_ips = ipv4s(spec.cluster_ip.iter());
        }
        let mut external_ips = ipv4s(spec.external_ips.iter().flatten());
        let lb_ips: Vec<String> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .map(|i| i.iter().filter_map(|i| i.ip.clone()).collect())
            .unwrap_or_default();
        external_ips.extend(ipv4s(lb_ips.iter()));
        external_ips.sort();
        external_ips.dedup();
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .map(|t| t.max(1) as u32)
                .unwrap_or(10800)
        });
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
        let svc_slices: Vec<&EndpointSlice> = slices
            .iter()
            .map(|s| s.as_ref())
            .filter(|s| {
                s.metadata.namespace.as_deref() == Some(ns.as_str())
                    && s.address_type == "IPv4"
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("kubernetes.io/service-name"))
                        .is_some_and(|n| *n == name)
            })
            .collect();
        for sp in spec.ports.iter().flatten() {
            let protocol = sp.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            let port_name = sp.name.clone().unwrap_or_default();
            let (mut ready, mut fallback) = (Vec::new(), Vec::new());
            for slice in &svc_slices {
                let Some(port) = slice.ports.iter().flatten().find(|p| {
                    p.name.clone().unwrap_or_default() == port_name
                        && p.protocol
                            .as_deref()
                            .unwrap_or("TCP")
                            .eq_ignore_ascii_case(&protocol)
                }) else {
                    continue;
                };
                let Some(target) = port.port.and_then(|p| u16::try_from(p).ok()) else {
                    continue;
                };
                for ep in &slice.endpoints {
                    let c = ep.conditions.clone().unwrap_or_default();
                    let local = ep.node_name.as_deref() == Some(config.node_name.as_str());
                    for ip in ipv4s(ep.addresses.iter()) {
                        let b = Backend {
                            ip,
                            port: target,
                            local,
                        };
                        if c.ready.unwrap_or(true) {
                            ready.push(b);
                        } else if c.serving == Some(true) && c.terminating == Some(true) {
                            fallback.push(b);
                        }
                    }
                }
            }
            let mut backends = if ready.is_empty() { fallback } else { ready };
            backends.sort();
            backends.dedup();
            out.push(ServicePortModel {
                id: format!("{ns}/{name}/{protocol}/{port_name}"),
                protocol,
                port: sp.port as u16,
                cluster_ips: cluster_ips.clone(),
                node_port: sp.node_port.and_then(|p| u16::try_from(p).ok()),
                external_ips: external_ips.clone(),
                backends,
                affinity_timeout,
                external_local,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}
