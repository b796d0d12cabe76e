//! The pod lifecycle event generator (upstream's generic PLEG): relists the runtime every
//! period and tells the dispatcher which pods' containers changed state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bramble_runtime::{ContainerRuntime, ContainerStatusKind};
use tokio::sync::mpsc;
use tracing::warn;

use crate::runtime_pod::group;

/// Relists `runtime` every `period`, sending the uids of changed pods to `tx`, until `tx`
/// closes.
pub async fn run<R: ContainerRuntime + 'static>(
    runtime: Arc<R>,
    period: Duration,
    tx: mpsc::Sender<Vec<String>>,
) {
    let mut last: HashMap<String, Vec<(String, ContainerStatusKind)>> = HashMap::new();
    loop {
        tokio::time::sleep(period).await;
        let states = match runtime.list_containers().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "relisting containers");
                continue;
            }
        };
        let now: HashMap<String, Vec<(String, ContainerStatusKind)>> = group(states)
            .into_iter()
            .map(|(uid, rp)| (uid, rp.fingerprint()))
            .collect();
        let mut changed: Vec<String> = now
            .iter()
            .filter(|(uid, fp)| last.get(*uid) != Some(fp))
            .map(|(uid, _)| uid.clone())
            .collect();
        changed.extend(last.keys().filter(|u| !now.contains_key(*u)).cloned());
        last = now;
        if !changed.is_empty() && tx.send(changed).await.is_err() {
            return;
        }
    }
}
