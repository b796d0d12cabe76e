//! The status manager (upstream `status_manager.go`): the only writer of `pods/status`.
//! Workers hand it the status they generated; it coalesces per pod, skips unchanged
//! statuses, and writes with a JSON merge patch, retrying failures.

use std::collections::HashMap;
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
}

/// Handle workers use to submit statuses.
#[derive(Clone)]
pub struct StatusManager {
    tx: mpsc::UnboundedSender<Msg>,
}

impl StatusManager {
    /// Starts the writer task.
    pub fn start(client: Client) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(client, rx));
        StatusManager { tx }
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

async fn run(client: Client, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut written: HashMap<String, Value> = HashMap::new();
    let mut pending: HashMap<String, StatusUpdate> = HashMap::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(m) => apply(m, &mut pending, &mut written),
                None => return,
            }
        }
        while let Ok(m) = rx.try_recv() {
            apply(m, &mut pending, &mut written);
        }
        let batch: Vec<StatusUpdate> = pending.drain().map(|(_, u)| u).collect();
        let mut failed = false;
        for u in batch {
            let api: Api<Pod> = Api::namespaced(client.clone(), &u.namespace);
            if written.get(&u.uid) == Some(&u.status) {
                if u.delete && !delete_pod(&api, &u).await {
                    pending.entry(u.uid.clone()).or_insert(u);
                    failed = true;
                }
                continue;
            }
            let patch = status_patch(written.get(&u.uid), &u.status, &u.uid);
            match api
                .patch_status(&u.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    debug!(pod = %u.name, ns = %u.namespace, phase = %u.status["phase"], "status written");
                    written.insert(u.uid.clone(), u.status.clone());
                    if u.delete && !delete_pod(&api, &u).await {
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

/// Deletes a terminated pod for good; `false` to retry later.
async fn delete_pod(api: &Api<Pod>, u: &StatusUpdate) -> bool {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(u.uid.clone()),
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

fn apply(
    m: Msg,
    pending: &mut HashMap<String, StatusUpdate>,
    written: &mut HashMap<String, Value>,
) {
    match m {
        Msg::Update(u) => {
            pending.insert(u.uid.clone(), u);
        }
        Msg::Forget(uid) => {
            pending.remove(&uid);
            written.remove(&uid);
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
