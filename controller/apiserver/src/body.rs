//! Request and response bodies.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::Value;

use bramble_api::Status;

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Response = http::Response<Body>;

/// Upstream's request body limit (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A JSON response from already-encoded bytes.
pub fn raw_json(code: u16, bytes: impl Into<Bytes>) -> Response {
    let mut resp = http::Response::new(full(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn json(code: u16, value: &Value) -> Response {
    raw_json(code, serde_json::to_vec(value).unwrap_or_default())
}

pub fn status(s: &Status) -> Response {
    let mut resp = json(s.code(), &s.to_json());
    if let Some(secs) = s.retry_after_seconds {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

pub fn text(code: u16, body: impl Into<Bytes>) -> Response {
    let mut resp = http::Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// How much of an oversized body is read and thrown away before answering 413, so the
/// client gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// How long a refused request's body is read (and thrown away) before the answer goes out.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards what the client sends of a request answered without its body (401,
/// 403), up to [`MAX_BODY_BYTES`] or [`DRAIN_TIMEOUT`]: an HTTP/2 stream whose body is
/// dropped unread is reset, and clients such as curl then report a framing error instead
/// of the answer.
pub async fn discard<B>(body: B)
where
    B: hyper::body::Body<Data = Bytes>,
{
    let drain = async {
        let mut body = std::pin::pin!(body);
        let mut total = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            total += frame.data_ref().map_or(0, |d| d.len());
            if total > MAX_BODY_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
}

/// Reads a whole request body, refusing more than [`MAX_BODY_BYTES`] with 413.
pub async fn read_limited<B>(body: B) -> Result<Bytes, Status>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Status::bad_request(format!("reading request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total <= MAX_BODY_BYTES {
            buf.extend_from_slice(&data);
        } else {
            buf.clear();
            if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > MAX_BODY_BYTES {
        return Err(Status::new(
            bramble_api::Reason::RequestEntityTooLarge,
            "Request entity too large: limit is 3145728",
        ));
    }
    Ok(buf.freeze())
}
