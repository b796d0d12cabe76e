//! `POST pods/<name>/eviction` (policy/v1 `Eviction`): deletes the pod as a DELETE with the
//! Eviction's `deleteOptions` would, after checking the PodDisruptionBudgets that select it
//! (bramble-api `disruption`); a budget that allows the disruption is decremented first.

use serde_json::{json, Value};

use bramble_api::disruption::{self, Decision};
use bramble_api::{codec, Status};
use bramble_store::{ListOptions, Op, StoreError};

use super::delete::{delete_object, DeleteOptions};
use super::Ctx;
use crate::body::{self, Response};
use crate::errors::store_status;
use crate::objects::{decode_stored, now_rfc3339};

/// How often a budget update that lost a race is retried before giving up.
const MAX_RETRIES: usize = 5;

pub async fn evict(ctx: &Ctx<'_>, body_bytes: &[u8]) -> Result<Response, Status> {
    let eviction = codec::parse_body(body_bytes, ctx.content_type.as_deref())?;
    let name = ctx.name().to_string();
    if let Some(n) = eviction.pointer("/metadata/name").and_then(Value::as_str) {
        if n != name {
            return Err(Status::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
    }
    let opts = delete_options(ctx, &eviction)?;
    let ns = ctx.namespace().unwrap_or("default").to_string();
    let info = &ctx.info;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let kv = ctx
            .store()
            .get(&ctx.key())
            .map_err(|e| store_status(e, info, &name))?
            .ok_or_else(|| Status::not_found(&info.qualified_resource(), &info.group, &name))?;
        let pod = decode_stored(&kv.value)?;
        if !disruption::can_ignore_budgets(&pod) {
            let budgets = list_values(ctx, &format!("policy/poddisruptionbudgets/{ns}/"))?;
            let matching = disruption::budgets_for_pod(&pod, &budgets.values);
            if matching.len() > 1 {
                return Err(disruption::multiple_budgets());
            }
            if let Some(budget) = matching.first() {
                let pods = list_values(ctx, &format!("core/pods/{ns}/"))?;
                if let Decision::EvictAndUpdate(updated) =
                    disruption::decide(budget, &pod, &pods.values, &now_rfc3339())?
                {
                    if !opts.dry_run {
                        let key = format!(
                            "policy/poddisruptionbudgets/{ns}/{}",
                            bramble_api::meta::name(budget).unwrap_or_default()
                        );
                        let revision = budgets.revision_of(&key);
                        let mut updated = updated;
                        if let Some(m) = updated.get_mut("metadata").and_then(Value::as_object_mut)
                        {
                            m.remove("resourceVersion");
                        }
                        match ctx
                            .store()
                            .txn(vec![Op::Update {
                                key,
                                value: updated,
                                expected_revision: revision,
                            }])
                            .await
                        {
                            Ok(_) => {}
                            Err(StoreError::Conflict { .. }) if attempts < MAX_RETRIES => continue,
                            Err(e) => return Err(Status::internal(e.to_string())),
                        }
                    }
                }
            }
        }
        let mut opts = opts.clone();
        // the pod evicted is the one the budget was checked against
        opts.precondition_uid = opts
            .precondition_uid
            .or_else(|| bramble_api::meta::uid(&pod).map(str::to_string));
        delete_object(ctx.state, info, Some(&ns), &name, &opts).await?;
        return Ok(body::json(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ));
    }
}

/// `deleteOptions` of the Eviction, with `dryRun` from the query as well.
fn delete_options(ctx: &Ctx<'_>, eviction: &Value) -> Result<DeleteOptions, Status> {
    let mut opts = DeleteOptions {
        dry_run: ctx.query.dry_run()?,
        ..Default::default()
    };
    let Some(d) = eviction.get("deleteOptions").filter(|d| d.is_object()) else {
        return Ok(opts);
    };
    opts.grace_period_seconds = d
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .map(|g| g.max(0));
    opts.precondition_uid = d
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    opts.precondition_resource_version = d
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    if d.get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        opts.dry_run = true;
    }
    Ok(opts)
}

/// Objects under a store prefix with their revisions.
struct Listed {
    values: Vec<Value>,
    keys: Vec<(String, u64)>,
}

impl Listed {
    fn revision_of(&self, key: &str) -> Option<u64> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, r)| *r)
    }
}

fn list_values(ctx: &Ctx<'_>, prefix: &str) -> Result<Listed, Status> {
    let listed = ctx
        .store()
        .list(prefix, ListOptions::default())
        .map_err(|e| Status::internal(e.to_string()))?;
    let mut values = Vec::with_capacity(listed.items.len());
    let mut keys = Vec::with_capacity(listed.items.len());
    for kv in &listed.items {
        values.push(decode_stored(&kv.value)?);
        keys.push((kv.key.clone(), kv.mod_revision));
    }
    Ok(Listed { values, keys })
}
