//! Field access and the formatting helpers upstream's printers share: label maps and
//! selectors, container lists, quantities, access modes, times, `+ N more...` lists.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::duration;
use super::Ctx;
use crate::quantity::Quantity;
use crate::selectors::LabelSelector;

/// The value at a JSON pointer, if present and not `null`.
pub(crate) fn at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    obj.pointer(pointer).filter(|v| !v.is_null())
}

/// A string at a JSON pointer; `""` when absent (Go's zero value).
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    at(obj, pointer).and_then(Value::as_str).unwrap_or("")
}

/// A string at a JSON pointer, `None` when absent or empty.
pub(crate) fn opt_str<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    at(obj, pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// An integer at a JSON pointer; 0 when absent.
pub(crate) fn int_at(obj: &Value, pointer: &str) -> i64 {
    at(obj, pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// A boolean at a JSON pointer; false when absent.
pub(crate) fn bool_at(obj: &Value, pointer: &str) -> bool {
    at(obj, pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// An array at a JSON pointer; empty when absent.
pub(crate) fn arr_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    at(obj, pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Number of entries of an object or array at a JSON pointer.
pub(crate) fn len_at(obj: &Value, pointer: &str) -> i64 {
    match at(obj, pointer) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

/// `metadata.name` as a cell.
pub(crate) fn name(obj: &Value) -> Value {
    Value::String(str_at(obj, "/metadata/name").to_string())
}

/// Parses a `metav1.Time`/`MicroTime` (RFC 3339); `None` when absent, unparsable or Go's
/// zero time (`0001-01-01T00:00:00Z`), which upstream treats as unset.
pub(crate) fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    let t = DateTime::parse_from_rfc3339(s).ok()?.to_utc();
    (t.timestamp() != ZERO_TIME_UNIX).then_some(t)
}

/// Unix seconds of Go's zero `time.Time`.
const ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// A time at a JSON pointer.
pub(crate) fn time_at(obj: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    parse_time(obj.pointer(pointer))
}

/// `translateTimestampSince` of the time at a JSON pointer.
pub(crate) fn since_at(obj: &Value, pointer: &str, ctx: &Ctx) -> String {
    duration::since(time_at(obj, pointer), ctx.now)
}

/// The AGE cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &Value, ctx: &Ctx) -> Value {
    Value::String(since_at(obj, "/metadata/creationTimestamp", ctx))
}

/// `metadata.deletionTimestamp` is set.
pub(crate) fn deleting(obj: &Value) -> bool {
    at(obj, "/metadata/deletionTimestamp").is_some()
}

/// Upstream `labels.FormatLabels`: `a=1,b=2` sorted by key, `<none>` when empty.
pub(crate) fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<(&str, &str)> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key; `Err` when
/// the selector does not convert.
pub(crate) fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let sel = LabelSelector::from_label_selector(sel.unwrap_or(&Value::Null)).map_err(|_| ())?;
    let mut reqs = sel.requirements().to_vec();
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(reqs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(","))
}

/// Upstream `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when invalid.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Err(()) => "<error>".into(),
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
    }
}

/// Upstream `layoutContainerCells`: comma-joined container names and images.
pub(crate) fn layout_containers(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `Quantity.String()` of a quantity value; `"0"` when absent (Go's zero quantity). An
/// unparsable value is shown as stored.
pub(crate) fn quantity(v: Option<&Value>) -> String {
    match v.filter(|v| !v.is_null()) {
        None => "0".into(),
        Some(v) => match Quantity::from_json(v) {
            Ok(q) => q.canonical(),
            Err(_) => v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string()),
        },
    }
}

/// Upstream `helper.GetAccessModesAsString`: `RWO,ROX,RWX,RWOP` in that order.
pub(crate) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// Upstream `printBoolPtr`: `True`, `False`, `<unset>`.
pub(crate) fn bool_ptr(v: Option<&Value>) -> String {
    match v.and_then(Value::as_bool) {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// Upstream `intstr.IntOrString.String()`.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Upstream `listWithMoreString`: `a,b,c + 2 more...`, `<unset>` when empty.
pub(crate) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

/// A cell string.
pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}
