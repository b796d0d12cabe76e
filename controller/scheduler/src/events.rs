//! core/v1 Events as client-go's legacy recorder writes them (`<name>.<hex nanos>`, source
//! component, count and lastTimestamp bumped when the same event repeats).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::error::Error;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Informational.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// (involved object uid, reason, message).
type SeenKey = (String, String, String);
/// (event namespace, event name, count).
type SeenEvent = (String, String, i32);

/// How many distinct events are remembered for aggregation before the memory starts over:
/// client-go's correlator keeps an LRU cache of 4096 (`maxLruCacheEntries`).
const MAX_SEEN: usize = 4096;

/// Writes events for one component; repeats of the same (object, reason, message) bump the
/// count of the existing event.
pub struct EventRecorder {
    client: Client,
    component: String,
    instance: String,
    seen: Mutex<HashMap<SeenKey, SeenEvent>>,
}

/// An object reference for an event's `involvedObject`.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

impl EventRecorder {
    /// A recorder writing as `component` (e.g. `default-scheduler`, `node-controller`).
    pub fn new(client: Client, component: &str) -> EventRecorder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        EventRecorder {
            client,
            instance: format!("{component}-{host}"),
            component: component.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event about `obj`; errors are returned for the caller to log (events are
    /// best effort, as upstream's).
    pub async fn record(
        &self,
        obj: ObjectReference,
        kind: EventType,
        reason: &str,
        action: &str,
        message: &str,
    ) -> Result<(), Error> {
        let ns = obj
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = (
            obj.uid.clone().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Timestamp::now();
        let previous = self.seen.lock().expect("event cache").get(&key).cloned();
        if let Some((ev_ns, name, count)) = previous {
            let patch = json!({"count": count + 1, "lastTimestamp": Time(now)});
            let res = Api::<Event>::namespaced(self.client.clone(), &ev_ns)
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            match res {
                Ok(_) => {
                    self.seen
                        .lock()
                        .expect("event cache")
                        .insert(key, (ev_ns, name, count + 1));
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(Error::api(format!("patching event {name}"), e)),
            }
        }
        let name = format!(
            "{}.{:x}",
            obj.name.as_deref().unwrap_or("unknown"),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: obj,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(kind.as_str().into()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            action: Some(action.into()),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let created = api
            .create(&PostParams::default(), &event)
            .await
            .map_err(|e| Error::api(format!("creating event {name}"), e))?;
        let mut seen = self.seen.lock().expect("event cache");
        if seen.len() >= MAX_SEEN {
            seen.clear();
        }
        seen.insert(key, (ns, created.name_any(), 1));
        Ok(())
    }
}
