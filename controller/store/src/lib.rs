//! The store behind Bramble's API server.
//!
//! Objects are JSON documents under string keys (`<group>/<resource>/[<namespace>/]<name>`).
//! Every write gets the next value of one global revision, which becomes the object's
//! `metadata.resourceVersion`. The [`Store`] trait is the seam: the embedded LMDB store
//! ([`lmdb::LmdbStore`]) is the default and an etcd backend can implement the same trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;

pub mod bench;
pub mod error;
pub mod lmdb;

pub use error::StoreError;

/// A revision of the whole store; strictly increasing, starts at 1 for the first write.
pub type Revision = u64;

/// One stored object as read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    /// The object's JSON, with `metadata.resourceVersion` already set to `mod_revision`.
    pub value: Arc<[u8]>,
    /// Revision of the write that last changed this key.
    pub mod_revision: Revision,
    /// Revision of the write that created this key.
    pub create_revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as kept in the history and delivered to watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub revision: Revision,
    pub kind: EventType,
    pub key: String,
    /// The object after the change; for `Deleted`, the last state with
    /// `metadata.resourceVersion` set to the deleting revision (as upstream does).
    pub value: Arc<[u8]>,
    /// The object before the change (`Modified` and `Deleted`), so a list at an older
    /// revision can be rebuilt from the history.
    pub prev_value: Option<Arc<[u8]>>,
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    /// Fails with [`StoreError::AlreadyExists`] when the key exists.
    Create {
        key: String,
        value: serde_json::Value,
    },
    /// Fails with [`StoreError::NotFound`] when the key is absent and with
    /// [`StoreError::Conflict`] when `expected_revision` is set and differs from the
    /// key's current `mod_revision`.
    Update {
        key: String,
        value: serde_json::Value,
        expected_revision: Option<Revision>,
    },
    /// Same preconditions as `Update`.
    Delete {
        key: String,
        expected_revision: Option<Revision>,
    },
}

/// What one successful operation left behind.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    /// The stored object after a create or update.
    Written(KeyValue),
    /// The deleted object, with `resourceVersion` set to the deleting revision.
    Deleted(KeyValue),
}

/// Options for [`Store::list`].
#[derive(Default)]
pub struct ListOptions<'a> {
    /// Only keys strictly greater than this one (the `continue` position).
    pub start_after: Option<String>,
    /// At most this many matching items; `None` means all.
    pub limit: Option<usize>,
    /// List as of this revision (`resourceVersionMatch=Exact`); `None` means the newest.
    /// Older than the compacted revision -> [`StoreError::Compacted`].
    pub revision: Option<Revision>,
    /// Keep only items for which this returns true (selectors); applied before `limit`.
    pub filter: Option<&'a (dyn Fn(&KeyValue) -> bool + Send + Sync)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the list reflects.
    pub revision: Revision,
    /// True when `limit` cut the list and more matching keys follow the last item.
    pub more: bool,
    /// How many keys under the prefix follow the last item (before filtering), when `more`.
    pub remaining: Option<u64>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Arc<Event>, StoreError>> + Send>>;

/// One item of [`Store::watch_with_progress`].
#[derive(Debug, Clone, PartialEq)]
pub enum WatchItem {
    Event(Arc<Event>),
    /// Every event under the prefix up to this revision has been delivered, so a client may
    /// resume from it (what a BOOKMARK carries). Sent when the stream has caught up with the
    /// store and the store's revision moved past the last one reported.
    Progress(Revision),
}

pub type ProgressStream = Pin<Box<dyn Stream<Item = Result<WatchItem, StoreError>> + Send>>;

/// The storage seam of the API server.
pub trait Store: Send + Sync + 'static {
    /// The newest committed revision (0 for an empty store).
    fn current_revision(&self) -> Revision;

    /// The oldest revision a watch may resume from or a list may read at; events at or
    /// below it are gone.
    fn compacted_revision(&self) -> Revision;

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys starting with `prefix`, in key order.
    fn list(&self, prefix: &str, opts: ListOptions<'_>) -> Result<ListResult, StoreError>;

    /// Runs the operations atomically: either all apply, each at its own new revision in
    /// order, or none does and the first failure is returned. The future resolves only after
    /// the commit is durable on disk. Concurrent transactions may share one commit.
    fn txn(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<Vec<OpOutcome>, StoreError>>;

    /// Every event under `prefix` with revision greater than `after`, first from the history
    /// and then live, in revision order, each exactly once. `after` below the compacted
    /// revision fails with [`StoreError::Compacted`] (immediately, or as the stream's first item).
    fn watch(&self, prefix: &str, after: Revision) -> Result<EventStream, StoreError>;

    /// Like [`Store::watch`], with [`WatchItem::Progress`] items telling how far the stream
    /// has looked even when no event under the prefix changed (for bookmarks). The default
    /// implementation yields events only.
    fn watch_with_progress(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<ProgressStream, StoreError> {
        let events = self.watch(prefix, after)?;
        Ok(Box::pin(futures::StreamExt::map(events, |item| {
            item.map(WatchItem::Event)
        })))
    }
}
