//! The kubelet's core/v1 Events, written as upstream's kubelet writes them through client-go's
//! legacy recorder (`tools/record`): `source` and `reportingComponent` `kubelet`, the node's
//! name as host and reporting instance, `involvedObject` the Pod (with `fieldPath`
//! `spec.containers{name}` for a container) or the Node, the name `<object>.<hex nanos>`.
//!
//! Recording never blocks a caller: [`EventRecorder::event`] hands the event to one writer
//! task through a bounded queue (dropped when full, as client-go's broadcaster does). The
//! writer runs client-go's correlator ([`Correlator`]): a repeat of the same event patches
//! the existing object's `count`/`lastTimestamp`; more than 10 events differing only in
//! message within 10 minutes are folded into one "(combined from similar events): ..." event;
//! a token bucket per event (burst 25, one more every 5 minutes) drops spam. The caches are
//! bounded (4096 entries, least recently used evicted).
//!
//! Reason strings are the upstream kubelet's (`pkg/kubelet/events`), see [`reason`].

mod correlator;

pub use correlator::{Correlator, Decision, COMBINED_PREFIX};

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The component name upstream's kubelet records events as.
pub const COMPONENT: &str = "kubelet";

/// Upstream kubelet event reasons (`pkg/kubelet/events/event.go`).
pub mod reason {
    /// A container was created.
    pub const CREATED: &str = "Created";
    /// A container was started.
    pub const STARTED: &str = "Started";
    /// Creating or starting a container (or pulling its image) failed.
    pub const FAILED: &str = "Failed";
    /// A container is being stopped.
    pub const KILLING: &str = "Killing";
    /// A crashed container or a failed pull waits for its back-off.
    pub const BACK_OFF: &str = "BackOff";
    /// An image pull began.
    pub const PULLING: &str = "Pulling";
    /// An image is present (pulled or already on the node).
    pub const PULLED: &str = "Pulled";
    /// The image is absent and the pull policy is Never.
    pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
    /// The image could not be inspected.
    pub const INSPECT_FAILED: &str = "InspectFailed";
    /// The pod sandbox could not be created.
    pub const FAILED_CREATE_POD_SANDBOX: &str = "FailedCreatePodSandBox";
    /// The pod sandbox died and will be re-created.
    pub const SANDBOX_CHANGED: &str = "SandboxChanged";
    /// The pod cgroup could not be created.
    pub const FAILED_CREATE_POD_CONTAINER: &str = "FailedCreatePodContainer";
    /// Killing the pod failed.
    pub const FAILED_KILL_POD: &str = "FailedKillPod";
    /// A pod could not be synced.
    pub const FAILED_SYNC: &str = "FailedSync";
    /// A preStop hook failed.
    pub const FAILED_PRE_STOP_HOOK: &str = "FailedPreStopHook";
    /// A postStart hook failed.
    pub const FAILED_POST_START_HOOK: &str = "FailedPostStartHook";
    /// The container ran past its grace period.
    pub const EXCEEDED_GRACE_PERIOD: &str = "ExceededGracePeriod";
    /// A probe failed.
    pub const UNHEALTHY: &str = "Unhealthy";
    /// A probe succeeded with a warning.
    pub const PROBE_WARNING: &str = "ProbeWarning";
    /// A volume could not be mounted.
    pub const FAILED_MOUNT: &str = "FailedMount";
    /// The kubelet started.
    pub const STARTING: &str = "Starting";
    /// The node became Ready.
    pub const NODE_READY: &str = "NodeReady";
    /// The node became NotReady.
    pub const NODE_NOT_READY: &str = "NodeNotReady";
    /// Node allocatable was enforced on the pods cgroup.
    pub const NODE_ALLOCATABLE_ENFORCED: &str = "NodeAllocatableEnforced";
    /// Image garbage collection failed.
    pub const IMAGE_GC_FAILED: &str = "ImageGCFailed";
    /// A pod was evicted.
    pub const EVICTED: &str = "Evicted";
    /// The node is short of a resource.
    pub const EVICTION_THRESHOLD_MET: &str = "EvictionThresholdMet";
}

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Informational.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One recorded event, before correlation.
#[derive(Debug, Clone)]
struct Recorded {
    object: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
    at: Timestamp,
}

/// Records kubelet events; cheap to clone, never blocks.
#[derive(Clone)]
pub struct EventRecorder {
    tx: Option<mpsc::Sender<Recorded>>,
    node: std::sync::Arc<str>,
}

/// Queue length between recorders and the writer (client-go's is 1000 too).
const QUEUE: usize = 1000;

/// The `fieldPath` upstream's kubelet gives a container's events: the list holding it.
pub fn container_field_path(pod: &Pod, container: &str) -> String {
    let spec = pod.spec.as_ref();
    let has = |list: Option<&Vec<k8s_openapi::api::core::v1::Container>>| {
        list.is_some_and(|l| l.iter().any(|c| c.name == container))
    };
    if spec.is_some_and(|s| has(s.init_containers.as_ref())) {
        format!("spec.initContainers{{{container}}}")
    } else if spec.is_some_and(|s| {
        s.ephemeral_containers
            .as_ref()
            .is_some_and(|l| l.iter().any(|c| c.name == container))
    }) {
        format!("spec.ephemeralContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

/// The `involvedObject` of an event about `pod` (or one of its containers).
pub fn pod_reference(pod: &Pod, container: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: container.map(|c| container_field_path(pod, c)),
    }
}

impl EventRecorder {
    /// Starts the writer task (needs a tokio runtime) for the kubelet of `node`.
    pub fn start(client: Client, node: &str) -> EventRecorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        let node: std::sync::Arc<str> = node.into();
        tokio::spawn(write_loop(client, node.clone(), rx));
        EventRecorder { tx: Some(tx), node }
    }

    /// A recorder that drops every event (for code paths run without an API server).
    pub fn discard(node: &str) -> EventRecorder {
        EventRecorder {
            tx: None,
            node: node.into(),
        }
    }

    /// Records an event about `pod`, or about its container `container` (the involved
    /// object's `fieldPath` then names the container, as upstream).
    pub fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        kind: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.object_event(pod_reference(pod, container), kind, reason, message);
    }

    /// Records an event about this kubelet's Node (upstream's node reference: kind Node,
    /// name and uid the node's name).
    pub fn node_event(&self, kind: EventType, reason: &str, message: impl Into<String>) {
        let node = ObjectReference {
            kind: Some("Node".into()),
            name: Some(self.node.to_string()),
            uid: Some(self.node.to_string()),
            ..Default::default()
        };
        self.object_event(node, kind, reason, message);
    }

    /// Records an event about any object.
    pub fn object_event(
        &self,
        object: ObjectReference,
        kind: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        let Some(tx) = &self.tx else { return };
        let ev = Recorded {
            object,
            kind,
            reason: reason.to_string(),
            message: message.into(),
            at: Timestamp::now(),
        };
        if let Err(e) = tx.try_send(ev) {
            debug!(error = %e, "event queue full or closed, event dropped");
        }
    }
}

fn event_namespace(o: &ObjectReference) -> String {
    o.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

async fn write_loop(client: Client, node: std::sync::Arc<str>, mut rx: mpsc::Receiver<Recorded>) {
    let mut correlator = Correlator::default();
    while let Some(ev) = rx.recv().await {
        let decision =
            correlator.observe(&ev.object, ev.kind, &ev.reason, &ev.message, Instant::now());
        match decision {
            Decision::Drop => debug!(reason = %ev.reason, "event dropped by the spam filter"),
            Decision::Create { message, key } => {
                let ns = event_namespace(&ev.object);
                if let Some(name) = create(&client, &node, &ev, &ns, &message).await {
                    correlator.created(key, &ns, &name, ev.at);
                }
            }
            Decision::Update {
                namespace,
                name,
                count,
                message,
                first,
            } => {
                let patch = json!({
                    "count": count,
                    "message": message,
                    "lastTimestamp": Time(ev.at),
                    "firstTimestamp": Time(first),
                });
                let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
                match with_retries(|| api.patch(&name, &params, &patch)).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        // Expired: record it afresh.
                        correlator.forget(&namespace, &name);
                        let d = correlator.observe(
                            &ev.object,
                            ev.kind,
                            &ev.reason,
                            &ev.message,
                            Instant::now(),
                        );
                        if let Decision::Create { message, key } = d {
                            if let Some(name) =
                                create(&client, &node, &ev, &namespace, &message).await
                            {
                                correlator.created(key, &namespace, &name, ev.at);
                            }
                        }
                    }
                    Err(e) => warn!(event = %name, error = %e, "updating event"),
                }
            }
        }
    }
}

/// Creates the Event object; its name, or `None` when the write failed.
async fn create(
    client: &Client,
    node: &str,
    ev: &Recorded,
    ns: &str,
    message: &str,
) -> Option<String> {
    let name = format!(
        "{}.{:x}",
        ev.object.name.as_deref().unwrap_or("unknown"),
        ev.at.as_nanosecond()
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_string()),
            ..Default::default()
        },
        involved_object: ev.object.clone(),
        reason: Some(ev.reason.clone()),
        message: Some(message.to_string()),
        type_: Some(ev.kind.as_str().into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: Some(node.to_string()),
        }),
        first_timestamp: Some(Time(ev.at)),
        last_timestamp: Some(Time(ev.at)),
        count: Some(1),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(node.to_string()),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let params = PostParams::default();
    match with_retries(|| api.create(&params, &event)).await {
        Ok(_) => Some(name),
        Err(kube::Error::Api(s)) if s.code == 409 => Some(name),
        Err(e) => {
            warn!(event = %name, reason = %ev.reason, error = %e, "writing event");
            None
        }
    }
}

/// Retries transport errors and 5xx/429 a few times (client-go retries 12 times; a board's
/// kubelet keeps the queue short instead).
async fn with_retries<T, F, Fut>(mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(250);
    for _ in 0..4 {
        match op().await {
            Err(kube::Error::Api(s)) if s.code < 429 || (s.code > 429 && s.code < 500) => {
                return Err(kube::Error::Api(s))
            }
            Err(e) => {
                debug!(error = %e, "event write failed, retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            ok => return ok,
        }
    }
    op().await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    /// A pod with one init container `setup` and one container `app`.
    pub(crate) fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                resource_version: Some("7".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                init_containers: Some(vec![Container {
                    name: "setup".into(),
                    ..Default::default()
                }]),
                containers: vec![Container {
                    name: "app".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn references_name_the_container_list() {
        let p = pod();
        let r = pod_reference(&p, Some("app"));
        assert_eq!(r.field_path.as_deref(), Some("spec.containers{app}"));
        assert_eq!(r.kind.as_deref(), Some("Pod"));
        assert_eq!(r.api_version.as_deref(), Some("v1"));
        assert_eq!(r.uid.as_deref(), Some("u1"));
        let r = pod_reference(&p, Some("setup"));
        assert_eq!(r.field_path.as_deref(), Some("spec.initContainers{setup}"));
        assert_eq!(pod_reference(&p, None).field_path, None);
    }
}
