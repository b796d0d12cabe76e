//! Concurrent transactions share commits; each is acknowledged with a unique revision.

use std::collections::BTreeSet;
use std::sync::Arc;

use bramble_store::{Op, Store, StoreError};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_txns_are_group_committed_with_dense_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let n = 300u64;
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("core/configmaps/default/cm-{i:04}");
            create(&store, &key, obj("cm", &i.to_string())).await
        }));
    }
    let mut revisions = BTreeSet::new();
    for task in tasks {
        let kv = task.await.unwrap();
        assert_eq!(rv(&kv.value), kv.mod_revision.to_string());
        assert!(
            revisions.insert(kv.mod_revision),
            "revision {} handed out twice",
            kv.mod_revision
        );
    }
    assert_eq!(revisions, (1..=n).collect::<BTreeSet<_>>());
    assert_eq!(store.current_revision(), n);
    let stats = store.stats();
    assert_eq!(stats.txns_committed, n);
    assert_eq!(stats.ops, n);
    assert!(stats.commits < n, "no commit was shared: {stats:?}");
    assert!(stats.largest_batch > 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_txn_in_a_batch_does_not_affect_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "k/taken", obj("t", "0")).await;
    let store: Arc<dyn Store> = store;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every third transaction collides with an existing key.
            let key = if i % 3 == 0 {
                "k/taken".to_owned()
            } else {
                format!("k/{i}")
            };
            (
                i,
                store
                    .txn(vec![Op::Create {
                        key,
                        value: obj("o", "1"),
                    }])
                    .await,
            )
        }));
    }
    let mut ok = BTreeSet::new();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i % 3 == 0 {
            assert!(matches!(result, Err(StoreError::AlreadyExists(_))));
        } else {
            ok.insert(written(result.unwrap()).mod_revision);
        }
    }
    // 66 successes on top of revision 1, without gaps.
    assert_eq!(ok, (2..=67).collect::<BTreeSet<_>>());
    assert_eq!(store.current_revision(), 67);
    let listed = store.list("k/", Default::default()).unwrap();
    assert_eq!(listed.items.len(), 67);
}
