//! The pod worker's side of probing: telling the prober which containers run, reading the
//! verdicts for status, and killing containers whose liveness or startup probe failed
//! (upstream `SyncPod`'s "failed liveness probe, will be restarted").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bramble_runtime::{ContainerRuntime, ContainerStatusKind};
use tracing::{info, warn};

use super::{PodProbeTarget, PodProbes, ProbeKind, RunningContainer};
use crate::events::{reason, EventType};
use crate::pod_spec::{containers, grace_seconds, host_network, pod_ids};
use crate::pod_worker::PodWorker;
use crate::runtime_pod::RuntimePod;

impl<R: ContainerRuntime + 'static> PodWorker<R> {
    /// Registers the pod's running app containers with the prober (or drops its probes when
    /// the pod is terminating) and returns the current verdicts.
    pub(crate) fn probe_results(&self, rp: &RuntimePod, terminating: bool) -> PodProbes {
        let (_, _, uid) = pod_ids(&self.pod);
        let prober = &self.ctx.prober;
        if terminating || self.deleted || self.pod.metadata.deletion_timestamp.is_some() {
            prober.remove_pod(&uid);
            return PodProbes::default();
        }
        let running: Vec<RunningContainer> = containers(&self.pod)
            .iter()
            .filter(|c| {
                c.liveness_probe.is_some()
                    || c.readiness_probe.is_some()
                    || c.startup_probe.is_some()
            })
            .filter_map(|c| {
                let cur = rp.named(&c.name).next()?;
                (cur.status == ContainerStatusKind::Running).then(|| RunningContainer {
                    spec: Arc::new(c.clone()),
                    id: cur.meta.id.clone(),
                    started_at: cur.started_at.clone(),
                })
            })
            .collect();
        let netns = if host_network(&self.pod) {
            None
        } else {
            rp.sandbox()
                .and_then(|s| s.pid)
                .map(|pid| PathBuf::from(format!("/proc/{pid}/ns/net")))
        };
        prober.update_pod(PodProbeTarget {
            pod: self.pod.clone(),
            uid: uid.clone(),
            netns,
            pod_ip: self.pod_ips.first().copied(),
            containers: running,
        });
        prober.results(&uid)
    }

    /// Kills running containers whose liveness or startup probe failed, with a `Killing`
    /// event; returns whether any was killed (the caller restarts them per policy).
    pub(crate) async fn kill_unhealthy(&mut self, rp: &RuntimePod) -> bool {
        let (_, _, uid) = pod_ids(&self.pod);
        let mut killed = false;
        for u in self.ctx.prober.unhealthy(&uid) {
            let running = rp
                .containers
                .iter()
                .any(|c| c.meta.id == u.id && c.status == ContainerStatusKind::Running);
            if !running {
                continue;
            }
            let which = match u.kind {
                ProbeKind::Startup => "startup",
                _ => "liveness",
            };
            let message = format!(
                "Container {} failed {which} probe, will be restarted",
                u.name
            );
            info!(container = %u.name, "{message}");
            self.ctx.events.event(
                &self.pod,
                Some(&u.name),
                EventType::Normal,
                reason::KILLING,
                message,
            );
            let grace = u.grace_seconds.unwrap_or_else(|| grace_seconds(&self.pod));
            let grace = Duration::from_secs(grace.max(0) as u64);
            if let Err(e) = self.ctx.runtime.stop_container(&u.id, grace).await {
                warn!(container = %u.name, error = %e, "killing unhealthy container");
            }
            killed = true;
        }
        killed
    }
}
