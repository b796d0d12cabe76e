//! core/v1 Events about autoscalers, written as client-go's recorder writes them for the
//! `horizontal-pod-autoscaler` component: `<hpa>.<hex nanos>`, and a repeat of the same
//! (object, reason, message) bumps `count` and `lastTimestamp` of the first event.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::json;
use tracing::debug;

/// The component name upstream's HPA controller records events as.
pub const COMPONENT: &str = "horizontal-pod-autoscaler";

/// (object uid, reason, message) -> (event name, count).
type Seen = HashMap<(String, String, String), (String, i32)>;

/// Records events about HorizontalPodAutoscalers; failures are logged, never returned
/// (events are best effort, as upstream's).
pub struct Recorder {
    client: Client,
    seen: Mutex<Seen>,
}

impl Recorder {
    /// A recorder writing through `client`.
    pub fn new(client: Client) -> Recorder {
        Recorder {
            client,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// A Normal event.
    pub async fn normal(&self, hpa: &HorizontalPodAutoscaler, reason: &str, message: &str) {
        self.record(hpa, "Normal", reason, message).await;
    }

    /// A Warning event.
    pub async fn warning(&self, hpa: &HorizontalPodAutoscaler, reason: &str, message: &str) {
        self.record(hpa, "Warning", reason, message).await;
    }

    async fn record(
        &self,
        hpa: &HorizontalPodAutoscaler,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let meta = hpa.meta();
        let ns = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let key = (
            meta.uid.clone().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let now = Timestamp::now();
        let previous = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((name, count)) = previous {
            let patch = json!({"count": count + 1, "lastTimestamp": Time(now)});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, name, count + 1);
                    return;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    debug!(event = %name, error = %e, "event not updated");
                    return;
                }
            }
        }
        let name = format!(
            "{}.{:x}",
            meta.name.as_deref().unwrap_or("hpa"),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(HorizontalPodAutoscaler::api_version(&()).into_owned()),
                kind: Some(HorizontalPodAutoscaler::kind(&()).into_owned()),
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                field_path: None,
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.into()),
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(COMPONENT.into()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => self.remember(key, name, 1),
            Err(e) => debug!(reason, error = %e, "event not recorded"),
        }
    }

    fn remember(&self, key: (String, String, String), name: String, count: i32) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (name, count));
    }
}
