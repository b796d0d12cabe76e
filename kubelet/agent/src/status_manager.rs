//! The status manager (upstream `status_manager.go`): the only writer of `pods/status`.
//! Workers hand it the status they generated; it coalesces per pod, skips unchanged
//! statuses, and writes with a JSON merge patch, retrying failures. A static pod's status
//! goes to its mirror pod ([`UidTranslator`]); while it has none, the status waits for
//! [`StatusManager::resync`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// One status to write.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid (a status for an older pod of the same name is not written).
    pub uid: String,
    /// The full `status` object.
    pub status: Value,
    /// The pod is terminated and was being deleted: once the status is written, delete the
    /// object with `gracePeriodSeconds=0` (upstream's status manager does the same).
    pub delete: bool,
}

enum Msg {
    Update(StatusUpdate),
    Forget(String),
    Resync(String),
}

/// Which API object carries a pod's status (upstream's `TranslatePodUID`): the pod itself,
/// or for a static pod its mirror pod.
pub trait UidTranslator: Send + Sync {
    /// The uid of the API object for the pod with `uid`; `None` while there is none.
    fn api_uid(&self, uid: &str) -> Option<String>;
}

/// Every pod is its own API object.
struct SameUid;

impl UidTranslator for SameUid {
    fn api_uid(&self, uid: &str) -> Option<String> {
        Some(uid.to_string())
    }
}

/// Handle workers use to submit statuses.
#[derive(Clone)]
pub struct StatusManager {
    tx: mpsc::UnboundedSender<Msg>,
}

impl StatusManager {
    /// Starts the writer task.
    pub fn start(client: Client) -> Self {
        Self::start_with(client, Arc::new(SameUid))
    }

    /// Starts the writer task, writing each status to the object `translator` names.
    pub fn start_with(client: Client, translator: Arc<dyn UidTranslator>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(client, translator, rx));
        StatusManager { tx }
    }

    /// Writes the last status of pod `uid` again (its API object changed: a new mirror pod).
    pub fn resync(&self, uid: &str) {
        let _ = self.tx.send(Msg::Resync(uid.to_string()));
    }

    /// Queues `update` (a newer one for the same pod replaces it).
    pub fn set(&self, update: StatusUpdate) {
        let _ = self.tx.send(Msg::Update(update));
    }

    /// Forgets a pod that is gone.
    pub fn forget(&self, uid: &str) {
        let _ = self.tx.send(Msg::Forget(uid.to_string()));
    }
}

/// The merge patch turning `old` into `new`: `new` with `null` for top-level keys it drops.
pub fn status_patch(old: Option<&Value>, new: &Value, uid: &str) -> Value {
    let mut status = new.clone();
    if let (Some(Value::Object(o)), Value::Object(n)) = (old, &mut status) {
        for k in o.keys() {
            if !n.contains_key(k) {
                n.insert(k.clone(), Value::Null);
            }
        }
    }
    json!({"metadata": {"uid": uid}, "status": status})
}

/// What the writer remembers.
#[derive(Default)]
struct Book {
    /// Per pod uid: the API object's uid and the status last written to it.
    written: HashMap<String, (String, Value)>,
    /// Per pod uid: the last update (for [`Msg::Resync`]).
    last: HashMap<String, StatusUpdate>,
    pending: HashMap<String, StatusUpdate>,
}

async fn run(
    client: Client,
    translator: Arc<dyn UidTranslator>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut book = Book::default();
    loop {
        if book.pending.is_empty() {
            match rx.recv().await {
                Some(m) => apply(m, &mut book),
                None => return,
            }
        }
        while let Ok(m) = rx.try_recv() {
            apply(m, &mut book);
        }
        let batch: Vec<StatusUpdate> = book.pending.drain().map(|(_, u)| u).collect();
        let (pending, written) = (&mut book.pending, &mut book.written);
        let mut failed = false;
        for u in batch {
            let Some(target) = translator.api_uid(&u.uid) else {
                debug!(pod = %u.name, ns = %u.namespace, "no mirror pod yet; status held");
                continue;
            };
            let api: Api<Pod> = Api::namespaced(client.clone(), &u.namespace);
            let old = written
                .get(&u.uid)
                .filter(|(t, _)| *t == target)
                .map(|(_, v)| v);
            if old == Some(&u.status) {
                if u.delete && !delete_pod(&api, &u, &target).await {
                    pending.entry(u.uid.clone()).or_insert(u);
                    failed = true;
                }
                continue;
            }
            let patch = status_patch(old, &u.status, &target);
            match api
                .patch_status(&u.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    debug!(pod = %u.name, ns = %u.namespace, phase = %u.status["phase"], "status written");
                    written.insert(u.uid.clone(), (target.clone(), u.status.clone()));
                    if u.delete && !delete_pod(&api, &u, &target).await {
                        pending.entry(u.uid.clone()).or_insert(u);
                        failed = true;
                    }
                }
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                    debug!(pod = %u.name, code = e.code, "pod gone, status dropped");
                }
                Err(e) => {
                    warn!(pod = %u.name, ns = %u.namespace, error = %e, "writing pod status");
                    pending.entry(u.uid.clone()).or_insert(u);
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Deletes a terminated pod (API object `uid`) for good; `false` to retry later.
async fn delete_pod(api: &Api<Pod>, u: &StatusUpdate, uid: &str) -> bool {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&u.name, &params).await {
        Ok(_) => {
            debug!(pod = %u.name, ns = %u.namespace, "pod deleted after termination");
            true
        }
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => true,
        Err(e) => {
            warn!(pod = %u.name, ns = %u.namespace, error = %e, "deleting terminated pod");
            false
        }
    }
}

fn apply(m: Msg, book: &mut Book) {
    match m {
        Msg::Update(u) => {
            book.last.insert(u.uid.clone(), u.clone());
            book.pending.insert(u.uid.clone(), u);
        }
        Msg::Forget(uid) => {
            book.pending.remove(&uid);
            book.written.remove(&uid);
            book.last.remove(&uid);
        }
        Msg::Resync(uid) => {
            if let Some(u) = book.last.get(&uid) {
                book.pending.entry(uid).or_insert_with(|| u.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_nulls_dropped_keys() {
        let old = json!({"phase": "Pending", "message": "x", "podIP": "1.2.3.4"});
        let new = json!({"phase": "Running", "podIP": "1.2.3.4"});
        let p = status_patch(Some(&old), &new, "u");
        assert_eq!(p["status"]["message"], Value::Null);
        assert!(p["status"].as_object().unwrap().contains_key("message"));
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(p["metadata"]["uid"], "u");
    }
}
