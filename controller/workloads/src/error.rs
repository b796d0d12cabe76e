//! Errors of the workload controllers.

/// What a reconcile can fail with; every error is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("API request: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be (de)serialized.
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
    /// The object cannot be acted on as it is (bad selector, collision, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Result of the controllers' fallible steps.
pub type Result<T, E = Error> = std::result::Result<T, E>;
