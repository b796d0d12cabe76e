//! [`CniPodNetwork`]: the kubelet's [`PodNetwork`] seam implemented over [`CniNetwork`].

use std::net::IpAddr;
use std::sync::Arc;

use bramble_kubelet::network::{NetworkError, PodNetwork, PodNetworkRequest};
use futures::future::BoxFuture;

use crate::config::DefaultNetwork;
use crate::error::CniError;
use crate::network::{CniNetwork, CniNetworkConfig, PodRef};

/// Pod networking through CNI for the kubelet (`Arc<dyn PodNetwork>`).
#[derive(Debug, Clone)]
pub struct CniPodNetwork {
    network: Arc<CniNetwork>,
    ipam_data_dir: std::path::PathBuf,
}

impl CniPodNetwork {
    /// CNI with `config`'s directories; the default network keeps host-local's
    /// allocations under `<data_dir>/networks`.
    pub fn new(config: CniNetworkConfig) -> Self {
        CniPodNetwork {
            ipam_data_dir: config.data_dir.join("networks"),
            network: Arc::new(CniNetwork::new(config)),
        }
    }

    /// Sets the node's pod CIDRs (`spec.podCIDRs`) for the default configuration, written
    /// when the configuration directory holds none.
    pub fn set_pod_cidrs(&self, pod_cidrs: Vec<String>) {
        let mut default = DefaultNetwork::new(pod_cidrs);
        default.ipam_data_dir = Some(self.ipam_data_dir.clone());
        self.network.set_default_network(default);
    }

    /// The underlying network.
    pub fn network(&self) -> &Arc<CniNetwork> {
        &self.network
    }
}

fn pod_ref(req: &PodNetworkRequest) -> PodRef {
    PodRef {
        namespace: req.namespace.clone(),
        name: req.name.clone(),
        uid: req.uid.clone(),
        sandbox_id: req.sandbox_id.clone(),
        netns: req.netns_path.display().to_string(),
    }
}

fn to_network_error(e: CniError) -> NetworkError {
    match e {
        CniError::NoConfig(_) => NetworkError::NotReady(format!("cni config uninitialized: {e}")),
        CniError::Plugin { .. } | CniError::PluginNotFound { .. } => {
            NetworkError::Plugin(e.to_string())
        }
        other => NetworkError::Other(Box::new(other)),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CniError> + Send + 'static,
) -> Result<T, NetworkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetworkError::Other(Box::new(e)))?
        .map_err(to_network_error)
}

impl PodNetwork for CniPodNetwork {
    fn setup<'a>(
        &'a self,
        pod: &'a PodNetworkRequest,
    ) -> BoxFuture<'a, Result<Vec<IpAddr>, NetworkError>> {
        let network = self.network.clone();
        let pod = pod_ref(pod);
        Box::pin(blocking(move || {
            network.add(&pod, &[]).map(|r| r.pod_ips())
        }))
    }

    fn teardown<'a>(
        &'a self,
        pod: &'a PodNetworkRequest,
    ) -> BoxFuture<'a, Result<(), NetworkError>> {
        let network = self.network.clone();
        let pod = pod_ref(pod);
        Box::pin(blocking(move || network.del(&pod)))
    }

    fn status(&self) -> Result<(), NetworkError> {
        self.network
            .network_config()
            .map(|_| ())
            .map_err(to_network_error)
    }
}
