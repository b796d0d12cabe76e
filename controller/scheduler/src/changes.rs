//! What changed among the cached Pods since the scheduling loop last looked, so that it does
//! not rescan every pod on every change. Binding a burst of 10,000 pods brings 10,000 watch
//! events of bound pods, and a full scan of the cache for each made the loop quadratic; but a
//! bound pod changing cannot make a pending pod due by itself: only a pending pod changing
//! (unless it backs off: its own PodScheduled=False report, for one), a failed binding, a
//! cluster change that an unschedulable pod waits for, or a back-off expiring can. The loop still forgets the derived state of each changed pod at once, so no
//! older version of a pod stays alive in it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bramble_informer::pod::Pod;

use crate::node_info::PodInfo;
use crate::queue::Backoff;

/// One changed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodChange {
    /// Its uid.
    pub uid: String,
    /// It has a node.
    pub bound: bool,
    /// It was deleted.
    pub deleted: bool,
    /// It waits for this scheduler: unbound, live, naming it.
    pub pending: bool,
}

/// Changes recorded by the Pod informer's handler, taken by the loop.
#[derive(Debug)]
pub struct PodChanges {
    changed: Mutex<Vec<PodChange>>,
    /// Nothing looked yet, or the cache was listed again: every pending pod may be due.
    look_all: AtomicBool,
    /// The cache was listed again: the loop prunes its bookkeeping against the whole cache.
    relisted: AtomicBool,
}

impl Default for PodChanges {
    fn default() -> Self {
        PodChanges {
            changed: Mutex::new(Vec::new()),
            // The first look scans everything.
            look_all: AtomicBool::new(true),
            relisted: AtomicBool::new(false),
        }
    }
}

impl PodChanges {
    /// Records an informer change: `pod` applied or `deleted` (`pending` when it waits for
    /// this scheduler), or `None` for a new list.
    pub fn record(&self, pod: Option<&Pod>, deleted: bool, pending: bool) {
        let Some(pod) = pod else {
            self.relisted.store(true, Ordering::SeqCst);
            self.look_all.store(true, Ordering::SeqCst);
            return;
        };
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if let Some(uid) = pod.metadata.uid.clone() {
            let change = PodChange {
                uid,
                bound,
                deleted,
                pending: pending && !bound,
            };
            self.changed.lock().expect("pod changes").push(change);
        }
    }

    /// The changes since the last call.
    pub fn take(&self) -> Vec<PodChange> {
        std::mem::take(&mut *self.changed.lock().expect("pod changes"))
    }

    /// Is this the first look, or was the cache listed again, since the last call?
    pub fn take_first_or_relisted(&self) -> bool {
        self.look_all.swap(false, Ordering::SeqCst)
    }

    /// Was the cache listed again since the last call?
    pub fn take_relisted(&self) -> bool {
        self.relisted.swap(false, Ordering::SeqCst)
    }
}

/// Forgets what the loop derived from changed pods: their [`PodInfo`] (the next scan derives
/// it from the new version), and, for pods now bound or deleted, their assumed placement and
/// back-off, as a scan would.
pub fn forget_changed(
    changes: Vec<PodChange>,
    infos: &mut HashMap<String, (String, PodInfo)>,
    assumed: &mut HashMap<String, (String, PodInfo)>,
    backoff: &mut Backoff,
) {
    for c in changes {
        infos.remove(&c.uid);
        if c.deleted {
            assumed.remove(&c.uid);
            backoff.forget(&c.uid);
        } else if c.bound && assumed.remove(&c.uid).is_some() {
            backoff.forget(&c.uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::config::SchedulerConfig;

    fn pod(uid: &str, node: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": uid, "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": node},
        }))
        .unwrap()
    }

    #[test]
    fn changes_are_recorded_and_new_lists_make_every_pod_worth_a_look() {
        let changes = PodChanges::default();
        assert!(
            changes.take_first_or_relisted(),
            "the first look scans everything"
        );
        assert!(!changes.take_first_or_relisted());
        changes.record(Some(&pod("a", Some("n1"))), false, true);
        changes.record(Some(&pod("b", None)), false, true);
        changes.record(Some(&pod("c", None)), false, false);
        changes.record(Some(&pod("a", Some("n1"))), true, false);
        assert!(!changes.take_first_or_relisted());
        assert!(!changes.take_relisted());
        changes.record(None, false, false);
        assert!(changes.take_relisted() && changes.take_first_or_relisted());
        let uid = |u: &str, bound, deleted, pending| PodChange {
            uid: u.into(),
            bound,
            deleted,
            pending,
        };
        assert_eq!(
            changes.take(),
            [
                uid("a", true, false, false),
                uid("b", false, false, true),
                uid("c", false, false, false),
                uid("a", true, true, false)
            ]
        );
        assert!(changes.take().is_empty());
    }

    #[test]
    fn changed_pods_lose_their_derived_state_as_a_scan_would_drop_it() {
        let cfg = SchedulerConfig::default();
        let info = |u: &str| ("1".to_string(), PodInfo::new(Arc::new(pod(u, None)), 0));
        let mut infos: HashMap<String, (String, PodInfo)> = ["bound", "pending", "gone", "quiet"]
            .into_iter()
            .map(|u| (u.to_string(), info(u)))
            .collect();
        let mut assumed: HashMap<String, (String, PodInfo)> = ["bound", "pending", "gone"]
            .into_iter()
            .map(|u| (u.to_string(), ("n1".to_string(), info(u).1)))
            .collect();
        let mut backoff = Backoff::default();
        for u in ["bound", "pending", "gone"] {
            backoff.error(&cfg, u, Instant::now());
        }
        let change = |u: &str, bound, deleted| PodChange {
            uid: u.into(),
            bound,
            deleted,
            pending: !bound && !deleted,
        };
        forget_changed(
            vec![
                change("bound", true, false),
                change("pending", false, false),
                change("gone", true, true),
            ],
            &mut infos,
            &mut assumed,
            &mut backoff,
        );
        let mut left: Vec<&String> = infos.keys().collect();
        left.sort();
        assert_eq!(left, ["quiet"]);
        // The binding of "pending" is still in flight: it stays assumed and backed off.
        assert_eq!(assumed.keys().collect::<Vec<_>>(), ["pending"]);
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        assert!(backoff.ready(&cfg, "bound", 0, Instant::now()));
        assert!(backoff.ready(&cfg, "gone", 0, Instant::now()));
        assert!(!backoff.ready(&cfg, "pending", 0, Instant::now()));
        assert!(backoff.ready(&cfg, "pending", 0, far));
    }
}
