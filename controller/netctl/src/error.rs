//! Errors of the network controllers.

/// What can stop a network controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("API request: {0}")]
    Kube(#[from] kube::Error),
    /// The cluster CIDR or node mask size is unusable.
    #[error("invalid cluster CIDR {cidr}: {reason}")]
    InvalidClusterCidr {
        /// The CIDR.
        cidr: String,
        /// Why.
        reason: String,
    },
    /// Encoding a patch failed.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}
