//! Reporting unschedulable pods (`PodScheduled=False` and a FailedScheduling event) from a
//! de-duplicated queue drained by a few workers.
//!
//! A task per report held the whole request future (about 4 KiB) for every pod still waiting
//! for the API: with 10,000 unschedulable pods that was 40 MiB of tasks, kept by the allocator
//! after they finished. A queued report is the pod's key and the message; a newer report of
//! a pod still queued replaces the older one (only the latest message is worth writing), and
//! a worker reads the pod from the cache when it gets to it: one bound or deleted meanwhile
//! is not reported.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bramble_informer::pod::Pod;
use bramble_informer::Informer;
use k8s_openapi::api::core::v1::Pod as ApiPod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tracing::debug;

use crate::events::{reference, EventRecorder, EventType};
use crate::node_info::pod_key;

/// How many reports are written at once.
const WORKERS: usize = 4;

type Report = (String, String, String);

#[derive(Default)]
struct Pending {
    /// uid -> (namespace, name, message)
    reports: HashMap<String, Report>,
    /// uids in the order their first report arrived
    order: VecDeque<String>,
}

struct Inner {
    pending: Mutex<Pending>,
    wake: Notify,
    closed: AtomicBool,
}

/// The queue of unschedulable-pod reports; cheap to clone. The workers end when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Reports {
    inner: Arc<Inner>,
    _close: Arc<Close>,
}

/// Ends the workers when dropped (with the last [`Reports`]).
struct Close(Arc<Inner>);

impl Drop for Close {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.wake.notify_waiters();
    }
}

impl Reports {
    /// Starts the workers on the current tokio runtime.
    pub fn start(client: Client, recorder: Arc<EventRecorder>, pods: Informer<Pod>) -> Reports {
        let inner = Arc::new(Inner {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        for _ in 0..WORKERS {
            let inner = inner.clone();
            let (client, recorder, pods) = (client.clone(), recorder.clone(), pods.clone());
            tokio::spawn(async move {
                loop {
                    // `notified` exists before the queue is looked at, so neither a push nor
                    // the close in between is missed.
                    let notified = inner.wake.notified();
                    if inner.closed.load(Ordering::SeqCst) {
                        return;
                    }
                    let Some((uid, (ns, name, message))) = inner.pop() else {
                        notified.await;
                        continue;
                    };
                    let still_pending = pods.get(Some(&ns), &name).filter(|p| {
                        p.metadata.uid.as_deref() == Some(uid.as_str())
                            && p.spec
                                .as_ref()
                                .and_then(|s| s.node_name.as_deref())
                                .is_none_or(str::is_empty)
                            && p.metadata.deletion_timestamp.is_none()
                    });
                    if let Some(pod) = still_pending {
                        report(&client, &recorder, &pod, &message).await;
                    }
                }
            });
        }
        Reports {
            _close: Arc::new(Close(inner.clone())),
            inner,
        }
    }

    /// Queues a report of `pod` (replacing one of the same pod not yet written).
    pub fn push(&self, pod: &Pod, message: String) {
        let (Some(uid), Some(name)) = (pod.metadata.uid.clone(), pod.metadata.name.clone()) else {
            return;
        };
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let mut p = self.inner.lock();
        if p.reports.insert(uid.clone(), (ns, name, message)).is_none() {
            p.order.push_back(uid);
        }
        drop(p);
        self.inner.wake.notify_one();
    }

    /// How many reports are queued.
    pub fn len(&self) -> usize {
        self.inner.lock().reports.len()
    }

    /// Whether no report is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pop(&self) -> Option<(String, Report)> {
        let mut p = self.lock();
        while let Some(uid) = p.order.pop_front() {
            if let Some(r) = p.reports.remove(&uid) {
                return Some((uid, r));
            }
        }
        // Drained: give back the room a burst of reports grew (10,000 unschedulable pods
        // left 2.5 MiB of empty table and ring behind).
        p.reports.shrink_to_fit();
        p.order.shrink_to_fit();
        None
    }
}

fn scheduled_condition(pod: &Pod) -> Option<(&str, &str)> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
        .map(|c| {
            (
                c.reason.as_deref().unwrap_or_default(),
                c.message.as_deref().unwrap_or_default(),
            )
        })
}

/// `PodScheduled=False/Unschedulable` with `message` (unless the pod already says so), then
/// the FailedScheduling event.
async fn report(client: &Client, recorder: &EventRecorder, pod: &Pod, message: &str) {
    if scheduled_condition(pod) != Some(("Unschedulable", message)) {
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null,
            "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
        }]}});
        let api: Api<ApiPod> = Api::namespaced(
            client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            debug!(pod = %pod_key(pod), error = %e, "PodScheduled=False status");
        }
    }
    if let Err(e) = recorder
        .record(
            reference(pod),
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            message,
        )
        .await
    {
        debug!(error = %e, "FailedScheduling event");
    }
}
