//! Bramble's network controllers, running inside `bramble controller`:
//! node IPAM (`spec.podCIDR(s)` per Node from the cluster CIDR), the EndpointSlice and
//! Endpoints controllers (from the pods Services select), and LoadBalancer status with node
//! addresses (the way k3s's service load balancer publishes them).
//!
//! The decisions are pure functions over k8s-openapi objects ([`cidr`], [`endpoints_logic`],
//! [`lb`]); [`run_with`] drives them from the process's shared informers.

pub mod cache;
pub mod cidr;
pub mod controller;
pub mod endpoints_logic;
pub mod error;
pub mod lb;

pub use cidr::CidrAllocator;
pub use controller::{run, run_with, NetctlConfig};
pub use error::Error;

/// The default cluster (pod) CIDR, as k3s's.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";

/// Spawns the network controllers on the current tokio runtime, over the process's shared
/// informers; they log and restart after an error.
pub fn spawn(informers: bramble_informer::SharedInformers) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_with(&informers, NetctlConfig::default()).await {
                tracing::error!(error = %e, "network controllers stopped; restarting");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}
