//! Request bodies in, list bodies out: media types, JSON/YAML parsing, decoding an object
//! for a resource (type meta checks and defaults, the typed round trip, upstream's
//! conversion side effects), and fast list encoding from raw stored JSON.

// Errors are the `Status` the API server sends as is; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::OnceLock;

use base64::Engine;
use serde_json::{Map, Value};

use crate::quantity::Quantity;
use crate::registry::{split_api_version, Registry};
use crate::resources::ResourceInfo;
use crate::status::{Reason, Status};

/// Media types accepted for create and update bodies.
const OBJECT_TYPES: &str = "application/json, application/yaml";
/// Media types accepted for patch bodies, in upstream's order.
const PATCH_TYPES: &str = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml";

/// The kind of a PATCH body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

/// The media type of a `Content-Type` header, lowercased, parameters dropped; JSON when
/// absent or empty (as upstream).
pub fn media_type(content_type: Option<&str>) -> String {
    let mt = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mt.is_empty() {
        "application/json".into()
    } else {
        mt
    }
}

fn unsupported(types: &str) -> Status {
    Status::new(
        Reason::UnsupportedMediaType,
        format!("the body of the request was in an unknown format - accepted media types include: {types}"),
    )
}

/// Parses a request body by media type: JSON (`application/json`, the default,
/// `application/merge-patch+json`, `application/json-patch+json`,
/// `application/strategic-merge-patch+json`) or YAML (`application/yaml`,
/// `application/apply-patch+yaml`; the first document). Anything else is 415.
pub fn parse_body(bytes: &[u8], content_type: Option<&str>) -> Result<Value, Status> {
    match media_type(content_type).as_str() {
        "application/json"
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json" => parse_json(bytes),
        "application/yaml" | "application/apply-patch+yaml" => parse_yaml(bytes),
        // kubectl's typed clients send protobuf and never fall back to JSON.
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode_to_json(bytes),
        _ => Err(unsupported(&format!("{OBJECT_TYPES}, {PATCH_TYPES}"))),
    }
}

/// Parses a PATCH body; only the four patch media types are accepted (415 otherwise, with
/// upstream's list).
pub fn parse_patch(bytes: &[u8], content_type: Option<&str>) -> Result<(PatchType, Value), Status> {
    let pt = match media_type(content_type).as_str() {
        "application/json-patch+json" => PatchType::Json,
        "application/merge-patch+json" => PatchType::Merge,
        "application/strategic-merge-patch+json" => PatchType::StrategicMerge,
        "application/apply-patch+yaml" => PatchType::Apply,
        _ => return Err(unsupported(PATCH_TYPES)),
    };
    let v = if pt == PatchType::Apply {
        parse_yaml(bytes)?
    } else {
        parse_json(bytes)?
    };
    Ok((pt, v))
}

fn parse_json(bytes: &[u8]) -> Result<Value, Status> {
    serde_json::from_slice(bytes).map_err(|e| {
        Status::bad_request(format!(
            "couldn't get version/kind; json parse error: {} ({})",
            json_error(&e),
            summarize(bytes)
        ))
    })
}

fn parse_yaml(bytes: &[u8]) -> Result<Value, Status> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let mut docs = serde_norway::Deserializer::from_slice(bytes);
    let first = docs.next().ok_or_else(|| {
        Status::bad_request("error converting YAML to JSON: yaml: empty document")
    })?;
    serde::Deserialize::deserialize(first).map_err(|e: serde_norway::Error| {
        Status::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
    })
}

/// serde_json's message, with Go's wording for the most common case.
fn json_error(e: &serde_json::Error) -> String {
    if e.is_eof() {
        "unexpected end of JSON input".into()
    } else {
        e.to_string()
    }
}

/// Upstream `summarizeData`: the body, or its first 30 bytes and ` ...`.
fn summarize(bytes: &[u8]) -> String {
    const MAX: usize = 30;
    if bytes.is_empty() {
        return "<empty>".into();
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]).into_owned();
    if bytes.len() > MAX {
        format!("{text} ...")
    } else {
        text
    }
}

/// Parses and decodes a create or replace body (JSON or YAML only; 415 otherwise), with
/// upstream's `the object provided is unrecognized (must be of type Pod)` wording for
/// bodies that do not parse.
pub fn decode_body(
    info: &ResourceInfo,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Value, Status> {
    let parsed = match media_type(content_type).as_str() {
        "application/json" => parse_json(bytes),
        "application/yaml" => parse_yaml(bytes),
        _ => return Err(unsupported(OBJECT_TYPES)),
    };
    let v = parsed.map_err(|s| {
        Status::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {}",
            info.kind, s.message
        ))
    })?;
    decode_object(info, v)
}

fn builtins() -> &'static Registry {
    static BUILTINS: OnceLock<Registry> = OnceLock::new();
    BUILTINS.get_or_init(Registry::builtin)
}

/// Go package name of a group's internal types, as conversion errors print them.
fn internal_package(group: &str) -> &str {
    match group {
        "" | "events.k8s.io" => "core",
        g => g.split('.').next().unwrap_or(g),
    }
}

/// Decodes an object for `info` as upstream's create/update decoder does:
/// - the body must be an object; `apiVersion` and `kind` are filled from `info` when
///   absent (upstream's defaulting GVK);
/// - another version of the same group is `the API version in the data (..) does not
///   match the expected API version (..)`; another kind is `<Kind> in version "<v>" cannot
///   be handled as a <Kind>: ...`;
/// - built-ins go through the typed round trip (unknown fields dropped, type errors name the
///   field) and upstream's conversion side effects (Secret `stringData` merged into `data`,
///   Pod `serviceAccount` kept equal to `serviceAccountName`, quantities canonical);
/// - the result starts with `kind`, `apiVersion`, `metadata` like upstream's output.
pub fn decode_object(info: &ResourceInfo, body: Value) -> Result<Value, Status> {
    let Value::Object(mut map) = body else {
        let what = match body {
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            _ => "null",
        };
        return Err(Status::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {what} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            info.kind
        )));
    };
    let type_str = |key: &str| -> Result<String, Status> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(Status::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {key} into Go struct field .{key} of type string",
                info.kind
            ))),
        }
    };
    let mut kind = type_str("kind")?;
    let api_version = type_str("apiVersion")?;
    let (mut group, mut version) = match api_version.matches('/').count() {
        0 => (String::new(), api_version.clone()),
        1 => {
            let (g, v) = split_api_version(&api_version);
            (g.to_string(), v.to_string())
        }
        _ => {
            return Err(Status::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): unexpected GroupVersion string: {api_version}",
                info.kind
            )))
        }
    };
    if kind.is_empty() {
        kind = info.kind.clone();
    }
    if version.is_empty() && (group.is_empty() || group == info.group) {
        group = info.group.clone();
        version = info.version.clone();
    }
    let cannot_handle = |detail: String| {
        Status::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {}: {detail}",
            info.kind
        ))
    };
    let data_gv = if group.is_empty() {
        version.clone()
    } else {
        format!("{group}/{version}")
    };
    if kind != info.kind {
        let registered = builtins().find_kind(&data_gv, &kind).is_some();
        let detail = if registered && info.decode.is_some() {
            format!(
                "converting ({version}.{kind}) to ({}.{}): unknown conversion",
                internal_package(&info.group),
                info.kind
            )
        } else if info.decode.is_some() {
            format!("no kind \"{kind}\" is registered for version \"{data_gv}\" in scheme \"pkg/api/legacyscheme/scheme.go:30\"")
        } else {
            format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )
        };
        return Err(cannot_handle(detail));
    }
    if group != info.group || version != info.version {
        if group == info.group || info.decode.is_none() {
            return Err(Status::bad_request(format!(
                "the API version in the data ({data_gv}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
        return Err(cannot_handle(format!(
            "no kind \"{kind}\" is registered for version \"{data_gv}\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    }
    map.insert("apiVersion".into(), Value::String(info.api_version()));
    map.insert("kind".into(), Value::String(info.kind.clone()));
    if let Some(m) = map.get("metadata") {
        if !m.is_object() && !m.is_null() {
            return Err(cannot_handle(format!(
                "json: cannot unmarshal {} into Go struct field {}.metadata of type v1.ObjectMeta",
                value_kind(m),
                info.kind
            )));
        }
    }
    let mut obj = Value::Object(map);
    if let Some(decode) = info.decode {
        obj = decode(obj).map_err(cannot_handle)?;
        convert(info, &mut obj).map_err(cannot_handle)?;
    } else if let Some(schema) = crate::crd::schema_for(&info.group, &info.version, &info.resource)
    {
        crate::crd::defaults::apply_defaults(&schema, &mut obj);
        let causes = crate::crd::schema::validate_and_prune(&schema, &mut obj);
        if !causes.is_empty() {
            let name = crate::meta::name(&obj).unwrap_or_default().to_string();
            return Err(Status::invalid(&info.kind, &info.group, &name, causes));
        }
    }
    Ok(type_meta_first(obj))
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Reorders the top level to `kind`, `apiVersion`, `metadata`, then the rest.
fn type_meta_first(obj: Value) -> Value {
    let Value::Object(mut map) = obj else {
        return obj;
    };
    let mut out = Map::with_capacity(map.len());
    for key in ["kind", "apiVersion", "metadata"] {
        if let Some(v) = map.remove(key) {
            out.insert(key.to_string(), v);
        }
    }
    out.extend(map);
    Value::Object(out)
}

/// Upstream's v1 -> internal conversion side effects that are visible to clients.
fn convert(info: &ResourceInfo, obj: &mut Value) -> Result<(), String> {
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "secrets") => merge_string_data(obj),
        ("", "pods") => sync_service_account(obj.get_mut("spec")),
        ("apps", "deployments" | "replicasets" | "daemonsets" | "statefulsets")
        | ("batch", "jobs") => sync_service_account(obj.pointer_mut("/spec/template/spec")),
        ("batch", "cronjobs") => {
            sync_service_account(obj.pointer_mut("/spec/jobTemplate/spec/template/spec"))
        }
        _ => {}
    }
    if has_quantities(info) {
        canonicalize_quantities(obj, "")?;
    }
    Ok(())
}

/// Secret `stringData` is write-only: merged into `data` (base64), winning over `data`.
fn merge_string_data(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let data = data.as_object_mut().expect("object ensured above");
    for (k, v) in string_data {
        let s = v.as_str().unwrap_or_default();
        data.insert(
            k,
            Value::String(base64::engine::general_purpose::STANDARD.encode(s)),
        );
    }
}

/// v1 `serviceAccount` is the deprecated alias of `serviceAccountName`: the name wins, the
/// alias fills an empty name, and the output carries both.
fn sync_service_account(spec: Option<&mut Value>) {
    let Some(Value::Object(spec)) = spec else {
        return;
    };
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let alias = spec
        .get("serviceAccount")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let effective = if name.is_empty() { alias } else { name };
    if !effective.is_empty() {
        spec.insert(
            "serviceAccountName".into(),
            Value::String(effective.clone()),
        );
        spec.insert("serviceAccount".into(), Value::String(effective));
    }
}

fn has_quantities(info: &ResourceInfo) -> bool {
    matches!(
        (info.group.as_str(), info.resource.as_str()),
        (
            "",
            "pods"
                | "nodes"
                | "persistentvolumes"
                | "persistentvolumeclaims"
                | "resourcequotas"
                | "limitranges"
        ) | (
            "apps",
            "deployments" | "replicasets" | "daemonsets" | "statefulsets"
        ) | ("batch", "jobs" | "cronjobs")
    )
}

/// Keys whose value is a `ResourceList` (name -> quantity) in the kinds above.
const QUANTITY_MAPS: &[&str] = &[
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "overhead",
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
    "allocatedResources",
];

/// Rewrites every quantity to upstream's canonical form; an invalid one is the parse error.
fn canonicalize_quantities(v: &mut Value, key: &str) -> Result<(), String> {
    match v {
        Value::Object(map) => {
            let is_list = QUANTITY_MAPS.contains(&key);
            for (k, child) in map.iter_mut() {
                if k == "metadata" {
                    continue;
                }
                let scalar = child.is_string() || child.is_number();
                if scalar && (is_list || k == "sizeLimit") {
                    *child = Value::String(canonical(child)?);
                } else {
                    canonicalize_quantities(child, k)?;
                }
            }
        }
        // A resource list is never an array, so an array under one of those names (a
        // LimitRange's `spec.limits` of items) is walked as ordinary fields.
        Value::Array(items) => {
            for item in items {
                canonicalize_quantities(item, "")?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn canonical(v: &Value) -> Result<String, String> {
    Quantity::from_json(v)
        .map(|q| q.canonical())
        .map_err(|e| e.to_string())
}

/// A list body (`{"kind":"PodList","apiVersion":"v1","metadata":{...},"items":[...]}`)
/// built by concatenating the items' stored JSON without parsing it.
pub fn encode_list<'a>(
    info: &ResourceInfo,
    items: impl Iterator<Item = &'a [u8]>,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<u64>,
) -> Vec<u8> {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"kind\":");
    out.extend_from_slice(quote(&info.list_kind).as_bytes());
    out.extend_from_slice(b",\"apiVersion\":");
    out.extend_from_slice(quote(&info.api_version()).as_bytes());
    out.extend_from_slice(b",\"metadata\":{\"resourceVersion\":");
    out.extend_from_slice(quote(resource_version).as_bytes());
    if let Some(c) = continue_token.filter(|c| !c.is_empty()) {
        out.extend_from_slice(b",\"continue\":");
        out.extend_from_slice(quote(c).as_bytes());
    }
    if let Some(r) = remaining {
        out.extend_from_slice(format!(",\"remainingItemCount\":{r}").as_bytes());
    }
    out.extend_from_slice(b"},\"items\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
