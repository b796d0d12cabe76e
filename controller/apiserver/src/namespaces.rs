//! Finishing namespace deletion: removes everything in a terminating namespace, then the
//! `kubernetes` finalizer, then the namespace (upstream's namespace controller, in-process).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tracing::{debug, info_span, warn, Instrument};

use bramble_store::{ListOptions, Op, StoreError};

use crate::handlers::delete::DeleteOptions;
use crate::handlers::delete_object;
use crate::objects::{is_terminating, meta_str};
use crate::state::ApiState;

/// Runs until the process ends.
pub async fn run(state: Arc<ApiState>) {
    loop {
        let pending = match reconcile_all(&state).await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "namespace finalization failed; retrying");
                true
            }
        };
        if pending {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Nothing terminating: wait for a namespace to change.
        let from = state.store.current_revision();
        match state.store.watch("core/namespaces/", from) {
            Ok(mut events) => {
                let _ = tokio::time::timeout(Duration::from_secs(60), events.next()).await;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
}

/// One pass over the terminating namespaces; true when one is still waiting on its content.
async fn reconcile_all(state: &Arc<ApiState>) -> Result<bool, StoreError> {
    let namespaces = state
        .store
        .list("core/namespaces/", ListOptions::default())?;
    let mut pending = false;
    for kv in namespaces.items {
        let Ok(ns) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if !is_terminating(&ns) {
            continue;
        }
        let name = meta_str(&ns, "name").unwrap_or("").to_string();
        let span = info_span!("reconcile", kind = "Namespace", name = %name);
        let emptied = empty_namespace(state, &name).instrument(span).await?;
        if !emptied {
            pending = true;
            continue;
        }
        let mut done = ns.clone();
        done["spec"]["finalizers"] = json!([]);
        let op = if bramble_api::meta::finalizers(&done).is_empty() {
            Op::Delete {
                key: kv.key.clone(),
                expected_revision: Some(kv.mod_revision),
            }
        } else {
            Op::Update {
                key: kv.key.clone(),
                value: done,
                expected_revision: Some(kv.mod_revision),
            }
        };
        match state.store.txn(vec![op]).await {
            Ok(_) => debug!(namespace = %name, "namespace finalized"),
            Err(StoreError::Conflict { .. }) => pending = true,
            Err(e) => return Err(e),
        }
    }
    Ok(pending)
}

/// Deletes every namespaced object in `namespace`; true once nothing is left.
async fn empty_namespace(state: &Arc<ApiState>, namespace: &str) -> Result<bool, StoreError> {
    let mut empty = true;
    let mut seen = std::collections::HashSet::new();
    for info in state.registry.all() {
        if !info.namespaced || !seen.insert(info.store_prefix()) {
            continue;
        }
        let listed = state.store.list(
            &info.store_namespace_prefix(namespace),
            ListOptions::default(),
        )?;
        for kv in listed.items {
            empty = false;
            let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if is_terminating(&obj) {
                continue;
            }
            let name = meta_str(&obj, "name").unwrap_or("").to_string();
            if let Err(s) = delete_object(
                state,
                &info,
                Some(namespace),
                &name,
                &DeleteOptions::default(),
            )
            .await
            {
                if s.code() != 404 {
                    warn!(namespace, name = %name, status = %s, "deleting namespace content");
                }
            }
        }
    }
    Ok(empty)
}
