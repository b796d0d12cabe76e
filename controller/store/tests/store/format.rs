//! The on-disk format: a store written in format 1 (three named databases) opens as
//! format 2 (one tree) with its objects, history and revisions intact.

use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, EnvOpenOptions, RwTxn};

use super::*;

/// Writes what format 1 kept for `k/a` created at 1 and updated at 2, and `k/b` created at 3.
fn write_format_1(dir: &Path) {
    let env = unsafe { EnvOpenOptions::new().max_dbs(4).open(dir) }.unwrap();
    let wtxn = env.write_txn().unwrap();
    env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
        let objects = opener.create_database::<Bytes, Bytes>(wtxn, Some("objects"))?;
        let history = opener.create_database::<U64<BigEndian>, Bytes>(wtxn, Some("history"))?;
        let meta = opener.create_database::<Str, U64<BigEndian>>(wtxn, Some("meta"))?;
        meta.put(wtxn, "format_version", &1)?;
        put_format_1_records(wtxn, objects, history)?;
        Ok(CommitOrAbort::<(), ()>::Commit(()))
    })
    .unwrap();
}

fn put_format_1_records(
    wtxn: &mut RwTxn,
    objects: Database<'_, Bytes, Bytes>,
    history: Database<'_, U64<BigEndian>, Bytes>,
) -> Result<(), heed::Error> {
    let json = |name: &str, data: &str, rv: u64| {
        let mut v = obj(name, data);
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        serde_json::to_vec(&v).unwrap()
    };
    let object = |create: u64, modified: u64, json: &[u8]| {
        let mut out = create.to_be_bytes().to_vec();
        out.extend_from_slice(&modified.to_be_bytes());
        out.extend_from_slice(json);
        out
    };
    let event = |kind: u8, create: u64, prev_mod: u64, key: &str, value: &[u8], prev: &[u8]| {
        let mut out = vec![kind];
        out.extend_from_slice(&create.to_be_bytes());
        out.extend_from_slice(&prev_mod.to_be_bytes());
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(prev);
        out
    };
    let (a1, a2, b3) = (json("a", "1", 1), json("a", "2", 2), json("b", "1", 3));
    objects.put(wtxn, b"k/a", &object(1, 2, &a2))?;
    objects.put(wtxn, b"k/b", &object(3, 3, &b3))?;
    history.put(wtxn, &1, &event(0, 1, 0, "k/a", &a1, &[]))?;
    history.put(wtxn, &2, &event(1, 1, 1, "k/a", &a2, &a1))?;
    history.put(wtxn, &3, &event(0, 3, 0, "k/b", &b3, &[]))
}

#[tokio::test]
async fn a_format_1_store_opens_as_format_2() {
    let dir = tempfile::tempdir().unwrap();
    write_format_1(dir.path());
    {
        let store = open(dir.path());
        assert_eq!(
            (store.current_revision(), store.compacted_revision()),
            (3, 0)
        );
        let a = store.get("k/a").unwrap().unwrap();
        assert_eq!((a.create_revision, a.mod_revision), (1, 2));
        assert_eq!(data(&a.value), "2");
        // The history answers a list at an older revision and a watch from the start.
        let at1 = list_at(&store, "k/", 1).unwrap();
        assert_eq!(at1.items.len(), 1);
        assert_eq!(data(&at1.items[0].value), "1");
        let mut all = store.watch("k/", 0).unwrap();
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(next_event(&mut all).await);
        }
        assert_eq!(revisions(&events), vec![1, 2, 3]);
        assert_eq!(data(events[1].prev_value.as_deref().unwrap()), "1");
        // New writes continue the revisions.
        update(&store, "k/b", obj("b", "2")).await;
        assert_eq!(store.current_revision(), 4);
    }
    // Reopened: format 2 now, nothing lost.
    let store = open(dir.path());
    assert_eq!(store.current_revision(), 4);
    assert_eq!(data(&store.get("k/b").unwrap().unwrap().value), "2");
    assert_eq!(count(&store, "k/"), 2);
}

#[test]
fn an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let env = unsafe { EnvOpenOptions::new().max_dbs(4).open(dir.path()) }.unwrap();
        let wtxn = env.write_txn().unwrap();
        env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
            let meta = opener.create_database::<Str, U64<BigEndian>>(wtxn, Some("meta"))?;
            meta.put(wtxn, "format_version", &7)?;
            Ok(CommitOrAbort::<(), ()>::Commit(()))
        })
        .unwrap();
    }
    match LmdbStore::open(dir.path(), StoreConfig::default()) {
        Err(StoreError::BadRecord { what, .. }) => assert!(what.contains("version 7"), "{what}"),
        Err(other) => panic!("expected BadRecord, got {other}"),
        Ok(_) => panic!("opened a store of format 7"),
    }
}

#[tokio::test]
async fn with_a_lock_dir_the_lock_file_lives_there_and_the_data_stays() {
    let root = tempfile::tempdir().unwrap();
    let (db, ram) = (root.path().join("db"), root.path().join("ram"));
    let config = || StoreConfig {
        lock_dir: Some(ram.clone()),
        ..StoreConfig::default()
    };
    {
        let store = open_with(&db, config());
        create(&store, "k/a", obj("a", "1")).await;
        let link = std::fs::read_link(db.join("lock.mdb")).unwrap();
        assert_eq!(link.parent().unwrap(), ram);
        assert!(link.exists(), "LMDB created its lock file through the link");
    }
    let store = open_with(&db, config());
    assert_eq!(data(&store.get("k/a").unwrap().unwrap().value), "1");
    drop(store);
    // Opened without one, the lock file is a regular file again.
    let store = open(&db);
    assert!(std::fs::symlink_metadata(db.join("lock.mdb"))
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(store.current_revision(), 1);
}

#[tokio::test]
async fn named_databases_an_older_bramble_added_do_not_hide_the_history() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        create(&store, "k/a", obj("a", "1")).await;
    }
    {
        // what an older Bramble opening this store after a rollback creates
        let env = unsafe { EnvOpenOptions::new().max_dbs(4).open(dir.path()) }.unwrap();
        let wtxn = env.write_txn().unwrap();
        env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
            for name in ["objects", "history", "meta"] {
                opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?;
            }
            Ok(CommitOrAbort::<(), ()>::Commit(()))
        })
        .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.current_revision(), 1);
    update(&store, "k/a", obj("a", "2")).await;
    assert_eq!(store.current_revision(), 2);
    assert_eq!(data(&store.get("k/a").unwrap().unwrap().value), "2");
}

#[tokio::test]
async fn a_format_1_store_is_copied_before_it_is_rewritten_and_init_can_drop_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    write_format_1(dir.path());
    drop(open(dir.path()));
    let copy = dir.path().join("pre-upgrade-format-1");
    // The copy is the store as format 1 kept it: what an older Bramble reads after a rollback.
    {
        let env = unsafe { EnvOpenOptions::new().max_dbs(4).open(&copy) }.unwrap();
        let rtxn = env.read_txn().unwrap();
        let meta = env
            .open_databases_and_commit(rtxn, |opener, rtxn| -> Result<_, heed::Error> {
                let meta = opener.open_database::<Str, U64<BigEndian>>(rtxn, Some("meta"))?;
                let objects = opener.open_database::<Bytes, Bytes>(rtxn, Some("objects"))?;
                let found = meta.unwrap().get(rtxn, "format_version")?;
                let len = objects.unwrap().len(rtxn)?;
                Ok(CommitOrAbort::<(), _>::Abort((found, len)))
            })
            .unwrap();
        match meta {
            CommitOrAbort::Abort(found) => assert_eq!(found, (Some(1), 2)),
            CommitOrAbort::Commit(()) => unreachable!("aborted above"),
        }
    }
    // A format 2 store is not copied again when it is opened.
    std::fs::remove_dir_all(&copy).unwrap();
    drop(open(dir.path()));
    assert!(!copy.exists());
    std::fs::create_dir(&copy).unwrap();
    bramble_store::lmdb::forget_pre_upgrade_copies(dir.path()).unwrap();
    assert!(!copy.exists());
    assert_eq!(count(&open(dir.path()), "k/"), 2);
}
