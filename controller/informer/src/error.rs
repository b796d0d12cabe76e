//! Errors of the informer layer.

/// What can go wrong waiting on an informer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The informer task ended before its first list landed (the runtime is shutting down).
    #[error("the {kind} informer stopped before its cache was filled")]
    NeverSynced { kind: String },
}
