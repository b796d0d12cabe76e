//! The write-ahead log and the overlay: reads that merge changes not yet checkpointed over
//! LMDB, checkpoints, replay of a log copied as a crash would leave it, and the log an
//! older Bramble leaves stale.

use std::time::Duration;

use bramble_store::{EventType, ListOptions};
use heed::types::Bytes;
use heed::{CommitOrAbort, EnvOpenOptions};

use super::*;

/// A configuration that never checkpoints on its own during a test.
fn no_checkpoints() -> StoreConfig {
    StoreConfig {
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_objects: usize::MAX,
        recent_events: 0,
        ..StoreConfig::default()
    }
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

fn page(store: &LmdbStore, after: Option<&str>, limit: usize) -> bramble_store::ListResult {
    store
        .list(
            "k/",
            ListOptions {
                start_after: after.map(str::to_owned),
                limit: Some(limit),
                ..Default::default()
            },
        )
        .unwrap()
}

/// Copies the store's files as a power cut would find them (every acknowledged write is
/// synced; the page cache is what the disk holds).
/// A store directory as a crash leaves it after [`lmdb_and_overlay`] (its files copied while
/// the store is open, nothing checkpointed since), and the list of `k/` it had acknowledged.
async fn crashed_with_overlay() -> (tempfile::TempDir, bramble_store::ListResult) {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), no_checkpoints());
    lmdb_and_overlay(&store).await;
    let before = store.list("k/", ListOptions::default()).unwrap();
    copy_files(dir.path(), crashed.path());
    (crashed, before)
}

fn copy_files(from: &Path, to: &Path) {
    for name in ["data.mdb", "wal.bramble"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

/// a..e created and checkpointed into LMDB; then, only in the overlay: b deleted, c
/// updated, f created. Returns the revision before the overlay's changes.
async fn lmdb_and_overlay(store: &LmdbStore) -> Revision {
    for name in ["a", "b", "c", "d", "e"] {
        create(store, &format!("k/{name}"), obj(name, "1")).await;
    }
    store.checkpoint().unwrap();
    let checkpointed = store.current_revision();
    delete(store, "k/b").await;
    update(store, "k/c", obj("c", "2")).await;
    create(store, "k/f", obj("f", "1")).await;
    checkpointed
}

#[tokio::test]
async fn reads_merge_the_overlay_over_lmdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), no_checkpoints());
    let before = lmdb_and_overlay(&store).await;
    assert_eq!(store.stats().checkpoints, 1);
    assert_eq!(before, 5);

    // a delete in the overlay hides LMDB's key; an update wins over LMDB's value
    assert_eq!(store.get("k/b").unwrap(), None);
    assert_eq!(data(&store.get("k/c").unwrap().unwrap().value), "2");
    assert_eq!(store.get("k/c").unwrap().unwrap().create_revision, 3);
    assert_eq!(data(&store.get("k/a").unwrap().unwrap().value), "1");
    let all = store.list("k/", ListOptions::default()).unwrap();
    assert_eq!(keys(&all.items), ["k/a", "k/c", "k/d", "k/e", "k/f"]);
    assert_eq!(all.revision, 8);

    // pagination across both: pages of two, continuing after the last key
    let first = page(&store, None, 2);
    assert_eq!(keys(&first.items), ["k/a", "k/c"]);
    assert_eq!((first.more, first.remaining), (true, Some(3)));
    let second = page(&store, Some("k/c"), 2);
    assert_eq!(keys(&second.items), ["k/d", "k/e"]);
    assert_eq!((second.more, second.remaining), (true, Some(1)));
    let third = page(&store, Some("k/e"), 2);
    assert_eq!(keys(&third.items), ["k/f"]);
    assert!(!third.more);
    // a continue token on a key only the overlay deleted
    assert_eq!(keys(&page(&store, Some("k/b"), 1).items), ["k/c"]);

    // the list as of before the overlay's changes, and in between
    let at = |revision| list_at(&store, "k/", revision).unwrap();
    let old = at(before);
    assert_eq!(keys(&old.items), ["k/a", "k/b", "k/c", "k/d", "k/e"]);
    assert_eq!(data(&old.items[2].value), "1");
    assert_eq!(keys(&at(6).items), ["k/a", "k/c", "k/d", "k/e"]);
    assert_eq!(keys(&at(3).items), ["k/a", "k/b", "k/c"]);

    // a watch from the start reads LMDB's history, then the overlay's
    let mut stream = store.watch("k/", 0).unwrap();
    let mut events = Vec::new();
    for _ in 0..8 {
        events.push(next_event(&mut stream).await);
    }
    assert_eq!(revisions(&events), (1..=8).collect::<Vec<_>>());
    assert_eq!(events[5].kind, EventType::Deleted);
    assert_eq!(events[5].key, "k/b");
    assert_eq!(data(events[6].prev_value.as_deref().unwrap()), "1");
    assert_quiet(&mut stream).await;
    update(&store, "k/a", obj("a", "2")).await;
    assert_eq!(next_event(&mut stream).await.revision, 9);
}

#[tokio::test]
async fn a_checkpoint_moves_the_overlay_into_lmdb_and_reads_stay_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), no_checkpoints());
    lmdb_and_overlay(&store).await;
    let before = store.list("k/", ListOptions::default()).unwrap();
    let wal_bytes = store.stats().wal_bytes;
    assert!(wal_bytes > 0);
    store.checkpoint().unwrap();
    assert_eq!(store.stats().checkpoints, 2);
    assert_eq!(store.list("k/", ListOptions::default()).unwrap(), before);
    // what LMDB alone now holds: a copy of data.mdb without the log
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("data.mdb"), copy.path().join("data.mdb")).unwrap();
    let lmdb_only = open(copy.path());
    assert_eq!(
        lmdb_only.list("k/", ListOptions::default()).unwrap(),
        before
    );
    drop(lmdb_only);
    drop(store);
    // closed cleanly: the log is empty, nothing to replay
    let store = open(dir.path());
    assert_eq!(store.stats().wal_records_replayed, 0);
    assert_eq!(store.list("k/", ListOptions::default()).unwrap(), before);
}

#[tokio::test]
async fn acknowledged_writes_only_in_the_log_are_replayed() {
    let (crashed, before) = crashed_with_overlay().await;

    let store = open(crashed.path());
    assert_eq!(store.stats().wal_records_replayed, 3);
    assert_eq!(store.current_revision(), 8);
    assert_eq!(store.list("k/", ListOptions::default()).unwrap(), before);
    // the history came back too, with the previous objects the log does not hold
    let mut stream = store.watch("k/", 5).unwrap();
    let deleted = next_event(&mut stream).await;
    assert_eq!((deleted.revision, deleted.kind), (6, EventType::Deleted));
    assert_eq!(data(deleted.prev_value.as_deref().unwrap()), "1");
    let updated = next_event(&mut stream).await;
    assert_eq!(rv(updated.prev_value.as_deref().unwrap()), "3");
    drop(stream);
    // revisions continue; replay happened once
    assert_eq!(create(&store, "k/g", obj("g", "1")).await.mod_revision, 9);
    drop(store);
    let store = open(crashed.path());
    assert_eq!(store.stats().wal_records_replayed, 0);
    assert_eq!(store.current_revision(), 9);
}

#[tokio::test]
async fn a_log_an_older_bramble_made_stale_is_ignored() {
    let (crashed, _) = crashed_with_overlay().await;
    // An older Bramble, which knows nothing of the log, opens the crashed store at revision
    // 5 and writes revision 6: k/z created.
    {
        let env = unsafe { EnvOpenOptions::new().max_dbs(4).open(crashed.path()) }.unwrap();
        let wtxn = env.write_txn().unwrap();
        env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
            let main = opener.create_database::<Bytes, Bytes>(wtxn, None)?;
            let mut json = obj("z", "1");
            json["metadata"]["resourceVersion"] = json!("6");
            let json = serde_json::to_vec(&json).unwrap();
            let mut object = 6u64.to_be_bytes().to_vec();
            object.extend_from_slice(&6u64.to_be_bytes());
            object.extend_from_slice(&json);
            main.put(wtxn, b"\x01k/z", &object)?;
            let mut event = vec![0u8];
            event.extend_from_slice(&6u64.to_be_bytes());
            event.extend_from_slice(&0u64.to_be_bytes());
            event.extend_from_slice(&3u32.to_be_bytes());
            event.extend_from_slice(b"k/z");
            event.extend_from_slice(&(json.len() as u32).to_be_bytes());
            event.extend_from_slice(&json);
            let mut key = vec![2u8];
            key.extend_from_slice(&6u64.to_be_bytes());
            main.put(wtxn, &key, &event)?;
            Ok(CommitOrAbort::<(), ()>::Commit(()))
        })
        .unwrap();
    }
    let store = open(crashed.path());
    assert_eq!(store.stats().wal_records_replayed, 0);
    assert_eq!(store.current_revision(), 6);
    let all = store.list("k/", ListOptions::default()).unwrap();
    assert_eq!(keys(&all.items), ["k/a", "k/b", "k/c", "k/d", "k/e", "k/z"]);
    assert_eq!(create(&store, "k/f", obj("f", "9")).await.mod_revision, 7);
}

#[tokio::test]
async fn a_full_log_or_a_batch_too_large_for_it_goes_to_lmdb() {
    let dir = tempfile::tempdir().unwrap();
    let config = || StoreConfig {
        wal_size: 16 * 1024,
        ..no_checkpoints()
    };
    let store = open_with(dir.path(), config());
    // ~1 KiB records: the 12 KiB of room fills up and a checkpoint makes room
    let big = "x".repeat(900);
    for i in 0..40 {
        create(&store, &format!("k/{i:02}"), obj("o", &big)).await;
    }
    let checkpoints = store.stats().checkpoints;
    assert!(checkpoints >= 2, "{:?}", store.stats());
    // one object larger than the whole log: straight into LMDB, no log record
    let wal_bytes = store.stats().wal_bytes;
    let huge = "y".repeat(64 * 1024);
    create(&store, "k/huge", obj("h", &huge)).await;
    assert_eq!(store.stats().wal_bytes, wal_bytes);
    // (after a checkpoint of the overlay, so the batch is committed over LMDB alone)
    assert_eq!(store.stats().checkpoints, checkpoints + 2);
    assert_eq!(data(&store.get("k/huge").unwrap().unwrap().value), huge);
    let before_huge = list_at(&store, "k/", 40).unwrap();
    assert_eq!((before_huge.items.len(), before_huge.revision), (40, 40));
    assert_eq!(count(&store, "k/"), 41);
    drop(store);
    let store = open_with(dir.path(), config());
    assert_eq!(count(&store, "k/"), 41);
    assert_eq!(
        std::fs::metadata(dir.path().join("wal.bramble"))
            .unwrap()
            .len(),
        16 * 1024
    );
}

/// A log holding changes of more than `checkpoint_objects` objects is checkpointed: LMDB
/// keeps the pages a transaction dirtied, so its transactions stay small.
#[tokio::test]
async fn a_log_holding_many_objects_is_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let config = || StoreConfig {
        checkpoint_objects: 8,
        ..no_checkpoints()
    };
    let store = open_with(dir.path(), config());
    let start = store.stats().checkpoints;
    for i in 0..8 {
        create(&store, &format!("k/{i}"), obj("o", "1")).await;
    }
    assert_eq!(store.stats().checkpoints, start);
    create(&store, "k/8", obj("o", "1")).await;
    assert_eq!(store.stats().checkpoints, start + 1, "the ninth object");
    for i in 9..18 {
        create(&store, &format!("k/{i}"), obj("o", "1")).await;
    }
    assert_eq!(store.stats().checkpoints, start + 2);
    drop(store);
    let store = open_with(dir.path(), config());
    assert_eq!(count(&store, "k/"), 18);
}

#[tokio::test]
async fn without_a_log_every_commit_is_an_lmdb_commit() {
    let dir = tempfile::tempdir().unwrap();
    let config = || StoreConfig {
        wal_size: 0,
        ..StoreConfig::default()
    };
    let store = open_with(dir.path(), config());
    create(&store, "k/a", obj("a", "1")).await;
    update(&store, "k/a", obj("a", "2")).await;
    assert_eq!(store.stats().checkpoints, 2);
    assert_eq!(store.stats().wal_bytes, 0);
    assert!(!dir.path().join("wal.bramble").exists());
    drop(store);
    assert_eq!(
        data(&open(dir.path()).get("k/a").unwrap().unwrap().value),
        "2"
    );
}

#[tokio::test]
async fn a_checkpoint_follows_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(
        dir.path(),
        StoreConfig {
            checkpoint_interval: Duration::from_millis(200),
            ..StoreConfig::default()
        },
    );
    create(&store, "k/a", obj("a", "1")).await;
    assert_eq!(store.stats().checkpoints, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.stats().checkpoints == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // idle afterwards: no further checkpoints
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.stats().checkpoints, 1);
}
