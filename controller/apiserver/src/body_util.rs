//! Reading and decoding a request body for the auth modules that serve requests themselves,
//! with the same field validation (`fieldValidation` Strict/Warn/Ignore) as the REST handlers.

use http::Request;
use hyper::body::Incoming;
use serde_json::Value;

use bramble_api::{codec, ResourceInfo, Status};

use crate::body::{self, Response};
use crate::query::{FieldValidation, Query};

/// A decoded object and the warnings for the client.
pub struct Decoded {
    pub obj: Value,
    pub warnings: Vec<String>,
}

/// Reads the (size-limited) body and decodes it as an object of `info`, reporting unknown
/// fields as `fieldValidation` asks.
pub async fn decode_request(
    req: Request<Incoming>,
    info: &ResourceInfo,
) -> Result<Decoded, Status> {
    let query = Query::parse(req.uri().query());
    let validation = query.field_validation()?;
    let raw = json_request(req).await?;
    let obj = codec::decode_object(info, raw.clone())?;
    let mut warnings = Vec::new();
    if validation != FieldValidation::Ignore && info.decode.is_some() {
        let unknown: Vec<String> = bramble_api::roundtrip::unknown_fields(&raw, &obj)
            .into_iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        if !unknown.is_empty() {
            if validation == FieldValidation::Strict {
                let kind = &info.kind;
                return Err(Status::bad_request(format!(
                    "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                    info.version,
                    unknown.join(", ")
                )));
            }
            warnings = unknown;
        }
    }
    Ok(Decoded { obj, warnings })
}

/// [`decode_request`] for a create: the decoded object also carries the creator's
/// `managedFields` entry ([`crate::handlers::record_creation`]), its manager named by the
/// `fieldManager` parameter or the User-Agent.
pub async fn decode_created(
    req: Request<Incoming>,
    info: &ResourceInfo,
) -> Result<Decoded, Status> {
    let manager = bramble_api::apply::manager_of(
        Query::parse(req.uri().query()).get("fieldManager"),
        req.headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    );
    let mut decoded = decode_request(req, info).await?;
    crate::handlers::record_creation(info, &mut decoded.obj, &manager);
    Ok(decoded)
}

/// Reads the body as plain JSON (review and token request bodies, which are not stored).
pub async fn json_request(req: Request<Incoming>) -> Result<Value, Status> {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = body::read_limited(req.into_body()).await?;
    codec::parse_body(&bytes, content_type.as_deref())
}

/// Adds `Warning: 299 - "..."` headers as upstream does.
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}
