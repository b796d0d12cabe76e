//! Killing pods (upstream `killPod`/`killContainer`): preStop exec hooks, SIGTERM, the grace
//! period, SIGKILL; then the final status, the pod object's deletion with
//! `gracePeriodSeconds=0`, and removal of the pod's containers, cgroup and logs.

use std::time::{Duration, Instant};

use bramble_runtime::{ContainerRuntime, ExecConfig};
use futures::future::join_all;
use tracing::{info, warn};

use crate::container_config::pod_log_dir;
use crate::events::{reason, EventType::Normal};
use crate::pod_spec::{containers, grace_seconds, init_containers, pod_ids};
use crate::pod_worker::PodWorker;
use crate::runtime_pod::{container_name, is_running, RuntimePod};

/// Upstream's floor for the time left after a preStop hook.
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);

impl<R: ContainerRuntime + 'static> PodWorker<R> {
    /// The preStop exec command of container `name`, if any.
    fn pre_stop(&self, name: &str) -> Option<Vec<String>> {
        init_containers(&self.pod)
            .iter()
            .chain(containers(&self.pod))
            .find(|c| c.name == name)?
            .lifecycle
            .as_ref()?
            .pre_stop
            .as_ref()?
            .exec
            .as_ref()?
            .command
            .clone()
    }

    /// Kills every running container of the pod in parallel, each with `grace`.
    async fn kill_containers(&self, rp: &RuntimePod, grace: Duration) {
        let rt = &self.ctx.runtime;
        let kills = rp.containers.iter().filter(|c| is_running(c)).map(|c| {
            let id = c.meta.id.clone();
            let name = container_name(c).unwrap_or_default().to_string();
            let hook = self.pre_stop(&name);
            let killing = format!("Stopping container {name}");
            self.ctx
                .events
                .event(&self.pod, Some(&name), Normal, reason::KILLING, killing);
            async move {
                let start = Instant::now();
                let mut left = grace;
                if let Some(command) = hook.filter(|_| !grace.is_zero()) {
                    let cfg = ExecConfig {
                        command,
                        ..Default::default()
                    };
                    match rt.exec_sync(&id, &cfg, grace).await {
                        Ok(out) if out.exit_code != 0 => {
                            warn!(container = %name, code = out.exit_code, "preStop hook failed")
                        }
                        Err(e) => warn!(container = %name, error = %e, "preStop hook failed"),
                        Ok(_) => {}
                    }
                    left = grace
                        .saturating_sub(start.elapsed())
                        .max(MIN_GRACE_AFTER_HOOK);
                }
                info!(container = %name, grace_seconds = left.as_secs(), "killing container");
                if let Err(e) = rt.stop_container(&id, left).await {
                    warn!(container = %name, error = %e, "stopping container");
                }
            }
        });
        join_all(kills).await;
    }

    /// Terminates the pod: kills it; when its object is being deleted, reports the final
    /// status and has the status manager delete it; once the object is gone, removes its
    /// containers, sandbox, cgroup and logs.
    pub(crate) async fn terminate(&mut self) {
        let (ns, name, uid) = pod_ids(&self.pod);
        let grace = crate::eviction::eviction_of(&self.ctx.evictions, &self.pod)
            .map_or_else(|| grace_seconds(&self.pod), |e| e.grace_seconds);
        let grace = Duration::from_secs(grace.max(0) as u64);
        let rp = match self.ctx.runtime_pod(&uid).await {
            Ok(rp) => rp,
            Err(e) => {
                warn!(error = %e, "listing containers for termination");
                RuntimePod::default()
            }
        };
        // Upstream's SyncTerminatingPod: liveness and startup stop before the kill, every
        // probe once the containers are dead (a deleted pod's worker never publishes a
        // status again, so its probes would otherwise run on forever).
        self.ctx.prober.stop_liveness_and_startup(&uid);
        self.kill_containers(&rp, grace).await;
        for sb in rp.sandboxes.iter().filter(|s| is_running(s)) {
            let id = sb.meta.id.clone();
            self.stop_sandbox(&id).await;
        }
        self.ctx.prober.remove_pod(&uid);
        if !self.deleted {
            let rp = self.ctx.runtime_pod(&uid).await.unwrap_or_default();
            self.waiting.clear();
            self.publish(&rp, false, true, true);
            return;
        }
        self.ctx.status.forget(&uid);
        self.ctx.evictions.forget(&uid);
        for sb in &rp.sandboxes {
            if let Err(e) = self.ctx.runtime.remove_pod_sandbox(&sb.meta.id).await {
                warn!(sandbox = %sb.meta.id, error = %e, "removing sandbox");
            }
        }
        for c in &rp.containers {
            let _ = self.ctx.runtime.remove_container(&c.meta.id).await;
        }
        let cgroup = self.ctx.cgroups.pod_path(self.qos, &uid);
        if let Err(e) = self.ctx.cgroups.remove(&cgroup) {
            warn!(error = %e, "removing pod cgroup");
        }
        self.volumes.teardown();
        let logs = pod_log_dir(&self.ctx.node.data_dir, &ns, &name, &uid);
        let _ = std::fs::remove_dir_all(logs);
        info!("pod removed");
    }

    /// Removes dead containers of `name` older than the newest one (upstream keeps one dead
    /// container per container name for `lastState` and `logs --previous`).
    pub(crate) async fn prune_dead(&self, rp: &RuntimePod, name: &str) {
        for old in rp.named(name).skip(1).filter(|c| !is_running(c)) {
            if let Err(e) = self.ctx.runtime.remove_container(&old.meta.id).await {
                warn!(container = %name, id = %old.meta.id, error = %e, "removing old container");
            }
        }
    }
}
