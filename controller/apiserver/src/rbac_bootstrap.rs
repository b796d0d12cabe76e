//! Upstream's default RBAC objects at start (created when missing, reconciled while they keep
//! `rbac.authorization.kubernetes.io/autoupdate: "true"`), and the ClusterRole aggregation
//! loop that fills aggregated roles (`admin`, `edit`, `view`, ...) from labelled ones.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::ClusterRole;
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use bramble_api::Status;
use bramble_auth::{aggregation, defaults};
use bramble_store::{ListOptions, Op, StoreError};

use crate::errors::ServerError;
use crate::handlers::create_object;
use crate::objects::decode_stored;
use crate::state::ApiState;

const GROUP: &str = "rbac.authorization.k8s.io";

fn bootstrap_err(what: &str, status: Status) -> ServerError {
    ServerError::Bootstrap {
        what: what.to_string(),
        status,
    }
}

/// Creates the default roles and bindings that are missing and reconciles the ones still
/// marked for auto-update (their default rules and subjects are put back, what was added is
/// kept).
pub async fn ensure_defaults(state: &Arc<ApiState>) -> Result<(), ServerError> {
    let objects = defaults::cluster_roles()
        .into_iter()
        .map(|o| ("clusterroles", o))
        .chain(
            defaults::cluster_role_bindings()
                .into_iter()
                .map(|o| ("clusterrolebindings", o)),
        )
        .chain(defaults::namespaced().into_iter().map(|o| {
            let r = if o["kind"] == "Role" {
                "roles"
            } else {
                "rolebindings"
            };
            (r, o)
        }));
    for (resource, desired) in objects {
        let info = state
            .registry
            .find(GROUP, "v1", resource)
            .ok_or_else(|| bootstrap_err(resource, Status::internal("resource not registered")))?;
        let name = desired["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let ns = desired["metadata"]["namespace"]
            .as_str()
            .map(str::to_string);
        let key = info.store_key(ns.as_deref(), &name);
        match state.store.get(&key)? {
            None => match create_object(state, &info, ns.as_deref(), desired, false).await {
                Ok(_) => {}
                Err(s) if s.reason == bramble_api::Reason::AlreadyExists => {}
                Err(s) => return Err(bootstrap_err(&key, s)),
            },
            Some(kv) => {
                let mut current = decode_stored(&kv.value).map_err(|s| bootstrap_err(&key, s))?;
                let auto = current
                    .pointer(&format!(
                        "/metadata/annotations/{}",
                        defaults::AUTOUPDATE_ANNOTATION.replace('/', "~1")
                    ))
                    .and_then(Value::as_str)
                    == Some("true");
                if !auto || !reconcile(&mut current, &desired) {
                    continue;
                }
                debug!(%key, "reconciling default RBAC object");
                match state
                    .store
                    .txn(vec![Op::Update {
                        key: key.clone(),
                        value: current,
                        expected_revision: Some(kv.mod_revision),
                    }])
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

/// Puts missing default rules, subjects, role reference and aggregation rule back; true if
/// anything changed.
fn reconcile(current: &mut Value, desired: &Value) -> bool {
    let mut changed = false;
    // aggregated roles get their rules from the aggregation loop
    let aggregated = desired.get("aggregationRule").is_some();
    for field in ["rules", "subjects"] {
        if field == "rules" && aggregated {
            continue;
        }
        let Some(want) = desired.get(field).and_then(Value::as_array) else {
            continue;
        };
        if !current.get(field).is_some_and(Value::is_array) {
            current[field] = json!([]);
        }
        let have = current[field].as_array_mut().expect("array");
        for w in want {
            if !have.contains(w) {
                have.push(w.clone());
                changed = true;
            }
        }
    }
    for field in ["roleRef", "aggregationRule"] {
        if let Some(want) = desired.get(field) {
            if current.get(field) != Some(want) {
                current[field] = want.clone();
                changed = true;
            }
        }
    }
    changed
}

/// Writes the aggregation result once; returns how many roles changed.
pub async fn aggregate_once(state: &Arc<ApiState>) -> Result<usize, StoreError> {
    let prefix = format!("{GROUP}/clusterroles/");
    let listed = state.store.list(&prefix, ListOptions::default())?;
    let mut roles = Vec::new();
    let mut raw = Vec::new();
    for kv in &listed.items {
        if let Ok(r) = serde_json::from_slice::<ClusterRole>(&kv.value) {
            roles.push(r);
            raw.push(kv.clone());
        }
    }
    let mut changed = 0;
    for (name, rules) in aggregation::aggregate(&roles) {
        let key = format!("{prefix}{name}");
        let Some(kv) = raw.iter().find(|kv| kv.key == key) else {
            continue;
        };
        let Ok(mut obj) = decode_stored(&kv.value) else {
            continue;
        };
        obj["rules"] = serde_json::to_value(&rules).unwrap_or_else(|_| json!([]));
        match state
            .store
            .txn(vec![Op::Update {
                key,
                value: obj,
                expected_revision: Some(kv.mod_revision),
            }])
            .await
        {
            Ok(_) => changed += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// The aggregation controller: aggregates at start and after every ClusterRole change.
pub async fn run_aggregation(state: Arc<ApiState>) {
    let prefix = format!("{GROUP}/clusterroles/");
    loop {
        let rev = state.store.current_revision();
        match aggregate_once(&state).await {
            Ok(n) if n > 0 => {
                info!(roles = n, "aggregated cluster roles");
                continue;
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cluster role aggregation failed"),
        }
        let mut events = match state.store.watch(&prefix, rev) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "watching cluster roles failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        // wait for one change, then drain what arrived with it
        if events.next().await.is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
