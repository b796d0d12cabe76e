//! The pod network seam: the kubelet calls a [`PodNetwork`] after the pod sandbox (pause
//! container) exists and before it is removed. A CNI implementation lives in another crate;
//! [`LoopbackOnly`] gives pods only their loopback interface (no pod IP).

use std::net::IpAddr;
use std::path::PathBuf;

use futures::future::BoxFuture;

/// What a network plugin needs to wire one pod sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetworkRequest {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// The sandbox (pause container) id, CNI's `CNI_CONTAINERID`.
    pub sandbox_id: String,
    /// The pod's network namespace (`/proc/<pause pid>/ns/net`), CNI's `CNI_NETNS`.
    pub netns_path: PathBuf,
}

/// Errors a network plugin reports.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The plugin is not configured or not ready yet (the node reports NotReady).
    #[error("network plugin not ready: {0}")]
    NotReady(String),
    /// The plugin failed for this pod.
    #[error("{0}")]
    Plugin(String),
    /// Any other failure, with its cause.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Sets up and tears down pod networking (upstream's CNI network plugin seam).
pub trait PodNetwork: Send + Sync {
    /// Wires the sandbox's network namespace; returns the pod's IPs (first is `status.podIP`).
    fn setup<'a>(
        &'a self,
        pod: &'a PodNetworkRequest,
    ) -> BoxFuture<'a, Result<Vec<IpAddr>, NetworkError>>;
    /// Releases what [`PodNetwork::setup`] allocated. Must succeed when called twice.
    fn teardown<'a>(
        &'a self,
        pod: &'a PodNetworkRequest,
    ) -> BoxFuture<'a, Result<(), NetworkError>>;
    /// Whether pods can be networked now; an error makes the node NotReady
    /// (`NetworkReady=false` in upstream's words).
    fn status(&self) -> Result<(), NetworkError> {
        Ok(())
    }
}

/// Pods get only loopback (the pause container's fresh network namespace brings `lo` up) and
/// no pod IP.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopbackOnly;

impl PodNetwork for LoopbackOnly {
    fn setup<'a>(
        &'a self,
        _pod: &'a PodNetworkRequest,
    ) -> BoxFuture<'a, Result<Vec<IpAddr>, NetworkError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn teardown<'a>(
        &'a self,
        _pod: &'a PodNetworkRequest,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        Box::pin(async { Ok(()) })
    }
}
