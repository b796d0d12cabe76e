//! The `scale` subresource (`autoscaling/v1` `Scale`) of Deployments, ReplicaSets,
//! StatefulSets (and ReplicationControllers when served): GET builds the Scale from the
//! stored object; PUT and PATCH write `spec.replicas` back through the object's update path.

use serde_json::Value;

use bramble_api::scale::{apply_scale, scale_of};
use bramble_api::{codec, Reason, Status};

use super::update::guaranteed_update;
use super::Ctx;
use crate::body::{self, Response};
use crate::errors::store_status;

/// `GET .../<name>/scale`.
pub async fn get(ctx: &Ctx<'_>) -> Result<Response, Status> {
    let kv = ctx
        .store()
        .get(&ctx.key())
        .map_err(|e| store_status(e, &ctx.info, ctx.name()))?
        .ok_or_else(|| {
            Status::not_found(&ctx.info.qualified_resource(), &ctx.info.group, ctx.name())
        })?;
    let obj = crate::objects::decode_stored(&kv.value)?;
    Ok(body::json(200, &scale_of(&obj)))
}

/// `PUT .../<name>/scale` with a `Scale` body.
pub async fn replace(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let scale = codec::parse_body(body_bytes, ctx.content_type.as_deref())?;
    check_scale_body(ctx, &scale)?;
    let stored = guaranteed_update(ctx, &mut |current: &Value| {
        let mut next = current.clone();
        apply_scale(&mut next, &scale)?;
        Ok(next)
    })
    .await?;
    respond(&stored)
}

/// `PATCH .../<name>/scale`: the patch applies to the current `Scale`, whose replicas
/// then go to the object.
pub async fn patch(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let content_type = ctx
        .content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let doc = codec::parse_body(body_bytes, Some(&content_type))?;
    let stored = guaranteed_update(ctx, &mut |current: &Value| {
        let scale = scale_of(current);
        let patched = patch_scale(&content_type, &scale, &doc)?;
        check_scale_body(ctx, &patched)?;
        let mut next = current.clone();
        apply_scale(&mut next, &patched)?;
        Ok(next)
    })
    .await?;
    respond(&stored)
}

/// A `Scale` has no lists, so a strategic merge patch is a JSON merge patch on it (minus
/// directives, which have nothing to act on).
fn patch_scale(content_type: &str, scale: &Value, doc: &Value) -> Result<Value, Status> {
    let mut target = scale.clone();
    match content_type {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_value(doc.clone())
                .map_err(|e| Status::bad_request(format!("json: cannot unmarshal patch: {e}")))?;
            json_patch::patch(&mut target, &p).map_err(|e| {
                Status::new(
                    Reason::Invalid,
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            json_patch::merge(&mut target, doc);
        }
        other => {
            return Err(Status::new(
                Reason::UnsupportedMediaType,
                format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"),
            ))
        }
    }
    Ok(target)
}

/// The Scale's name must be the path's, as for any update.
fn check_scale_body(ctx: &Ctx<'_>, scale: &Value) -> Result<(), Status> {
    if let Some(kind) = scale.get("kind").and_then(Value::as_str) {
        if !kind.is_empty() && kind != "Scale" {
            return Err(Status::bad_request(format!("expected Scale, got {kind}")));
        }
    }
    match scale.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != ctx.name() => Err(Status::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({})",
            ctx.name()
        ))),
        _ => Ok(()),
    }
}

fn respond(stored: &[u8]) -> Result<Response, Status> {
    let obj = crate::objects::decode_stored(stored)?;
    Ok(body::json(200, &scale_of(&obj)))
}
