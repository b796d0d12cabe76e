//! Structural defaulting of custom objects, as upstream's apiextensions server does it on
//! every request body: a property with a `default` that is absent (or null where the schema
//! is not `nullable`) gets a copy of the default, then defaulting descends into every
//! property, `additionalProperties` value and array item, defaulted ones included.

use serde_json::Value;

fn non_nullable_null(v: &Value, schema: &Value) -> bool {
    v.is_null() && schema.get("nullable").and_then(Value::as_bool) != Some(true)
}

/// Applies the schema's defaults to `v` in place.
pub fn apply_defaults(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, prop) in props.into_iter().flatten() {
                let Some(default) = prop.get("default") else {
                    continue;
                };
                if map.get(k).is_none_or(|x| non_nullable_null(x, prop)) {
                    map.insert(k.clone(), default.clone());
                }
            }
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in map.iter_mut() {
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    apply_defaults(s, child);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            for item in items.iter_mut() {
                if let Some(default) = item_schema.get("default") {
                    if non_nullable_null(item, item_schema) {
                        *item = default.clone();
                    }
                }
                apply_defaults(item_schema, item);
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
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "fast"},
                "opt": {"type": "string", "nullable": true, "default": "x"},
                "limits": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"unit": {"type": "string", "default": "Mi"}}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}}}}}})
    }

    #[test]
    fn absent_fields_get_defaults_and_defaulted_objects_are_descended() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "W"});
        apply_defaults(&schema(), &mut o);
        assert_eq!(
            o["spec"],
            json!({"replicas": 1, "mode": "fast", "opt": "x"})
        );
    }

    #[test]
    fn set_values_stay_and_nulls_follow_nullable() {
        let mut o = json!({"spec": {"replicas": 3, "mode": null, "opt": null,
            "limits": {"mem": {}}, "ports": [{"protocol": "UDP"}, {}]}});
        apply_defaults(&schema(), &mut o);
        assert_eq!(o["spec"]["replicas"], 3);
        assert_eq!(o["spec"]["mode"], "fast", "non-nullable null is defaulted");
        assert!(o["spec"]["opt"].is_null(), "nullable null is kept");
        assert_eq!(o["spec"]["limits"]["mem"]["unit"], "Mi");
        assert_eq!(
            o["spec"]["ports"],
            json!([{"protocol": "UDP"}, {"protocol": "TCP"}])
        );
    }
}
