//! Container restart back-off (upstream `flowcontrol.Backoff` as the kubelet uses it for
//! CrashLoopBackOff): 10 s doubling to 5 min; an entry expires when the container ran for
//! more than twice the maximum (10 min) since the last restart.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Upstream's initial container back-off.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Upstream's maximum container back-off.
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: DateTime<Utc>,
}

/// Per-key exponential back-off over wall-clock event times.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Backoff {
    /// A back-off from `initial` doubling to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(&self, event: DateTime<Utc>, e: &Entry) -> bool {
        event - e.last_update > chrono_dur(self.max * 2)
    }

    /// The current back-off of `key`.
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(Duration::ZERO, |e| e.backoff)
    }

    /// When the back-off window that started at `event` (a container's `finishedAt`) ends,
    /// if `now` is still inside it (upstream `IsInBackOffSince`).
    pub fn in_backoff_until(
        &self,
        key: &str,
        event: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let e = self.entries.get(key)?;
        if self.expired(event, e) {
            return None;
        }
        let until = event + chrono_dur(e.backoff);
        (now < until).then_some(until)
    }

    /// Records a restart at `now` (upstream `Next`): first or expired -> `initial`, else
    /// double up to `max`.
    pub fn next(&mut self, key: &str, event: DateTime<Utc>, now: DateTime<Utc>) {
        let backoff = match self.entries.get(key) {
            Some(e) if !self.expired(event, e) => (e.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }

    /// Forgets `key`.
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// Go's `time.Duration.String()` for whole seconds (`10s`, `1m20s`, `5m0s`).
pub fn go_seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn doubles_to_the_max_and_expires_after_long_runs() {
        let mut b = Backoff::default();
        let k = "c";
        // First exit: no entry, restart at once.
        assert!(b.in_backoff_until(k, t(0), t(0)).is_none());
        b.next(k, t(0), t(0));
        assert_eq!(b.get(k), INITIAL);
        // Second exit at t=5: wait until 15.
        assert_eq!(b.in_backoff_until(k, t(5), t(6)), Some(t(15)));
        assert!(b.in_backoff_until(k, t(5), t(15)).is_none());
        b.next(k, t(5), t(15));
        assert_eq!(b.get(k), Duration::from_secs(20));
        for _ in 0..10 {
            b.next(k, t(20), t(20));
        }
        assert_eq!(b.get(k), MAX);
        // Ran for more than 10 minutes since the last restart: starts over.
        assert!(b.in_backoff_until(k, t(20 + 601), t(20 + 602)).is_none());
        b.next(k, t(20 + 601), t(20 + 602));
        assert_eq!(b.get(k), INITIAL);
        assert_eq!(go_seconds(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_seconds(MAX), "5m0s");
    }
}
