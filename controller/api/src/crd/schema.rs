//! Structural-schema checks of custom objects as upstream's apiextensions server does them:
//! `type`, `required`, `enum`, `pattern`, `minimum`/`maximum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `x-kubernetes-int-or-string`, and pruning of fields the schema does
//! not declare (unless `x-kubernetes-preserve-unknown-fields`).

use serde_json::{Map, Value};

use crate::status::Cause;

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

/// Validates `obj` (a whole custom object) against `schema` (`openAPIV3Schema`) and prunes
/// unknown fields; `apiVersion`, `kind` and `metadata` are left to the generic checks.
pub fn validate_and_prune(schema: &Value, obj: &mut Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let Some(map) = obj.as_object_mut() else {
        return errs;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.and_then(|p| p.get(&k)) {
            Some(s) => node(s, map.get_mut(&k).expect("key exists"), &k, &mut errs),
            None if preserve => {}
            None => {
                map.remove(&k);
            }
        }
    }
    required(schema, map, "", &mut errs);
    errs
}

fn required(schema: &Value, map: &Map<String, Value>, path: &str, errs: &mut Vec<Cause>) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(r) {
            let field = if path.is_empty() {
                r.to_string()
            } else {
                format!("{path}.{r}")
            };
            errs.push(cause("FieldValueRequired", &field, "Required value".into()));
        }
    }
}

fn node(schema: &Value, v: &mut Value, path: &str, errs: &mut Vec<Cause>) {
    if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    let actual = type_name(v);
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let ok = want == actual || (want == "number" && actual == "integer");
        if !ok {
            errs.push(cause(
                "FieldValueTypeInvalid",
                path,
                // upstream shows the JSON type as the invalid value
                format!(
                    "Invalid value: {actual:?}: {path} in body must be of type {want}: {actual:?}"
                ),
            ));
            return;
        }
    } else if int_or_string && !matches!(actual, "integer" | "string") {
        errs.push(cause(
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body must be of type integer-or-string: {actual:?}",
                shown(v)
            ),
        ));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(shown).collect();
            errs.push(cause(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    shown(v),
                    list.join(", ")
                ),
            ));
        }
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    if let Some(x) = v.as_f64() {
        if let Some(min) = num("minimum") {
            if x < min {
                errs.push(cause("FieldValueInvalid", path, format!(
                    "Invalid value: {}: {path} in body should be greater than or equal to {min}", shown(v))));
            }
        }
        if let Some(max) = num("maximum") {
            if x > max {
                errs.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {}: {path} in body should be less than or equal to {max}",
                        shown(v)
                    ),
                ));
            }
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as f64;
        if num("minLength").is_some_and(|m| len < m) {
            errs.push(cause(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body should be at least {} chars long",
                    shown(v),
                    num("minLength").unwrap_or(0.0)
                ),
            ));
        }
        if num("maxLength").is_some_and(|m| len > m) {
            errs.push(cause(
                "FieldValueTooLong",
                path,
                format!(
                    "Too long: may not be more than {} bytes",
                    num("maxLength").unwrap_or(0.0)
                ),
            ));
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            if let Ok(re) = regex::Regex::new(p) {
                if !re.is_match(s) {
                    errs.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!(
                            "Invalid value: {}: {path} in body should match '{p}'",
                            shown(v)
                        ),
                    ));
                }
            }
        }
    }
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let child_path = format!("{path}.{k}");
                match (props.and_then(|p| p.get(&k)), additional) {
                    (Some(s), _) | (None, Some(s)) => {
                        node(s, map.get_mut(&k).expect("key exists"), &child_path, errs)
                    }
                    (None, None) if preserve => {}
                    (None, None) => {
                        map.remove(&k);
                    }
                }
            }
            required(schema, map, path, errs);
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if num("minItems").is_some_and(|m| n < m) {
                errs.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {n}: {path} in body should have at least {} items",
                        num("minItems").unwrap_or(0.0)
                    ),
                ));
            }
            if num("maxItems").is_some_and(|m| n > m) {
                errs.push(cause(
                    "FieldValueTooMany",
                    path,
                    format!(
                        "Too many: {n}: must have at most {} items",
                        num("maxItems").unwrap_or(0.0)
                    ),
                ));
            }
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    node(s, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "port": {"x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}})
    }

    #[test]
    fn valid_objects_are_pruned() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"size": 3, "unknown": 1, "port": "http", "extra": {"any": {"thing": 1}}},
            "other": true});
        assert_eq!(validate_and_prune(&schema(), &mut o), vec![]);
        assert!(o.get("other").is_none());
        assert!(o["spec"].get("unknown").is_none());
        assert_eq!(o["spec"]["extra"]["any"]["thing"], 1);
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn violations_give_upstream_causes() {
        let mut o = json!({"spec": {"size": "big", "color": "green", "name": "A1",
            "tags": [1]}});
        let errs = validate_and_prune(&schema(), &mut o);
        let msgs: Vec<String> = errs
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(msgs.contains(&"spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"".to_string()), "{msgs:?}");
        assert!(
            msgs.contains(
                &"spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\""
                    .to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(
                &"spec.name: Invalid value: \"A1\": spec.name in body should match '^[a-z]+$'"
                    .to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("spec.tags[0]: Invalid value: \"integer\"")),
            "{msgs:?}"
        );
        let mut o = json!({"spec": {"size": 11}});
        let errs = validate_and_prune(&schema(), &mut o);
        assert_eq!(
            errs[0].message,
            "Invalid value: 11: spec.size in body should be less than or equal to 10"
        );
        let mut o = json!({"spec": {}});
        let errs = validate_and_prune(&schema(), &mut o);
        assert_eq!(
            (errs[0].field.as_str(), errs[0].reason.as_str()),
            ("spec.size", "FieldValueRequired")
        );
    }
}
