//! Errors of the service proxy.

/// What can go wrong programming the proxy rules.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Running `nft` failed.
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    /// `nft` rejected the ruleset.
    #[error("nft -f - failed: {0}")]
    Nft(String),
    /// An API watch failed.
    #[error("API: {0}")]
    Kube(#[from] kube::Error),
}
