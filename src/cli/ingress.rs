//! The built-in Ingress controller of `bramble kubelet` and `bramble up` (bramble-ingress):
//! every node with CNI pod networking answers on the ingress ports.

use crate::cli::pod_network::{NetworkArgs, PodNetworkMode};

/// Ingress flags of `bramble kubelet`.
#[derive(clap::Args, Clone, Debug)]
pub struct IngressArgs {
    /// Serve Ingresses of the `bramble` IngressClass on this node (`--ingress=false`: off;
    /// only with `--pod-network cni`, as backends are pod IPs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub ingress: bool,
    /// Port of the ingress's HTTP listener (0: none).
    #[arg(long, default_value_t = 80)]
    pub ingress_http_port: u16,
    /// Port of the ingress's HTTPS listener (0: none).
    #[arg(long, default_value_t = 443)]
    pub ingress_https_port: u16,
}

impl Default for IngressArgs {
    fn default() -> Self {
        IngressArgs {
            ingress: true,
            ingress_http_port: 80,
            ingress_https_port: 443,
        }
    }
}

/// Starts the node's ingress on the current tokio runtime when enabled and pods have IPs.
pub fn start(args: &IngressArgs, network: &NetworkArgs, client: bramble_kubelet::Client) {
    if !args.ingress || network.mode() != PodNetworkMode::Cni {
        return;
    }
    bramble_ingress::spawn(
        client,
        bramble_ingress::IngressConfig::ports(args.ingress_http_port, args.ingress_https_port),
    );
}
