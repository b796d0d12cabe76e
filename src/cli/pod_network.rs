//! Pod networking of `bramble kubelet` and `bramble up`: CNI (the default bridge network
//! over the node's podCIDR, written once the controller allocated it), the nftables service
//! proxy, the NetworkPolicy agent and host-gateway routes to the other nodes' pod CIDRs — or
//! loopback only.
//!
//! The default is `cni` when a `bridge` plugin is found in the CNI bin directories (the node
//! image ships Debian's containernetworking-plugins in /usr/lib/cni), else `loopback`: a
//! machine without the plugins still runs pods (without pod IPs or Services) instead of
//! keeping the node NotReady.

use std::path::PathBuf;
use std::sync::Arc;

use bramble_cni::CniNetworkConfig;
use bramble_kubelet::{KubeletConfig, LoopbackOnly};

/// `--pod-network`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodNetworkMode {
    /// CNI plugins, the service proxy and inter-node routes.
    Cni,
    /// Only loopback in pods: no pod IP, no Services.
    Loopback,
}

/// Networking flags of `bramble kubelet`.
#[derive(clap::Args, Clone, Debug)]
pub struct NetworkArgs {
    /// Pod networking: `cni` or `loopback` (default: `cni` when the CNI bin directories
    /// hold a `bridge` plugin, else `loopback`).
    #[arg(long, value_enum)]
    pub pod_network: Option<PodNetworkMode>,
    /// Directory searched for CNI plugins (repeatable; default /opt/cni/bin and /usr/lib/cni).
    #[arg(long = "cni-bin-dir")]
    pub cni_bin_dirs: Vec<PathBuf>,
    /// CNI configuration directory; the default bridge conflist is written there when it
    /// holds none.
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// The cluster's pod network (the controller allocates node podCIDRs from it); Service
    /// traffic from outside it is masqueraded.
    #[arg(long, default_value = bramble_netctl::DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: String,
    /// The cluster DNS Service IP pods get as nameserver (with `--pod-network cni`).
    #[arg(long, default_value_t = std::net::IpAddr::V4(bramble_dns::DEFAULT_CLUSTER_DNS))]
    pub cluster_dns: std::net::IpAddr,
    /// The cluster domain in pods' DNS search path.
    #[arg(long, default_value = bramble_dns::DEFAULT_DOMAIN)]
    pub cluster_domain: String,
}

impl Default for NetworkArgs {
    fn default() -> Self {
        NetworkArgs {
            pod_network: None,
            cni_bin_dirs: Vec::new(),
            cni_conf_dir: "/etc/cni/net.d".into(),
            cluster_cidr: bramble_netctl::DEFAULT_CLUSTER_CIDR.into(),
            cluster_dns: std::net::IpAddr::V4(bramble_dns::DEFAULT_CLUSTER_DNS),
            cluster_domain: bramble_dns::DEFAULT_DOMAIN.into(),
        }
    }
}

impl NetworkArgs {
    fn bin_dirs(&self) -> Vec<PathBuf> {
        if self.cni_bin_dirs.is_empty() {
            bramble_cni::exec::default_bin_dirs()
        } else {
            self.cni_bin_dirs.clone()
        }
    }

    /// The mode in effect (see the module docs for the default).
    pub fn mode(&self) -> PodNetworkMode {
        self.pod_network.unwrap_or_else(|| {
            if self.bin_dirs().iter().any(|d| d.join("bridge").is_file()) {
                PodNetworkMode::Cni
            } else {
                PodNetworkMode::Loopback
            }
        })
    }
}

/// Sets `cfg.network` and starts the node's service proxy, NetworkPolicy agent and routes
/// (on the current tokio runtime) for the chosen mode.
pub fn start(args: &NetworkArgs, cfg: &mut KubeletConfig, client: bramble_kubelet::Client) {
    configure(args, cfg, client.clone());
    start_services(args, &cfg.node_name, client);
}

/// The kubelet's part of [`start`]: the pod network it sets pods up in and reports the node
/// Ready from.
pub fn configure(args: &NetworkArgs, cfg: &mut KubeletConfig, client: bramble_kubelet::Client) {
    match args.mode() {
        PodNetworkMode::Loopback => {
            tracing::info!("pod network: loopback only");
            cfg.network = Arc::new(LoopbackOnly);
        }
        PodNetworkMode::Cni => {
            let cni = CniNetworkConfig {
                conf_dir: args.cni_conf_dir.clone(),
                bin_dirs: args.bin_dirs(),
                data_dir: cfg.data_dir.join("cni"),
            };
            tracing::info!(conf_dir = %cni.conf_dir.display(), "pod network: CNI");
            cfg.cluster_dns = bramble_kubelet::pod_dns::ClusterDns {
                servers: vec![args.cluster_dns],
                domain: args.cluster_domain.clone(),
            };
            cfg.network = bramble_cni::kubelet_network(cni, &cfg.node_name, client);
        }
    }
}

/// The rest of [`start`] (with CNI only): the node's service proxy, NetworkPolicy agent and
/// routes to the other nodes' pod CIDRs.
pub fn start_services(args: &NetworkArgs, node: &str, client: bramble_kubelet::Client) {
    if args.mode() != PodNetworkMode::Cni {
        return;
    }
    let mut proxy = bramble_proxy::ProxyConfig::new(node.to_string());
    proxy.cluster_cidr = args.cluster_cidr.clone();
    bramble_proxy::spawn(client.clone(), proxy);
    bramble_netpol::spawn(client.clone(), node.to_string());
    tokio::spawn(bramble_routes::run(
        client,
        node.to_string(),
        args.cluster_cidr.clone(),
    ));
}
