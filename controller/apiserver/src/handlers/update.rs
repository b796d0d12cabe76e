//! PUT, PATCH and the pod `binding` subresource: read-modify-write with optimistic concurrency.

use serde_json::{json, Value};

use bramble_api::{codec, defaults, patch, strategy, validation, Reason, Status};
use bramble_store::{Op, OpOutcome};

use super::decode::{decode_body, decode_value, with_warnings};
use super::Ctx;
use crate::admission;
use crate::body::{self, Response};
use crate::errors::store_status;
use crate::objects::{self, meta_mut, meta_str};

pub async fn replace(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let decoded = decode_body(ctx, body_bytes)?;
    let mut obj = decoded.obj;
    check_identity(ctx, &mut obj)?;
    let mut admission_warnings = Vec::new();
    let stored = guaranteed_update(ctx, &mut |current: &Value| {
        admission_warnings = pod_security(ctx, &obj, current)?;
        Ok(obj.clone())
    })
    .await?;
    let mut warnings = decoded.warnings;
    warnings.extend(admission_warnings);
    Ok(with_warnings(body::raw_json(200, stored), &warnings))
}

pub async fn patch(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let content_type = ctx
        .content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let patch_doc = codec::parse_body(body_bytes, Some(&content_type))?;
    let mut warnings = Vec::new();
    let stored = guaranteed_update(ctx, &mut |current: &Value| {
        let patched = apply_patch(ctx, &content_type, current, &patch_doc)?;
        let decoded = decode_value(ctx, patched)?;
        warnings = decoded.warnings;
        let mut obj = decoded.obj;
        check_identity(ctx, &mut obj)?;
        warnings.extend(pod_security(ctx, &obj, current)?);
        Ok(obj)
    })
    .await?;
    Ok(with_warnings(body::raw_json(200, stored), &warnings))
}

/// Pod Security Admission on an update of `current` into `new` (warnings, or 403).
pub(super) fn pod_security(
    ctx: &Ctx<'_>,
    new: &Value,
    current: &Value,
) -> Result<Vec<String>, Status> {
    crate::admission_pod_security::on_update(
        ctx.state,
        &ctx.info,
        ctx.namespace(),
        ctx.route.subresource.as_deref(),
        new,
        current,
    )
}

pub(super) fn apply_patch(
    ctx: &Ctx<'_>,
    content_type: &str,
    current: &Value,
    doc: &Value,
) -> Result<Value, Status> {
    let mut target = current.clone();
    match content_type {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_value(doc.clone())
                .map_err(|e| Status::bad_request(format!("json: cannot unmarshal patch: {e}")))?;
            json_patch::patch(&mut target, &p)
                .map_err(|e| Status::new(Reason::Invalid, format!("the server rejected our request due to an error in our request: {e}")))?;
            Ok(target)
        }
        "application/merge-patch+json" => {
            json_patch::merge(&mut target, doc);
            Ok(target)
        }
        "application/strategic-merge-patch+json" => patch::strategic::apply(&ctx.info, current, doc),
        other => Err(Status::new(
            Reason::UnsupportedMediaType,
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"),
        )),
    }
}

/// The name (and namespace) in a body must be the path's.
pub(super) fn check_identity(ctx: &Ctx<'_>, obj: &mut Value) -> Result<(), Status> {
    let name = ctx.name();
    match meta_str(obj, "name") {
        Some(n) if n != name => {
            return Err(Status::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
        None => {
            meta_mut(obj).insert("name".into(), json!(name));
        }
        _ => {}
    }
    objects::set_namespace(
        obj,
        if ctx.info.namespaced {
            ctx.namespace()
        } else {
            None
        },
    )
}

/// Reads the current object, builds the next one with `mutate`, and writes it if the object
/// did not change meanwhile. A race retries: a resourceVersion the client pinned then no
/// longer matches and fails with 409, an unpinned write is rebuilt on the newer object.
pub(super) async fn guaranteed_update(
    ctx: &Ctx<'_>,
    mutate: &mut (dyn FnMut(&Value) -> Result<Value, Status> + Send),
) -> Result<Vec<u8>, Status> {
    let info = &ctx.info;
    let key = ctx.key();
    let name = ctx.name().to_string();
    let dry_run = ctx.query.dry_run()?;
    loop {
        let current = ctx
            .store()
            .get(&key)
            .map_err(|e| store_status(e, info, &name))?
            .ok_or_else(|| Status::not_found(&info.qualified_resource(), &info.group, &name))?;
        let old: Value = crate::objects::decode_stored(&current.value)?;
        let mut new = mutate(&old)?;
        let current_rv = current.mod_revision.to_string();
        if meta_str(&new, "resourceVersion").is_some_and(|rv| rv != current_rv) {
            return Err(Status::conflict(
                &info.qualified_resource(),
                &info.group,
                &name,
            ));
        }
        objects::carry_system_fields(&mut new, &old);
        let sub = ctx.route.subresource.as_deref();
        match sub {
            // the binding is built from the stored pod by the server itself
            Some("binding") => {}
            Some(sub) => strategy::prepare_for_subresource_update(info, sub, &mut new, &old),
            None => {
                defaults::apply(info, &mut new);
                strategy::prepare_for_update(info, &mut new, &old);
            }
        }
        // upstream's field manager records every write but apply's own and the binding
        // (whose object is the Binding, not the pod)
        if sub != Some("binding") && !super::apply::is_apply(ctx) {
            bramble_api::apply::record_update(
                info,
                &old,
                &mut new,
                &ctx.manager(),
                sub,
                &objects::now_rfc3339(),
            );
        }
        meta_mut(&mut new).insert("resourceVersion".into(), json!(current_rv));
        let causes = match ctx.route.subresource.as_deref() {
            Some(sub) => validation::validate_subresource(info, sub, &new, &old),
            None => validation::validate(info, &new, Some(&old)),
        };
        if !causes.is_empty() {
            return Err(Status::invalid(&info.kind, &info.group, &name, causes));
        }
        let _allocation = if admission::allocates_service_addresses(info) {
            let guard = ctx.state.service_allocation.lock().await;
            admission::allocate_service(ctx.state, &mut new, Some(&old), &name)?;
            Some(guard)
        } else {
            None
        };
        if new == old || dry_run {
            // upstream skips a write that changes nothing: the resourceVersion stays
            let bytes = if new == old {
                current.value.to_vec()
            } else {
                serde_json::to_vec(&new).map_err(|e| Status::internal(e.to_string()))?
            };
            return Ok(bytes);
        }
        // A terminating object whose last finalizer went away is deleted now.
        let op = if objects::is_terminating(&new)
            && objects::finalizers(&new).is_empty()
            && !super::delete::has_spec_finalizers(info, &new)
        {
            Op::Delete {
                key: key.clone(),
                expected_revision: Some(current.mod_revision),
            }
        } else {
            Op::Update {
                key: key.clone(),
                value: new,
                expected_revision: Some(current.mod_revision),
            }
        };
        match ctx.store().txn(vec![op]).await {
            Ok(mut outcomes) => match outcomes.pop() {
                Some(OpOutcome::Written(kv)) | Some(OpOutcome::Deleted(kv)) => {
                    return Ok(kv.value.to_vec())
                }
                None => return Err(Status::internal("store returned no outcome")),
            },
            Err(bramble_store::StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_status(e, info, &name)),
        }
    }
}

/// `POST pods/<name>/binding`: assigns a pending pod to a node, as the scheduler does.
pub async fn bind(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let binding = codec::parse_body(body_bytes, ctx.content_type.as_deref())?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Status::invalid(
                "Binding",
                "",
                ctx.name(),
                vec![bramble_api::Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "target.name".into(),
                }],
            )
        })?
        .to_string();
    let pod_name = ctx.name().to_string();
    guaranteed_update(ctx, &mut |current: &Value| {
        if objects::is_terminating(current) {
            return Err(Status::conflict(&ctx.info.qualified_resource(), "", &pod_name));
        }
        if let Some(assigned) = current.pointer("/spec/nodeName").and_then(Value::as_str) {
            if !assigned.is_empty() {
                let mut s = Status::new(
                    Reason::Conflict,
                    format!("Operation cannot be fulfilled on pods/binding \"{pod_name}\": pod {pod_name} is already assigned to node \"{assigned}\""),
                );
                s.name = Some(pod_name.clone());
                s.kind = Some("pods/binding".into());
                return Err(s);
            }
        }
        let mut next = current.clone();
        next["spec"]["nodeName"] = json!(node);
        set_scheduled_condition(&mut next);
        Ok(next)
    })
    .await?;
    Ok(body::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

fn set_scheduled_condition(pod: &mut Value) {
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": objects::now_rfc3339()});
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let conditions = pod["status"]
        .as_object_mut()
        .expect("status is an object")
        .entry("conditions")
        .or_insert_with(|| json!([]));
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
        list.push(cond);
    }
}
