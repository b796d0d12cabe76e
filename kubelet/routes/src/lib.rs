//! Host-gateway routes between nodes on one LAN: every other node's pod CIDR is routed via
//! that node's InternalIP (flannel host-gw style), kept in sync from the Node objects, with
//! IP forwarding on. Routes are programmed over rtnetlink ([`netlink`]) with the routing
//! protocol number 193 (`ip route show proto 193` lists them), so the ones this node owns can
//! be listed and pruned without any local state. Pod traffic leaving the cluster's pod CIDR
//! is masqueraded ([`masq`]); traffic between pods keeps its addresses.

pub mod masq;
pub mod netlink;

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};

pub use netlink::{RouteTable, ROUTE_PROTO};

/// Errors of route programming.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Opening the rtnetlink socket failed.
    #[error("opening rtnetlink socket: {0}")]
    Connect(#[source] std::io::Error),
    /// The kernel refused a netlink request.
    #[error("{op}: {source}")]
    Netlink {
        /// What was being done.
        op: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// Installing the masquerade table with `nft` failed.
    #[error("masquerade rules: {0}")]
    Nft(#[source] bramble_proxy::ProxyError),
    /// Writing a sysctl failed.
    #[error("{path}: {source}")]
    Sysctl {
        /// The /proc/sys path.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// One route: a pod CIDR via a node address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRoute {
    /// The other node's pod CIDR's network address.
    pub dst: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// That node's InternalIP.
    pub via: Ipv4Addr,
}

impl fmt::Display for PodRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} via {}", self.dst, self.prefix_len, self.via)
    }
}

/// An IPv4 CIDR `a.b.c.d/n` as (network address, n); `None` for IPv6 or malformed text.
fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = cidr.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    Some((Ipv4Addr::from(u32::from(addr) & mask), len))
}

/// Routes to every other node's IPv4 pod CIDRs via its InternalIP, sorted.
pub fn desired_routes(nodes: &[Arc<Node>], self_name: &str) -> Vec<PodRoute> {
    let mut out = Vec::new();
    for n in nodes {
        if n.metadata.name.as_deref() == Some(self_name) {
            continue;
        }
        let Some(via) = n
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .and_then(|a| a.address.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let spec = n.spec.as_ref();
        let mut cidrs: Vec<String> = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
        if cidrs.is_empty() {
            cidrs.extend(spec.and_then(|s| s.pod_cidr.clone()));
        }
        for (dst, prefix_len) in cidrs.iter().filter_map(|c| parse_cidr(c)) {
            out.push(PodRoute {
                dst,
                prefix_len,
                via,
            });
        }
    }
    out.sort();
    out
}

/// Turns IPv4 forwarding on (pods on this node reach other nodes' pods through it).
pub fn enable_forwarding() -> Result<(), RouteError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    std::fs::write(path, "1").map_err(|source| RouteError::Sysctl {
        path: path.into(),
        source,
    })
}

/// Keeps the routes in sync with the Node objects until the task is dropped, after turning
/// forwarding on and masquerading pod traffic that leaves `cluster_cidr`.
pub async fn run(client: Client, node_name: String, cluster_cidr: String) {
    if let Err(e) = enable_forwarding() {
        tracing::warn!(error = %e, "enabling IP forwarding");
    }
    let cidr = cluster_cidr.clone();
    match tokio::task::spawn_blocking(move || masq::install_masquerade(&cidr)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, %cluster_cidr, "masquerade for traffic leaving the cluster")
        }
        Err(e) => tracing::warn!(error = %e, "masquerade task"),
    }
    let table = match RouteTable::connect() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "pod routes to other nodes are not programmed");
            return;
        }
    };
    let (reader, mut writer) = reflector::store::<Node>();
    let mut events = watcher::watcher(Api::<Node>::all(client), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut last: Option<Vec<PodRoute>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                writer.apply_watcher_event(&event);
                if matches!(event, Event::Init | Event::InitApply(_)) {
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching nodes for routes");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let want = desired_routes(&reader.state(), &node_name);
        if last.as_ref() == Some(&want) {
            continue;
        }
        match table.sync(&want).await {
            Ok(()) => last = Some(want),
            Err(e) => tracing::warn!(error = %e, "syncing pod routes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_to_their_network_and_ipv6_or_junk_is_skipped() {
        assert_eq!(
            parse_cidr("10.42.1.0/24"),
            Some((Ipv4Addr::new(10, 42, 1, 0), 24))
        );
        assert_eq!(
            parse_cidr("10.42.1.7/24"),
            Some((Ipv4Addr::new(10, 42, 1, 0), 24))
        );
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((Ipv4Addr::UNSPECIFIED, 0)));
        assert_eq!(parse_cidr("fd00::/64"), None);
        assert_eq!(parse_cidr("10.42.1.0/33"), None);
        assert_eq!(parse_cidr("10.42.1.0"), None);
    }
}
