//! Errors of the provisioner.

/// What can stop a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("API request: {0}")]
    Api(#[from] kube::Error),
    /// A watch failed.
    #[error("watch: {0}")]
    Watch(#[from] kube::runtime::watcher::Error),
}
