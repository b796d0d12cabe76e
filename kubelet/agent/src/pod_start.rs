//! Starting one container of a pod (upstream `startContainer`): ensure the image, build the
//! config, create and start it; failures become the container's waiting reason or a
//! `StartError` attempt.

use std::time::Duration;

use bramble_images::{Keyring, PullPolicy};
use bramble_runtime::ContainerRuntime;
use k8s_openapi::api::core::v1::{Container, Secret};
use kube::Api;
use tracing::{debug, info, warn};

use crate::container_config::{build, BuildInput};
use crate::events::{
    reason,
    EventType::{Normal, Warning},
};
use crate::node_status::now_time;
use crate::pod_spec::pod_ids;
use crate::pod_worker::PodWorker;
use crate::status_gen::{StartFailure, Waiting};

/// How soon a container waiting on an image is retried (the image manager's own back-off
/// decides whether that retry pulls).
const IMAGE_RETRY: Duration = Duration::from_secs(2);
/// How soon a container with a config error is retried.
const CONFIG_RETRY: Duration = Duration::from_secs(10);

impl<R: ContainerRuntime + 'static> PodWorker<R> {
    /// Credentials from the pod's `imagePullSecrets` (missing secrets are skipped, as
    /// upstream does).
    async fn keyring(&mut self) -> Keyring {
        if let Some(k) = &self.keyring {
            return k.clone();
        }
        let mut keyring = Keyring::default();
        let (ns, _, _) = pod_ids(&self.pod);
        let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &ns);
        let refs = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default();
        for r in refs {
            match secrets.get_opt(&r.name).await {
                Ok(Some(s)) => {
                    let data = s.data.unwrap_or_default();
                    if let Some(j) = data.get(".dockerconfigjson") {
                        if let Err(e) = keyring.add_docker_config_json(&j.0) {
                            warn!(secret = %r.name, error = %e, "bad pull secret");
                        }
                    } else if let Some(j) = data.get(".dockercfg") {
                        if let Err(e) = keyring.add_dockercfg(&j.0) {
                            warn!(secret = %r.name, error = %e, "bad pull secret");
                        }
                    }
                }
                Ok(None) => warn!(secret = %r.name, "pull secret not found"),
                Err(e) => warn!(secret = %r.name, error = %e, "reading pull secret"),
            }
        }
        self.keyring = Some(keyring.clone());
        keyring
    }

    /// Records the image manager's events on container `name`.
    fn image_events(&self, name: &str, evs: &[bramble_images::ImageEvent]) {
        for e in evs {
            let kind = match e.event_type {
                bramble_images::manager::EventType::Normal => Normal,
                bramble_images::manager::EventType::Warning => Warning,
            };
            self.ctx
                .events
                .event(&self.pod, Some(name), kind, e.reason, e.message.clone());
        }
    }

    /// Upstream's `Failed` event ("Error: ...") for a container that could not start.
    fn failed_event(&self, name: &str, error: &str) {
        let msg = format!("Error: {error}");
        self.ctx
            .events
            .event(&self.pod, Some(name), Warning, reason::FAILED, msg);
    }

    fn wait(&mut self, name: &str, reason: &str, message: String, retry: Duration) {
        self.waiting.insert(
            name.to_string(),
            Waiting {
                reason: reason.to_string(),
                message,
            },
        );
        self.requeue_in(retry);
    }

    /// Starts attempt `attempt` of `c` in `sandbox_id`. Failures are recorded on the worker
    /// (waiting reason, start failure) rather than returned.
    pub(crate) async fn start_container(
        &mut self,
        c: &Container,
        init: bool,
        attempt: u32,
        sandbox_id: &str,
    ) {
        let name = c.name.clone();
        let image = c.image.clone().unwrap_or_default();
        let policy = c
            .image_pull_policy
            .as_deref()
            .and_then(PullPolicy::from_api);
        let keyring = self.keyring().await;
        let (_, _, uid) = pod_ids(&self.pod);
        let ensured = match self
            .ctx
            .images
            .ensure_image_exists(&uid, &image, policy, &keyring)
            .await
        {
            Ok(e) => {
                self.image_events(&name, &e.events);
                e
            }
            Err(f) => {
                self.image_events(&name, &f.events);
                self.failed_event(&name, f.reason);
                if f.reason == "ImagePullBackOff" {
                    debug!(container = %name, message = %f.message, "image pull back-off");
                } else {
                    info!(container = %name, reason = f.reason, message = %f.message, "image not available");
                }
                self.wait(&name, f.reason, f.message, IMAGE_RETRY);
                return;
            }
        };
        let store = self.ctx.images.store();
        let layers = match store.layer_dirs(&image) {
            Ok(mut l) => {
                l.reverse();
                l
            }
            Err(e) => {
                self.failed_event(&name, &e.to_string());
                self.wait(&name, "CreateContainerError", e.to_string(), CONFIG_RETRY);
                return;
            }
        };
        let image_cfg = match store.image_config(&image) {
            Ok(c) => c,
            Err(e) => {
                self.failed_event(&name, &e.to_string());
                self.wait(&name, "CreateContainerError", e.to_string(), CONFIG_RETRY);
                return;
            }
        };
        let image_id = ensured.record.image_id();
        let qos = self.qos;
        let env = match self.container_env(c).await {
            Ok(env) => env,
            Err(msg) => {
                self.failed_event(&name, &msg);
                self.wait(&name, "CreateContainerConfigError", msg, CONFIG_RETRY);
                return;
            }
        };
        let cfg = build(&BuildInput {
            pod: &self.pod,
            container: c,
            init,
            image: &image_cfg,
            image_id: &image_id,
            layers,
            attempt,
            qos,
            env: &env,
            node: &self.ctx.node,
        });
        let mut cfg = match cfg {
            Ok(cfg) => cfg,
            Err(msg) => {
                self.failed_event(&name, &msg);
                self.wait(&name, "CreateContainerConfigError", msg, CONFIG_RETRY);
                return;
            }
        };
        if let Err((reason, msg)) =
            self.add_mounts_and_security(c, image_cfg.user.as_deref(), &mut cfg)
        {
            self.wait(&name, reason, msg, CONFIG_RETRY);
            return;
        }
        if let Some(dir) = cfg.log_path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                self.wait(
                    &name,
                    "CreateContainerError",
                    format!("{}: {e}", dir.display()),
                    CONFIG_RETRY,
                );
                return;
            }
        }
        let _ = store.touch(&image);
        let rt = &self.ctx.runtime;
        let events = &self.ctx.events;
        let result = match rt.create_container(sandbox_id, &cfg).await {
            Ok(id) => {
                let created = format!("Created container: {name}");
                events.event(&self.pod, Some(&name), Normal, reason::CREATED, created);
                match rt.start_container(&id).await {
                    Ok(()) => {
                        let started = format!("Started container {name}");
                        events.event(&self.pod, Some(&name), Normal, reason::STARTED, started);
                        Ok(id)
                    }
                    Err(e) => {
                        let _ = rt.remove_container(&id).await;
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(id) => {
                debug!(container = %name, %id, attempt, "container started");
                self.waiting.remove(&name);
            }
            Err(e) => {
                let message = e.to_string();
                warn!(container = %name, error = %message, "starting container failed");
                self.failed_event(&name, &message);
                let at = now_time();
                self.start_failures.insert(
                    name.clone(),
                    StartFailure {
                        attempt,
                        message: message.clone(),
                        at,
                    },
                );
                self.waiting.insert(
                    name,
                    Waiting {
                        reason: "RunContainerError".into(),
                        message,
                    },
                );
                self.requeue_in(Duration::from_millis(100));
            }
        }
    }
}
