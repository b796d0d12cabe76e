//! Bramble's service proxy: Services and EndpointSlices programmed into nftables in the shape
//! of kube-proxy's nftables mode (one `ip bramble-proxy` table; verdict maps from
//! `daddr . proto . port` to per-service chains; `numgen random` over ready endpoints;
//! masquerade marks for off-cluster, NodePort and hairpin traffic; ClientIP affinity through
//! dynamic sets with timeouts; `externalTrafficPolicy: Local`). Each sync rewrites the
//! whole table in one `nft -f -` transaction.

pub mod error;
pub mod model;
pub mod nft;
pub mod proxier;
pub mod rules;

pub use error::ProxyError;
pub use model::{build_model, ProxyConfig};
pub use proxier::{run, spawn};
pub use rules::render;
