//! Glue from the process's shared informers (`bramble-informer`) to the scheduler's and the
//! node lifecycle controller's loops: every change runs a callback, then wakes the loop.

use std::sync::Arc;

use bramble_informer::{Change, Informer};
use kube::Resource;
use tokio::sync::Notify;

/// Registers a handler on `informer`: `on_event` sees every applied or deleted object (and
/// `None` after a re-list), then `wake` is notified. The handler unregisters itself once
/// `wake` is dropped (the loop that owned it stopped).
pub fn on_change<K, F>(informer: &Informer<K>, wake: &Arc<Notify>, mut on_event: F)
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    F: FnMut(Option<&K>, bool) + Send + 'static,
{
    let wake = Arc::downgrade(wake);
    informer.add_handler(move |c: &Change<K>| {
        let Some(wake) = wake.upgrade() else {
            return false;
        };
        match c {
            Change::Applied(o) => on_event(Some(o), false),
            Change::Deleted(o) => on_event(Some(o), true),
            Change::Synced => on_event(None, false),
        }
        wake.notify_one();
        true
    });
}
