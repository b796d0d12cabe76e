//! Decoding request bodies into objects, with upstream's field validation.

use serde_json::Value;

use bramble_api::{codec, Status};

use super::Ctx;
use crate::query::FieldValidation;

/// A decoded object and the warnings the client gets in `Warning` headers.
pub struct Decoded {
    pub obj: Value,
    pub warnings: Vec<String>,
}

/// Parses and decodes a create or replace body for `ctx.info`.
pub fn decode_body(ctx: &Ctx<'_>, body: &[u8]) -> Result<Decoded, Status> {
    let raw = codec::parse_body(body, ctx.content_type.as_deref())?;
    decode_value(ctx, raw)
}

/// Decodes an already parsed object (a patched one, say) and checks its fields.
pub fn decode_value(ctx: &Ctx<'_>, raw: Value) -> Result<Decoded, Status> {
    let validation = ctx.query.field_validation()?;
    let obj = codec::decode_object(&ctx.info, raw.clone())?;
    let mut warnings = Vec::new();
    if validation != FieldValidation::Ignore && ctx.info.decode.is_some() {
        let unknown: Vec<String> = bramble_api::roundtrip::unknown_fields(&raw, &obj)
            .into_iter()
            .filter(|f| !folded_on_decode(&ctx.info, f))
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        if !unknown.is_empty() {
            if validation == FieldValidation::Strict {
                let kind = &ctx.info.kind;
                return Err(Status::bad_request(format!(
                    "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                    ctx.info.version,
                    unknown.join(", ")
                )));
            }
            warnings = unknown;
        }
    }
    Ok(Decoded { obj, warnings })
}

/// Fields the decoder folds into others, so they are known though absent after decoding
/// (a Secret's `stringData` goes into `data`).
fn folded_on_decode(info: &bramble_api::ResourceInfo, field: &str) -> bool {
    info.group.is_empty() && info.kind == "Secret" && field == "stringData"
}

/// Adds `Warning: 299 - "..."` headers as upstream does.
pub fn with_warnings(
    mut resp: crate::body::Response,
    warnings: &[String],
) -> crate::body::Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}
