//! The pod worker's side of volumes and security settings: set volumes up before the
//! sandbox (failures keep the pod in ContainerCreating with a FailedMount event), add each
//! container's mounts and security settings to its runtime config, and tear volumes down
//! with the pod.

use bramble_runtime::{ContainerConfig, ContainerRuntime};
use k8s_openapi::api::core::v1::Container;
use tracing::warn;

use super::NodeFacts;
use crate::events::EventType;
use crate::pod_spec::{containers, init_containers};
use crate::pod_worker::PodWorker;
use crate::security_context::{resolve, SecurityInput};
use crate::status_gen::Waiting;

/// How soon a failed volume set-up is retried.
const MOUNT_RETRY: std::time::Duration = std::time::Duration::from_secs(2);
/// Prefix of the waiting messages volume failures leave.
const FAILED_MOUNT_PREFIX: &str = "MountVolume.SetUp failed";

impl<R: ContainerRuntime + 'static> PodWorker<R> {
    /// Sets up (or refreshes) the pod's volumes; `false` when one failed (the pod's
    /// containers then wait in ContainerCreating / PodInitializing).
    pub(crate) async fn sync_volumes(&mut self) -> bool {
        let node = NodeFacts {
            memory: self.ctx.node.memory_capacity,
            cpu_milli: std::thread::available_parallelism().map_or(1, |n| n.get() as u64) * 1000,
        };
        let pod = self.pod.clone();
        match self.volumes.sync(&self.ctx.client, &pod, node).await {
            Ok(()) => {
                self.waiting
                    .retain(|_, w| !w.message.starts_with(FAILED_MOUNT_PREFIX));
                if let Some(d) = self.volumes.resync_after(&pod) {
                    self.requeue_in(d);
                }
                true
            }
            Err(e) => {
                let message = e.to_string();
                warn!(volume = %e.volume, error = %message, "volume set-up failed");
                self.ctx.events.event(
                    &pod,
                    None,
                    EventType::Warning,
                    "FailedMount",
                    message.clone(),
                );
                for (c, reason) in init_containers(&pod)
                    .iter()
                    .map(|c| (c, "PodInitializing"))
                    .chain(containers(&pod).iter().map(|c| (c, "ContainerCreating")))
                {
                    self.waiting.insert(
                        c.name.clone(),
                        Waiting {
                            reason: reason.into(),
                            message: message.clone(),
                        },
                    );
                }
                self.requeue_in(MOUNT_RETRY);
                false
            }
        }
    }

    /// Adds `c`'s volume mounts and security settings to `cfg`; an `Err` is the container's
    /// waiting reason and message.
    pub(crate) fn add_mounts_and_security(
        &self,
        c: &Container,
        image_user: Option<&str>,
        cfg: &mut ContainerConfig,
    ) -> Result<(), (&'static str, String)> {
        cfg.mounts = self
            .volumes
            .mounts(c, &cfg.env)
            .map_err(|m| ("CreateContainerConfigError", m))?;
        let seccomp_root = self.ctx.node.data_dir.join("seccomp");
        cfg.security = resolve(&SecurityInput {
            pod: &self.pod,
            container: c,
            image_user,
            layers: &cfg.image_layers,
            seccomp_root: &seccomp_root,
        })
        .map_err(|e| (e.reason, e.message))?;
        Ok(())
    }
}
