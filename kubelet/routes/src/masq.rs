//! Masquerade for pod traffic leaving the cluster (flannel's rule in nftables): packets from
//! the cluster's pod CIDR to anywhere outside it (and not multicast) get the node's address,
//! while pod-to-pod traffic between nodes keeps the pods' own addresses, as the Kubernetes
//! network model requires (the bridge plugin's own `ipMasq` would hide every other node's
//! pods behind their node IPs).

use crate::RouteError;

/// The nftables table (family `ip`) holding the rule.
pub const MASQ_TABLE: &str = "bramble-routes";

/// The `nft -f -` script creating (or replacing) the table for `cluster_cidr`.
pub fn masquerade_script(cluster_cidr: &str) -> String {
    format!(
        "add table ip {MASQ_TABLE}\ndelete table ip {MASQ_TABLE}\ntable ip {MASQ_TABLE} {{\n  \
         chain postrouting {{\n    type nat hook postrouting priority srcnat + 10; policy accept;\n    \
         ip saddr {cluster_cidr} ip daddr != {cluster_cidr} ip daddr != 224.0.0.0/4 masquerade fully-random\n  \
         }}\n}}\n"
    )
}

/// Installs the masquerade rule for `cluster_cidr` (IPv4) in one `nft` transaction (through
/// the service proxy's `nft -f -` runner).
pub fn install_masquerade(cluster_cidr: &str) -> Result<(), RouteError> {
    bramble_proxy::nft::apply(&masquerade_script(cluster_cidr)).map_err(RouteError::Nft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_traffic_leaving_the_cluster_cidr_is_masqueraded() {
        let s = masquerade_script("10.42.0.0/16");
        assert!(s.contains(
            "ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade"
        ));
        assert!(s.starts_with("add table ip bramble-routes\ndelete table ip bramble-routes\n"));
    }
}
