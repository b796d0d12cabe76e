//! Table tests: per kind, the cells compared with what upstream's printers produce for the
//! same object (cases taken from upstream's `printers_test.go` where it has them), plus the
//! Table envelope, `includeObject` and the default and custom-resource tables.

mod cluster;
mod core;
mod envelope;
mod kubectl;
mod pod;
mod workloads;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;

use super::{table, TableOptions};
use crate::registry::Registry;
use crate::resources::ResourceInfo;

/// The fixed "now" of every test.
pub(super) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .unwrap()
        .to_utc()
}

/// RFC 3339 timestamp `d` before [`now`].
pub(super) fn ago(d: TimeDelta) -> String {
    (now() - d).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The built-in resource of a kind.
pub(super) fn info(api_version: &str, kind: &str) -> ResourceInfo {
    Registry::builtin()
        .find_kind(api_version, kind)
        .unwrap_or_else(|| panic!("{api_version} {kind} is served"))
        .as_ref()
        .clone()
}

/// The table of one object at [`now`].
pub(super) fn table_of(api_version: &str, kind: &str, obj: &Value) -> Value {
    table(
        &info(api_version, kind),
        std::slice::from_ref(obj),
        &TableOptions::at(now()),
    )
}

/// The cells of one object's row.
pub(super) fn cells(api_version: &str, kind: &str, obj: &Value) -> Vec<Value> {
    let t = table_of(api_version, kind, obj);
    t["rows"][0]["cells"].as_array().unwrap().clone()
}

/// Column names and priorities of a kind's table.
pub(super) fn columns(api_version: &str, kind: &str) -> Vec<(String, i64)> {
    let t = table(&info(api_version, kind), &[], &TableOptions::at(now()));
    t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `(name, priority)` pairs from names, with `*` marking `-o wide` columns.
pub(super) fn expect_columns(names: &[&str]) -> Vec<(String, i64)> {
    names
        .iter()
        .map(|n| match n.strip_prefix('*') {
            Some(w) => (w.to_string(), 1),
            None => (n.to_string(), 0),
        })
        .collect()
}
