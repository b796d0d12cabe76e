//! The eviction manager (upstream `eviction_manager.go` `synchronize`): observe, find the
//! thresholds met (soft ones after their grace period), hold the pressure conditions for
//! the transition period, reclaim node-level resources for disk signals (dead containers,
//! unused images), then evict the first ranked pod, one per interval. Evicted pods are
//! killed by their worker (grace 0 for hard thresholds) and reported `Failed`/`Evicted`
//! with upstream's message and an `Evicted` event.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bramble_api::quantity::{Format, Quantity};
use bramble_cgroups::QosClass;
use bramble_runtime::{ContainerKind, ContainerRuntime};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::local_storage::StorageLayout;
use super::ranking::{rank, Candidate};
use super::signals::{Observations, PodCgroupRef, SignalSource};
use super::thresholds::{format_amount, format_quantity, met, with_allocatable, Signal, Threshold};
use super::EvictionConfig;
use crate::events::EventType;
use crate::pod_context::PodContext;
use crate::pod_spec::{containers, grace_seconds, pod_ids, pod_resources, qos_class};
use crate::runtime_pod::{container_name, group, is_running};
use crate::streaming::PodTable;

/// Pressure conditions currently true (`MemoryPressure`, `DiskPressure`, `PIDPressure`),
/// read by the node status manager.
#[derive(Debug, Default)]
pub struct PressureState {
    conditions: RwLock<BTreeSet<&'static str>>,
}

impl PressureState {
    /// Whether `condition` is true.
    pub fn has(&self, condition: &str) -> bool {
        self.conditions
            .read()
            .expect("pressure state")
            .contains(condition)
    }

    /// Replaces the set of true pressure conditions.
    pub fn set(&self, conditions: BTreeSet<&'static str>) {
        *self.conditions.write().expect("pressure state") = conditions;
    }
}

/// One decided eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// The pod status message.
    pub message: String,
    /// Grace period override (seconds) for killing the pod.
    pub grace_seconds: i64,
    /// Whether the status gets the `DisruptionTarget` condition (threshold evictions;
    /// upstream's local storage evictions set none).
    pub disruption_condition: bool,
}

/// Pods being evicted, by uid; pod workers consult it.
#[derive(Debug, Default)]
pub struct Evictions {
    pods: Mutex<HashMap<String, Eviction>>,
}

impl Evictions {
    /// The eviction of pod `uid`, if it is being evicted.
    pub fn get(&self, uid: &str) -> Option<Eviction> {
        self.pods.lock().expect("evictions").get(uid).cloned()
    }

    /// Records an eviction.
    pub fn insert(&self, uid: &str, e: Eviction) {
        self.pods
            .lock()
            .expect("evictions")
            .insert(uid.to_string(), e);
    }

    /// Forgets a pod that is gone.
    pub fn forget(&self, uid: &str) {
        self.pods.lock().expect("evictions").remove(uid);
    }
}

/// Turns a generated pod status into an evicted one: phase `Failed`, reason `Evicted`,
/// the message, and, for threshold evictions, the `DisruptionTarget` condition upstream
/// adds.
pub fn mark_evicted(status: &mut Value, e: &Eviction, now: &str) {
    status["phase"] = json!("Failed");
    status["reason"] = json!("Evicted");
    status["message"] = json!(e.message);
    if !e.disruption_condition {
        return;
    }
    let cond = json!({
        "type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
        "message": e.message, "lastTransitionTime": now,
    });
    match status["conditions"].as_array_mut() {
        Some(cs) => {
            if let Some(old) = cs.iter_mut().find(|c| c["type"] == "DisruptionTarget") {
                let at = old["lastTransitionTime"].clone();
                *old = cond;
                old["lastTransitionTime"] = at;
            } else {
                cs.push(cond);
            }
        }
        None => status["conditions"] = json!([cond]),
    }
}

/// A pod the manager may evict.
#[derive(Debug, Clone)]
pub struct ActivePod {
    /// The pod.
    pub pod: Arc<Pod>,
    /// Its QoS class.
    pub qos: QosClass,
    /// Running app containers: (name, cgroup relative to the cgroup root).
    pub containers: Vec<(String, PathBuf)>,
    /// The newest runtime container of each name, exited ones and init containers too:
    /// (name, container id), whose writable layers and logs count as its local storage.
    pub newest: Vec<(String, String)>,
}

impl ActivePod {
    /// An active pod with its running containers' cgroups.
    pub fn new(pod: Arc<Pod>, containers: Vec<(String, PathBuf)>) -> Self {
        let qos = pod_resources(&pod)
            .map(|r| qos_class(&pod, &r))
            .unwrap_or(QosClass::BestEffort);
        ActivePod {
            pod,
            qos,
            containers,
            newest: Vec::new(),
        }
    }

    fn cgroup_ref(&self) -> PodCgroupRef {
        PodCgroupRef {
            uid: pod_ids(&self.pod).2,
            qos: self.qos,
            containers: self.containers.clone(),
        }
    }
}

fn memory_request(c: &k8s_openapi::api::core::v1::Container) -> u64 {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("memory"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .map(|q| q.value().max(0) as u64)
        .unwrap_or(0)
}

/// The decision logic, free of I/O.
pub struct EvictionCore {
    cfg: EvictionConfig,
    thresholds: Vec<Threshold>,
    first_observed: HashMap<(Signal, bool), Instant>,
    last_observed: HashMap<&'static str, Instant>,
}

/// Upstream's order of signals to act on: memory first, then disk, then pids.
fn signal_order(s: Signal) -> u8 {
    match s {
        Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => 0,
        Signal::PidAvailable => 2,
        _ => 1,
    }
}

impl EvictionCore {
    /// Logic for `cfg` (the allocatable memory threshold derived as upstream).
    pub fn new(cfg: EvictionConfig) -> Self {
        EvictionCore {
            thresholds: with_allocatable(&cfg.thresholds),
            cfg,
            first_observed: HashMap::new(),
            last_observed: HashMap::new(),
        }
    }

    /// Records an observation at `now`; returns the thresholds whose grace period has
    /// passed (most urgent first) and the pressure conditions to report.
    pub fn observe(
        &mut self,
        now: Instant,
        obs: &Observations,
    ) -> (Vec<Threshold>, BTreeSet<&'static str>) {
        let met_now: Vec<Threshold> = met(&self.thresholds, &obs.signals)
            .into_iter()
            .cloned()
            .collect();
        let keys: BTreeSet<(Signal, bool)> = met_now.iter().map(|t| (t.signal, t.hard)).collect();
        self.first_observed.retain(|k, _| keys.contains(k));
        for k in &keys {
            self.first_observed.entry(*k).or_insert(now);
        }
        for t in &met_now {
            self.last_observed.insert(t.signal.condition(), now);
        }
        let period = self.cfg.pressure_transition_period;
        let conditions = self
            .last_observed
            .iter()
            .filter(|(_, at)| {
                now.duration_since(**at) < period || (period.is_zero() && **at == now)
            })
            .map(|(c, _)| *c)
            .collect();
        let mut ready: Vec<Threshold> = met_now
            .into_iter()
            .filter(|t| {
                self.first_observed
                    .get(&(t.signal, t.hard))
                    .is_some_and(|at| now.duration_since(*at) >= t.grace_period)
            })
            .collect();
        ready.sort_by_key(|t| (signal_order(t.signal), !t.hard));
        (ready, conditions)
    }

    /// The pod to evict for threshold `t`, with upstream's message and grace period.
    pub fn choose(
        &self,
        t: &Threshold,
        obs: &Observations,
        pods: &[ActivePod],
    ) -> Option<(Arc<Pod>, Eviction)> {
        let requests: Vec<u64> = pods
            .iter()
            .map(|p| containers(&p.pod).iter().map(memory_request).sum())
            .collect();
        let candidates = pods
            .iter()
            .zip(&requests)
            .map(|(p, req)| Candidate {
                pod: &p.pod,
                qos: p.qos,
                memory_request: *req,
                usage: obs
                    .pods
                    .get(&pod_ids(&p.pod).2)
                    .copied()
                    .unwrap_or_default(),
            })
            .collect();
        let victim = rank(t.signal, candidates).into_iter().next()?;
        let pod = pods
            .iter()
            .find(|p| std::ptr::eq(p.pod.as_ref(), victim.pod))?
            .pod
            .clone();
        let observed = obs.signals.get(&t.signal)?;
        let resource = t.signal.resource();
        let mut message = format!(
            "The node was low on resource: {resource}. Threshold quantity: {}, available: {}. ",
            format_amount(t, observed.capacity),
            format_quantity(t.signal, observed.available),
        );
        if resource == "memory" {
            let uid = pod_ids(&pod).2;
            for c in containers(&pod) {
                let Some(usage) = obs.containers.get(&(uid.clone(), c.name.clone())) else {
                    continue;
                };
                let request = memory_request(c);
                if *usage > request {
                    message.push_str(&format!(
                        "Container {} was using {}, request is {}, has larger consumption of {resource}. ",
                        c.name,
                        Quantity::from_int(*usage as i64, Format::BinarySI),
                        Quantity::from_int(request as i64, Format::BinarySI),
                    ));
                }
            }
        }
        let own = grace_seconds(&pod);
        let grace_seconds = if t.hard {
            0
        } else if self.cfg.max_pod_grace_period_seconds > 0 {
            own.min(self.cfg.max_pod_grace_period_seconds)
        } else {
            own
        };
        Some((
            pod,
            Eviction {
                message,
                grace_seconds,
                disruption_condition: true,
            },
        ))
    }
}

/// The running manager.
pub struct EvictionManager<R> {
    core: EvictionCore,
    source: Arc<dyn SignalSource>,
    ctx: Arc<PodContext<R>>,
    pods: Arc<PodTable>,
    images: bramble_images::ImageStore,
    pressure: Arc<PressureState>,
    evictions: Arc<Evictions>,
    wake: mpsc::Sender<Vec<String>>,
    storage: StorageLayout,
}

impl<R: ContainerRuntime + 'static> EvictionManager<R> {
    /// A manager for `cfg` observing `source`, evicting `pods` through their workers (woken
    /// with `wake`, the PLEG's channel), reporting into `pressure`, holding pods to their
    /// local storage limits as measured in `storage`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: EvictionConfig,
        source: Arc<dyn SignalSource>,
        ctx: Arc<PodContext<R>>,
        pods: Arc<PodTable>,
        images: bramble_images::ImageStore,
        pressure: Arc<PressureState>,
        evictions: Arc<Evictions>,
        wake: mpsc::Sender<Vec<String>>,
        storage: StorageLayout,
    ) -> Self {
        EvictionManager {
            core: EvictionCore::new(cfg),
            source,
            ctx,
            pods,
            images,
            pressure,
            evictions,
            wake,
            storage,
        }
    }

    /// Pods that may be evicted: bound here, not finished, not already being evicted.
    async fn active_pods(&self) -> Vec<ActivePod> {
        let by_uid = match self.ctx.runtime.list_containers().await {
            Ok(all) => group(all),
            Err(e) => {
                warn!(error = %e, "listing containers for eviction");
                HashMap::new()
            }
        };
        self.pods
            .all()
            .into_iter()
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
                    && p.metadata.deletion_timestamp.is_none()
                    && self.evictions.get(&pod_ids(p).2).is_none()
            })
            .map(|p| {
                let uid = pod_ids(&p).2;
                let Some(rp) = by_uid.get(&uid) else {
                    return ActivePod::new(p, Vec::new());
                };
                let cgroups = rp
                    .containers
                    .iter()
                    .filter(|c| is_running(c))
                    .filter_map(|c| {
                        Some((container_name(c)?.to_string(), c.meta.cgroup_path.clone()))
                    })
                    .collect();
                let mut active = ActivePod::new(p, cgroups);
                // Newest first: the first of each name.
                for c in &rp.containers {
                    let Some(name) = container_name(c) else {
                        continue;
                    };
                    if !active.newest.iter().any(|(n, _)| n == name) {
                        active.newest.push((name.to_string(), c.meta.id.clone()));
                    }
                }
                active
            })
            .collect()
    }

    async fn observe(&self, pods: &[ActivePod]) -> Observations {
        let refs: Vec<PodCgroupRef> = pods.iter().map(ActivePod::cgroup_ref).collect();
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || source.observe(&refs))
            .await
            .unwrap_or_default()
    }

    /// Dead containers (exited, not the newest of their name, or of pods no longer bound
    /// here) and unused images: upstream's node-level reclaim for disk pressure.
    async fn reclaim_node_level(&self) {
        if let Ok(all) = self.ctx.runtime.list_containers().await {
            let known: BTreeSet<String> = self.pods.all().iter().map(|p| pod_ids(p).2).collect();
            for (uid, rp) in group(all) {
                let mut seen = BTreeSet::new();
                for c in &rp.containers {
                    let name = container_name(c).unwrap_or_default().to_string();
                    let newest = seen.insert(name);
                    if !is_running(c) && (!known.contains(&uid) || !newest) {
                        if let Err(e) = self.ctx.runtime.remove_container(&c.meta.id).await {
                            warn!(id = %c.meta.id, error = %e, "removing dead container");
                        }
                    }
                }
            }
        }
        // Images whose layers a container's root filesystem uses are in use.
        let in_use: BTreeSet<String> = match self.ctx.runtime.list_containers().await {
            Ok(all) => all
                .iter()
                .filter_map(|c| match &c.meta.kind {
                    ContainerKind::App { config, .. } => Some(config.image_layers.iter()),
                    ContainerKind::Sandbox { .. } => None,
                })
                .flatten()
                .filter_map(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect(),
            Err(_) => return,
        };
        let images = self.images.clone();
        // Under disk pressure every unused image goes (upstream's `DeleteUnusedImages`):
        // thresholds 0/0 ask the GC to free as much as it can.
        let result = tokio::task::spawn_blocking(move || {
            images.gc(0, 0, |r| {
                r.layer_digests
                    .iter()
                    .any(|d| in_use.contains(d.strip_prefix("sha256:").unwrap_or(d)))
            })
        })
        .await;
        match result {
            Ok(Ok(report)) => info!(removed = ?report.removed_images, "deleted unused images"),
            Ok(Err(bramble_images::gc::GcError::NotEnoughFreed { freed, .. })) => {
                info!(freed, "deleted unused images")
            }
            Ok(Err(e)) => warn!(error = %e, "image garbage collection"),
            Err(e) => warn!(error = %e, "image garbage collection task"),
        }
    }

    /// Evicts, with no grace period, every pod but critical ones over one of its local storage
    /// limits (upstream's `localStorageEviction`, [`super::local_storage`]); returns their uids.
    async fn local_storage_eviction(&self, pods: &[ActivePod]) -> Vec<String> {
        let layout = self.storage.clone();
        let pods = pods
            .iter()
            .map(|p| (p.pod.clone(), p.newest.clone()))
            .collect::<Vec<_>>();
        let exceeded = tokio::task::spawn_blocking(move || layout.over_limits(pods))
            .await
            .unwrap_or_default();
        let mut evicted = Vec::new();
        for (pod, message) in exceeded {
            let (ns, name, uid) = pod_ids(&pod);
            info!(pod = %format!("{ns}/{name}"), %message, "evicting pod over its local storage limit");
            self.ctx
                .events
                .event(&pod, None, EventType::Warning, "Evicted", message.clone());
            self.evictions.insert(
                &uid,
                Eviction {
                    message,
                    grace_seconds: 0,
                    disruption_condition: false,
                },
            );
            evicted.push(uid);
        }
        if !evicted.is_empty() {
            let _ = self.wake.send(evicted.clone()).await;
        }
        evicted
    }

    /// One pass; returns the uid evicted, if any.
    pub async fn synchronize(&mut self) -> Option<String> {
        let pods = self.active_pods().await;
        let obs = self.observe(&pods).await;
        let (ready, conditions) = self.core.observe(Instant::now(), &obs);
        if conditions.iter().any(|c| !self.pressure.has(c)) {
            info!(?conditions, "node pressure");
        }
        self.pressure.set(conditions);
        // As upstream: after the pressure conditions are updated and before any threshold
        // is acted on; a pass that evicts for local storage evicts for nothing else.
        if let Some(uid) = self.local_storage_eviction(&pods).await.into_iter().next() {
            return Some(uid);
        }
        let t = ready.first()?.clone();
        info!(signal = %t.signal, hard = t.hard, "eviction threshold met");
        let obs = if t.signal.resource() == "memory" {
            obs
        } else {
            self.reclaim_node_level().await;
            let obs = self.observe(&pods).await;
            if !met(std::slice::from_ref(&t), &obs.signals).is_empty() {
                obs
            } else {
                info!(signal = %t.signal, "node-level reclaim relieved the pressure");
                return None;
            }
        };
        let Some((pod, eviction)) = self.core.choose(&t, &obs, &pods) else {
            warn!(signal = %t.signal, "eviction manager: unable to evict any pods from the node");
            return None;
        };
        let (ns, name, uid) = pod_ids(&pod);
        info!(pod = %format!("{ns}/{name}"), message = %eviction.message, "evicting pod");
        self.ctx.events.event(
            &pod,
            None,
            EventType::Warning,
            "Evicted",
            eviction.message.clone(),
        );
        self.evictions.insert(&uid, eviction);
        let _ = self.wake.send(vec![uid.clone()]).await;
        Some(uid)
    }

    /// Runs every monitoring interval until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.synchronize().await;
            tokio::select! {
                _ = tokio::time::sleep(self.core.cfg.monitoring_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
