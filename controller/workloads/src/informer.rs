//! Shared informers: one list+watch per kind feeding a reflector store (the cache every
//! controller reads) and a broadcast of changes (what triggers reconciles). The watcher
//! resumes from the last resourceVersion and re-lists on 410 Gone; nothing is kept that the
//! API server does not hold.

use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tracing::warn;

/// How many changes a slow subscriber may fall behind before it loses some (it then relies
/// on the periodic resync).
const BROADCAST_DEPTH: usize = 8192;

/// One change seen by an informer.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// Created or updated (or listed on a (re)sync).
    Applied(Arc<K>),
    /// Deleted; the last state the watch saw.
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object, whatever happened to it.
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

/// A shared cache of one kind plus its change feed.
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    reader: Store<K>,
    tx: broadcast::Sender<Change<K>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            reader: self.reader.clone(),
            tx: self.tx.clone(),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts watching every object `api` reaches.
    pub fn start(api: Api<K>) -> Informer<K> {
        let (reader, mut writer) = reflector::store::<K>();
        let (tx, _) = broadcast::channel(BROADCAST_DEPTH);
        let feed = tx.clone();
        let cache = reader.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(e) => e,
                    Err(e) => {
                        warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                        continue;
                    }
                };
                writer.apply_watcher_event(&event);
                match event {
                    Event::Apply(o) => {
                        let _ = feed.send(Change::Applied(Arc::new(o)));
                    }
                    Event::Delete(o) => {
                        let _ = feed.send(Change::Deleted(Arc::new(o)));
                    }
                    Event::InitDone => {
                        for o in cache.state() {
                            let _ = feed.send(Change::Applied(o));
                        }
                    }
                    Event::Init | Event::InitApply(_) => {}
                }
            }
        });
        Informer { reader, tx }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Informer<K> {
    /// The cache (a reflector store).
    pub fn store(&self) -> &Store<K> {
        &self.reader
    }

    /// Waits until the first list has landed in the cache.
    pub async fn ready(&self) {
        let _ = self.reader.wait_until_ready().await;
    }

    /// Every change from now on; lagging subscribers skip what they missed.
    pub fn changes(&self) -> impl Stream<Item = Change<K>> + Send + 'static
    where
        K: Send + Sync,
    {
        BroadcastStream::new(self.tx.subscribe()).filter_map(|c| async move { c.ok() })
    }

    /// Created/updated objects as the trigger stream `Controller::for_stream` takes.
    pub fn applied(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
    where
        K: Send + Sync,
    {
        self.changes().filter_map(|c| async move {
            match c {
                Change::Applied(o) => Some(Ok((*o).clone())),
                Change::Deleted(_) => None,
            }
        })
    }
}
