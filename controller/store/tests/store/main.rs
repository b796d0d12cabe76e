//! Tests of the LMDB store on real LMDB files in temporary directories.

mod basic;
mod format;
mod group_commit;
mod list;
mod pre_upgrade;
mod wal;
mod watch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bramble_store::lmdb::{LmdbStore, StoreConfig};
use bramble_store::{
    Event, EventStream, KeyValue, ListOptions, ListResult, Op, OpOutcome, Revision, Store,
    StoreError,
};
use futures::StreamExt;
use serde_json::{json, Value};

pub fn open(dir: &Path) -> Arc<LmdbStore> {
    LmdbStore::open(dir, StoreConfig::default()).expect("open store")
}

pub fn open_with(dir: &Path, config: StoreConfig) -> Arc<LmdbStore> {
    LmdbStore::open(dir, config).expect("open store")
}

/// A ConfigMap-like object.
/// Everything under `prefix` as of `revision`.
pub fn list_at(
    store: &LmdbStore,
    prefix: &str,
    revision: Revision,
) -> Result<ListResult, StoreError> {
    store.list(
        prefix,
        ListOptions {
            revision: Some(revision),
            ..Default::default()
        },
    )
}

/// How many objects are under `prefix` now.
pub fn count(store: &LmdbStore, prefix: &str) -> usize {
    store
        .list(prefix, ListOptions::default())
        .unwrap()
        .items
        .len()
}

pub fn obj(name: &str, data: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "x"}},
        "data": {"k": data}
    })
}

pub fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("stored JSON")
}

/// `metadata.resourceVersion` of a stored object.
pub fn rv(bytes: &[u8]) -> String {
    parse(bytes)["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_owned()
}

pub fn data(bytes: &[u8]) -> String {
    parse(bytes)["data"]["k"]
        .as_str()
        .expect("data.k")
        .to_owned()
}

pub fn written(mut outcomes: Vec<OpOutcome>) -> KeyValue {
    assert_eq!(outcomes.len(), 1);
    match outcomes.remove(0) {
        OpOutcome::Written(kv) => kv,
        other => panic!("expected Written, got {other:?}"),
    }
}

pub async fn create(store: &LmdbStore, key: &str, value: Value) -> KeyValue {
    written(
        store
            .txn(vec![Op::Create {
                key: key.into(),
                value,
            }])
            .await
            .expect("create"),
    )
}

pub async fn update(store: &LmdbStore, key: &str, value: Value) -> KeyValue {
    let op = Op::Update {
        key: key.into(),
        value,
        expected_revision: None,
    };
    written(store.txn(vec![op]).await.expect("update"))
}

pub async fn delete(store: &LmdbStore, key: &str) -> KeyValue {
    let op = Op::Delete {
        key: key.into(),
        expected_revision: None,
    };
    match store.txn(vec![op]).await.expect("delete").remove(0) {
        OpOutcome::Deleted(kv) => kv,
        other => panic!("expected Deleted, got {other:?}"),
    }
}

/// The next item of a watch; fails the test instead of hanging forever.
pub async fn next_item(stream: &mut EventStream) -> Option<Result<Arc<Event>, StoreError>> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("watch produced nothing for 10 s")
}

pub async fn next_event(stream: &mut EventStream) -> Arc<Event> {
    next_item(stream)
        .await
        .expect("stream ended")
        .expect("watch error")
}

/// Asserts that nothing arrives within a short while.
pub async fn assert_quiet(stream: &mut EventStream) {
    let got = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
    assert!(got.is_err(), "unexpected watch item: {:?}", got.unwrap());
}

pub fn revisions(events: &[Arc<Event>]) -> Vec<Revision> {
    events.iter().map(|e| e.revision).collect()
}
