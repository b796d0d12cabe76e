//! Node pod-CIDR allocation from the cluster CIDR (upstream's range allocator).

use std::collections::BTreeSet;

use ipnet::Ipv4Net;

use crate::error::Error;

/// Hands out fixed-size subnets of the cluster CIDR.
#[derive(Debug, Clone)]
pub struct CidrAllocator {
    cluster: Ipv4Net,
    node_prefix: u8,
    used: BTreeSet<Ipv4Net>,
}

impl CidrAllocator {
    /// Subnets of `/node_prefix` out of `cluster` (k3s: 10.42.0.0/16 and /24).
    pub fn new(cluster: &str, node_prefix: u8) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidClusterCidr {
            cidr: cluster.to_string(),
            reason: reason.to_string(),
        };
        let net: Ipv4Net = cluster.parse().map_err(|_| invalid("not an IPv4 CIDR"))?;
        if node_prefix < net.prefix_len() || node_prefix > 30 {
            return Err(invalid(
                "node mask must lie between the cluster mask and /30",
            ));
        }
        Ok(CidrAllocator {
            cluster: net.trunc(),
            node_prefix,
            used: BTreeSet::new(),
        })
    }

    /// Marks a subnet as taken (a node's existing `spec.podCIDR`); false when it is not a
    /// subnet of the cluster CIDR of the node size.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match cidr.parse::<Ipv4Net>() {
            Ok(n) if n.prefix_len() == self.node_prefix && self.cluster.contains(&n) => {
                self.used.insert(n.trunc());
                true
            }
            _ => false,
        }
    }

    /// Frees a subnet (its node was deleted).
    pub fn release(&mut self, cidr: &str) {
        if let Ok(n) = cidr.parse::<Ipv4Net>() {
            self.used.remove(&n.trunc());
        }
    }

    /// The lowest free subnet, now taken; `None` when the cluster CIDR is full.
    pub fn allocate(&mut self) -> Option<String> {
        let free = self
            .cluster
            .subnets(self.node_prefix)
            .ok()?
            .find(|n| !self.used.contains(n))?;
        self.used.insert(free);
        Some(free.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_lowest_free_and_skips_occupied() {
        let mut a = CidrAllocator::new("10.42.0.0/16", 24).unwrap();
        assert!(a.occupy("10.42.0.0/24"));
        assert!(!a.occupy("10.43.0.0/24"));
        assert!(!a.occupy("10.42.0.0/25"));
        assert_eq!(a.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.42.2.0/24"));
        a.release("10.42.1.0/24");
        assert_eq!(a.allocate().as_deref(), Some("10.42.1.0/24"));
    }

    #[test]
    fn exhausts() {
        let mut a = CidrAllocator::new("10.0.0.0/23", 24).unwrap();
        assert!(a.allocate().is_some());
        assert!(a.allocate().is_some());
        assert_eq!(a.allocate(), None);
        assert!(CidrAllocator::new("10.0.0.0/24", 16).is_err());
        assert!(CidrAllocator::new("bad", 24).is_err());
    }
}
