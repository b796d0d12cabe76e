//! Host-gateway routes between nodes on one LAN: every other node's pod CIDR is routed via
//! that node's InternalIP (flannel host-gw style), kept in sync from the Node objects, with
//! IP forwarding on. Routes are installed with `ip route replace ... proto 193` so the ones
//! this node owns can be listed and pruned without any local state. Pod traffic leaving the
//! cluster's pod CIDR is masqueraded ([`masq`]); traffic between pods keeps its addresses.

pub mod masq;

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};

/// The routing protocol number marking Bramble's routes (`ip route ... proto 193`).
pub const ROUTE_PROTO: &str = "193";

/// Errors of route programming.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Running `ip` failed.
    #[error("running ip: {0}")]
    Spawn(#[source] std::io::Error),
    /// `ip` reported an error.
    #[error("{command}: {stderr}")]
    Ip {
        /// The command line.
        command: String,
        /// Its error output.
        stderr: String,
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRoute {
    /// The other node's pod CIDR.
    pub dst: String,
    /// That node's InternalIP.
    pub via: Ipv4Addr,
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
        for dst in cidrs.into_iter().filter(|c| !c.contains(':')) {
            out.push(PodRoute { dst, via });
        }
    }
    out.sort();
    out
}

fn ip(args: &[&str]) -> Result<String, RouteError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(RouteError::Spawn)?;
    if !out.status.success() {
        return Err(RouteError::Ip {
            command: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The destinations of the Bramble routes installed now.
pub fn installed_routes() -> Result<Vec<String>, RouteError> {
    let text = ip(&["-4", "route", "show", "proto", ROUTE_PROTO])?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Makes the Bramble routes exactly `routes`: replaces each, deletes the others.
pub fn sync_routes(routes: &[PodRoute]) -> Result<(), RouteError> {
    for r in routes {
        let via = r.via.to_string();
        ip(&[
            "route",
            "replace",
            &r.dst,
            "via",
            &via,
            "proto",
            ROUTE_PROTO,
        ])?;
    }
    for dst in installed_routes()? {
        if !routes.iter().any(|r| r.dst == dst) {
            ip(&["route", "del", &dst, "proto", ROUTE_PROTO])?;
        }
    }
    Ok(())
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
        let routes = want.clone();
        match tokio::task::spawn_blocking(move || sync_routes(&routes)).await {
            Ok(Ok(())) => last = Some(want),
            Ok(Err(e)) => tracing::warn!(error = %e, "syncing pod routes"),
            Err(e) => tracing::warn!(error = %e, "route sync task"),
        }
    }
}
