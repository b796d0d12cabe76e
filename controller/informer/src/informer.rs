//! One informer: list+watch of a kind into a shared, indexed cache, with a fan-out of every
//! change to handlers.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch, Notify};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tracing::{debug, info_span, warn, Instrument};

use crate::compact::compact;
use crate::error::Error;
use crate::index::{key_of, IndexFn, Indexes, Key, NAMESPACE};

/// One change of the cache, as handlers see it.
#[derive(Debug)]
pub enum Change<K> {
    /// Created or updated; also every object present after a (re-)list. The object is the
    /// one now in the cache (the same `Arc`).
    Applied(Arc<K>),
    /// Deleted (or gone at a re-list); the last state seen.
    Deleted(Arc<K>),
    /// A (re-)list finished: the cache now holds exactly what the API server listed.
    Synced,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied(o) => Change::Applied(o.clone()),
            Change::Deleted(o) => Change::Deleted(o.clone()),
            Change::Synced => Change::Synced,
        }
    }
}

impl<K> Change<K> {
    /// The object, unless this is [`Change::Synced`].
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => Some(o),
            Change::Synced => None,
        }
    }
}

/// A change handler; returning `false` unregisters it.
type Handler<K> = Box<dyn FnMut(&Change<K>) -> bool + Send>;

struct Shared<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    indexes: RwLock<Indexes<K>>,
    handlers: Mutex<Vec<Handler<K>>>,
    synced: AtomicBool,
    /// Readiness for any number of waiters. kube's `Store::wait_until_ready` wakes only the
    /// last of several concurrent waiters (its `DelayedInit` polls a oneshot receiver, which
    /// keeps one waker), so the scheduler and the node lifecycle controller waiting on the
    /// same Node cache could hang forever.
    readiness: watch::Sender<Readiness>,
}

/// Where an informer's first list stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readiness {
    Listing,
    Synced,
    Stopped,
}

/// A shared cache of one kind; cheap to clone (clones share everything).
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    shared: Arc<Shared<K>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            shared: self.shared.clone(),
        }
    }
}

fn oref<K: Resource<DynamicType = ()>>(key: &Key) -> ObjectRef<K> {
    let r = ObjectRef::new(&key.1);
    match &key.0 {
        Some(ns) => r.within(ns),
        None => r,
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts list+watch of every object `api` reaches, on the current tokio runtime.
    /// [`crate::SharedInformers`] makes sure there is one per kind.
    pub fn start(api: Api<K>) -> Informer<K> {
        let (store, writer) = reflector::store::<K>();
        let shared = Arc::new(Shared {
            store,
            indexes: RwLock::new(Indexes::default()),
            handlers: Mutex::new(Vec::new()),
            synced: AtomicBool::new(false),
            readiness: watch::Sender::new(Readiness::Listing),
        });
        let task = shared.clone();
        let span = info_span!("informer", kind = %K::kind(&()));
        tokio::spawn(run(api, writer, task).instrument(span));
        Informer { shared }
    }
}

async fn run<K>(api: Api<K>, mut writer: reflector::store::Writer<K>, shared: Arc<Shared<K>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    // The watcher lists, then watches from the list's resourceVersion; after a broken watch
    // it resumes from the last resourceVersion seen, and re-lists when that is 410 Gone.
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(compact)
        .boxed();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, "watch failed; retrying");
                continue;
            }
        };
        match event {
            Event::Apply(ref o) => {
                let key = key_of(o);
                let r = oref::<K>(&key);
                let old = shared.store.get(&r);
                writer.apply_watcher_event(&event);
                let Some(new) = shared.store.get(&r) else {
                    continue;
                };
                write(&shared.indexes).update(old.as_deref(), Some(&new));
                shared.dispatch(Change::Applied(new));
            }
            Event::Delete(ref o) => {
                let r = oref::<K>(&key_of(o));
                let old = shared.store.get(&r);
                writer.apply_watcher_event(&event);
                write(&shared.indexes).update(old.as_deref(), None);
                let Event::Delete(o) = event else {
                    unreachable!("matched above")
                };
                shared.dispatch(Change::Deleted(Arc::new(o)));
            }
            Event::Init | Event::InitApply(_) => writer.apply_watcher_event(&event),
            Event::InitDone => {
                let before: HashMap<Key, Arc<K>> = shared
                    .store
                    .state()
                    .into_iter()
                    .map(|o| (key_of(o.as_ref()), o))
                    .collect();
                writer.apply_watcher_event(&event);
                let after = shared.store.state();
                write(&shared.indexes).rebuild(after.iter().map(|o| o.as_ref()));
                shared.synced.store(true, Ordering::SeqCst);
                shared.readiness.send_if_modified(|r| {
                    let first = *r == Readiness::Listing;
                    *r = Readiness::Synced;
                    first
                });
                let mut gone = before;
                for o in &after {
                    gone.remove(&key_of(o.as_ref()));
                }
                debug!(objects = after.len(), gone = gone.len(), "listed");
                for (_, o) in gone {
                    shared.dispatch(Change::Deleted(o));
                }
                for o in after {
                    shared.dispatch(Change::Applied(o));
                }
                shared.dispatch(Change::Synced);
            }
        }
    }
    shared.readiness.send_if_modified(|r| {
        let first = *r == Readiness::Listing;
        if first {
            *r = Readiness::Stopped;
        }
        first
    });
}

fn write<K>(l: &RwLock<Indexes<K>>) -> std::sync::RwLockWriteGuard<'_, Indexes<K>> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn read<K>(l: &RwLock<Indexes<K>>) -> std::sync::RwLockReadGuard<'_, Indexes<K>> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

impl<K: Resource<DynamicType = ()> + 'static> Shared<K> {
    fn dispatch(&self, change: Change<K>) {
        let mut handlers = self.handlers.lock().unwrap_or_else(|e| e.into_inner());
        handlers.retain_mut(|h| h(&change));
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    /// The reflector store (what kube-runtime's `Controller` takes). Await [`Self::ready`]
    /// before handing it to anything that calls `Store::wait_until_ready`: kube wakes only
    /// one of several tasks waiting there at once.
    pub fn store(&self) -> &Store<K> {
        &self.shared.store
    }

    /// Waits until the first list has landed in the cache.
    /// Any number of tasks may wait at once.
    pub async fn ready(&self) -> Result<(), Error> {
        let mut rx = self.shared.readiness.subscribe();
        match rx.wait_for(|r| *r != Readiness::Listing).await.map(|r| *r) {
            Ok(Readiness::Synced) => Ok(()),
            _ => Err(Error::NeverSynced {
                kind: K::kind(&()).to_string(),
            }),
        }
    }

    /// The cached object `namespace/name` (`None` namespace for cluster-scoped kinds).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.shared
            .store
            .get(&oref(&(namespace.map(str::to_string), name.to_string())))
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.shared.store.state()
    }

    /// The cached objects of one namespace (from the namespace index).
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.by_index(NAMESPACE, namespace)
    }

    /// The cached objects indexed under `value` in the index `name` (empty for an unknown
    /// index).
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<K>> {
        let keys = read(&self.shared.indexes)
            .keys(name, value)
            .unwrap_or_default();
        keys.iter()
            .filter_map(|k| self.shared.store.get(&oref(k)))
            .collect()
    }

    /// Adds the index `name` (values computed by `func`) unless it exists; it is filled from
    /// the current cache and kept up to date from then on.
    pub fn add_indexer(
        &self,
        name: &str,
        func: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        let mut indexes = write(&self.shared.indexes);
        if indexes.has(name) {
            return;
        }
        let func: IndexFn<K> = Arc::new(func);
        let objects = self.shared.store.state();
        indexes.add(name, func, objects.iter().map(|o| o.as_ref()));
    }

    /// Registers `handler` for every later change; it is first called with
    /// [`Change::Applied`] for every object already cached (then [`Change::Synced`] if the
    /// cache has been listed). Handlers run on the informer's task and must be quick (push a
    /// key into a queue); returning `false` unregisters the handler.
    pub fn add_handler(&self, mut handler: impl FnMut(&Change<K>) -> bool + Send + 'static) {
        let mut handlers = self
            .shared
            .handlers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut keep = true;
        for o in self.shared.store.state() {
            keep = keep && handler(&Change::Applied(o));
        }
        if keep && self.shared.synced.load(Ordering::SeqCst) {
            keep = handler(&Change::Synced);
        }
        if keep {
            handlers.push(Box::new(handler));
        }
    }

    /// Every change from now on (the current objects first) as a stream; the subscription
    /// ends when the stream is dropped.
    pub fn changes(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded_channel();
        self.add_handler(move |c| tx.send(c.clone()).is_ok());
        UnboundedReceiverStream::new(rx)
    }

    /// A stream yielding `()` after changes, once for any number of changes made while the
    /// consumer was busy (twice when its pending wait completed at the first of them), and
    /// once at the start, for what is already cached. For consumers that rescan the cache rather
    /// than look at each change: it holds no objects, so a consumer slower than the changes
    /// coalesces them instead of keeping every version of every object alive in a queue (as
    /// [`Self::changes`] does). The subscription ends at the first change after the stream is
    /// dropped.
    pub fn wakeups(&self) -> BoxStream<'static, ()> {
        self.wakeups_when(|_| true)
    }

    /// [`Self::wakeups`] after the changes `wanted` accepts only (it runs on the informer's
    /// task, like a handler): a consumer whose rescan can only find work in some objects is
    /// not woken by changes of the others.
    pub fn wakeups_when(
        &self,
        wanted: impl Fn(&Change<K>) -> bool + Send + 'static,
    ) -> BoxStream<'static, ()> {
        let notify = Arc::new(Notify::new());
        let weak = Arc::downgrade(&notify);
        self.add_handler(move |c| match weak.upgrade() {
            Some(n) => {
                if wanted(c) {
                    n.notify_one();
                }
                true
            }
            None => false,
        });
        futures::stream::unfold(notify, |n| async move {
            n.notified().await;
            Some(((), n))
        })
        .boxed()
    }

    /// Applied objects only: the trigger stream kube-runtime's
    /// `Controller::for_shared_stream` takes.
    pub fn applied(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.changes().filter_map(|c| async move {
            match c {
                Change::Applied(o) => Some(o),
                _ => None,
            }
        })
    }
}
