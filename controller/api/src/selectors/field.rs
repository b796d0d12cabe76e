//! Field selectors: upstream's `fields.ParseSelector` (`a=b`, `a==b`, `a!=b`, comma-joined,
//! `\,` `\=` `\\` escapes), the field labels each resource supports, and matching on object
//! JSON (a missing field reads as upstream's zero value: `""`, or `"false"`/`"0"` for the
//! boolean and integer fields).

use std::fmt;

use serde_json::Value;

use super::SelectorError;
use crate::resources::ResourceInfo;

/// Where a field label's value comes from in the object JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// A dotted path (`spec.nodeName`); `default` when absent or null.
    Path { path: String, default: &'static str },
    /// Core events' `source`: `source.component`, else `reportingComponent`.
    EventSource,
}

impl FieldSource {
    fn path(p: &str) -> FieldSource {
        FieldSource::Path {
            path: p.to_string(),
            default: "",
        }
    }

    /// A CRD `selectableFields[].jsonPath` (`.spec.color`) as a field source (missing reads
    /// as `""`).
    pub fn from_json_path(json_path: &str) -> FieldSource {
        FieldSource::path(json_path.trim_start_matches('.'))
    }

    /// The field's string value in `obj`, as upstream's selectable field set renders it.
    pub fn value(&self, obj: &Value) -> String {
        match self {
            FieldSource::Path { path, default } => {
                render(crate::meta::get_path(obj, path)).unwrap_or_else(|| default.to_string())
            }
            FieldSource::EventSource => {
                let component = crate::meta::get_path(obj, "source.component")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if component.is_empty() {
                    obj.get("reportingComponent")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                } else {
                    component.to_string()
                }
            }
        }
    }
}

fn render(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => Some(String::new()),
    }
}

/// Resolves a field label for a resource as upstream's field label conversion does:
/// `None` means `field label not supported`. Renames the legacy pod label `spec.host` to
/// `spec.nodeName`.
pub fn supported_field(info: &ResourceInfo, label: &str) -> Option<(String, FieldSource)> {
    if matches!(label, "metadata.name" | "metadata.namespace") {
        return Some((label.to_string(), FieldSource::path(label)));
    }
    let src = match (info.group.as_str(), info.resource.as_str(), label) {
        ("", "pods", "spec.host") => {
            return Some(("spec.nodeName".into(), FieldSource::path("spec.nodeName")))
        }
        (
            "",
            "pods",
            "spec.nodeName"
            | "spec.restartPolicy"
            | "spec.schedulerName"
            | "spec.serviceAccountName"
            | "status.phase"
            | "status.podIP"
            | "status.podIPs"
            | "status.nominatedNodeName",
        ) => FieldSource::path(label),
        ("", "pods", "spec.hostNetwork") => FieldSource::Path {
            path: label.into(),
            default: "false",
        },
        (
            "",
            "events",
            "involvedObject.kind"
            | "involvedObject.namespace"
            | "involvedObject.name"
            | "involvedObject.uid"
            | "involvedObject.apiVersion"
            | "involvedObject.resourceVersion"
            | "involvedObject.fieldPath"
            | "reason"
            | "reportingComponent"
            | "type",
        ) => FieldSource::path(label),
        ("", "events", "source") => FieldSource::EventSource,
        ("", "secrets", "type") => FieldSource::path(label),
        ("", "namespaces", "status.phase") => FieldSource::path(label),
        ("", "nodes", "spec.unschedulable") => FieldSource::Path {
            path: label.into(),
            default: "false",
        },
        ("", "services", "spec.clusterIP" | "spec.type") => FieldSource::path(label),
        ("apps", "replicasets", "status.replicas") => FieldSource::Path {
            path: label.into(),
            default: "0",
        },
        ("batch", "jobs", "status.successful") => FieldSource::Path {
            path: "status.succeeded".into(),
            default: "0",
        },
        ("certificates.k8s.io", "certificatesigningrequests", "spec.signerName") => {
            FieldSource::path(label)
        }
        _ => return None,
    };
    Some((label.to_string(), src))
}

/// Every field label a resource supports (for documentation and discovery-like listings).
pub fn supported_field_labels(info: &ResourceInfo) -> Vec<&'static str> {
    const CANDIDATES: &[&str] = &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "spec.unschedulable",
        "spec.clusterIP",
        "spec.type",
        "status.replicas",
        "status.successful",
        "spec.signerName",
    ];
    CANDIDATES
        .iter()
        .copied()
        .filter(|l| supported_field(info, l).is_some())
        .collect()
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    /// True for `!=`.
    pub not_equal: bool,
    source: FieldSource,
}

impl FieldRequirement {
    /// Whether `obj` satisfies this term.
    pub fn matches(&self, obj: &Value) -> bool {
        let equal = match &self.source {
            // Strings (the common case) compare without allocating.
            FieldSource::Path { path, default } => match crate::meta::get_path(obj, path) {
                Some(Value::String(s)) => *s == self.value,
                None | Some(Value::Null) => *default == self.value,
                other => render(other).unwrap_or_default() == self.value,
            },
            FieldSource::EventSource => self.source.value(obj) == self.value,
        };
        equal != self.not_equal
    }
}

/// A parsed field selector: all terms must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Parses without checking labels against a resource: each field is read as a dotted
    /// path with `""` for missing.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        Self::parse_with(s, |label| {
            Some((label.to_string(), FieldSource::path(label)))
        })
    }

    /// Parses and checks every field against the labels `info` supports, as the API server
    /// does for `?fieldSelector=`: an unknown field is `field label not supported: <f>`.
    pub fn parse_for(info: &ResourceInfo, s: &str) -> Result<FieldSelector, SelectorError> {
        Self::parse_with(s, |label| supported_field(info, label))
    }

    /// Parses with a custom label resolver (e.g. a CRD's `selectableFields` added to
    /// `supported_field`). The resolver returns the canonical label and its source.
    pub fn parse_with(
        s: &str,
        resolve: impl Fn(&str) -> Option<(String, FieldSource)>,
    ) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut requirements = Vec::new();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            let (lhs, op, rhs) = split_term(part).ok_or_else(|| {
                SelectorError::Field(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ))
            })?;
            let value = unescape_value(rhs)?;
            let (field, source) =
                resolve(lhs).ok_or_else(|| SelectorError::UnsupportedField(lhs.to_string()))?;
            requirements.push(FieldRequirement {
                field,
                value,
                not_equal: op == "!=",
                source,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `obj` satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| r.matches(obj))
    }

    /// The value an equality term requires for `field` (upstream `RequiresExactMatch`),
    /// e.g. to look pods up by `spec.nodeName` directly.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.not_equal)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                let op = if r.not_equal { "!=" } else { "=" };
                format!("{}{op}{}", r.field, escape_value(&r.value))
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas not escaped by a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The first `!=`, `==` or `=` (checked in that order at each position).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(SelectorError::Field(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    )))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Field(
            "invalid field selector: invalid escape sequence: \\".into(),
        ));
    }
    Ok(out)
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

#[cfg(test)]
#[path = "field_tests.rs"]
mod tests;
