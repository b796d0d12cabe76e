//! Informer caches: a kube-runtime reflector per kind (list+watch, resume, re-list on 410,
//! back-off on errors) whose events wake the owning loop.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::warn;

/// Starts a reflector over `api`; `on_event` sees every applied or deleted object (and
/// `None` for a re-list), then `wake` is notified. Returns the cache.
pub fn spawn_cache<K, F>(api: Api<K>, wake: Arc<Notify>, on_event: F) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    F: Fn(Option<&K>, bool) + Send + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(obj)) | Ok(Event::InitApply(obj)) => on_event(Some(&obj), false),
                Ok(Event::Delete(obj)) => on_event(Some(&obj), true),
                Ok(Event::Init) | Ok(Event::InitDone) => on_event(None, false),
                Err(e) => {
                    warn!(error = %e, kind = %K::kind(&Default::default()), "watch error; retrying")
                }
            }
            wake.notify_one();
        }
    });
    store
}
