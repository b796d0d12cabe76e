//! What every pod worker shares: the runtime, image manager, cgroups, network plugin, status
//! manager, API client and node facts.

use std::sync::Arc;

use bramble_images::ImageManager;
use bramble_runtime::ContainerRuntime;
use kube::Client;

use crate::container_config::NodeContext;
use crate::events::EventRecorder;
use crate::eviction::manager::Evictions;
use crate::network::PodNetwork;
use crate::pod_cgroups::PodCgroups;
use crate::prober::ProberManager;
use crate::runtime_pod::{group, RuntimePod};
use crate::status_manager::StatusManager;

/// Shared by all pod workers.
pub struct PodContext<R> {
    /// The container runtime.
    pub runtime: Arc<R>,
    /// Images (pull policy, back-off, store).
    pub images: Arc<ImageManager>,
    /// Pod cgroups.
    pub cgroups: Arc<PodCgroups>,
    /// The pod network plugin.
    pub network: Arc<dyn PodNetwork>,
    /// The single writer of pod status.
    pub status: StatusManager,
    /// API client (pull secrets).
    pub client: Client,
    /// Node facts.
    pub node: NodeContext,
    /// Pod and node events ([`EventRecorder::event`]).
    pub events: EventRecorder,
    /// Liveness, readiness and startup probes of every pod.
    pub prober: ProberManager<R>,
    /// Pods the eviction manager is evicting.
    pub evictions: Arc<Evictions>,
}

impl<R: ContainerRuntime> PodContext<R> {
    /// The runtime's containers of one pod.
    pub async fn runtime_pod(
        &self,
        uid: &str,
    ) -> Result<RuntimePod, bramble_runtime::RuntimeError> {
        let all = self.runtime.list_pod_containers(uid).await?;
        Ok(group(all).remove(uid).unwrap_or_default())
    }
}
