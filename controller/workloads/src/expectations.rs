//! Controller expectations (upstream `UIDTrackingControllerExpectations`, by name): after a
//! controller creates or deletes pods it waits until its cache has seen those changes before
//! counting again, so a slow watch never causes double creates or double deletes. Only a
//! cache: after a restart the informers' fresh list is the truth.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Expectations older than this are dropped, as upstream's 5-minute TTL.
const TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Pending {
    created: HashSet<String>,
    deleted: HashSet<String>,
    since: Instant,
}

/// Expected creations and deletions per controller key.
#[derive(Debug, Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Pending>) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn entry<'a>(map: &'a mut HashMap<String, Pending>, key: &str) -> &'a mut Pending {
        map.entry(key.to_string()).or_insert_with(|| Pending {
            created: HashSet::new(),
            deleted: HashSet::new(),
            since: Instant::now(),
        })
    }

    /// Records that `name` was created for `key`.
    pub fn created(&self, key: &str, name: &str) {
        self.with(|m| {
            let e = Self::entry(m, key);
            e.created.insert(name.to_string());
            e.since = Instant::now();
        })
    }

    /// Records that `name` was deleted for `key`.
    pub fn deleted(&self, key: &str, name: &str) {
        self.with(|m| {
            let e = Self::entry(m, key);
            e.deleted.insert(name.to_string());
            e.since = Instant::now();
        })
    }

    /// Whether the cache has caught up with everything `key` did: `present(name)` tells
    /// whether the cache holds a live (not terminating) object of that name. Satisfied
    /// entries are dropped.
    pub fn satisfied(&self, key: &str, present: impl Fn(&str) -> bool) -> bool {
        self.with(|m| {
            let Some(e) = m.get_mut(key) else {
                return true;
            };
            e.created.retain(|n| !present(n));
            e.deleted.retain(|n| present(n));
            if (e.created.is_empty() && e.deleted.is_empty()) || e.since.elapsed() > TTL {
                m.remove(key);
                return true;
            }
            false
        })
    }

    /// Forgets everything about `key` (the object is gone).
    pub fn forget(&self, key: &str) {
        self.with(|m| {
            m.remove(key);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_creates_and_deletes_to_be_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs", |_| false));
        e.created("ns/rs", "a");
        e.deleted("ns/rs", "b");
        assert!(!e.satisfied("ns/rs", |n| n == "b"));
        assert!(!e.satisfied("ns/rs", |n| n == "a" || n == "b"));
        assert!(e.satisfied("ns/rs", |n| n == "a"));
    }
}
