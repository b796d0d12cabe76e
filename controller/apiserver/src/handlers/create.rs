//! POST on a collection.

use std::sync::Arc;

use serde_json::Value;

use bramble_api::{defaults, strategy, validation, ResourceInfo, Status};
use bramble_store::{Op, OpOutcome};

use super::decode::{decode_body, with_warnings};
use super::Ctx;
use crate::admission;
use crate::body::{self, Response};
use crate::errors::store_status;
use crate::objects::{self, meta_str};
use crate::state::ApiState;

pub async fn create(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let mut decoded = decode_body(ctx, body_bytes)?;
    record_creation(&ctx.info, &mut decoded.obj, &ctx.manager());
    let dry_run = ctx.query.dry_run()?;
    let mut warnings = decoded.warnings;
    warnings.extend(crate::admission_pod_security::on_create(
        ctx.state,
        &ctx.info,
        ctx.namespace(),
        &decoded.obj,
    )?);
    let stored = create_object(ctx.state, &ctx.info, ctx.namespace(), decoded.obj, dry_run).await?;
    Ok(with_warnings(body::raw_json(201, stored), &warnings))
}

/// Records the creation of `obj` by `manager` in its `managedFields`, as upstream's field
/// manager does on create: the fields of the decoded, defaulted object, before admission
/// and the strategy add theirs (a Job's generated selector, a pod's token volume).
pub fn record_creation(info: &ResourceInfo, obj: &mut Value, manager: &str) {
    let mut defaulted = obj.clone();
    defaults::apply(info, &mut defaulted);
    bramble_api::apply::record_create(info, &mut defaulted, manager, &objects::now_rfc3339());
    let meta = objects::meta_mut(obj);
    match defaulted.pointer("/metadata/managedFields") {
        Some(entries) => {
            meta.insert("managedFields".into(), entries.clone());
        }
        None => {
            meta.remove("managedFields");
        }
    }
}

/// Creates one object: naming, admission, defaulting, validation, then the store.
/// Returns the stored JSON (or, for a dry run, what would have been stored).
pub async fn create_object(
    state: &Arc<ApiState>,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    mut obj: Value,
    dry_run: bool,
) -> Result<Vec<u8>, Status> {
    objects::set_namespace(&mut obj, if info.namespaced { namespace } else { None })?;
    objects::apply_generate_name(&mut obj);
    if let Some(ns) = namespace.filter(|_| info.namespaced) {
        admission::namespace_accepts_new_content(state, ns).await?;
    }
    // upstream stamps the uid first: a Job's generated selector is made from it
    objects::stamp_create(&mut obj)?;
    defaults::apply(info, &mut obj);
    strategy::prepare_for_create(info, &mut obj);
    if let Some(ns) = namespace.filter(|_| info.namespaced) {
        crate::admission_limitrange::admit_create(state, info, ns, &mut obj)?;
        crate::admission_storageclass::admit_create(state, info, &mut obj)?;
    }
    let name = meta_str(&obj, "name").unwrap_or("").to_string();
    let causes = validation::validate(info, &obj, None);
    if !causes.is_empty() {
        return Err(Status::invalid(&info.kind, &info.group, &name, causes));
    }
    if let Some(ns) = namespace.filter(|_| info.namespaced) {
        crate::admission_quota::admit_create(state, info, ns, &obj, dry_run).await?;
    }
    // Allocation and the write happen under one lock so two Services never share an address.
    let _allocation = if admission::allocates_service_addresses(info) {
        let guard = state.service_allocation.lock().await;
        admission::allocate_service(state, &mut obj, None, &name)?;
        Some(guard)
    } else {
        None
    };
    if dry_run {
        return serde_json::to_vec(&obj).map_err(|e| Status::internal(e.to_string()));
    }
    let key = info.store_key(namespace, &name);
    let store = crate::converting_store::for_resource(&state.store, info);
    match store.txn(vec![Op::Create { key, value: obj }]).await {
        Ok(mut outcomes) => match outcomes.pop() {
            Some(OpOutcome::Written(kv)) => Ok(kv.value.to_vec()),
            other => Err(Status::internal(format!(
                "unexpected store outcome {other:?}"
            ))),
        },
        Err(e) => Err(store_status(e, info, &name)),
    }
}
