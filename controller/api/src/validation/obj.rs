//! Small accessors over `serde_json::Value` objects, so validators read like upstream's
//! typed code: absent fields read as Go zero values.

use serde_json::{Map, Value};

use super::field::BadValue;

static EMPTY_ARR: Vec<Value> = Vec::new();

/// A child value, if present and not null.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// A nested value by path.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = get(cur, k)?;
    }
    Some(cur)
}

/// A string field; `""` when absent (Go zero value).
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An optional string field (Go `*string`).
pub fn opt_s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// An integer field; `0` when absent.
pub fn i(v: &Value, key: &str) -> i64 {
    opt_i(v, key).unwrap_or(0)
}

/// An optional integer field (Go `*int32`).
pub fn opt_i(v: &Value, key: &str) -> Option<i64> {
    get(v, key).and_then(Value::as_i64)
}

/// A boolean field; `false` when absent.
pub fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// An array field; empty when absent.
pub fn arr<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v.get(key).and_then(Value::as_array).unwrap_or(&EMPTY_ARR)
}

/// An object field.
pub fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// A `map[string]string` field, keys sorted (Go iterates maps in random order; sorted is one
/// of the orders upstream can produce and keeps messages stable).
pub fn string_map<'a>(v: &'a Value, key: &str) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = obj(v, key)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Keys of an object field, sorted.
pub fn keys<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = obj(v, key)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// A list of strings field.
pub fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    arr(v, key).iter().filter_map(Value::as_str).collect()
}

/// The bad value a Go validator would report for this JSON value.
pub fn bad(v: Option<&Value>) -> BadValue {
    match v {
        None | Some(Value::Null) => BadValue::Null,
        Some(Value::String(s)) => BadValue::Str(s.clone()),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(BadValue::Int)
            .unwrap_or_else(|| BadValue::Json(Value::Number(n.clone()))),
        Some(Value::Bool(b)) => BadValue::Bool(*b),
        Some(other) => BadValue::Json(other.clone()),
    }
}

/// A Go named-string value (enums such as `RestartPolicy`), printed as JSON.
pub fn named(s: &str) -> BadValue {
    BadValue::Named(s.to_string())
}

/// Semantic equality of two optional values as stored objects compare upstream: absent, null,
/// empty lists and empty maps are all the zero value (they do not survive a Go round trip).
pub fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Null => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| normalize(Some(v)).map(|v| (k.clone(), v)))
                .collect();
            if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            }
        }
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .map(|e| normalize(Some(e)).unwrap_or(Value::Null))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}
