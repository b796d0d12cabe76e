//! Errors of the kubelet's managers, composed into [`KubeletError`].

use std::path::PathBuf;

/// Everything that can stop the kubelet or fail one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// An API request failed.
    #[error("API request: {0}")]
    Api(#[from] kube::Error),
    /// The container runtime failed.
    #[error("container runtime: {0}")]
    Runtime(#[from] bramble_runtime::RuntimeError),
    /// A cgroup operation failed.
    #[error("cgroups: {0}")]
    Cgroup(#[from] bramble_cgroups::CgroupError),
    /// The image store failed.
    #[error("image store: {0}")]
    ImageStore(#[from] bramble_images::StoreError),
    /// Pod networking failed.
    #[error("pod network: {0}")]
    Network(#[from] crate::network::NetworkError),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An object could not be (de)serialized.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl KubeletError {
    /// An [`KubeletError::Io`] builder for `map_err`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| KubeletError::Io { op, path, source }
    }
}
