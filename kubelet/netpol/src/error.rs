//! Errors of the NetworkPolicy agent.

/// What can go wrong enforcing NetworkPolicies.
#[derive(Debug, thiserror::Error)]
pub enum NetpolError {
    /// Applying the ruleset with nft failed.
    #[error(transparent)]
    Nft(#[from] bramble_proxy::ProxyError),
}
