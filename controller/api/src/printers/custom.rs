//! Tables of custom resources from a CRD version's `additionalPrinterColumns`, as
//! apiextensions-apiserver's `tableconvertor`: a `Name` column, then one column per printer
//! column (default: `Age` from `.metadata.creationTimestamp`), cells found by JSONPath and
//! typed as the column says (`date` cells are ages).

use serde_json::{json, Value};

use super::descriptions as d;
use super::duration::since;
use super::format::{parse_time, s};
use super::{assemble, Row, TableOptions, NAME};

/// One `additionalPrinterColumns` entry of a CRD version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    /// Simple JSONPath, e.g. `.spec.replicas` or `.status.conditions[?(@.type=="Ready")].status`.
    pub json_path: String,
}

impl PrinterColumn {
    /// The columns of a CRD version object (`spec.versions[i]`, its
    /// `additionalPrinterColumns` array); entries without a name or path are skipped.
    pub fn from_crd_version(version: &Value) -> Vec<PrinterColumn> {
        let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: text(c, "name"),
                        type_: text(c, "type"),
                        format: text(c, "format"),
                        description: text(c, "description"),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        json_path: text(c, "jsonPath"),
                    })
                    .filter(|c| !c.name.is_empty() && !c.json_path.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Upstream's default when a CRD version lists no columns.
    fn default_age() -> PrinterColumn {
        PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: d::META_CREATION.into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        }
    }
}

/// A `Table` of custom resources with the given printer columns (none: the default `Age`).
pub fn custom_resource_table(
    columns: &[PrinterColumn],
    objects: &[Value],
    opts: &TableOptions,
) -> Value {
    let default;
    let columns = if columns.is_empty() {
        default = [PrinterColumn::default_age()];
        &default[..]
    } else {
        columns
    };
    let mut defs = vec![NAME.to_json()];
    for c in columns {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        defs.push(json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format,
            "description": description,
            "priority": c.priority,
        }));
    }
    let rows = objects.iter().map(|obj| {
        let mut cells = vec![super::format::name(obj)];
        for c in columns {
            cells.push(match find(obj, &c.json_path) {
                Some(v) => cell(&c.type_, v, opts),
                None => Value::Null,
            });
        }
        (Row::from(cells), obj)
    });
    assemble(defs, rows, opts, None)
}

/// Upstream `cellForJSONValue` (and JSONPath printing for `string` columns).
fn cell(kind: &str, value: &Value, opts: &TableOptions) -> Value {
    match (kind, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(v)) => s(v.as_str()),
        ("string", Value::Bool(b)) => s(b.to_string()),
        ("string", Value::Number(n)) => s(n.to_string()),
        // Maps and lists print as compact JSON with sorted keys, as Go's json.Marshal.
        ("string", other) => s(sorted_json(other)),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            None => n.as_f64().map(|f| json!(f as i64)).unwrap_or(Value::Null),
        },
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(text)) => {
            // Upstream `metav1.Time.UnmarshalQueryParameter`: "" and "null" are the zero
            // time (`<unknown>`), anything not RFC 3339 is `<invalid>`.
            if text.is_empty() || text == "null" {
                s("<unknown>")
            } else if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                s("<invalid>")
            } else {
                s(since(parse_time(Some(value)), opts.now))
            }
        }
        _ => Value::Null,
    }
}

fn sorted_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), sorted_json(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(sorted_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// One step of a simple JSONPath.
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.a.b=="v")]` (`negate` for `!=`).
    Filter {
        path: Vec<String>,
        value: String,
        negate: bool,
    },
}

fn parse_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut steps = Vec::new();
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Field(r[..end].to_string()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            rest = &r[end + 1..];
            if inner == "*" {
                steps.push(Step::All);
            } else if let Ok(i) = inner.parse::<usize>() {
                steps.push(Step::Index(i));
            } else if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                let (lhs, rhs, negate) = match f.split_once("!=") {
                    Some((l, r)) => (l, r, true),
                    None => {
                        let (l, r) = f.split_once("==")?;
                        (l, r, false)
                    }
                };
                let lhs = lhs.trim().strip_prefix("@.")?;
                let value = rhs
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_string();
                steps.push(Step::Filter {
                    path: lhs.split('.').map(str::to_string).collect(),
                    value,
                    negate,
                });
            } else {
                let key = inner.trim_matches(|c| c == '"' || c == '\'');
                steps.push(Step::Field(key.to_string()));
            }
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The first value a simple JSONPath finds (missing keys find nothing).
pub(crate) fn find<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let steps = parse_path(path)?;
    let mut current: Vec<&Value> = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(f) => next.extend(v.get(f.as_str())),
                Step::Index(i) => next.extend(v.as_array().and_then(|a| a.get(*i))),
                Step::All => next.extend(v.as_array().into_iter().flatten()),
                Step::Filter {
                    path,
                    value,
                    negate,
                } => {
                    for item in v.as_array().into_iter().flatten() {
                        let found = path.iter().try_fold(item, |acc, k| acc.get(k.as_str()));
                        let text = found.map(|f| match f {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        });
                        let matches = text.as_deref() == Some(value.as_str());
                        if matches != *negate && found.is_some() {
                            next.push(item);
                        }
                    }
                }
            }
        }
        current = next;
    }
    current.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_json_paths_find_values() {
        let obj = json!({
            "spec": {"replicas": 3, "a.b": "dotted"},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Ready", "status": "False"}
            ]}
        });
        assert_eq!(find(&obj, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(find(&obj, "{.spec.replicas}"), Some(&json!(3)));
        assert_eq!(find(&obj, ".spec['a.b']"), Some(&json!("dotted")));
        assert_eq!(
            find(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("False"))
        );
        assert_eq!(
            find(&obj, ".status.conditions[1].type"),
            Some(&json!("Ready"))
        );
        assert_eq!(
            find(&obj, ".status.conditions[*].type"),
            Some(&json!("Progressing"))
        );
        assert_eq!(find(&obj, ".spec.missing"), None);
        assert_eq!(find(&obj, ".status.conditions[7]"), None);
    }
}
