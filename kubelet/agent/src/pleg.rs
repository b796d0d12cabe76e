//! The pod lifecycle event generator (upstream's generic PLEG): relists the runtime every
//! period and tells the dispatcher which pods' containers changed state. The relist asks
//! only for ids, pod uids and states ([`ContainerRuntime::relist`]); the pod workers read
//! their own pod's containers in full when woken.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bramble_runtime::{ContainerRuntime, ContainerStatusKind, RelistEntry};
use tokio::sync::mpsc;
use tracing::warn;

/// Per pod uid: its containers' ids and states, sorted (what a change is measured on).
type Fingerprints = HashMap<String, Vec<(String, ContainerStatusKind)>>;

fn fingerprints(entries: Vec<RelistEntry>) -> Fingerprints {
    let mut out: Fingerprints = HashMap::new();
    for e in entries {
        out.entry(e.pod_uid).or_default().push((e.id, e.status));
    }
    for v in out.values_mut() {
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

/// The uids of pods whose containers differ between `last` and `now`.
fn changed(last: &Fingerprints, now: &Fingerprints) -> Vec<String> {
    let mut out: Vec<String> = now
        .iter()
        .filter(|(uid, fp)| last.get(*uid) != Some(fp))
        .map(|(uid, _)| uid.clone())
        .collect();
    out.extend(last.keys().filter(|u| !now.contains_key(*u)).cloned());
    out
}

/// Relists `runtime` every `period`, sending the uids of changed pods to `tx`, until `tx`
/// closes.
pub async fn run<R: ContainerRuntime + 'static>(
    runtime: Arc<R>,
    period: Duration,
    tx: mpsc::Sender<Vec<String>>,
) {
    let mut last = Fingerprints::new();
    loop {
        tokio::time::sleep(period).await;
        let now = match runtime.relist().await {
            Ok(s) => fingerprints(s),
            Err(e) => {
                warn!(error = %e, "relisting containers");
                continue;
            }
        };
        let changed = changed(&last, &now);
        last = now;
        if !changed.is_empty() && tx.send(changed).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, pod: &str, status: ContainerStatusKind) -> RelistEntry {
        RelistEntry {
            id: id.into(),
            pod_uid: pod.into(),
            status,
        }
    }

    #[test]
    fn pods_whose_containers_changed() {
        use ContainerStatusKind::{Exited, Running};
        let before = fingerprints(vec![
            entry("s1", "a", Running),
            entry("c1", "a", Running),
            entry("s2", "b", Running),
            entry("s3", "c", Running),
        ]);
        // Same containers in another order: no change.
        let same = fingerprints(vec![
            entry("s3", "c", Running),
            entry("c1", "a", Running),
            entry("s2", "b", Running),
            entry("s1", "a", Running),
        ]);
        assert!(changed(&before, &same).is_empty());
        // a's container exited, b got a new container, c is gone, d is new.
        let after = fingerprints(vec![
            entry("s1", "a", Running),
            entry("c1", "a", Exited),
            entry("s2", "b", Running),
            entry("c2", "b", Running),
            entry("s4", "d", Running),
        ]);
        let mut got = changed(&before, &after);
        got.sort();
        assert_eq!(got, ["a", "b", "c", "d"]);
    }
}
