//! A de-duplicating work queue with rate-limited retries (client-go's workqueue semantics):
//! an item is queued at most once; an item added while it is being processed is queued again
//! when [`WorkQueue::done`] is called, so two workers never hold the same item; failures are
//! retried after a per-item exponential delay until [`WorkQueue::forget`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Retry delays: `base * 2^failures`, at most `max` (client-go's default item limiter uses
/// 5 ms and 1000 s).
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

struct State<T> {
    queue: VecDeque<T>,
    queued: HashSet<T>,
    processing: HashSet<T>,
    dirty: HashSet<T>,
    failures: HashMap<T, u32>,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    limit: RateLimit,
}

/// The queue; cheap to clone (clones share it).
pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue::new(RateLimit::default())
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> WorkQueue<T> {
    /// An empty queue retrying with `limit`.
    pub fn new(limit: RateLimit) -> WorkQueue<T> {
        WorkQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    queued: HashSet::new(),
                    processing: HashSet::new(),
                    dirty: HashSet::new(),
                    failures: HashMap::new(),
                }),
                ready: Notify::new(),
                limit,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless it is already queued; if a worker holds it, it is queued again
    /// once that worker calls [`WorkQueue::done`].
    pub fn add(&self, item: T) {
        let mut s = self.state();
        if s.queued.contains(&item) {
            return;
        }
        if s.processing.contains(&item) {
            s.dirty.insert(item);
            return;
        }
        s.queued.insert(item.clone());
        s.queue.push_back(item);
        drop(s);
        self.inner.ready.notify_one();
    }

    /// Queues `item` after `delay`.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(item);
        });
    }

    /// Queues `item` after its next retry delay (one more failure counted).
    pub fn add_rate_limited(&self, item: T) {
        let delay = {
            let mut s = self.state();
            let n = s.failures.entry(item.clone()).or_insert(0);
            let d = self
                .inner
                .limit
                .base
                .saturating_mul(1u32 << (*n).min(30))
                .min(self.inner.limit.max);
            *n = n.saturating_add(1);
            d
        };
        self.add_after(item, delay);
    }

    /// How many times `item` has failed since it was last forgotten.
    pub fn failures(&self, item: &T) -> u32 {
        self.state().failures.get(item).copied().unwrap_or(0)
    }

    /// Clears `item`'s failure count (after a success).
    pub fn forget(&self, item: &T) {
        self.state().failures.remove(item);
    }

    /// Waits for the next item; the caller owns it until [`WorkQueue::done`].
    pub async fn next(&self) -> T {
        loop {
            {
                let mut s = self.state();
                if let Some(item) = s.queue.pop_front() {
                    s.queued.remove(&item);
                    s.processing.insert(item.clone());
                    if !s.queue.is_empty() {
                        self.inner.ready.notify_one();
                    }
                    return item;
                }
            }
            self.inner.ready.notified().await;
        }
    }

    /// Marks `item` processed; queues it again if it was added meanwhile.
    pub fn done(&self, item: &T) {
        let mut s = self.state();
        s.processing.remove(item);
        if s.dirty.remove(item) {
            s.queued.insert(item.clone());
            s.queue.push_back(item.clone());
            drop(s);
            self.inner.ready.notify_one();
        }
    }

    /// Items waiting (not counting those being processed).
    pub fn len(&self) -> usize {
        self.state().queue.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
