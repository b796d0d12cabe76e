//! The cluster zone computed from Services and EndpointSlices (no I/O), with the names
//! upstream's DNS specification for Kubernetes gives:
//! - `<svc>.<ns>.svc.<domain>` A: the ClusterIP; for a headless Service the ready endpoint
//!   addresses; CNAME for an ExternalName Service;
//! - `<host>.<svc>.<ns>.svc.<domain>` A for each ready endpoint of a headless Service, `<host>`
//!   being the endpoint's `hostname` (a pod's `hostname` with `subdomain` = the Service) or its
//!   dashed address;
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for each named port;
//! - `<d>.<c>.<b>.<a>.in-addr.arpa` PTR for ClusterIPs and headless endpoints;
//! - `<a>-<b>-<c>-<d>.<ns>.pod.<domain>` A (computed from the name, as CoreDNS's
//!   `pods insecure`).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// TTL of cluster records (CoreDNS's kubernetes plugin default).
pub const TTL: u32 = 5;

/// One record of the cluster zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    /// IPv4 address.
    A(Ipv4Addr),
    /// Alias (ExternalName).
    Cname(String),
    /// Service port: port and target name.
    Srv {
        /// The port.
        port: u16,
        /// The host serving it.
        target: String,
    },
    /// Reverse pointer.
    Ptr(String),
}

/// What a name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Records for the name (possibly none of the asked type: NODATA).
    Found(Vec<Rec>),
    /// A name in the cluster zone that does not exist (authoritative NXDOMAIN).
    NxDomain,
    /// Not ours: forward to the node's resolvers.
    Forward,
}

/// The cluster zone: names (lowercase, no trailing dot) to records.
#[derive(Debug, Default, Clone)]
pub struct Zone {
    domain: String,
    names: HashMap<String, Vec<Rec>>,
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

/// `d.c.b.a.in-addr.arpa` of an address.
pub fn reverse_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
}

fn service_ips(svc: &Service) -> Vec<Ipv4Addr> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let mut ips: Vec<Ipv4Addr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|s| s.parse().ok())
        .collect();
    ips.dedup();
    ips
}

impl Zone {
    /// The zone for `domain` (e.g. `cluster.local`) from the current objects.
    pub fn build(domain: &str, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> Zone {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut zone = Zone {
            domain: domain.clone(),
            names: HashMap::new(),
        };
        let mut slices_of: HashMap<(String, String), Vec<&EndpointSlice>> = HashMap::new();
        for s in slices {
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            if let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            {
                slices_of.entry((ns, svc.clone())).or_default().push(s);
            }
        }
        for svc in services {
            let (Some(name), Some(ns)) = (&svc.metadata.name, &svc.metadata.namespace) else {
                continue;
            };
            let Some(spec) = &svc.spec else { continue };
            let base = format!("{name}.{ns}.svc.{domain}").to_ascii_lowercase();
            zone.add_parents(ns);
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(ext) = &spec.external_name {
                    let target = ext.trim_end_matches('.').to_ascii_lowercase();
                    zone.add(&base, Rec::Cname(target));
                }
                continue;
            }
            if spec.cluster_ip.as_deref() == Some("None") {
                let empty = Vec::new();
                let own = slices_of.get(&(ns.clone(), name.clone())).unwrap_or(&empty);
                zone.add_headless(&base, own);
                continue;
            }
            for ip in service_ips(svc) {
                zone.add(&base, Rec::A(ip));
                zone.add(&reverse_name(ip), Rec::Ptr(base.clone()));
            }
            for p in spec.ports.iter().flatten() {
                let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) else {
                    continue;
                };
                let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                zone.add(
                    &format!("_{port_name}._{proto}.{base}"),
                    Rec::Srv {
                        port: p.port as u16,
                        target: base.clone(),
                    },
                );
            }
        }
        zone
    }

    fn add(&mut self, name: &str, rec: Rec) {
        let v = self.names.entry(name.to_string()).or_default();
        if !v.contains(&rec) {
            v.push(rec);
        }
    }

    /// `svc.<domain>` and `<ns>.svc.<domain>` exist (NODATA, not NXDOMAIN).
    fn add_parents(&mut self, ns: &str) {
        let svc = format!("svc.{}", self.domain);
        self.names.entry(format!("{ns}.{svc}")).or_default();
        self.names.entry(svc).or_default();
    }

    fn add_headless(&mut self, base: &str, slices: &[&EndpointSlice]) {
        for s in slices {
            if s.address_type != "IPv4" {
                continue;
            }
            for e in &s.endpoints {
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for ip in e
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<Ipv4Addr>().ok())
                {
                    let host = e
                        .hostname
                        .clone()
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| dashed(ip))
                        .to_ascii_lowercase();
                    let fqdn = format!("{host}.{base}");
                    self.add(base, Rec::A(ip));
                    self.add(&fqdn, Rec::A(ip));
                    self.add(&reverse_name(ip), Rec::Ptr(fqdn.clone()));
                    for p in s.ports.iter().flatten() {
                        let (Some(port_name), Some(port)) =
                            (p.name.as_deref().filter(|n| !n.is_empty()), p.port)
                        else {
                            continue;
                        };
                        let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                        self.add(
                            &format!("_{port_name}._{proto}.{base}"),
                            Rec::Srv {
                                port: port as u16,
                                target: fqdn.clone(),
                            },
                        );
                    }
                }
            }
        }
    }

    /// The cluster domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Looks a name up (any case, with or without the trailing dot).
    pub fn lookup(&self, name: &str) -> Lookup {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(recs) = self.names.get(&name) {
            return Lookup::Found(recs.clone());
        }
        if name == self.domain {
            return Lookup::Found(Vec::new());
        }
        let Some(rest) = name
            .strip_suffix(&self.domain)
            .and_then(|r| r.strip_suffix('.'))
        else {
            return Lookup::Forward;
        };
        // <a-b-c-d>.<ns>.pod.<domain>
        let labels: Vec<&str> = rest.split('.').collect();
        match labels.as_slice() {
            [ip, _ns, "pod"] => match ip.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(ip) => Lookup::Found(vec![Rec::A(ip)]),
                Err(_) => Lookup::NxDomain,
            },
            [_, "pod"] | ["pod"] => Lookup::Found(Vec::new()),
            _ => Lookup::NxDomain,
        }
    }

    /// Number of names (for metrics and tests).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the zone holds no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests;
