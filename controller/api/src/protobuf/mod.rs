//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) decoded into
//! the object's JSON form, so the rest of the API server only ever sees JSON.
//!
//! kubectl's typed clients (`kubectl create namespace|deployment|...`, drain's evictions)
//! send protobuf and never fall back to JSON. A body is the magic `k8s\0` and a
//! `runtime.Unknown` (`typeMeta{apiVersion, kind}`, `raw`, `contentEncoding`, `contentType`);
//! `raw` is the object's message.
//!
//! The schema is a generated table (`schema_table.rs`, written by
//! `scripts/gen-protobuf-schema.py`) of the messages reachable from the served kinds: field
//! numbers and wire types from the `k8s-pb` crate (prost output of upstream's
//! generated.proto), JSON names and JSON presence (`omitempty`, pointer or value, inline)
//! from upstream's Go types, JSON names cross-checked against k8s-openapi. A table and a
//! small generic decoder cost far less binary than prost types for every kind plus a
//! conversion for each, and need no reflection.

// Errors are the `Status` the API server sends as is.
#![allow(clippy::result_large_err)]

mod json;
mod schema;
#[rustfmt::skip]
mod schema_table;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::status::Status;
use wire::{Reader, WireType};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NoMagic,
    #[error("object has no kind in its type meta")]
    NoKind,
    #[error(
        "no kind \"{kind}\" is registered for version \"{api_version}\" in the protobuf schema"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("unexpected EOF")]
    UnexpectedEof,
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    #[error("illegal field number {0}")]
    BadFieldNumber(u64),
    #[error("illegal wireType {0}")]
    BadWireType(u8),
    #[error("wrong wireType {got}, expected {want}")]
    WrongWireType {
        got: &'static str,
        want: &'static str,
    },
    #[error("double is not a finite number")]
    NotFinite,
    #[error("invalid time: seconds {0}, nanos {1}")]
    BadTime(i64, i32),
    #[error("raw extension is not JSON: {0}")]
    RawJson(String),
    #[error("messages nested deeper than {0}")]
    TooDeep(usize),
    #[error("{source} at field {path} of {message}")]
    At {
        message: &'static str,
        path: String,
        source: Box<DecodeError>,
    },
}

impl DecodeError {
    /// Adds the field (of message `message`) the error happened in to its path.
    fn at(self, message: &'static str, field: &str) -> DecodeError {
        match self {
            DecodeError::At { path, source, .. } if field.is_empty() => DecodeError::At {
                message,
                path,
                source,
            },
            DecodeError::At { path, source, .. } => DecodeError::At {
                message,
                path: format!("{field}.{path}"),
                source,
            },
            e => DecodeError::At {
                message,
                path: field.to_string(),
                source: Box::new(e),
            },
        }
    }
}

/// A decoded `runtime.Unknown` envelope.
#[derive(Debug, Default, PartialEq)]
pub struct Envelope<'a> {
    pub api_version: String,
    pub kind: String,
    pub raw: &'a [u8],
    pub content_encoding: String,
    pub content_type: String,
}

/// Reads the magic prefix and the `runtime.Unknown` envelope (field numbers from upstream's
/// apimachinery/pkg/runtime/generated.proto).
pub fn envelope(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let body = bytes.strip_prefix(MAGIC).ok_or(DecodeError::NoMagic)?;
    let mut env = Envelope::default();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut r = Reader::new(body);
    while !r.is_empty() {
        match r.field()? {
            (1, WireType::Len, wire::Value::Bytes(type_meta)) => {
                let mut t = Reader::new(type_meta);
                while !t.is_empty() {
                    match t.field()? {
                        (1, WireType::Len, wire::Value::Bytes(b)) => env.api_version = text(b),
                        (2, WireType::Len, wire::Value::Bytes(b)) => env.kind = text(b),
                        _ => {}
                    }
                }
            }
            (2, WireType::Len, wire::Value::Bytes(b)) => env.raw = b,
            (3, WireType::Len, wire::Value::Bytes(b)) => env.content_encoding = text(b),
            (4, WireType::Len, wire::Value::Bytes(b)) => env.content_type = text(b),
            (n @ 1..=4, w, _) => {
                return Err(DecodeError::WrongWireType {
                    got: w.name(),
                    want: WireType::Len.name(),
                }
                .at(
                    "Unknown",
                    ["typeMeta", "raw", "contentEncoding", "contentType"][n as usize - 1],
                ))
            }
            _ => {}
        }
    }
    Ok(env)
}

/// Decodes a protobuf body into the object's JSON exactly as upstream's JSON form of the
/// same object: upstream's JSON field names, int-or-string, quantities, times (`null` for
/// the zero time), raw extensions, maps, lists, `bytes` as base64, unset optional fields
/// omitted as JSON omits them, and `apiVersion`/`kind` from the envelope.
/// Malformed bodies and kinds outside the schema are 400 BadRequest.
pub fn decode_to_json(bytes: &[u8]) -> Result<Value, Status> {
    decode(bytes).map_err(|e| {
        Status::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {e}"
        ))
    })
}

fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let env = envelope(bytes)?;
    if !env.content_encoding.is_empty() {
        return Err(DecodeError::ContentEncoding(env.content_encoding));
    }
    if env.kind.is_empty() {
        return Err(DecodeError::NoKind);
    }
    let msg = schema::message_for_kind(&env.api_version, &env.kind).ok_or_else(|| {
        DecodeError::UnknownKind {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
        }
    })?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(env.kind));
    out.insert("apiVersion".into(), Value::String(env.api_version));
    let mut fields = Map::new();
    json::decode_message(env.raw, msg, &mut fields, 0)?;
    out.extend(fields);
    Ok(Value::Object(out))
}
