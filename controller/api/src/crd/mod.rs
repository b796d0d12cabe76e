//! Custom resources: structural defaulting ([`defaults`]), schema validation and pruning of
//! custom objects ([`schema`]), with the schemas of served CRD versions kept in a process-wide table that
//! the API server's CRD registration fills and [`crate::codec::decode_object`] consults.

pub mod defaults;
pub mod schema;

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use serde_json::Value;

fn table() -> &'static RwLock<HashMap<String, Value>> {
    static TABLE: OnceLock<RwLock<HashMap<String, Value>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

fn key(group: &str, version: &str, resource: &str) -> String {
    format!("{group}/{version}/{resource}")
}

/// Sets (or with `None` removes) the `openAPIV3Schema` of a served custom resource version.
pub fn set_schema(group: &str, version: &str, resource: &str, schema: Option<Value>) {
    let mut t = table().write().unwrap_or_else(|p| p.into_inner());
    match schema {
        Some(s) => {
            t.insert(key(group, version, resource), s);
        }
        None => {
            t.remove(&key(group, version, resource));
        }
    }
}

/// The schema of a custom resource version, if one is registered.
pub fn schema_for(group: &str, version: &str, resource: &str) -> Option<Value> {
    table()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key(group, version, resource))
        .cloned()
}

fn columns_table() -> &'static RwLock<HashMap<String, Vec<crate::printers::PrinterColumn>>> {
    static TABLE: OnceLock<RwLock<HashMap<String, Vec<crate::printers::PrinterColumn>>>> =
        OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// Sets (or with `None` removes) the `additionalPrinterColumns` of a served custom
/// resource version (from the CRD's `spec.versions[i]` object).
pub fn set_version_columns(
    group: &str,
    version: &str,
    resource: &str,
    crd_version: Option<&Value>,
) {
    let mut t = columns_table().write().unwrap_or_else(|p| p.into_inner());
    match crd_version {
        Some(v) => {
            t.insert(
                key(group, version, resource),
                crate::printers::PrinterColumn::from_crd_version(v),
            );
        }
        None => {
            t.remove(&key(group, version, resource));
        }
    }
}

/// The printer columns of a custom resource version (empty: the default `Age` only).
pub fn printer_columns(
    group: &str,
    version: &str,
    resource: &str,
) -> Vec<crate::printers::PrinterColumn> {
    columns_table()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key(group, version, resource))
        .cloned()
        .unwrap_or_default()
}
