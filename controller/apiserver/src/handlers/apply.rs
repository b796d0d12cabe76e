//! Server-side apply: `PATCH` with `application/apply-patch+yaml` (bramble-api `apply`).
//! Creates the object when it does not exist; `fieldManager` is required, `force=true`
//! takes conflicting fields over.

use serde_json::Value;

use bramble_api::{apply, Status};

use super::decode::{decode_value, with_warnings};
use super::update::{check_identity, guaranteed_update};
use super::Ctx;
use crate::body::{self, Response};
use crate::errors::store_status;
use crate::objects::now_rfc3339;

/// The media type of server-side apply patches.
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Whether a PATCH is a server-side apply.
pub fn is_apply(ctx: &Ctx<'_>) -> bool {
    ctx.content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim() == APPLY_PATCH)
}

pub async fn apply(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let applied: Value = serde_norway::from_slice(body_bytes)
        .map_err(|e| Status::bad_request(format!("error decoding YAML: {e}")))?;
    if !applied.is_object() {
        return Err(Status::bad_request(
            "the body of an apply patch must be an object",
        ));
    }
    let manager = ctx.query.get("fieldManager").unwrap_or("").to_string();
    let force = ctx.query.flag("force");
    let info = &ctx.info;
    let exists = ctx
        .store()
        .get(&ctx.key())
        .map_err(|e| store_status(e, info, ctx.name()))?
        .is_some();
    if !exists {
        let merged = apply::apply(info, None, &applied, &manager, force, &now_rfc3339())?;
        let decoded = decode_value(ctx, merged)?;
        let mut obj = decoded.obj;
        check_identity(ctx, &mut obj)?;
        let dry_run = ctx.query.dry_run()?;
        let mut warnings = decoded.warnings;
        warnings.extend(crate::admission_pod_security::on_create(
            ctx.state,
            info,
            ctx.namespace(),
            &obj,
        )?);
        let stored = super::create_object(ctx.state, info, ctx.namespace(), obj, dry_run).await?;
        return Ok(with_warnings(body::raw_json(201, stored), &warnings));
    }
    let mut warnings = Vec::new();
    let stored = guaranteed_update(ctx, &mut |current: &Value| {
        let merged = apply::apply(
            info,
            Some(current),
            &applied,
            &manager,
            force,
            &now_rfc3339(),
        )?;
        let decoded = decode_value(ctx, merged)?;
        warnings = decoded.warnings;
        let mut obj = decoded.obj;
        check_identity(ctx, &mut obj)?;
        warnings.extend(super::update::pod_security(ctx, &obj, current)?);
        Ok(obj)
    })
    .await?;
    Ok(with_warnings(body::raw_json(200, stored), &warnings))
}
