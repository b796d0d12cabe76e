//! Watches: from history, live, prefixes, compaction, across reopen.

use bramble_store::lmdb::StoreConfig;
use bramble_store::{EventType, Store, StoreError};

use super::*;

async fn collect(stream: &mut EventStream, n: usize) -> Vec<Arc<Event>> {
    let mut events = Vec::new();
    for _ in 0..n {
        events.push(next_event(stream).await);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_replays_history_then_follows_live_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "core/pods/a", obj("a", "1")).await; // 1
    create(&store, "core/nodes/n", obj("n", "1")).await; // 2
    update(&store, "core/pods/a", obj("a", "2")).await; // 3
    delete(&store, "core/pods/a").await; // 4

    let mut all = store.watch("", 0).unwrap();
    let events = collect(&mut all, 4).await;
    assert_eq!(revisions(&events), vec![1, 2, 3, 4]);
    let kinds: Vec<EventType> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventType::Added,
            EventType::Added,
            EventType::Modified,
            EventType::Deleted
        ]
    );
    assert_eq!(events[0].prev_value, None);
    assert_eq!(data(events[2].prev_value.as_ref().unwrap()), "1");
    assert_eq!(rv(&events[2].value), "3");
    // The deleted object: last state, stamped with the deleting revision.
    assert_eq!(
        (
            rv(&events[3].value).as_str(),
            data(&events[3].value).as_str()
        ),
        ("4", "2")
    );
    assert_eq!(rv(events[3].prev_value.as_ref().unwrap()), "3");
    assert_quiet(&mut all).await;

    // From the middle, with a prefix.
    let mut pods = store.watch("core/pods/", 1).unwrap();
    assert_eq!(revisions(&collect(&mut pods, 2).await), vec![3, 4]);
    assert_quiet(&mut pods).await;

    // Live events reach both watchers, each once, in order; other prefixes are skipped.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                let prefix = if i % 2 == 0 {
                    "core/pods"
                } else {
                    "core/nodes"
                };
                create(&store, &format!("{prefix}/live-{i}"), obj("l", "1")).await;
            }
        })
    };
    let live = collect(&mut all, 20).await;
    assert_eq!(revisions(&live), (5..=24).collect::<Vec<_>>());
    let live_pods = collect(&mut pods, 10).await;
    assert_eq!(
        revisions(&live_pods),
        (5..=24).step_by(2).collect::<Vec<_>>()
    );
    assert!(live_pods.iter().all(|e| e.key.starts_with("core/pods/")));
    writer.await.unwrap();
    assert_quiet(&mut all).await;
    assert_quiet(&mut pods).await;

    // A watch from the current revision sees only what comes next.
    let mut from_now = store.watch("", store.current_revision()).unwrap();
    assert_quiet(&mut from_now).await;
    update(&store, "core/nodes/n", obj("n", "2")).await;
    assert_eq!(next_event(&mut from_now).await.revision, 25);
}

#[tokio::test]
async fn watch_reads_long_history_from_lmdb_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny ring and small read batches force the LMDB path and several batches.
    let config = StoreConfig {
        recent_events: 4,
        watch_read_batch: 7,
        ..StoreConfig::default()
    };
    let store = open_with(dir.path(), config);
    for i in 0..50 {
        create(
            &store,
            &format!("k/{}/{i}", i % 3),
            obj("o", &i.to_string()),
        )
        .await;
    }
    let mut stream = store.watch("k/1/", 0).unwrap();
    let events = collect(&mut stream, 17).await;
    let expected: Vec<u64> = (0..50u64).filter(|i| i % 3 == 1).map(|i| i + 1).collect();
    assert_eq!(revisions(&events), expected);
    assert_quiet(&mut stream).await;
    create(&store, "k/1/live", obj("o", "x")).await;
    assert_eq!(next_event(&mut stream).await.revision, 51);
}

#[tokio::test]
async fn watch_before_compaction_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        history_limit: 5,
        ..StoreConfig::default()
    };
    let store = open_with(dir.path(), config);
    let mut early = store.watch("", 0).unwrap();
    for i in 0..12 {
        create(&store, &format!("k/{i}"), obj("o", "1")).await;
    }
    assert_eq!(store.compacted_revision(), 7);

    // At start: refused.
    match store.watch("", 6) {
        Err(StoreError::Compacted {
            requested: 6,
            compacted: 7,
        }) => {}
        Err(other) => panic!("expected Compacted, got {other:?}"),
        Ok(_) => panic!("expected Compacted, got a stream"),
    }
    // The oldest kept position works.
    let mut oldest = store.watch("", 7).unwrap();
    assert_eq!(
        revisions(&collect(&mut oldest, 5).await),
        vec![8, 9, 10, 11, 12]
    );

    // A watcher that fell behind the compaction point gets the error as its last item.
    match next_item(&mut early).await {
        Some(Err(StoreError::Compacted {
            requested: 0,
            compacted: 7,
        })) => {}
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(next_item(&mut early).await.is_none());
}

#[tokio::test]
async fn history_survives_reopen_and_resumed_watch_sees_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let last_seen;
    {
        let store = open(dir.path());
        let mut stream = store.watch("k/", 0).unwrap();
        for i in 0..10 {
            create(&store, &format!("k/{i}"), obj("o", "1")).await;
        }
        let seen = collect(&mut stream, 6).await;
        last_seen = seen.last().unwrap().revision;
        assert_eq!(last_seen, 6);
        // The stream must go before the store can be reopened in this process.
        drop(stream);
    }
    let store = open(dir.path());
    assert_eq!(store.current_revision(), 10);
    let mut from_zero = store.watch("k/", 0).unwrap();
    assert_eq!(
        revisions(&collect(&mut from_zero, 10).await),
        (1..=10).collect::<Vec<_>>()
    );

    let mut resumed = store.watch("k/", last_seen).unwrap();
    for i in 10..15 {
        create(&store, &format!("k/{i}"), obj("o", "1")).await;
    }
    assert_eq!(
        revisions(&collect(&mut resumed, 9).await),
        (7..=15).collect::<Vec<_>>()
    );
    assert_quiet(&mut resumed).await;
}

#[tokio::test]
async fn watch_ends_with_closed_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "k/a", obj("a", "1")).await;
    let mut stream = store.watch("", 0).unwrap();
    drop(store);
    assert_eq!(next_event(&mut stream).await.revision, 1);
    assert!(matches!(
        next_item(&mut stream).await,
        Some(Err(StoreError::Closed))
    ));
    assert!(next_item(&mut stream).await.is_none());
}

#[tokio::test]
async fn progress_watch_reports_how_far_it_has_looked() {
    use bramble_store::{ProgressStream, WatchItem};
    async fn next(stream: &mut ProgressStream) -> WatchItem {
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("no item for 10 s")
            .expect("stream ended")
            .expect("watch error")
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    create(&store, "core/nodes/n", obj("n", "1")).await; // 1
    create(&store, "core/pods/p", obj("p", "1")).await; // 2
    create(&store, "core/nodes/m", obj("m", "1")).await; // 3

    let mut stream = store.watch_with_progress("core/pods/", 0).unwrap();
    match next(&mut stream).await {
        WatchItem::Event(event) => assert_eq!(event.revision, 2),
        other => panic!("expected the pod event, got {other:?}"),
    }
    assert_eq!(next(&mut stream).await, WatchItem::Progress(3));
    // Unrelated writes move the progress; related ones arrive as events first.
    update(&store, "core/nodes/n", obj("n", "2")).await; // 4
    assert_eq!(next(&mut stream).await, WatchItem::Progress(4));
    update(&store, "core/pods/p", obj("p", "2")).await; // 5
    assert!(matches!(next(&mut stream).await, WatchItem::Event(e) if e.revision == 5));
    assert_eq!(next(&mut stream).await, WatchItem::Progress(5));
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(200), stream.next()).await;
    assert!(quiet.is_err(), "nothing changed, nothing to report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_watchers_see_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // A small ring and small batches so watchers switch between the ring and LMDB.
    let config = StoreConfig {
        recent_events: 8,
        watch_read_batch: 5,
        ..StoreConfig::default()
    };
    let store = open_with(dir.path(), config);
    let writers = 4u64;
    let per_writer = 100u64;
    let total = writers * per_writer;

    let mut watchers = Vec::new();
    for prefix in ["", "w/0/", "w/3/"] {
        let mut stream = store.watch(prefix, 0).unwrap();
        let expected = if prefix.is_empty() { total } else { per_writer } as usize;
        watchers.push(tokio::spawn(async move {
            let mut events = Vec::with_capacity(expected);
            for _ in 0..expected {
                events.push(next_event(&mut stream).await);
                if events.len() % 37 == 0 {
                    // An occasionally slow consumer.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            assert_quiet(&mut stream).await;
            (prefix, events)
        }));
    }
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                create(&store, &format!("w/{w}/{i}"), obj("o", &i.to_string())).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for watcher in watchers {
        let (prefix, events) = watcher.await.unwrap();
        let revs = revisions(&events);
        assert!(
            revs.windows(2).all(|w| w[0] < w[1]),
            "{prefix:?}: out of order or repeated"
        );
        assert!(events.iter().all(|e| e.key.starts_with(prefix)));
        if prefix.is_empty() {
            assert_eq!(revs, (1..=total).collect::<Vec<_>>());
        } else {
            // Each writer's own creates, in its order.
            let numbers: Vec<String> = events.iter().map(|e| data(&e.value)).collect();
            let expected: Vec<String> = (0..per_writer).map(|i| i.to_string()).collect();
            assert_eq!(numbers, expected, "{prefix:?}");
        }
    }
    assert!(store.stats().commits < total);
}

#[tokio::test]
async fn an_unpolled_watcher_catches_up_from_lmdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut stream = store.watch("k/", 0).unwrap();
    for i in 0..1000 {
        create(&store, &format!("k/{i:04}"), obj("o", "1")).await;
    }
    // Far more than the in-memory ring holds: the rest comes back from LMDB.
    let events = collect(&mut stream, 1000).await;
    assert_eq!(revisions(&events), (1..=1000).collect::<Vec<_>>());
    assert_quiet(&mut stream).await;
}
