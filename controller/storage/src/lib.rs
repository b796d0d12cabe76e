//! Bramble's built-in storage: a `local-path` StorageClass (the default class, as k3s's) and
//! its provisioner. Claims of that class wait for their first consumer
//! (`WaitForFirstConsumer`): once a pod using the claim is on a node (or the claim carries
//! `volume.kubernetes.io/selected-node`), a hostPath PersistentVolume under the storage
//! root on that node is created with node affinity to it and bound to the claim. The node's
//! kubelet makes the directory when it mounts the volume (`DirectoryOrCreate`). Claims
//! without a class get the default class (upstream's retroactive default assignment).
//! Volumes of deleted claims are deleted (reclaim policy `Delete`).

pub mod controller;
pub mod error;
pub mod provision;

pub use controller::{run, StorageConfig};
pub use error::Error;

/// The StorageClass name.
pub const CLASS_NAME: &str = "local-path";
/// Its provisioner.
pub const PROVISIONER: &str = "bramble.dev/local-path";
/// Where volumes live on nodes unless configured (k3s: `/var/lib/rancher/k3s/storage`).
pub const DEFAULT_STORAGE_ROOT: &str = "/var/lib/bramble/storage";

/// Spawns the provisioner on the current tokio runtime; it logs and restarts after an error.
pub fn spawn(client: kube::Client, cfg: StorageConfig) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(client.clone(), cfg.clone()).await {
                tracing::error!(error = %e, "local-path provisioner stopped; restarting");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}
