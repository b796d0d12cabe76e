//! Bramble's cluster DNS, run by the controller: `<svc>.<ns>.svc.<domain>` and the other
//! names of upstream's DNS specification for Kubernetes ([`records`]) answered from watch
//! caches of Services and EndpointSlices, everything else relayed to the node's resolvers.
//!
//! The server listens on the controller's address; the `kube-system/kube-dns` Service
//! (ClusterIP 10.43.0.10 by default, ports 53 UDP/TCP) gets an EndpointSlice pointing there,
//! so the nftables proxy of every node carries pods' queries to it, as kube-proxy carries
//! them to CoreDNS upstream.

pub mod answer;
pub mod error;
pub mod publish;
pub mod records;
pub mod server;
pub mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use error::DnsError;
pub use records::{Lookup, Rec, Zone};
pub use server::SharedZone;

/// The kube-dns Service's ClusterIP (the kubelet's default `--cluster-dns`).
pub const DEFAULT_CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);
/// The default cluster domain.
pub const DEFAULT_DOMAIN: &str = "cluster.local";

/// Settings of the cluster DNS.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where the server listens (UDP and TCP); port 0 picks a free one.
    pub listen: SocketAddr,
    /// The address published in the kube-dns EndpointSlice (the controller's advertised
    /// address); `None` publishes nothing.
    pub advertise: Option<IpAddr>,
    /// The kube-dns Service's ClusterIP.
    pub cluster_ip: Ipv4Addr,
    /// The cluster domain.
    pub domain: String,
    /// Resolvers for names outside the cluster domain.
    pub upstreams: Vec<SocketAddr>,
    /// UDP worker tasks.
    pub workers: usize,
}

impl DnsConfig {
    /// Defaults listening on `listen`, forwarding to this machine's `/etc/resolv.conf`
    /// nameservers (except the listen address itself).
    pub fn new(listen: SocketAddr) -> Self {
        let upstreams = std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| server::resolv_conf_nameservers(&t))
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u.ip() != listen.ip())
            .collect();
        DnsConfig {
            listen,
            advertise: None,
            cluster_ip: DEFAULT_CLUSTER_DNS,
            domain: DEFAULT_DOMAIN.into(),
            upstreams,
            workers: 2,
        }
    }
}

/// Binds the listeners, then serves (on the current tokio runtime) from watches through
/// `client`, publishing the kube-dns Service when `config.advertise` is set. Returns the
/// bound address.
pub async fn start(client: kube::Client, config: DnsConfig) -> Result<SocketAddr, DnsError> {
    let (udp, tcp) = server::bind(config.listen).await?;
    let bound = udp.local_addr().map_err(|source| DnsError::Bind {
        addr: config.listen,
        source,
    })?;
    let zone = SharedZone::default();
    let upstreams = Arc::new(config.upstreams.clone());
    tokio::spawn(server::serve_udp(
        udp,
        zone.clone(),
        upstreams.clone(),
        config.workers,
    ));
    tokio::spawn(server::serve_tcp(tcp, zone.clone(), upstreams));
    tokio::spawn(watch::run(client.clone(), config.domain.clone(), zone));
    if let Some(ip) = config.advertise {
        let cluster_ip = config.cluster_ip;
        tokio::spawn(async move {
            loop {
                match publish::kube_dns(&client, cluster_ip, ip, bound.port()).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(error = %e, "publishing kube-dns; retrying"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }
    tracing::info!(addr = %bound, "cluster DNS listening");
    Ok(bound)
}
