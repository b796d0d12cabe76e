//! The resource quota controller (upstream's `resourcequota` controller, in process): keeps
//! every ResourceQuota's `status.hard` equal to `spec.hard` and recomputes `status.used` from
//! the objects in its namespace, right after something in a namespace with quotas changes
//! (which is what frees quota after deletions) and on a periodic full pass.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tracing::{debug, warn};

use bramble_store::{ListOptions, Op, StoreError};

use crate::admission_quota::{quotas_prefix, usage, ResourceList};
use crate::state::ApiState;

/// Full recalculation period (upstream's default resync is 5 minutes; quotas here are few).
const RESYNC: Duration = Duration::from_secs(30);
/// Quiet time after a change before recalculating, so a burst is handled once.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// The (group, resource) whose objects a quota resource name counts.
fn source_of(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((r, g)) => (g.to_string(), r.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    let core = |r: &str| Some((String::new(), r.to_string()));
    match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => core("pods"),
        n if (n.starts_with("requests.") || n.starts_with("limits."))
            && n != "requests.storage" =>
        {
            core("pods")
        }
        "requests.storage" | "persistentvolumeclaims" => core("persistentvolumeclaims"),
        n if n.starts_with("services") => core("services"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => core(name),
        _ => None,
    }
}

fn list_of(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.clone(),
                        bramble_api::quantity::Quantity::from_json(v).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn to_json(list: &ResourceList) -> Value {
    json!(list
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.canonical())))
        .collect::<serde_json::Map<_, _>>())
}

/// The status writes that bring the quotas of `namespace` in line with its objects.
pub(crate) fn recalculate(state: &ApiState, namespace: &str) -> Result<Vec<Op>, StoreError> {
    let quotas = state
        .store
        .list(&quotas_prefix(namespace), ListOptions::default())?;
    let mut ops = Vec::new();
    for kv in quotas.items {
        let Ok(mut quota) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        let hard = list_of(quota.pointer("/spec/hard"));
        let sources: BTreeSet<(String, String)> =
            hard.keys().filter_map(|r| source_of(r)).collect();
        let mut totals = ResourceList::new();
        for (group, resource) in &sources {
            let g = if group.is_empty() { "core" } else { group };
            let objects = state.store.list(
                &format!("{g}/{resource}/{namespace}/"),
                ListOptions::default(),
            )?;
            for o in objects.items {
                let Ok(obj) = serde_json::from_slice::<Value>(&o.value) else {
                    continue;
                };
                for (k, v) in usage(group, resource, &obj) {
                    let sum = totals.get(&k).map(|t| t.add(&v)).unwrap_or(v);
                    totals.insert(k, sum);
                }
            }
        }
        let used: ResourceList = hard
            .keys()
            .map(|k| {
                let v = totals
                    .get(k)
                    .cloned()
                    .unwrap_or_else(bramble_api::quantity::Quantity::zero);
                (k.clone(), v)
            })
            .collect();
        let status = json!({"hard": to_json(&hard), "used": to_json(&used)});
        let current = quota.get("status").cloned().unwrap_or(Value::Null);
        if list_of(current.get("hard")) == hard && list_of(current.get("used")) == used {
            continue;
        }
        quota["status"] = status;
        ops.push(Op::Update {
            key: kv.key.clone(),
            value: quota,
            expected_revision: Some(kv.mod_revision),
        });
    }
    Ok(ops)
}

async fn sync(state: &ApiState, namespace: &str) {
    for _ in 0..5 {
        let ops = match recalculate(state, namespace) {
            Ok(ops) => ops,
            Err(e) => {
                warn!(namespace, error = %e, "quota recalculation failed");
                return;
            }
        };
        // one write per quota, so a conflict on one does not hold back the others
        let mut conflicted = false;
        for op in ops {
            match state.store.txn(vec![op]).await {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => {
                    conflicted = true
                }
                Err(e) => warn!(namespace, error = %e, "quota status write failed"),
            }
        }
        if !conflicted {
            return;
        }
    }
}

/// Namespaces that hold at least one ResourceQuota.
fn quota_namespaces(state: &ApiState) -> HashSet<String> {
    state
        .store
        .list("core/resourcequotas/", ListOptions::default())
        .map(|l| {
            l.items
                .iter()
                .filter_map(|kv| kv.key.split('/').nth(2).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The namespace of a namespaced store key (`group/resource/namespace/name`).
fn namespace_of(key: &str) -> Option<&str> {
    let parts: Vec<&str> = key.splitn(4, '/').collect();
    (parts.len() == 4).then(|| parts[2])
}

/// Runs until the process ends.
pub async fn run(state: Arc<ApiState>) {
    loop {
        let from = state.store.current_revision();
        for ns in quota_namespaces(&state) {
            sync(&state, &ns).await;
        }
        let mut events = match state.store.watch("", from) {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, "quota controller cannot watch the store; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let deadline = tokio::time::Instant::now() + RESYNC;
        loop {
            let first = match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(Ok(ev))) => ev,
                Ok(Some(Err(e))) => {
                    debug!(error = %e, "quota watch ended; full pass");
                    break;
                }
                Ok(None) | Err(_) => break,
            };
            let mut touched = HashSet::new();
            touched.extend(namespace_of(&first.key).map(str::to_string));
            // gather the rest of the burst
            while let Ok(Some(Ok(ev))) = tokio::time::timeout(DEBOUNCE, events.next()).await {
                touched.extend(namespace_of(&ev.key).map(str::to_string));
            }
            let with_quota = quota_namespaces(&state);
            for ns in touched.intersection(&with_quota) {
                sync(&state, ns).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_names_map_to_their_objects() {
        let s = |g: &str, r: &str| Some((g.to_string(), r.to_string()));
        assert_eq!(source_of("pods"), s("", "pods"));
        assert_eq!(source_of("requests.cpu"), s("", "pods"));
        assert_eq!(source_of("limits.memory"), s("", "pods"));
        assert_eq!(
            source_of("requests.storage"),
            s("", "persistentvolumeclaims")
        );
        assert_eq!(source_of("services.nodeports"), s("", "services"));
        assert_eq!(
            source_of("count/deployments.apps"),
            s("apps", "deployments")
        );
        assert_eq!(source_of("count/configmaps"), s("", "configmaps"));
        assert_eq!(source_of("secrets"), s("", "secrets"));
        assert_eq!(source_of("bogus"), None);
        assert_eq!(namespace_of("core/pods/default/web"), Some("default"));
        assert_eq!(namespace_of("core/nodes/n1"), None);
    }
}
