//! Field errors as upstream's `k8s.io/apimachinery/pkg/util/validation/field` renders them,
//! field paths (`spec.containers[0].image`, `metadata.labels`), and Go's value quoting.

use serde_json::Value;

use crate::status::Cause;

/// Upstream `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl ErrorType {
    /// The `StatusCause.reason` upstream sends.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
        }
    }

    /// The canonical text that starts every message.
    pub fn text(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }
}

/// The offending value, rendered the way upstream's `ErrorBody` does.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// Not shown (Required, Forbidden, TooLong).
    Omit,
    /// A Go `string`: printed with `%q`.
    Str(String),
    /// A Go named string type (`core.RestartPolicy`, ...): printed as JSON.
    Named(String),
    /// An integer.
    Int(i64),
    Bool(bool),
    /// A nil pointer / absent value: `"null"` (upstream v1.33 quotes it).
    Null,
    /// Any structure: printed as Go's `json.Marshal` would (used where upstream's `%#v` of an
    /// internal struct has no stable form).
    Json(Value),
    /// A value already rendered the way Go's `%#v` prints it (see [`gorepr`]).
    GoRepr(String),
}

/// One field error.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    pub value: BadValue,
    pub detail: String,
}

impl FieldError {
    /// The message without the field path (upstream `ErrorBody`).
    pub fn body(&self) -> String {
        let mut s = match (&self.kind, &self.value) {
            (ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong, _)
            | (ErrorType::Internal, _)
            | (_, BadValue::Omit) => self.kind.text().to_string(),
            (_, v) => format!("{}: {}", self.kind.text(), render_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// Into the `details.causes` entry the API server returns.
    pub fn into_cause(self) -> Cause {
        Cause {
            reason: self.kind.reason().to_string(),
            message: self.body(),
            field: self.field,
        }
    }
}

fn render_value(v: &BadValue) -> String {
    match v {
        BadValue::Omit => String::new(),
        BadValue::Str(s) => go_quote(s),
        BadValue::Named(s) => go_quote(s),
        BadValue::Int(i) => i.to_string(),
        BadValue::Bool(b) => b.to_string(),
        // v1.33 turns a nil value into the Go string "null", then prints it with %q.
        BadValue::Null => "\"null\"".into(),
        BadValue::Json(v) => go_json(v),
        BadValue::GoRepr(s) => s.clone(),
    }
}

/// Go `%#v` renderings of the values upstream v1.33 passes to `field.Invalid` most often
/// (its `ErrorBody` prints non-scalar values with `%#v`).
pub mod gorepr {
    use serde_json::Value;

    use super::go_quote;

    /// `map[string]string{"a":"b", "c":"d"}`; `map[string]string(nil)` when absent.
    pub fn string_map(v: Option<&Value>) -> String {
        match v.and_then(Value::as_object) {
            None => "map[string]string(nil)".into(),
            Some(m) => {
                let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                let inner: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or(""))))
                    .collect();
                format!("map[string]string{{{}}}", inner.join(", "))
            }
        }
    }

    /// `[]T{"a", "b"}` for a list of strings (`T` is the Go element type); `[]T(nil)` when
    /// absent or empty-and-null.
    pub fn string_slice(v: Option<&Value>, elem: &str) -> String {
        match v.and_then(Value::as_array) {
            None => format!("[]{elem}(nil)"),
            Some(a) => {
                let inner: Vec<String> = a
                    .iter()
                    .map(|x| go_quote(x.as_str().unwrap_or("")))
                    .collect();
                format!("[]{elem}{{{}}}", inner.join(", "))
            }
        }
    }

    /// `intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}`.
    pub fn int_or_string(v: Option<&Value>) -> String {
        match v {
            Some(Value::String(s)) => format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                go_quote(s)
            ),
            other => {
                let n = other.and_then(Value::as_i64).unwrap_or(0);
                format!("intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}")
            }
        }
    }

    /// `v1.LabelSelector{MatchLabels:..., MatchExpressions:...}`; `null` when absent.
    pub fn label_selector(v: Option<&Value>) -> String {
        let Some(sel) = v.filter(|x| x.is_object()) else {
            return "null".into();
        };
        let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
            None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
            Some(list) => {
                let items: Vec<String> = list
                    .iter()
                    .map(|e| {
                        format!(
                            "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                            go_quote(e.get("key").and_then(Value::as_str).unwrap_or("")),
                            go_quote(e.get("operator").and_then(Value::as_str).unwrap_or("")),
                            string_slice(e.get("values"), "string")
                        )
                    })
                    .collect();
                format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
            }
        };
        format!(
            "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
            string_map(sel.get("matchLabels"))
        )
    }

    /// `core.ServicePort{...}` as upstream builds the duplicate-port key (protocol and port).
    pub fn service_port_key(protocol: &str, port: i64) -> String {
        format!(
            "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
            go_quote(protocol)
        )
    }
}

/// A list of field errors, as upstream's `field.ErrorList`.
pub type ErrorList = Vec<FieldError>;

/// `field.Required(path, detail)`.
pub fn required(path: &str, detail: &str) -> FieldError {
    FieldError {
        kind: ErrorType::Required,
        field: path.into(),
        value: BadValue::Omit,
        detail: detail.into(),
    }
}

/// `field.Forbidden(path, detail)`.
pub fn forbidden(path: &str, detail: &str) -> FieldError {
    FieldError {
        kind: ErrorType::Forbidden,
        field: path.into(),
        value: BadValue::Omit,
        detail: detail.into(),
    }
}

/// `field.Invalid(path, value, detail)`.
pub fn invalid(path: &str, value: BadValue, detail: &str) -> FieldError {
    FieldError {
        kind: ErrorType::Invalid,
        field: path.into(),
        value,
        detail: detail.into(),
    }
}

/// `field.Invalid` with a Go `string` value.
pub fn invalid_str(path: &str, value: &str, detail: &str) -> FieldError {
    invalid(path, BadValue::Str(value.into()), detail)
}

/// `field.Duplicate(path, value)`.
pub fn duplicate(path: &str, value: BadValue) -> FieldError {
    FieldError {
        kind: ErrorType::Duplicate,
        field: path.into(),
        value,
        detail: String::new(),
    }
}

/// `field.NotFound(path, value)`.
pub fn not_found(path: &str, value: BadValue) -> FieldError {
    FieldError {
        kind: ErrorType::NotFound,
        field: path.into(),
        value,
        detail: String::new(),
    }
}

/// `field.NotSupported(path, value, validValues)`.
pub fn not_supported(path: &str, value: BadValue, valid: &[&str]) -> FieldError {
    let detail = if valid.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
        format!("supported values: {}", quoted.join(", "))
    };
    FieldError {
        kind: ErrorType::NotSupported,
        field: path.into(),
        value,
        detail,
    }
}

/// `field.TooLong(path, _, max)`.
pub fn too_long(path: &str, max: usize) -> FieldError {
    FieldError {
        kind: ErrorType::TooLong,
        field: path.into(),
        value: BadValue::Omit,
        detail: format!("may not be more than {max} bytes"),
    }
}

/// `field.TooMany(path, actual, max)`.
pub fn too_many(path: &str, actual: usize, max: usize) -> FieldError {
    FieldError {
        kind: ErrorType::TooMany,
        field: path.into(),
        value: BadValue::Int(actual as i64),
        detail: format!("must have at most {max} items"),
    }
}

/// A field path under construction: `Path::new("spec").child("containers").index(0)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Path {
        Path(root.to_string())
    }

    /// `a.b`; a child of the empty path is just `b`.
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// `a[3]`.
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// `a[key]` (map keys are not quoted upstream).
    pub fn key(&self, k: &str) -> Path {
        Path(format!("{}[{k}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Path {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Go's `strconv.Quote`: printable characters kept, escapes for the rest.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `json.Marshal` of a value: compact, map keys sorted, HTML characters escaped.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_go_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(e, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json_string(k, out);
                out.push(':');
                write_go_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
    }
}

fn write_go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_renders_like_upstream() {
        let e = required("spec.containers[0].image", "");
        assert_eq!(e.body(), "Required value");
        let c = e.into_cause();
        assert_eq!(c.reason, "FieldValueRequired");
        assert_eq!(c.field, "spec.containers[0].image");
        let e = required("metadata.name", "name or generateName is required");
        assert_eq!(e.body(), "Required value: name or generateName is required");
    }

    #[test]
    fn not_supported_lists_quoted_values() {
        let e = not_supported(
            "spec.restartPolicy",
            BadValue::Named("Sometimes".into()),
            &["Always", "OnFailure", "Never"],
        );
        assert_eq!(
            e.body(),
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        assert_eq!(e.into_cause().reason, "FieldValueNotSupported");
    }

    #[test]
    fn values_render_as_go_does() {
        let e = invalid(
            "spec.replicas",
            BadValue::Int(-1),
            "must be greater than or equal to 0",
        );
        assert_eq!(
            e.body(),
            "Invalid value: -1: must be greater than or equal to 0"
        );
        let e = invalid(
            "spec.template.metadata.labels",
            BadValue::Json(json!({"b": "2", "a": "<x>"})),
            "`selector` does not match template `labels`",
        );
        assert_eq!(
            e.body(),
            "Invalid value: {\"a\":\"\\u003cx\\u003e\",\"b\":\"2\"}: `selector` does not match template `labels`"
        );
        assert_eq!(
            too_long("metadata.annotations", 262144).body(),
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(go_quote("a\"b\n\u{1}"), "\"a\\\"b\\n\\x01\"");
        assert_eq!(
            duplicate("x", BadValue::Str("c".into())).body(),
            "Duplicate value: \"c\""
        );
        assert_eq!(
            forbidden("x", "not allowed on this type").body(),
            "Forbidden: not allowed on this type"
        );
    }

    #[test]
    fn go_representations() {
        assert_eq!(
            gorepr::string_map(Some(&json!({"b": "2", "a": "1"}))),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(gorepr::string_map(None), "map[string]string(nil)");
        assert_eq!(
            gorepr::label_selector(Some(&json!({"matchLabels": {"app": "x"}}))),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(
            gorepr::int_or_string(Some(&json!("25%"))),
            "intstr.IntOrString{Type:1, IntVal:0, StrVal:\"25%\"}"
        );
        assert_eq!(
            gorepr::int_or_string(Some(&json!(3))),
            "intstr.IntOrString{Type:0, IntVal:3, StrVal:\"\"}"
        );
        assert_eq!(
            gorepr::string_slice(Some(&json!(["a"])), "string"),
            "[]string{\"a\"}"
        );
    }

    #[test]
    fn paths_build_like_upstream() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[0].image");
        assert_eq!(Path::new("data").key("a.b").as_str(), "data[a.b]");
        assert_eq!(Path::new("").child("x").as_str(), "x");
    }
}
