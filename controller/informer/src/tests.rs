//! Unit tests of the work queue.

use std::time::Duration;

use crate::queue::{RateLimit, WorkQueue};

#[tokio::test]
async fn queue_deduplicates_waiting_items() {
    let q: WorkQueue<&str> = WorkQueue::default();
    q.add("a");
    q.add("b");
    q.add("a");
    assert_eq!(q.len(), 2);
    assert_eq!(q.next().await, "a");
    assert_eq!(q.next().await, "b");
    assert!(q.is_empty());
}

#[tokio::test]
async fn item_added_while_processing_comes_back_after_done() {
    let q: WorkQueue<&str> = WorkQueue::default();
    q.add("a");
    let item = q.next().await;
    q.add("a");
    // not handed to a second worker while the first holds it
    assert!(q.is_empty());
    q.done(&item);
    assert_eq!(q.len(), 1);
    assert_eq!(q.next().await, "a");
    q.done(&"a");
    assert!(q.is_empty());
}

#[tokio::test]
async fn rate_limited_retries_back_off_exponentially_until_forgotten() {
    let q: WorkQueue<&str> = WorkQueue::new(RateLimit {
        base: Duration::from_millis(40),
        max: Duration::from_millis(150),
    });
    let want = [40u128, 80, 150, 150];
    for w in want {
        let start = tokio::time::Instant::now();
        q.add_rate_limited("a");
        assert!(q.is_empty(), "not queued before its delay");
        let item = q.next().await;
        let took = start.elapsed().as_millis();
        assert!(took >= w, "retry after {took} ms, want at least {w} ms");
        q.done(&item);
    }
    assert_eq!(q.failures(&"a"), 4);
    q.forget(&"a");
    assert_eq!(q.failures(&"a"), 0);
}

#[tokio::test]
async fn workers_share_the_queue() {
    let q: WorkQueue<u32> = WorkQueue::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..3 {
        let q = q.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let i = q.next().await;
                tx.send(i).unwrap();
                q.done(&i);
            }
        });
    }
    for i in 0..100 {
        q.add(i);
    }
    let mut seen = Vec::new();
    while seen.len() < 100 {
        seen.push(rx.recv().await.unwrap());
    }
    seen.sort();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
}
