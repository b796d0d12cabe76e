//! Lists: prefix, pagination with filter and limit, lists at an exact older revision.

use bramble_store::lmdb::StoreConfig;
use bramble_store::{KeyValue, ListOptions, ListResult, Store, StoreError};

use super::*;

fn keys(result: &ListResult) -> Vec<&str> {
    result.items.iter().map(|kv| kv.key.as_str()).collect()
}

#[tokio::test]
async fn list_paginates_with_filter_limit_more_and_remaining() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "core/pods/a/zz", obj("other-ns", "0")).await;
    for i in 0..10 {
        create(
            &store,
            &format!("core/pods/b/p{i}"),
            obj("p", &i.to_string()),
        )
        .await;
    }
    create(&store, "core/pods/c/p0", obj("after", "0")).await;
    create(&store, "core/podsx/b/p0", obj("other-resource", "0")).await;

    let all = store.list("core/pods/b/", ListOptions::default()).unwrap();
    assert_eq!(all.items.len(), 10);
    assert_eq!(all.revision, 13);
    assert!(!all.more);
    assert_eq!(all.remaining, None);

    // limit without filter: remaining counts the keys after the last item.
    let page = store
        .list(
            "core/pods/b/",
            ListOptions {
                limit: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        keys(&page),
        ["core/pods/b/p0", "core/pods/b/p1", "core/pods/b/p2"]
    );
    assert!(page.more);
    assert_eq!(page.remaining, Some(7));

    // filter (even data) and limit 2, followed page by page with start_after.
    let even = |kv: &KeyValue| data(&kv.value).parse::<u32>().unwrap() % 2 == 0;
    let mut start_after = None;
    let mut pages = Vec::new();
    loop {
        let opts = ListOptions {
            start_after: start_after.clone(),
            limit: Some(2),
            filter: Some(&even),
            ..Default::default()
        };
        let page = store.list("core/pods/b/", opts).unwrap();
        assert_eq!(page.revision, 13);
        start_after = page.items.last().map(|kv| kv.key.clone());
        pages.push((
            keys(&page)
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>(),
            page.more,
            page.remaining,
        ));
        if !page.more {
            break;
        }
    }
    assert_eq!(
        pages,
        vec![
            (
                vec!["core/pods/b/p0".to_owned(), "core/pods/b/p2".to_owned()],
                true,
                Some(7)
            ),
            (
                vec!["core/pods/b/p4".to_owned(), "core/pods/b/p6".to_owned()],
                true,
                Some(3)
            ),
            (vec!["core/pods/b/p8".to_owned()], false, None),
        ]
    );

    // A filter that matches nothing after the limit: more is false.
    let first_two = |kv: &KeyValue| data(&kv.value).parse::<u32>().unwrap() < 2;
    let opts = ListOptions {
        limit: Some(2),
        filter: Some(&first_two),
        ..Default::default()
    };
    let page = store.list("core/pods/b/", opts).unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(!page.more);

    // start_after before the prefix starts at the prefix; after it, the result is empty.
    let opts = ListOptions {
        start_after: Some("core/a".into()),
        ..Default::default()
    };
    assert_eq!(store.list("core/pods/b/", opts).unwrap().items.len(), 10);
    let opts = ListOptions {
        start_after: Some("core/pods/b/p9".into()),
        ..Default::default()
    };
    assert!(store.list("core/pods/b/", opts).unwrap().items.is_empty());
    // Whole resource across namespaces, in key order.
    let pods = store.list("core/pods/", ListOptions::default()).unwrap();
    assert_eq!(pods.items.first().unwrap().key, "core/pods/a/zz");
    assert_eq!(pods.items.last().unwrap().key, "core/pods/c/p0");
    assert_eq!(pods.items.len(), 12);
}

#[tokio::test]
async fn list_at_exact_revision_rebuilds_older_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "r/a", obj("a", "a1")).await; // 1
    create(&store, "r/b", obj("b", "b1")).await; // 2
    create(&store, "r/c", obj("c", "c1")).await; // 3
    update(&store, "r/b", obj("b", "b2")).await; // 4
    delete(&store, "r/a").await; // 5
    create(&store, "r/d", obj("d", "d1")).await; // 6
    create(&store, "other/x", obj("x", "x1")).await; // 7
    update(&store, "r/b", obj("b", "b3")).await; // 8

    let at = |revision| list_at(&store, "r/", revision).unwrap();
    let summary = |result: &ListResult| -> Vec<(String, String, u64, u64)> {
        result
            .items
            .iter()
            .map(|kv| {
                assert_eq!(rv(&kv.value), kv.mod_revision.to_string());
                (
                    kv.key.clone(),
                    data(&kv.value),
                    kv.create_revision,
                    kv.mod_revision,
                )
            })
            .collect()
    };
    let s = |k: &str, d: &str, c: u64, m: u64| (k.to_owned(), d.to_owned(), c, m);

    assert!(at(0).items.is_empty());
    assert_eq!(summary(&at(1)), vec![s("r/a", "a1", 1, 1)]);
    let r3 = at(3);
    assert_eq!(r3.revision, 3);
    assert_eq!(
        summary(&r3),
        vec![
            s("r/a", "a1", 1, 1),
            s("r/b", "b1", 2, 2),
            s("r/c", "c1", 3, 3)
        ]
    );
    assert_eq!(
        summary(&at(4)),
        vec![
            s("r/a", "a1", 1, 1),
            s("r/b", "b2", 2, 4),
            s("r/c", "c1", 3, 3)
        ]
    );
    assert_eq!(
        summary(&at(5)),
        vec![s("r/b", "b2", 2, 4), s("r/c", "c1", 3, 3)]
    );
    assert_eq!(
        summary(&at(7)),
        vec![
            s("r/b", "b2", 2, 4),
            s("r/c", "c1", 3, 3),
            s("r/d", "d1", 6, 6)
        ]
    );
    let current = at(8);
    assert_eq!(current, store.list("r/", ListOptions::default()).unwrap());
    assert_eq!(current.revision, 8);

    // Pagination and filters apply to the rebuilt state.
    let not_c = |kv: &KeyValue| kv.key != "r/c";
    let opts = ListOptions {
        revision: Some(4),
        start_after: Some("r/a".into()),
        limit: Some(1),
        filter: Some(&not_c),
    };
    let page = store.list("r/", opts).unwrap();
    assert_eq!(summary(&page), vec![s("r/b", "b2", 2, 4)]);
    assert!(
        !page.more,
        "r/c is filtered out, nothing else follows at revision 4"
    );
    let opts = ListOptions {
        revision: Some(7),
        limit: Some(1),
        ..Default::default()
    };
    let page = store.list("r/", opts).unwrap();
    assert_eq!(
        (keys(&page), page.more, page.remaining),
        (vec!["r/b"], true, Some(2))
    );

    match list_at(&store, "r/", 9) {
        Err(StoreError::FutureRevision {
            requested: 9,
            current: 8,
        }) => {}
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

#[tokio::test]
async fn list_below_the_compacted_revision_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(
        dir.path(),
        StoreConfig {
            history_limit: 3,
            ..StoreConfig::default()
        },
    );
    for i in 0..5 {
        create(&store, &format!("r/{i}"), obj("o", "1")).await;
    }
    for i in 0..3 {
        update(&store, &format!("r/{i}"), obj("o", "2")).await;
    }
    // 8 revisions, 3 events kept: (5, 8].
    assert_eq!(store.compacted_revision(), 5);
    match list_at(&store, "r/", 4) {
        Err(StoreError::Compacted {
            requested: 4,
            compacted: 5,
        }) => {}
        other => panic!("expected Compacted, got {other:?}"),
    }
    let at5 = list_at(&store, "r/", 5).unwrap();
    assert_eq!(at5.items.len(), 5);
    assert!(at5.items.iter().all(|kv| data(&kv.value) == "1"));
    assert_eq!(store.stats().events_compacted, 5);
}
