//! Going back to an older Bramble: a store a newer version rewrote into a newer format is
//! replaced by the copy taken before that upgrade, only when init asked for it after a
//! fallback; otherwise it is refused with an error naming the copy, and nothing changes.

use heed::byteorder::{BigEndian, ByteOrder};
use heed::types::Bytes;
use heed::{CommitOrAbort, EnvOpenOptions};

use bramble_store::lmdb::request_pre_upgrade_restore;

use super::*;

/// A store holding `k/a` = "1", then "upgraded" by a newer Bramble: the copy of format 2
/// that version keeps, then its own write of `k/b` and its format key 3.
async fn upgraded_by_a_newer_bramble(dir: &Path) {
    {
        let store = open(dir);
        create(&store, "k/a", obj("a", "1")).await;
    }
    let copy = dir.join("pre-upgrade-format-2");
    std::fs::create_dir(&copy).unwrap();
    for name in ["data.mdb", "wal.bramble"] {
        std::fs::copy(dir.join(name), copy.join(name)).unwrap();
    }
    {
        let store = open(dir);
        create(&store, "k/b", obj("b", "newer")).await;
    }
    let env = unsafe { EnvOpenOptions::new().max_dbs(4).open(dir) }.unwrap();
    let wtxn = env.write_txn().unwrap();
    env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
        let main = opener.create_database::<Bytes, Bytes>(wtxn, None)?;
        let mut three = [0u8; 8];
        BigEndian::write_u64(&mut three, 3);
        main.put(wtxn, b"\x00format_version", &three)?;
        Ok(CommitOrAbort::<(), ()>::Commit(()))
    })
    .unwrap();
}

fn refused(dir: &Path) -> String {
    match LmdbStore::open(dir, StoreConfig::default()) {
        Err(StoreError::BadRecord { what, .. }) => what,
        Err(other) => panic!("expected BadRecord, got {other}"),
        Ok(_) => panic!("opened a store of format 3"),
    }
}

#[tokio::test]
async fn without_a_request_a_newer_store_is_refused_and_the_error_names_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    upgraded_by_a_newer_bramble(dir.path()).await;
    let what = refused(dir.path());
    assert!(what.contains("version 3"), "{what}");
    assert!(what.contains("newer Bramble"), "{what}");
    assert!(what.contains("pre-upgrade-format-2"), "{what}");
    // Nothing moved: refused again, the copy still there.
    assert!(refused(dir.path()).contains("version 3"));
    assert!(dir.path().join("pre-upgrade-format-2/data.mdb").is_file());
}

#[tokio::test]
async fn after_a_fallback_a_newer_store_goes_back_to_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    upgraded_by_a_newer_bramble(dir.path()).await;
    request_pre_upgrade_restore(dir.path()).unwrap();
    {
        let store = open(dir.path());
        assert_eq!(data(&store.get("k/a").unwrap().unwrap().value), "1");
        assert!(
            store.get("k/b").unwrap().is_none(),
            "the newer version's write"
        );
        assert_eq!(store.current_revision(), 1);
        update(&store, "k/a", obj("a", "2")).await;
    }
    // The newer store is kept aside; the request and the copy are spent.
    assert!(dir.path().join("newer-format-3/data.mdb").is_file());
    assert!(!dir.path().join("pre-upgrade-format-2").exists());
    assert!(!dir.path().join("restore-pre-upgrade").exists());
    let store = open(dir.path());
    assert_eq!(data(&store.get("k/a").unwrap().unwrap().value), "2");
}

#[tokio::test]
async fn a_restore_interrupted_after_the_newer_store_moved_aside_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    upgraded_by_a_newer_bramble(dir.path()).await;
    request_pre_upgrade_restore(dir.path()).unwrap();
    // A crash after the newer store's files moved aside, before the copy moved in.
    let aside = dir.path().join("newer-format-3");
    std::fs::create_dir(&aside).unwrap();
    for name in ["wal.bramble", "data.mdb"] {
        std::fs::rename(dir.path().join(name), aside.join(name)).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(data(&store.get("k/a").unwrap().unwrap().value), "1");
    assert!(store.get("k/b").unwrap().is_none());
    assert!(!dir.path().join("restore-pre-upgrade").exists());
}

#[tokio::test]
async fn a_request_finding_a_readable_store_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        create(&store, "k/a", obj("a", "1")).await;
    }
    request_pre_upgrade_restore(dir.path()).unwrap();
    let store = open(dir.path());
    assert_eq!(data(&store.get("k/a").unwrap().unwrap().value), "1");
    assert_eq!(store.current_revision(), 1);
    assert!(!dir.path().join("restore-pre-upgrade").exists());
}
