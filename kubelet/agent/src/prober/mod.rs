//! The prober manager (upstream `prober_manager.go` + `worker.go`): one task for every
//! liveness, readiness and startup probe of the node. Probes are entries of a timer heap
//! (not a thread or task per probe); each due probe runs as a short future and its outcome
//! updates the container's result with upstream's thresholds. A changed result wakes the
//! pod's worker (through the PLEG's relist channel), which reads the results when it
//! generates status (`ready`, `started`, ContainersReady, Ready) and kills containers whose
//! liveness or startup probe failed.

mod grpc;
mod http;
mod http_wire;
mod pod;
mod run;
mod spec;
mod worker;

use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bramble_runtime::ContainerRuntime;
use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tracing::{debug, info};

pub use run::{run_probe, ProbeTarget};
pub use spec::{ProbeKind, ProbeParams};
use worker::{Due, Key, Worker};

use crate::events::{reason, EventRecorder, EventType};
use crate::pod_spec::format_pod;

/// A probe's (or a container's) current verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// Not probed yet (a startup probe before its first verdict).
    Unknown,
    /// Healthy.
    Success,
    /// Unhealthy.
    Failure,
}

/// One running container as the pod worker sees it.
#[derive(Debug, Clone)]
pub struct RunningContainer {
    /// Its spec (probes, ports, env), shared with every run of its probes.
    pub spec: Arc<Container>,
    /// The runtime's container id.
    pub id: String,
    /// When it started (RFC 3339); initial delays count from here.
    pub started_at: Option<String>,
}

/// What the prober needs about one pod.
#[derive(Debug, Clone)]
pub struct PodProbeTarget {
    /// The pod (events name it).
    pub pod: Arc<Pod>,
    /// The pod's uid.
    pub uid: String,
    /// The pod's network namespace; `None` for host-network pods.
    pub netns: Option<PathBuf>,
    /// The pod's IP, where httpGet/tcpSocket/grpc connect when no host is given.
    pub pod_ip: Option<IpAddr>,
    /// Its running app containers.
    pub containers: Vec<RunningContainer>,
}

/// A container's probe verdicts (absent kinds have no probe).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerProbes {
    /// The container these results belong to.
    pub container_id: String,
    /// Liveness result.
    pub liveness: Option<ProbeResult>,
    /// Readiness result.
    pub readiness: Option<ProbeResult>,
    /// Startup result.
    pub startup: Option<ProbeResult>,
}

impl ContainerProbes {
    /// upstream `started`: no startup probe, or it succeeded.
    pub fn started(&self) -> bool {
        self.startup.is_none_or(|r| r == ProbeResult::Success)
    }

    /// upstream `ready`: started, and no readiness probe or it succeeded.
    pub fn ready(&self) -> bool {
        self.started() && self.readiness.is_none_or(|r| r == ProbeResult::Success)
    }
}

/// Probe verdicts of one pod's containers, by container name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodProbes(pub HashMap<String, ContainerProbes>);

impl PodProbes {
    /// `(started, ready)` of the running container `id` named `name` whose spec is `spec`:
    /// a container with probes the prober has no verdict for yet is started only without a
    /// startup probe and ready only without startup or readiness probes.
    pub fn started_ready(&self, spec: &Container, id: &str) -> (bool, bool) {
        match self.0.get(&spec.name).filter(|p| p.container_id == id) {
            Some(p) => (p.started(), p.ready()),
            None => {
                let started = spec.startup_probe.is_none();
                (started, started && spec.readiness_probe.is_none())
            }
        }
    }
}

/// A container whose liveness or startup probe failed: the pod worker kills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    /// Container name.
    pub name: String,
    /// Container id.
    pub id: String,
    /// Which probe failed.
    pub kind: ProbeKind,
    /// The probe's `terminationGracePeriodSeconds`, if set.
    pub grace_seconds: Option<i64>,
}

/// Receives what probes report, for the event recorder.
pub trait ProbeEvents: Send + Sync {
    /// A probe did not succeed (upstream `Unhealthy` Warning event).
    fn unhealthy(&self, pod: &PodProbeTarget, container: &str, kind: ProbeKind, message: &str);
}

impl ProbeEvents for EventRecorder {
    fn unhealthy(&self, pod: &PodProbeTarget, container: &str, kind: ProbeKind, message: &str) {
        info!(pod = %format_pod(&pod.pod), %container, "{} probe failed: {message}", kind.label());
        self.event(
            &pod.pod,
            Some(container),
            EventType::Warning,
            reason::UNHEALTHY,
            format!("{} probe failed: {message}", kind.label()),
        );
    }
}

pub(crate) struct Inner {
    workers: HashMap<Key, Worker>,
    heap: BinaryHeap<Due>,
    pods: HashMap<String, Arc<PodProbeTarget>>,
    next_generation: u64,
    /// The origin of the whole-second grid repeated probes run on ([`worker::on_grid`]).
    epoch: Instant,
}

/// The node's prober. Cheap to clone.
pub struct ProberManager<R> {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    runtime: Arc<R>,
    events: Arc<dyn ProbeEvents>,
    wake_tx: mpsc::UnboundedSender<String>,
    wake_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl<R> Clone for ProberManager<R> {
    fn clone(&self) -> Self {
        // The wake receiver belongs to the original; clones only send.
        ProberManager {
            inner: self.inner.clone(),
            notify: self.notify.clone(),
            runtime: self.runtime.clone(),
            events: self.events.clone(),
            wake_tx: self.wake_tx.clone(),
            wake_rx: Mutex::new(None),
        }
    }
}

impl<R: ContainerRuntime + 'static> ProberManager<R> {
    /// Starts the timer task (needs a tokio runtime).
    pub fn start(runtime: Arc<R>, events: Arc<dyn ProbeEvents>) -> Self {
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        let m = ProberManager {
            inner: Arc::new(Mutex::new(Inner {
                workers: HashMap::new(),
                heap: BinaryHeap::new(),
                pods: HashMap::new(),
                next_generation: 0,
                epoch: Instant::now(),
            })),
            notify: Arc::new(Notify::new()),
            runtime,
            events,
            wake_tx,
            wake_rx: Mutex::new(Some(wake_rx)),
        };
        tokio::spawn(m.clone().run());
        m
    }

    /// Forwards "this pod's probe results changed" to `relist` (the pod workers' wake-up
    /// channel) until it closes. Only the manager made by [`ProberManager::start`] forwards.
    pub async fn forward_wakeups(&self, relist: mpsc::Sender<Vec<String>>) {
        let rx = self.wake_rx.lock().expect("prober lock").take();
        let Some(mut rx) = rx else { return };
        while let Some(uid) = rx.recv().await {
            let mut uids = vec![uid];
            while let Ok(u) = rx.try_recv() {
                if !uids.contains(&u) {
                    uids.push(u);
                }
            }
            if relist.send(uids).await.is_err() {
                return;
            }
        }
    }

    /// Makes the probes of `pod` match its running containers: new containers get fresh
    /// probes (results reset, initial delays from their start), gone ones lose theirs.
    pub fn update_pod(&self, pod: PodProbeTarget) {
        let now = Instant::now();
        let pod = Arc::new(pod);
        let mut inner = self.inner.lock().expect("prober lock");
        let mut wanted: Vec<Key> = Vec::new();
        for c in &pod.containers {
            for kind in [
                ProbeKind::Startup,
                ProbeKind::Liveness,
                ProbeKind::Readiness,
            ] {
                let Some(probe) = kind.of(&c.spec) else {
                    continue;
                };
                let params = ProbeParams::from_probe(kind, probe);
                let key = Key {
                    uid: pod.uid.clone(),
                    container: c.spec.name.clone(),
                    kind,
                };
                wanted.push(key.clone());
                let same = inner
                    .workers
                    .get(&key)
                    .is_some_and(|w| w.container_id == c.id && *w.probe == *probe);
                if same {
                    continue;
                }
                inner.next_generation += 1;
                let generation = inner.next_generation;
                let first = now + params.initial_delay_from(c.started_at.as_deref());
                let w = Worker::new(
                    kind,
                    Arc::new(probe.clone()),
                    params,
                    c.id.clone(),
                    generation,
                );
                debug!(pod = %format_pod(&pod.pod), container = %c.spec.name, kind = kind.label(), "probe registered");
                inner.workers.insert(key.clone(), w);
                inner.heap.push(Due {
                    at: first,
                    generation,
                    key,
                });
            }
        }
        inner
            .workers
            .retain(|k, _| k.uid != pod.uid || wanted.contains(k));
        if wanted.is_empty() {
            inner.pods.remove(&pod.uid);
        } else {
            inner.pods.insert(pod.uid.clone(), pod);
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Stops a terminating pod's liveness and startup probes (upstream
    /// `StopLivenessAndStartup`): its containers are being killed anyway; readiness goes on
    /// until they are.
    pub fn stop_liveness_and_startup(&self, uid: &str) {
        let mut inner = self.inner.lock().expect("prober lock");
        inner
            .workers
            .retain(|k, _| k.uid != uid || k.kind == ProbeKind::Readiness);
    }

    /// Drops every probe of a pod.
    pub fn remove_pod(&self, uid: &str) {
        let mut inner = self.inner.lock().expect("prober lock");
        inner.workers.retain(|k, _| k.uid != uid);
        inner.pods.remove(uid);
    }

    /// The pod's current verdicts.
    pub fn results(&self, uid: &str) -> PodProbes {
        let inner = self.inner.lock().expect("prober lock");
        let mut out: HashMap<String, ContainerProbes> = HashMap::new();
        for (k, w) in inner.workers.iter().filter(|(k, _)| k.uid == uid) {
            let e = out.entry(k.container.clone()).or_default();
            e.container_id = w.container_id.clone();
            let slot = match k.kind {
                ProbeKind::Liveness => &mut e.liveness,
                ProbeKind::Readiness => &mut e.readiness,
                ProbeKind::Startup => &mut e.startup,
            };
            *slot = Some(w.result);
        }
        PodProbes(out)
    }

    /// Containers of the pod whose liveness or startup probe has failed.
    pub fn unhealthy(&self, uid: &str) -> Vec<Unhealthy> {
        let inner = self.inner.lock().expect("prober lock");
        let mut out: Vec<Unhealthy> = inner
            .workers
            .iter()
            .filter(|(k, w)| {
                k.uid == uid && k.kind != ProbeKind::Readiness && w.result == ProbeResult::Failure
            })
            .map(|(k, w)| Unhealthy {
                name: k.container.clone(),
                id: w.container_id.clone(),
                kind: k.kind,
                grace_seconds: w.probe.termination_grace_period_seconds,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.id == b.id);
        out
    }

    /// The timer loop: runs due probes, sleeps until the next one or a registration.
    async fn run(self) {
        loop {
            let now = Instant::now();
            let (due, next) = {
                let mut inner = self.inner.lock().expect("prober lock");
                let mut due = Vec::new();
                while inner.heap.peek().is_some_and(|d| d.at <= now) {
                    let d = inner.heap.pop().expect("peeked");
                    due.push(d);
                }
                let mut runs = Vec::new();
                for d in due {
                    if let Some(run) = worker::prepare(&mut inner, d, now) {
                        runs.push(run);
                    }
                }
                // After `prepare` has put the next runs of the due probes on the heap.
                let next = inner.heap.peek().map(|d| d.at);
                (runs, next)
            };
            for run in due {
                let this = self.clone();
                tokio::spawn(async move {
                    let (result, message) =
                        run_probe(this.runtime.as_ref(), &run.probe, &run.target).await;
                    this.complete(run, result, message);
                });
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.notify.notified() => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }

    fn complete(&self, run: worker::Run, result: ProbeResult, message: String) {
        let mut inner = self.inner.lock().expect("prober lock");
        let Some(pod) = inner.pods.get(&run.key.uid).cloned() else {
            return;
        };
        let outcome = worker::record(&mut inner, &run, result);
        drop(inner);
        if result != ProbeResult::Success {
            self.events
                .unhealthy(&pod, &run.key.container, run.key.kind, &message);
        }
        if outcome.changed {
            debug!(pod = %format_pod(&pod.pod), container = %run.key.container, kind = run.key.kind.label(), result = ?outcome.result, "probe result changed");
            let _ = self.wake_tx.send(run.key.uid.clone());
        }
        // The timer loop is not woken: the probe's next run was scheduled when it started.
    }
}

#[cfg(test)]
mod tests;
