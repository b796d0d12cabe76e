//! DELETE of one object and of a collection: graceful pod deletion, finalizers, preconditions.

use std::sync::Arc;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{json, Value};

use bramble_api::{codec, ResourceInfo, Status};
use bramble_store::{Op, OpOutcome, StoreError};

use super::read::list_matching;
use super::Ctx;
use crate::body::{self, Response};
use crate::errors::store_status;
use crate::objects::{self, meta_mut, meta_str};
use crate::state::ApiState;

/// `DeleteOptions` from the body and the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
    /// `propagationPolicy` (`Orphan`, `Background`, `Foreground`), or the legacy
    /// `orphanDependents` as `Orphan`/`Background`.
    pub propagation_policy: Option<String>,
}

impl DeleteOptions {
    fn from_request(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<DeleteOptions, Status> {
        let mut opts = DeleteOptions {
            grace_period_seconds: ctx.query.i64("gracePeriodSeconds")?,
            dry_run: ctx.query.dry_run()?,
            propagation_policy: ctx.query.get("propagationPolicy").map(str::to_string),
            ..Default::default()
        };
        if let Some(o) = ctx.query.get("orphanDependents") {
            opts.propagation_policy =
                Some(if o == "true" { "Orphan" } else { "Background" }.into());
        }
        if !body_bytes.iter().all(u8::is_ascii_whitespace) {
            let body = codec::parse_body(body_bytes, ctx.content_type.as_deref())?;
            if let Some(g) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
                opts.grace_period_seconds = Some(g);
            }
            opts.precondition_uid = body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            opts.precondition_resource_version = body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(orphan) = body.get("orphanDependents").and_then(Value::as_bool) {
                opts.propagation_policy = Some(if orphan { "Orphan" } else { "Background" }.into());
            }
            if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
                opts.propagation_policy = Some(p.to_string());
            }
            if body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                opts.dry_run = true;
            }
        }
        if opts.grace_period_seconds.is_some_and(|g| g < 0) {
            opts.grace_period_seconds = Some(0);
        }
        Ok(opts)
    }
}

pub async fn delete(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let opts = DeleteOptions::from_request(ctx, body_bytes)?;
    let (code, bytes) =
        delete_object(ctx.state, &ctx.info, ctx.namespace(), ctx.name(), &opts).await?;
    Ok(body::raw_json(code, bytes))
}

pub async fn delete_collection(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let opts = DeleteOptions::from_request(ctx, body_bytes)?;
    let listed = list_matching(ctx)?;
    let mut deleted = Vec::new();
    for kv in listed.items {
        let obj: Value = crate::objects::decode_stored(&kv.value)?;
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        match delete_object(ctx.state, &ctx.info, ns.as_deref(), &name, &opts).await {
            Ok((_, bytes)) => deleted.push(bytes),
            Err(s) if s.code() == 404 => {}
            Err(s) => return Err(s),
        }
    }
    let rv = ctx.store().current_revision().to_string();
    let list = bramble_api::codec::encode_list(
        &ctx.info,
        deleted.iter().map(Vec::as_slice),
        &rv,
        None,
        None,
    );
    Ok(body::raw_json(200, list))
}

/// Namespaces finish deleting only when their `spec.finalizers` are gone too.
pub fn has_spec_finalizers(info: &ResourceInfo, obj: &Value) -> bool {
    info.group.is_empty()
        && info.resource == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

/// How long a pod gets to stop, or `None` when it can go at once (not on a node, or
/// finished), as upstream's pod deletion strategy decides.
fn pod_grace_period(obj: &Value, requested: Option<i64>) -> Option<i64> {
    let on_node = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !on_node || phase == "Succeeded" || phase == "Failed" {
        return None;
    }
    let grace = requested.unwrap_or_else(|| {
        obj.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    // upstream turns a zero grace period into 1 unless it is a forced deletion... a zero
    // request deletes immediately, as `kubectl delete --force --grace-period=0` expects.
    (grace > 0).then_some(grace)
}

/// Deletes (or starts deleting) one object. Returns the status code and body upstream sends.
pub async fn delete_object(
    state: &Arc<ApiState>,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(u16, Vec<u8>), Status> {
    let key = info.store_key(namespace, name);
    let is_pod = info.group.is_empty() && info.resource == "pods";
    let store = crate::converting_store::for_resource(&state.store, info);
    loop {
        let current = store
            .get(&key)
            .map_err(|e| store_status(e, info, name))?
            .ok_or_else(|| Status::not_found(&info.qualified_resource(), &info.group, name))?;
        let old: Value = crate::objects::decode_stored(&current.value)?;
        check_preconditions(info, name, &old, opts)?;

        let grace = if is_pod {
            pod_grace_period(&old, opts.grace_period_seconds)
        } else {
            None
        };
        let gc_finalizers = gc_finalizers(&old, opts.propagation_policy.as_deref());
        let finalizing = !objects::finalizers(&old).is_empty()
            || has_spec_finalizers(info, &old)
            || gc_finalizers.as_ref().is_some_and(|f| !f.is_empty());
        let op = if grace.is_some() || finalizing {
            let mut next = old.clone();
            mark_terminating(info, &mut next, grace);
            if let Some(f) = gc_finalizers {
                meta_mut(&mut next).insert("finalizers".into(), json!(f));
            }
            if next == old {
                return Ok((200, current.value.to_vec()));
            }
            if opts.dry_run {
                return Ok((200, to_vec(&next)?));
            }
            Op::Update {
                key: key.clone(),
                value: next,
                expected_revision: Some(current.mod_revision),
            }
        } else {
            if opts.dry_run {
                return Ok((200, current.value.to_vec()));
            }
            Op::Delete {
                key: key.clone(),
                expected_revision: Some(current.mod_revision),
            }
        };
        match store.txn(vec![op]).await {
            Ok(mut outcomes) => {
                return match outcomes.pop() {
                    Some(OpOutcome::Written(kv)) => Ok((200, kv.value.to_vec())),
                    Some(OpOutcome::Deleted(kv)) => Ok((200, kv.value.to_vec())),
                    None => Err(Status::internal("store returned no outcome")),
                }
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_status(e, info, name)),
        }
    }
}

/// The garbage collector's finalizers after a delete with `policy`, when they change (upstream
/// `deletionFinalizersForGarbageCollection`): `Orphan` adds `orphan`, `Foreground` adds
/// `foregroundDeletion`, `Background` drops both; no policy keeps what the object has.
fn gc_finalizers(obj: &Value, policy: Option<&str>) -> Option<Vec<String>> {
    const ORPHAN: &str = "orphan";
    const FOREGROUND: &str = "foregroundDeletion";
    let policy = policy?;
    let old = objects::finalizers(obj);
    let mut new: Vec<String> = old
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    match policy {
        "Orphan" => new.push(ORPHAN.into()),
        "Foreground" => new.push(FOREGROUND.into()),
        _ => {}
    }
    let same = new.len() == old.len() && new.iter().all(|f| old.contains(f));
    (!same).then_some(new)
}

fn check_preconditions(
    info: &ResourceInfo,
    name: &str,
    obj: &Value,
    opts: &DeleteOptions,
) -> Result<(), Status> {
    if let Some(uid) = &opts.precondition_uid {
        let actual = meta_str(obj, "uid").unwrap_or("");
        if actual != uid {
            let mut s = Status::conflict(&info.qualified_resource(), &info.group, name);
            s.message = format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}",
                info.qualified_resource()
            );
            return Err(s);
        }
    }
    if let Some(rv) = &opts.precondition_resource_version {
        let actual = meta_str(obj, "resourceVersion").unwrap_or("");
        if actual != rv {
            let mut s = Status::conflict(&info.qualified_resource(), &info.group, name);
            s.message = format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}",
                info.qualified_resource()
            );
            return Err(s);
        }
    }
    Ok(())
}

/// Sets `deletionTimestamp` (now plus the grace period) the first time; a later, shorter
/// grace period shortens it, as upstream's `BeforeDelete` does.
fn mark_terminating(info: &ResourceInfo, obj: &mut Value, grace: Option<i64>) {
    let grace = grace.unwrap_or(0);
    let current_grace = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    let already = objects::is_terminating(obj);
    if already && current_grace.is_some_and(|g| g <= grace) {
        return;
    }
    let at =
        (Utc::now() + ChronoDuration::seconds(grace)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let meta = meta_mut(obj);
    meta.insert("deletionTimestamp".into(), json!(at));
    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
    if info.group.is_empty() && info.resource == "namespaces" {
        obj["status"]["phase"] = json!("Terminating");
    }
}

fn to_vec(v: &Value) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(v).map_err(|e| Status::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_policy_sets_the_garbage_collector_finalizers() {
        let plain = json!({"metadata": {"name": "d", "finalizers": ["example.com/keep"]}});
        assert_eq!(gc_finalizers(&plain, None), None);
        assert_eq!(gc_finalizers(&plain, Some("Background")), None);
        assert_eq!(
            gc_finalizers(&plain, Some("Orphan")),
            Some(vec!["example.com/keep".to_string(), "orphan".to_string()])
        );
        assert_eq!(
            gc_finalizers(&plain, Some("Foreground")),
            Some(vec![
                "example.com/keep".to_string(),
                "foregroundDeletion".to_string()
            ])
        );
        let orphaning = json!({"metadata": {"name": "d", "finalizers": ["orphan"]}});
        assert_eq!(gc_finalizers(&orphaning, Some("Orphan")), None);
        assert_eq!(gc_finalizers(&orphaning, Some("Background")), Some(vec![]));
    }
}
