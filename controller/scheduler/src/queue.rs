//! Which pending pods are due for an attempt: per-pod exponential back-off, and unschedulable
//! pods wait for a cluster change (or `unschedulable_retry`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::SchedulerConfig;

#[derive(Debug, Clone)]
struct Entry {
    attempts: u32,
    not_before: Instant,
    /// Cluster generation at an Unschedulable verdict; `None` after other errors.
    unschedulable_at: Option<(u64, Instant)>,
}

/// Back-off bookkeeping by pod uid.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

impl Backoff {
    fn delay(cfg: &SchedulerConfig, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        (cfg.initial_backoff * factor).min(cfg.max_backoff)
    }

    /// True when the pod may be tried now at cluster generation `gen`.
    pub fn ready(&self, cfg: &SchedulerConfig, uid: &str, gen: u64, now: Instant) -> bool {
        let Some(e) = self.entries.get(uid) else {
            return true;
        };
        if now < e.not_before {
            return false;
        }
        match e.unschedulable_at {
            Some((g, at)) => g != gen || now.duration_since(at) >= cfg.unschedulable_retry,
            None => true,
        }
    }

    /// Records an Unschedulable verdict at generation `gen`.
    pub fn unschedulable(&mut self, cfg: &SchedulerConfig, uid: &str, gen: u64, now: Instant) {
        let e = self.entries.entry(uid.to_string()).or_insert(Entry {
            attempts: 0,
            not_before: now,
            unschedulable_at: None,
        });
        e.attempts += 1;
        e.not_before = now + Self::delay(cfg, e.attempts);
        e.unschedulable_at = Some((gen, now));
    }

    /// Records an error (binding or API failure): retry after back-off regardless of changes.
    pub fn error(&mut self, cfg: &SchedulerConfig, uid: &str, now: Instant) {
        let e = self.entries.entry(uid.to_string()).or_insert(Entry {
            attempts: 0,
            not_before: now,
            unschedulable_at: None,
        });
        e.attempts += 1;
        e.not_before = now + Self::delay(cfg, e.attempts);
        e.unschedulable_at = None;
    }

    /// Forgets a pod (scheduled or deleted).
    pub fn forget(&mut self, uid: &str) {
        self.entries.remove(uid);
    }

    /// Keeps only the pods for which `keep` is true.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|k, _| keep(k));
    }

    /// Does some pod wait for a cluster change (an Unschedulable verdict)?
    pub fn waits_for_change(&self) -> bool {
        self.entries.values().any(|e| e.unschedulable_at.is_some())
    }

    /// The earliest time a waiting pod becomes due (back-off expiry or forced retry).
    pub fn next_due(&self, cfg: &SchedulerConfig, gen: u64) -> Option<Instant> {
        self.entries
            .values()
            .map(|e| match e.unschedulable_at {
                Some((g, at)) if g == gen => (at + cfg.unschedulable_retry).max(e.not_before),
                _ => e.not_before,
            })
            .min()
    }
}
