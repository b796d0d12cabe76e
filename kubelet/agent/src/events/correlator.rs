//! client-go's event correlator (`tools/record/events_cache.go`): repeats of one event bump
//! its count, more than [`AGGREGATE_MAX`] similar events within [`AGGREGATE_INTERVAL`] are
//! combined, and a token bucket per event drops spam. Every cache is a bounded LRU.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;

use super::EventType;

/// What the correlator decided for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Drop it (spam filter).
    Drop,
    /// Create a new Event object with this message.
    Create {
        /// The (possibly combined) message.
        message: String,
        /// The correlator's key for it (hand back to [`Correlator::created`]).
        key: String,
    },
    /// Bump the existing Event `name` in `namespace` to `count` with this message.
    Update {
        /// Namespace of the existing event.
        namespace: String,
        /// Name of the existing event.
        name: String,
        /// New count.
        count: i32,
        /// The message (the first one for a combined event).
        message: String,
        /// The first timestamp of the existing event.
        first: Timestamp,
    },
}

/// A bounded map evicting the least recently used entry.
struct Lru<V> {
    map: HashMap<String, (V, u64)>,
    tick: u64,
    cap: usize,
}

impl<V> Lru<V> {
    fn new(cap: usize) -> Self {
        Lru {
            map: HashMap::new(),
            tick: 0,
            cap,
        }
    }

    fn get_mut(&mut self, k: &str) -> Option<&mut V> {
        self.tick += 1;
        let t = self.tick;
        self.map.get_mut(k).map(|(v, used)| {
            *used = t;
            v
        })
    }

    fn insert(&mut self, k: String, v: V) {
        self.tick += 1;
        if self.map.len() >= self.cap && !self.map.contains_key(&k) {
            if let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(k, (v, self.tick));
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// client-go's cache size.
const CACHE_ENTRIES: usize = 4096;
/// Events differing only in message are combined past this many...
const AGGREGATE_MAX: usize = 10;
/// ...within this interval.
const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
/// Spam filter burst.
const SPAM_BURST: f64 = 25.0;
/// Spam filter refill: one token per this many seconds.
const SPAM_REFILL_SECS: f64 = 300.0;
/// Prefix of a combined event's message.
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

struct Aggregate {
    messages: std::collections::HashSet<String>,
    since: Instant,
}

struct Logged {
    namespace: String,
    name: String,
    count: i32,
    first: Timestamp,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// client-go's `EventCorrelator`: spam filter, aggregation of similar events, and count of
/// identical ones. Pure bookkeeping; the writer acts on its [`Decision`]s.
pub struct Correlator {
    aggregates: Lru<Aggregate>,
    logged: Lru<Logged>,
    spam: Lru<Bucket>,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator {
            aggregates: Lru::new(CACHE_ENTRIES),
            logged: Lru::new(CACHE_ENTRIES),
            spam: Lru::new(CACHE_ENTRIES),
        }
    }
}

fn object_key(o: &ObjectReference) -> String {
    [
        o.kind.as_deref(),
        o.namespace.as_deref(),
        o.name.as_deref(),
        o.uid.as_deref(),
        o.api_version.as_deref(),
        o.field_path.as_deref(),
    ]
    .iter()
    .map(|s| s.unwrap_or(""))
    .collect::<Vec<_>>()
    .join("\u{1}")
}

impl Correlator {
    /// Decides what to do with an event of `object` at `now`.
    pub fn observe(
        &mut self,
        object: &ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
        now: Instant,
    ) -> Decision {
        let obj = object_key(object);
        let spam_key = format!("{obj}\u{1}{}\u{1}{reason}\u{1}{message}", kind.as_str());
        if !self.take_token(&spam_key, now) {
            return Decision::Drop;
        }
        // Aggregation by everything but the message.
        let agg_key = format!("{obj}\u{1}{}\u{1}{reason}", kind.as_str());
        let combined = match self.aggregates.get_mut(&agg_key) {
            Some(a) if now.duration_since(a.since) <= AGGREGATE_INTERVAL => {
                a.messages.insert(message.to_string());
                a.messages.len() >= AGGREGATE_MAX
            }
            _ => {
                let mut messages = std::collections::HashSet::new();
                messages.insert(message.to_string());
                self.aggregates.insert(
                    agg_key.clone(),
                    Aggregate {
                        messages,
                        since: now,
                    },
                );
                false
            }
        };
        let (log_key, message) = if combined {
            (agg_key, format!("{COMBINED_PREFIX}{message}"))
        } else {
            (spam_key, message.to_string())
        };
        match self.logged.get_mut(&log_key) {
            Some(l) => {
                l.count += 1;
                Decision::Update {
                    namespace: l.namespace.clone(),
                    name: l.name.clone(),
                    count: l.count,
                    message,
                    first: l.first,
                }
            }
            None => Decision::Create {
                message,
                key: log_key,
            },
        }
    }

    /// Remembers the Event object `namespace/name` created for a [`Decision::Create`].
    pub fn created(&mut self, key: String, namespace: &str, name: &str, first: Timestamp) {
        self.logged.insert(
            key,
            Logged {
                namespace: namespace.to_string(),
                name: name.to_string(),
                count: 1,
                first,
            },
        );
    }

    /// Forgets an Event object that no longer exists (expired by its TTL).
    pub(super) fn forget(&mut self, namespace: &str, name: &str) {
        self.logged
            .map
            .retain(|_, (l, _)| !(l.namespace == namespace && l.name == name));
    }

    fn take_token(&mut self, key: &str, now: Instant) -> bool {
        let bucket = match self.spam.get_mut(key) {
            Some(b) => b,
            None => {
                self.spam.insert(
                    key.to_string(),
                    Bucket {
                        tokens: SPAM_BURST,
                        at: now,
                    },
                );
                self.spam.get_mut(key).expect("just inserted")
            }
        };
        let refill = now.duration_since(bucket.at).as_secs_f64() / SPAM_REFILL_SECS;
        bucket.tokens = (bucket.tokens + refill).min(SPAM_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Entries held (for the memory bound's test).
    pub fn len(&self) -> usize {
        self.aggregates.len() + self.logged.len() + self.spam.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::pod_reference;
    use crate::events::tests::pod;

    #[test]
    fn repeats_bump_the_count() {
        let mut c = Correlator::default();
        let r = pod_reference(&pod(), Some("app"));
        let t = Instant::now();
        let Decision::Create { message, key } =
            c.observe(&r, EventType::Warning, "BackOff", "m", t)
        else {
            panic!("first event is created")
        };
        assert_eq!(message, "m");
        c.created(key, "ns", "web.1", Timestamp::now());
        for n in 2..5 {
            match c.observe(&r, EventType::Warning, "BackOff", "m", t) {
                Decision::Update { name, count, .. } => {
                    assert_eq!(name, "web.1");
                    assert_eq!(count, n);
                }
                d => panic!("{d:?}"),
            }
        }
        // Another container's event is its own.
        let other = pod_reference(&pod(), Some("setup"));
        assert!(matches!(
            c.observe(&other, EventType::Warning, "BackOff", "m", t),
            Decision::Create { .. }
        ));
    }

    #[test]
    fn similar_messages_are_combined() {
        let mut c = Correlator::default();
        let r = pod_reference(&pod(), None);
        let t = Instant::now();
        for i in 0..AGGREGATE_MAX - 1 {
            let d = c.observe(&r, EventType::Normal, "X", &format!("m{i}"), t);
            assert!(matches!(d, Decision::Create { message, .. } if message == format!("m{i}")));
        }
        let Decision::Create { message, key } = c.observe(&r, EventType::Normal, "X", "m-last", t)
        else {
            panic!("combined event is created")
        };
        assert_eq!(message, format!("{COMBINED_PREFIX}m-last"));
        c.created(key, "ns", "web.c", Timestamp::now());
        // Further similar events bump the combined one.
        let d = c.observe(&r, EventType::Normal, "X", "m-other", t);
        assert!(matches!(d, Decision::Update { name, count: 2, .. } if name == "web.c"));
    }

    #[test]
    fn spam_filter_limits_bursts_and_refills() {
        let mut c = Correlator::default();
        let r = pod_reference(&pod(), None);
        let t = Instant::now();
        let passed = (0..40)
            .filter(|_| c.observe(&r, EventType::Normal, "X", "same", t) != Decision::Drop)
            .count();
        assert_eq!(passed, 25);
        let later = t + Duration::from_secs(301);
        assert_ne!(
            c.observe(&r, EventType::Normal, "X", "same", later),
            Decision::Drop
        );
        assert_eq!(
            c.observe(&r, EventType::Normal, "X", "same", later),
            Decision::Drop
        );
    }

    #[test]
    fn caches_are_bounded() {
        let mut c = Correlator::default();
        let t = Instant::now();
        for i in 0..(CACHE_ENTRIES + 500) {
            let mut r = pod_reference(&pod(), None);
            r.uid = Some(format!("u{i}"));
            c.observe(&r, EventType::Normal, "X", "m", t);
        }
        assert!(c.len() <= 3 * CACHE_ENTRIES);
    }
}
