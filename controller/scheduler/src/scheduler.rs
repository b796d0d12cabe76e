//! The scheduler loop: informer caches of Pods, Nodes and PriorityClasses; each cycle builds a
//! snapshot (bound pods plus pods assumed on a node while their binding is in flight),
//! schedules every due pending pod by priority, binds through `pods/binding`, and reports
//! failures as `PodScheduled=False` plus a FailedScheduling event. Nothing lives only in
//! memory: after a restart the caches rebuild the same picture from the API.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bramble_informer::pod::Pod;
use bramble_informer::SharedInformers;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::core::v1::Pod as ApiPod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::{mpsc, Notify, Semaphore};
use tracing::{debug, info, warn};

use crate::algorithm::schedule_one;
use crate::changes::{forget_changed, PodChanges};
use crate::config::SchedulerConfig;
use crate::error::Error;
use crate::events::{reference, EventRecorder, EventType};
use crate::node_info::{pod_key, NodeInfo, PodInfo};
use crate::preemption::{preempt, Candidate};
use crate::priority::PriorityResolver;
use crate::queue::Backoff;
use crate::report::Reports;
use crate::snapshot::Snapshot;
use crate::triggers::on_change;

struct BindDone {
    uid: String,
    result: Result<(), Error>,
}

/// The scheduler; [`Scheduler::run`] drives it forever.
pub struct Scheduler {
    client: Client,
    cfg: SchedulerConfig,
    recorder: Arc<EventRecorder>,
    informers: SharedInformers,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// A live pod that names `scheduler` (or no scheduler, for the default one).
fn is_ours(pod: &Pod, scheduler: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or("default-scheduler")
        == scheduler
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl Scheduler {
    /// A scheduler talking to the API through `client`, reading the shared `informers`.
    pub fn new(client: Client, cfg: SchedulerConfig, informers: &SharedInformers) -> Scheduler {
        let recorder = Arc::new(EventRecorder::new(client.clone(), &cfg.scheduler_name));
        Scheduler {
            client,
            cfg,
            recorder,
            informers: informers.clone(),
        }
    }

    /// Runs until the process ends; returns only if a cache can never be filled.
    pub async fn run(self) -> Result<(), Error> {
        let wake = Arc::new(Notify::new());
        let gen = Arc::new(AtomicU64::new(0));
        let g = gen.clone();
        let nodes = self.informers.get::<Node>();
        on_change(&nodes, &wake, move |_, _| {
            g.fetch_add(1, Ordering::SeqCst);
        });
        let g = gen.clone();
        let changes = Arc::new(PodChanges::default());
        let ch = changes.clone();
        let scheduler = self.cfg.scheduler_name.clone();
        let pods = self.informers.get::<Pod>();
        on_change(&pods, &wake, move |p: Option<&Pod>, deleted| {
            // Bound pods changing or any pod going away can make room; pending pods' own
            // status updates cannot.
            if p.is_none_or(|p| deleted || node_name(p).is_some()) {
                g.fetch_add(1, Ordering::SeqCst);
            }
            let pending = p.is_some_and(|p| !deleted && is_ours(p, &scheduler));
            ch.record(p, deleted, pending);
        });
        let g = gen.clone();
        let classes = self.informers.get::<PriorityClass>();
        on_change(&classes, &wake, move |_, _| {
            g.fetch_add(1, Ordering::SeqCst);
        });
        for (kind, store) in [
            ("Node", nodes.ready().await),
            ("Pod", pods.ready().await),
            ("PriorityClass", classes.ready().await),
        ] {
            store.map_err(|source| Error::Cache { kind, source })?;
        }
        info!(scheduler = %self.cfg.scheduler_name, "scheduler caches synced");
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<BindDone>();
        let bind_slots = Arc::new(Semaphore::new(self.cfg.bind_concurrency.max(1)));
        let reports = Reports::start(self.client.clone(), self.recorder.clone(), pods.clone());
        let mut backoff = Backoff::default();
        let mut assumed: HashMap<String, (String, PodInfo)> = HashMap::new();
        let mut infos: HashMap<String, (String, PodInfo)> = HashMap::new();
        let mut node_infos: HashMap<String, (String, NodeInfo)> = HashMap::new();
        let mut start = 0usize;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
        // A failed binding puts its pod back among the pending ones.
        let mut bind_failed = false;
        let mut scanned_gen = None;
        loop {
            while let Ok(done) = done_rx.try_recv() {
                bind_failed |= done.result.is_err();
                self.bind_finished(done, &mut assumed, &mut backoff);
            }
            let cycle_gen = gen.load(Ordering::SeqCst);
            let now = Instant::now();
            let changed = changes.take();
            // A pending pod that changed is due unless assumed or backing off (its own
            // PodScheduled=False report, for one).
            let pending_due = changed.iter().any(|c| {
                c.pending
                    && !assumed.contains_key(&c.uid)
                    && backoff.ready(&self.cfg, &c.uid, cycle_gen, now)
            });
            forget_changed(changed, &mut infos, &mut assumed, &mut backoff);
            let look = changes.take_first_or_relisted()
                || pending_due
                || std::mem::take(&mut bind_failed)
                || (scanned_gen != Some(cycle_gen) && backoff.waits_for_change())
                || backoff
                    .next_due(&self.cfg, cycle_gen)
                    .is_some_and(|t| t <= now);
            if look {
                scanned_gen = Some(cycle_gen);
                let all_pods = pods.list();
                if changes.take_relisted() {
                    // A new list carries no per-pod changes: derive every info again.
                    infos.clear();
                    let live: HashSet<&str> = all_pods
                        .iter()
                        .filter_map(|p| p.metadata.uid.as_deref())
                        .collect();
                    assumed.retain(|uid, _| live.contains(uid.as_str()));
                    backoff.retain(|uid| live.contains(uid));
                }
                // Cheap scan first: build a snapshot only when some pending pod is due.
                let mut due = false;
                for pod in &all_pods {
                    let uid = pod.metadata.uid.as_deref().unwrap_or("");
                    due = due
                        || (node_name(pod).is_none()
                            && self.is_ours(pod)
                            && !assumed.contains_key(uid)
                            && backoff.ready(&self.cfg, uid, cycle_gen, now));
                }
                if due {
                    let resolver = PriorityResolver::new(classes.list().iter().map(|c| c.as_ref()));
                    let mut base = Vec::new();
                    for node in nodes.list() {
                        let name = node.name_any();
                        let rv = node.resource_version().unwrap_or_default();
                        match node_infos.get(&name) {
                            Some((v, info)) if *v == rv => base.push(info.clone()),
                            _ => {
                                let info = NodeInfo::new(node.clone());
                                node_infos.insert(name, (rv, info.clone()));
                                base.push(info);
                            }
                        }
                    }
                    if node_infos.len() > base.len() {
                        let names: HashSet<String> =
                            base.iter().map(|n| n.name().to_string()).collect();
                        node_infos.retain(|n, _| names.contains(n));
                    }
                    let mut snap = Snapshot::from_infos(base);
                    let mut pending: Vec<PodInfo> = Vec::new();
                    for pod in &all_pods {
                        let uid = pod.metadata.uid.as_deref().unwrap_or("");
                        let rv = pod.metadata.resource_version.as_deref().unwrap_or("");
                        let info = match infos.get(uid) {
                            Some((v, info)) if v == rv => info.clone(),
                            _ => {
                                let info = PodInfo::new(pod.clone(), resolver.priority(pod));
                                infos.insert(uid.to_string(), (rv.to_string(), info.clone()));
                                info
                            }
                        };
                        if let Some(node) = node_name(pod) {
                            if assumed.remove(uid).is_some() {
                                backoff.forget(uid);
                            }
                            if !is_terminal(pod) {
                                snap.add_pod(node, info);
                            }
                            continue;
                        }
                        if !self.is_ours(pod) {
                            continue;
                        }
                        if let Some(n) = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.nominated_node_name.as_deref())
                            .filter(|n| !n.is_empty())
                        {
                            snap.add_nominated(n, info.clone());
                        }
                        if !assumed.contains_key(uid)
                            && backoff.ready(&self.cfg, uid, cycle_gen, now)
                        {
                            pending.push(info);
                        }
                    }
                    for (node, info) in assumed.values() {
                        snap.add_pod(node, info.clone());
                    }
                    pending.sort_by(|a, b| {
                        b.priority.cmp(&a.priority).then_with(|| {
                            a.pod
                                .metadata
                                .creation_timestamp
                                .cmp(&b.pod.metadata.creation_timestamp)
                        })
                    });
                    self.schedule_all(
                        pending,
                        &mut snap,
                        &resolver,
                        &mut assumed,
                        &mut backoff,
                        cycle_gen,
                        now,
                        &mut start,
                        &mut rng,
                        &bind_slots,
                        &done_tx,
                        &reports,
                    );
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                Some(done) = done_rx.recv() => {
                    bind_failed |= done.result.is_err();
                    self.bind_finished(done, &mut assumed, &mut backoff);
                }
                _ = tokio::time::sleep(self.next_wait(&backoff, &gen)) => {}
            }
        }
    }

    /// How long the loop may sleep before a back-off expires (at most a minute).
    fn next_wait(&self, backoff: &Backoff, gen: &AtomicU64) -> Duration {
        backoff
            .next_due(&self.cfg, gen.load(Ordering::SeqCst))
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_millis(10))
    }

    /// Schedules the due pods in order against the snapshot, assuming each placement.
    #[allow(clippy::too_many_arguments)]
    fn schedule_all(
        &self,
        pending: Vec<PodInfo>,
        snap: &mut Snapshot,
        resolver: &PriorityResolver,
        assumed: &mut HashMap<String, (String, PodInfo)>,
        backoff: &mut Backoff,
        cycle_gen: u64,
        now: Instant,
        start: &mut usize,
        rng: &mut impl rand::Rng,
        bind_slots: &Arc<Semaphore>,
        done_tx: &mpsc::UnboundedSender<BindDone>,
        reports: &Reports,
    ) {
        for pod in pending {
            let uid = pod.uid().to_string();
            match schedule_one(&pod, snap, *start, rng) {
                Ok(placement) => {
                    *start = start.wrapping_add(placement.feasible.max(1));
                    snap.remove_nominated(&uid);
                    snap.add_pod(&placement.node, pod.clone());
                    assumed.insert(uid.clone(), (placement.node.clone(), pod.clone()));
                    self.spawn_bind(pod, placement.node, bind_slots.clone(), done_tx.clone());
                }
                Err(fit) => {
                    let mut message = fit.message();
                    if fit.num_nodes > 0 {
                        match preempt(&pod, resolver.never_preempts(&pod.pod), snap, &fit) {
                            Ok(candidate) => {
                                // A successful PostFilter adds nothing to the message.
                                snap.remove_nominated(&uid);
                                snap.add_nominated(&candidate.node, pod.clone());
                                self.spawn_preemption(pod.clone(), candidate);
                            }
                            Err(post) => message = format!("{message} {post}"),
                        }
                    }
                    debug!(pod = %pod.key(), %message, "unschedulable");
                    backoff.unschedulable(&self.cfg, &uid, cycle_gen, now);
                    reports.push(&pod.pod, message);
                }
            }
        }
    }

    fn is_ours(&self, pod: &Pod) -> bool {
        is_ours(pod, &self.cfg.scheduler_name)
    }

    fn bind_finished(
        &self,
        done: BindDone,
        assumed: &mut HashMap<String, (String, PodInfo)>,
        backoff: &mut Backoff,
    ) {
        match done.result {
            Ok(()) => backoff.forget(&done.uid),
            Err(e) => {
                warn!(error = %e, "binding failed; the pod goes back to the queue");
                assumed.remove(&done.uid);
                backoff.error(&self.cfg, &done.uid, Instant::now());
            }
        }
    }

    fn spawn_bind(
        &self,
        pod: PodInfo,
        node: String,
        slots: Arc<Semaphore>,
        done: mpsc::UnboundedSender<BindDone>,
    ) {
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            let slot = slots.acquire_owned().await;
            let uid = pod.uid().to_string();
            let result = bind(&client, &pod.pod, &node).await;
            // The event does not hold up the next binding.
            drop(slot);
            if result.is_ok() {
                let msg = format!("Successfully assigned {} to {node}", pod.key());
                if let Err(e) = recorder
                    .record(
                        reference(pod.pod.as_ref()),
                        EventType::Normal,
                        "Scheduled",
                        "Binding",
                        &msg,
                    )
                    .await
                {
                    debug!(error = %e, "Scheduled event");
                }
            }
            let _ = done.send(BindDone { uid, result });
        });
    }

    fn spawn_preemption(&self, pod: PodInfo, candidate: Candidate) {
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = evict_victims(&client, &recorder, &pod, &candidate).await {
                warn!(pod = %pod.key(), error = %e, "preemption");
            }
        });
    }
}

/// `POST pods/<name>/binding` with the chosen node.
pub async fn bind(client: &Client, pod: &Pod, node: &str) -> Result<(), Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.name_any();
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": ns, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let api: Api<ApiPod> = Api::namespaced(client.clone(), ns);
    api.create_subresource::<serde_json::Value, serde_json::Value>(
        "binding",
        &name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map_err(|e| Error::api(format!("binding pod {ns}/{name} to {node}"), e))?;
    debug!(pod = %pod_key(pod), node, "bound");
    Ok(())
}

/// Marks the preemptor's nominated node, then deletes each victim gracefully with a
/// DisruptionTarget condition and a Preempted event, as upstream's `prepareCandidate`.
async fn evict_victims(
    client: &Client,
    recorder: &EventRecorder,
    pod: &PodInfo,
    candidate: &Candidate,
) -> Result<(), Error> {
    let ns = pod.pod.metadata.namespace.as_deref().unwrap_or("default");
    let pods: Api<ApiPod> = Api::namespaced(client.clone(), ns);
    let patch = json!({"status": {"nominatedNodeName": candidate.node}});
    pods.patch_status(
        &pod.pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|e| Error::api(format!("nominating {} to {}", pod.key(), candidate.node), e))?;
    for victim in &candidate.victims {
        let vns = victim
            .pod
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default");
        let vname = victim.pod.name_any();
        let api: Api<ApiPod> = Api::namespaced(client.clone(), vns);
        let cond = json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
            "message": format!("{}: preempting to accommodate a higher priority pod", recorder_component()),
            "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
        }]}});
        if let Err(e) = api
            .patch_status(&vname, &PatchParams::default(), &Patch::Strategic(&cond))
            .await
        {
            debug!(victim = %victim.key(), error = %e, "DisruptionTarget condition");
        }
        match api.delete(&vname, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(Error::api(format!("deleting victim {}", victim.key()), e)),
        }
        let msg = format!("Preempted by pod {} on node {}", pod.uid(), candidate.node);
        if let Err(e) = recorder
            .record(
                reference(victim.pod.as_ref()),
                EventType::Normal,
                "Preempted",
                "Preempting",
                &msg,
            )
            .await
        {
            debug!(error = %e, "Preempted event");
        }
        info!(preemptor = %pod.key(), victim = %victim.key(), node = %candidate.node, "preempted");
    }
    Ok(())
}

fn recorder_component() -> &'static str {
    "default-scheduler"
}
