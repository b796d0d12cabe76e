//! Create/get/update/delete semantics, error cases, revisions, multi-op atomicity.

use bramble_store::lmdb::{LmdbStore, StoreConfig};
use bramble_store::{Op, OpOutcome, Store, StoreError};
use serde_json::json;

use super::*;

#[tokio::test]
async fn create_get_update_delete_stamp_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.current_revision(), 0);
    assert_eq!(store.get("core/configmaps/default/a").unwrap(), None);

    let kv = create(&store, "core/configmaps/default/a", obj("a", "one")).await;
    assert_eq!((kv.create_revision, kv.mod_revision), (1, 1));
    assert_eq!(rv(&kv.value), "1");
    assert_eq!(
        store.get("core/configmaps/default/a").unwrap(),
        Some(kv.clone())
    );
    assert_eq!(store.current_revision(), 1);

    let kv2 = update(&store, "core/configmaps/default/a", obj("a", "two")).await;
    assert_eq!((kv2.create_revision, kv2.mod_revision), (1, 2));
    assert_eq!(
        (rv(&kv2.value).as_str(), data(&kv2.value).as_str()),
        ("2", "two")
    );

    let gone = delete(&store, "core/configmaps/default/a").await;
    assert_eq!((gone.create_revision, gone.mod_revision), (1, 3));
    assert_eq!(
        rv(&gone.value),
        "3",
        "a deleted object carries the deleting revision"
    );
    assert_eq!(data(&gone.value), "two");
    assert_eq!(store.get("core/configmaps/default/a").unwrap(), None);
    assert_eq!(store.current_revision(), 3);

    // The key can be created again; it gets a new create revision.
    let again = create(&store, "core/configmaps/default/a", obj("a", "three")).await;
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
}

#[tokio::test]
async fn writer_only_touches_resource_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let input = json!({
        "kind": "Pod",
        "metadata": {"name": "p", "resourceVersion": "999", "uid": "u-1", "labels": {"b": "1", "a": "2"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "z": null, "n": 1.5},
        "apiVersion": "v1"
    });
    let kv = create(&store, "core/pods/default/p", input.clone()).await;
    let mut expected = input;
    expected["metadata"]["resourceVersion"] = json!("1");
    // Same document, same key order (preserve_order), only the resourceVersion differs.
    assert_eq!(
        std::str::from_utf8(&kv.value).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
}

#[tokio::test]
async fn preconditions_fail_without_consuming_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "k/a", obj("a", "1")).await;

    let err = store
        .txn(vec![Op::Create {
            key: "k/a".into(),
            value: obj("a", "x"),
        }])
        .await;
    assert!(matches!(err, Err(StoreError::AlreadyExists(k)) if k == "k/a"));

    let op = Op::Update {
        key: "k/missing".into(),
        value: obj("m", "x"),
        expected_revision: None,
    };
    assert!(matches!(store.txn(vec![op]).await, Err(StoreError::NotFound(k)) if k == "k/missing"));

    let op = Op::Update {
        key: "k/a".into(),
        value: obj("a", "x"),
        expected_revision: Some(7),
    };
    match store.txn(vec![op]).await {
        Err(StoreError::Conflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!((key.as_str(), expected, actual), ("k/a", 7, 1))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    let op = Op::Delete {
        key: "k/missing".into(),
        expected_revision: None,
    };
    assert!(matches!(
        store.txn(vec![op]).await,
        Err(StoreError::NotFound(_))
    ));
    let op = Op::Delete {
        key: "k/a".into(),
        expected_revision: Some(2),
    };
    assert!(matches!(
        store.txn(vec![op]).await,
        Err(StoreError::Conflict { actual: 1, .. })
    ));

    let op = Op::Create {
        key: "k/nometa".into(),
        value: json!({"kind": "X"}),
    };
    assert!(matches!(
        store.txn(vec![op]).await,
        Err(StoreError::NoMetadata { .. })
    ));
    let op = Op::Create {
        key: "k/".repeat(300),
        value: obj("long", "1"),
    };
    assert!(matches!(
        store.txn(vec![op]).await,
        Err(StoreError::KeyTooLong { .. })
    ));

    assert_eq!(store.current_revision(), 1);
    // Matching preconditions succeed.
    let op = Op::Update {
        key: "k/a".into(),
        value: obj("a", "2"),
        expected_revision: Some(1),
    };
    assert_eq!(written(store.txn(vec![op]).await.unwrap()).mod_revision, 2);
    let op = Op::Delete {
        key: "k/a".into(),
        expected_revision: Some(2),
    };
    assert!(matches!(
        store.txn(vec![op]).await.unwrap()[0],
        OpOutcome::Deleted(_)
    ));
    assert_eq!(store.stats().txns_committed, 3);
    assert_eq!(store.stats().txns_failed, 7);
}

#[tokio::test]
async fn multi_op_txn_is_atomic_and_gets_consecutive_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "k/existing", obj("e", "0")).await;

    // The last op fails: nothing of the transaction is applied.
    let ops = vec![
        Op::Create {
            key: "k/x".into(),
            value: obj("x", "1"),
        },
        Op::Update {
            key: "k/existing".into(),
            value: obj("e", "1"),
            expected_revision: None,
        },
        Op::Delete {
            key: "k/nope".into(),
            expected_revision: None,
        },
    ];
    assert!(matches!(store.txn(ops).await, Err(StoreError::NotFound(k)) if k == "k/nope"));
    assert_eq!(store.get("k/x").unwrap(), None);
    assert_eq!(data(&store.get("k/existing").unwrap().unwrap().value), "0");
    assert_eq!(store.current_revision(), 1);

    // Ops within one transaction see each other and get one revision each.
    let ops = vec![
        Op::Create {
            key: "k/x".into(),
            value: obj("x", "1"),
        },
        Op::Update {
            key: "k/x".into(),
            value: obj("x", "2"),
            expected_revision: Some(2),
        },
        Op::Delete {
            key: "k/existing".into(),
            expected_revision: Some(1),
        },
    ];
    let out = store.txn(ops).await.unwrap();
    let revs: Vec<u64> = out
        .iter()
        .map(|o| match o {
            OpOutcome::Written(kv) | OpOutcome::Deleted(kv) => kv.mod_revision,
        })
        .collect();
    assert_eq!(revs, vec![2, 3, 4]);
    let x = store.get("k/x").unwrap().unwrap();
    assert_eq!(
        (x.create_revision, x.mod_revision, data(&x.value)),
        (2, 3, "2".to_owned())
    );
    assert_eq!(store.current_revision(), 4);
    assert!(store.txn(vec![]).await.unwrap().is_empty());
}

#[tokio::test]
async fn state_and_revisions_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        create(&store, "k/a", obj("a", "1")).await;
        create(&store, "k/b", obj("b", "1")).await;
        delete(&store, "k/b").await;
    }
    let store = open(dir.path());
    assert_eq!(store.current_revision(), 3);
    assert_eq!(store.get("k/a").unwrap().unwrap().mod_revision, 1);
    assert_eq!(store.get("k/b").unwrap(), None);
    assert_eq!(create(&store, "k/c", obj("c", "1")).await.mod_revision, 4);
}

#[tokio::test]
async fn backup_copy_opens_as_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..20 {
        create(&store, &format!("k/{i:02}"), obj("o", &i.to_string())).await;
    }
    assert!(store.disk_size().unwrap() > 0);
    let backup = tempfile::tempdir().unwrap();
    store.backup_to(&backup.path().join("data.mdb")).unwrap();
    drop(store);
    let restored = open(backup.path());
    assert_eq!(restored.current_revision(), 20);
    assert_eq!(data(&restored.get("k/07").unwrap().unwrap().value), "7");
}

#[test]
fn invalid_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        history_limit: 0,
        ..StoreConfig::default()
    };
    assert!(matches!(
        LmdbStore::open(dir.path(), config),
        Err(StoreError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn compaction_point_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let small = || StoreConfig {
        history_limit: 3,
        ..StoreConfig::default()
    };
    {
        let store = LmdbStore::open(dir.path(), small()).unwrap();
        for i in 0..8 {
            create(&store, &format!("k/{i}"), obj("o", "1")).await;
        }
        assert_eq!(
            (store.current_revision(), store.compacted_revision()),
            (8, 5)
        );
    }
    let store = LmdbStore::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(
        (store.current_revision(), store.compacted_revision()),
        (8, 5)
    );
    // A larger limit keeps more from now on; nothing more is compacted.
    create(&store, "k/8", obj("o", "1")).await;
    assert_eq!(
        (store.current_revision(), store.compacted_revision()),
        (9, 5)
    );
    assert!(matches!(
        store.watch("", 4),
        Err(StoreError::Compacted { compacted: 5, .. })
    ));
}
