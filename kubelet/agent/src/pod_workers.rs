//! The dispatcher (upstream `podWorkers`): one [`PodWorker`] task per pod uid, fed with pod
//! updates from the pod source and relist events from the PLEG; pods the API no longer has
//! (deleted while the kubelet was down) are terminated once the pod source has synced.
//! Static pods are not in the API's list; a static pod replacing one of the same name (an
//! edited manifest) starts once the old one has terminated, as upstream.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bramble_runtime::{ContainerKind, ContainerRuntime};
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::pod_context::PodContext;
use crate::pod_spec::pod_ids;
use crate::pod_worker::{PodWorker, WorkerMsg};
use crate::runtime_pod::group;
use crate::static_pods::{full_name, is_static_pod};

/// What the pod source reports.
#[derive(Debug, Clone)]
pub enum PodEvent {
    /// A pod bound to this node was added or changed.
    Upsert(Arc<Pod>),
    /// A pod bound to this node was deleted from the API.
    Deleted(Arc<Pod>),
    /// A full list completed: these uids are every pod bound to the node.
    Synced(HashSet<String>),
}

/// Routes events to per-pod workers.
pub struct PodWorkers<R> {
    ctx: Arc<PodContext<R>>,
    workers: HashMap<String, mpsc::UnboundedSender<WorkerMsg>>,
    /// The last pod object forwarded per uid (status-only changes are not forwarded).
    seen: HashMap<String, Arc<Pod>>,
    done_tx: mpsc::UnboundedSender<String>,
    done_rx: mpsc::UnboundedReceiver<String>,
    /// Static pods waiting for a terminating pod of the same full name, by full name.
    waiting: HashMap<String, Arc<Pod>>,
}

impl<R: ContainerRuntime + 'static> PodWorkers<R> {
    /// A dispatcher over `ctx`.
    pub fn new(ctx: Arc<PodContext<R>>) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        PodWorkers {
            ctx,
            workers: HashMap::new(),
            seen: HashMap::new(),
            done_tx,
            done_rx,
            waiting: HashMap::new(),
        }
    }

    /// Whether another worker of `pod`'s full name still runs (a static pod must wait).
    fn name_taken(&self, pod: &Pod) -> bool {
        let (ns, name, uid) = pod_ids(pod);
        self.seen.iter().any(|(u, p)| {
            *u != uid && self.workers.contains_key(u) && {
                let (n2, name2, _) = pod_ids(p);
                n2 == ns && name2 == name
            }
        })
    }

    fn spawn(&mut self, pod: Arc<Pod>, first: Option<WorkerMsg>) {
        let (_, _, uid) = pod_ids(&pod);
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(m) = first {
            let _ = tx.send(m);
        }
        let worker = PodWorker::new(self.ctx.clone(), pod);
        tokio::spawn(worker.run(rx, self.done_tx.clone()));
        self.workers.insert(uid, tx);
    }

    fn send(&mut self, uid: &str, m: WorkerMsg) -> bool {
        match self.workers.get(uid) {
            Some(tx) => tx.send(m).is_ok(),
            None => false,
        }
    }

    async fn on_pod(&mut self, ev: PodEvent) {
        match ev {
            PodEvent::Upsert(p) => {
                let (_, _, uid) = pod_ids(&p);
                if is_static_pod(&p) && !self.workers.contains_key(&uid) && self.name_taken(&p) {
                    info!(%uid, "static pod waits for the old pod of its name to terminate");
                    self.waiting.insert(full_name(&p), p);
                    return;
                }
                if let Some(old) = self.seen.get(&uid) {
                    if self.workers.contains_key(&uid) && !relevant_change(old, &p) {
                        return;
                    }
                }
                self.seen.insert(uid.clone(), p.clone());
                if !self.send(&uid, WorkerMsg::Update(p.clone())) {
                    self.spawn(p, None);
                }
            }
            PodEvent::Deleted(p) => {
                let (_, _, uid) = pod_ids(&p);
                let name = full_name(&p);
                if self
                    .waiting
                    .get(&name)
                    .is_some_and(|w| w.metadata.uid == p.metadata.uid)
                {
                    self.waiting.remove(&name);
                    return;
                }
                if !self.send(&uid, WorkerMsg::Deleted(p.clone())) {
                    self.spawn(p.clone(), Some(WorkerMsg::Deleted(p)));
                }
            }
            PodEvent::Synced(known) => {
                let gone: Vec<String> = self
                    .workers
                    .keys()
                    .filter(|u| !known.contains(*u))
                    .filter(|u| !self.seen.get(*u).is_some_and(|p| is_static_pod(p)))
                    .cloned()
                    .collect();
                for uid in gone {
                    info!(%uid, "pod no longer bound to this node");
                    let pod = Arc::new(stub_pod("", "", &uid));
                    self.send(&uid, WorkerMsg::Deleted(pod));
                }
                self.cleanup_orphans(&known).await;
            }
        }
    }

    /// Terminates runtime pods that no API pod matches (deleted while the kubelet was down).
    async fn cleanup_orphans(&mut self, known: &HashSet<String>) {
        let states = match self.ctx.runtime.list_containers().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "listing containers for orphan cleanup");
                return;
            }
        };
        for (uid, rp) in group(states) {
            if known.contains(&uid) || self.workers.contains_key(&uid) {
                continue;
            }
            let (ns, name) = rp
                .sandboxes
                .iter()
                .find_map(|s| match &s.meta.kind {
                    ContainerKind::Sandbox { config } => {
                        Some((config.pod_namespace.clone(), config.pod_name.clone()))
                    }
                    _ => None,
                })
                .unwrap_or_default();
            info!(%uid, %ns, %name, "removing orphaned pod");
            let pod = Arc::new(stub_pod(&ns, &name, &uid));
            self.spawn(pod.clone(), Some(WorkerMsg::Deleted(pod)));
        }
    }

    /// Runs until both input channels close.
    pub async fn run(
        mut self,
        mut pods: mpsc::Receiver<PodEvent>,
        mut relist: mpsc::Receiver<Vec<String>>,
    ) {
        loop {
            tokio::select! {
                ev = pods.recv() => match ev {
                    Some(ev) => self.on_pod(ev).await,
                    None => return,
                },
                uids = relist.recv() => match uids {
                    Some(uids) => for uid in uids {
                        self.send(&uid, WorkerMsg::Relist);
                    },
                    None => return,
                },
                Some(uid) = self.done_rx.recv() => {
                    self.workers.remove(&uid);
                    let next = self.seen.remove(&uid).and_then(|p| self.waiting.remove(&full_name(&p)));
                    if let Some(p) = next {
                        self.on_pod(PodEvent::Upsert(p)).await;
                    }
                }
            }
        }
    }
}

/// Whether an update matters to the pod's worker (upstream's pod config ignores changes of
/// status alone, most of them the kubelet's own writes).
fn relevant_change(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || old.metadata.deletion_grace_period_seconds != new.metadata.deletion_grace_period_seconds
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

/// A pod object carrying only identity (for runtime leftovers without an API object).
fn stub_pod(ns: &str, name: &str, uid: &str) -> Pod {
    let mut p = Pod::default();
    p.metadata.namespace = Some(ns.to_string());
    p.metadata.name = Some(name.to_string());
    p.metadata.uid = Some(uid.to_string());
    p.metadata.deletion_grace_period_seconds = Some(0);
    p
}
