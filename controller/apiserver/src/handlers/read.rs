//! GET of one object and LIST of a collection, with upstream's resourceVersion semantics.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use bramble_api::{codec, Cause, Reason, Status};
use bramble_store::{KeyValue, ListOptions, ListResult, StoreError};

use super::Ctx;
use crate::body::{self, Response};
use crate::errors::store_status;
use crate::filter::Filter;
use crate::negotiate::{self, Output};

pub async fn get(ctx: &Ctx<'_>) -> Result<Response, Status> {
    let kv = ctx
        .store()
        .get(&ctx.key())
        .map_err(|e| store_status(e, &ctx.info, ctx.name()))?
        .ok_or_else(|| {
            Status::not_found(&ctx.info.qualified_resource(), &ctx.info.group, ctx.name())
        })?;
    if ctx.output != Output::Json {
        let obj = crate::objects::decode_stored(&kv.value)?;
        if let Some(rendered) = negotiate::render(&ctx.output, &ctx.info, &[obj], None, &ctx.query)?
        {
            return Ok(body::json(200, &rendered));
        }
    }
    Ok(body::raw_json(200, kv.value.to_vec()))
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Response, Status> {
    wait_for_revision(ctx).await?;
    let result = list_matching(ctx)?;
    let continue_token = if result.more {
        result
            .items
            .last()
            .map(|kv| encode_continue(result.revision, &kv.key))
    } else {
        None
    };
    let rv = result.revision.to_string();
    if ctx.output != Output::Json {
        let objects = result
            .items
            .iter()
            .map(|kv| crate::objects::decode_stored(&kv.value))
            .collect::<Result<Vec<_>, _>>()?;
        let mut meta = json!({"resourceVersion": rv});
        if let Some(token) = &continue_token {
            meta["continue"] = json!(token);
            if let Some(n) = result.remaining {
                meta["remainingItemCount"] = json!(n);
            }
        }
        if let Some(rendered) =
            negotiate::render(&ctx.output, &ctx.info, &objects, Some(meta), &ctx.query)?
        {
            return Ok(body::json(200, &rendered));
        }
    }
    let bytes = codec::encode_list(
        &ctx.info,
        result.items.iter().map(|kv| &*kv.value),
        &rv,
        continue_token.as_deref(),
        result.remaining.filter(|_| result.more),
    );
    if bytes.len() >= crate::memory::LARGE_RESPONSE_BYTES {
        crate::memory::release_freed_soon();
    }
    Ok(body::raw_json(200, bytes))
}

/// The store prefix a request lists or watches.
pub fn prefix(ctx: &Ctx<'_>) -> String {
    match ctx.namespace() {
        Some(ns) if ctx.info.namespaced => ctx.info.store_namespace_prefix(ns),
        _ => ctx.info.store_prefix(),
    }
}

/// Which revision a list reads at, from `resourceVersion`, `resourceVersionMatch` and `continue`.
#[derive(Debug, PartialEq, Eq)]
enum ListAt {
    Newest,
    /// Exact revision, continuing after a key.
    Exact(u64, Option<String>),
    NotOlderThan(u64),
}

fn list_at(ctx: &Ctx<'_>) -> Result<ListAt, Status> {
    let q = &ctx.query;
    let rv = q.get("resourceVersion");
    let rv_match = q.get("resourceVersionMatch");
    if let Some(token) = q.get("continue") {
        if rv.is_some() && rv != Some("0") {
            return Err(Status::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        if rv_match.is_some() {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        let (rev, start) = decode_continue(token)?;
        return Ok(ListAt::Exact(rev, Some(start)));
    }
    let parsed_rv = match rv {
        None => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            Status::new(Reason::BadRequest, format!("invalid resource version: {s}"))
        })?),
    };
    match (rv_match, parsed_rv) {
        (Some(m), None) => Err(list_options_invalid(
            "resourceVersionMatch",
            "FieldValueForbidden",
            &format!("Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided (got {m:?})"),
        )),
        (Some("Exact"), Some(0)) => Err(list_options_invalid(
            "resourceVersionMatch",
            "FieldValueForbidden",
            "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        )),
        (Some("Exact"), Some(r)) => Ok(ListAt::Exact(r, None)),
        (Some("NotOlderThan") | None, Some(0)) | (None, None) => Ok(ListAt::Newest),
        (Some("NotOlderThan") | None, Some(r)) => Ok(ListAt::NotOlderThan(r)),
        (Some(other), _) => Err(list_options_invalid(
            "resourceVersionMatch",
            "FieldValueNotSupported",
            &format!("Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\", \"\""),
        )),
    }
}

fn list_options_invalid(field: &str, reason: &str, message: &str) -> Status {
    Status::invalid(
        "ListOptions.meta.k8s.io",
        "meta.k8s.io",
        "",
        vec![Cause {
            reason: reason.into(),
            message: message.into(),
            field: field.into(),
        }],
    )
}

/// `resourceVersion=N` (not older than): wait briefly for the store to reach N, then 504 as
/// upstream does for a too-large resource version.
async fn wait_for_revision(ctx: &Ctx<'_>) -> Result<(), Status> {
    if let ListAt::NotOlderThan(r) = list_at(ctx)? {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while ctx.store().current_revision() < r {
            if tokio::time::Instant::now() >= deadline {
                let mut s = Status::new(
                    Reason::Timeout,
                    format!(
                        "Too large resource version: {r}, current: {}",
                        ctx.store().current_revision()
                    ),
                );
                s.causes = vec![Cause {
                    reason: "ResourceVersionTooLarge".into(),
                    message: "Too large resource version".into(),
                    field: String::new(),
                }];
                s.retry_after_seconds = Some(1);
                return Err(s);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Lists what a request selects (namespace, selectors, limit, continue, resourceVersion).
pub fn list_matching(ctx: &Ctx<'_>) -> Result<ListResult, Status> {
    let filter = Filter::from_query(&ctx.info, &ctx.query)?;
    let limit = ctx
        .query
        .u64("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let prefix = prefix(ctx);
    let (revision, start_after) = match list_at(ctx)? {
        ListAt::Exact(r, start) => (
            Some(r),
            start.map(|s| format!("{}{s}", ctx.info.store_prefix())),
        ),
        ListAt::Newest | ListAt::NotOlderThan(_) => (None, None),
    };
    let is_continue = ctx.query.get("continue").is_some();
    let matcher = |kv: &KeyValue| filter.as_ref().is_none_or(|f| f.matches_raw(&kv.value));
    let opts = ListOptions {
        start_after,
        limit,
        revision,
        filter: if filter.is_some() {
            Some(&matcher)
        } else {
            None
        },
    };
    ctx.store().list(&prefix, opts).map_err(|e| match e {
        StoreError::Compacted { .. } if is_continue => Status::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        ),
        StoreError::Compacted { requested, compacted } => Status::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => {
            let mut s = Status::new(
                Reason::Timeout,
                format!("Too large resource version: {requested}, current: {current}"),
            );
            s.retry_after_seconds = Some(1);
            s
        }
        other => store_status(other, &ctx.info, ""),
    })
}

/// Upstream's continue token: base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":"..."}`,
/// where `start` is the last returned key, relative to the resource prefix.
fn encode_continue(revision: u64, last_key: &str) -> String {
    // keys are `<group>/<resource>/<rest>`; the token carries `<rest>`
    let rest: String = last_key
        .splitn(3, '/')
        .nth(2)
        .unwrap_or(last_key)
        .to_string();
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": rest});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), Status> {
    let invalid = || Status::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(invalid());
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_u64)
        .filter(|r| *r > 0)
        .ok_or_else(invalid)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(invalid)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(invalid());
    }
    Ok((rv, start.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "core/pods/default/web-1");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "default/web-1".to_string())
        );
        assert!(decode_continue("not-a-token").is_err());
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/x"}"#);
        assert!(decode_continue(&evil).is_err());
    }
}
