//! Go's view of decoded JSON: the dynamic type of each value (what `reflect.TypeOf` says about
//! an `interface{}` from upstream's decoder) and `fmt`'s `%v` / `%s` rendering, so error
//! messages read exactly like upstream's.

use serde_json::Value;

/// The Go type a JSON value decodes to on the server (`json` with preserved ints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoType {
    Nil,
    Bool,
    String,
    Int64,
    Float64,
    Map,
    Slice,
}

impl GoType {
    pub(crate) fn of(v: &Value) -> GoType {
        match v {
            Value::Null => GoType::Nil,
            Value::Bool(_) => GoType::Bool,
            Value::String(_) => GoType::String,
            Value::Number(n) if n.is_i64() => GoType::Int64,
            Value::Number(_) => GoType::Float64,
            Value::Object(_) => GoType::Map,
            Value::Array(_) => GoType::Slice,
        }
    }

    /// `reflect.Type.String()` of the type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GoType::Nil => "<nil>",
            GoType::Bool => "bool",
            GoType::String => "string",
            GoType::Int64 => "int64",
            GoType::Float64 => "float64",
            GoType::Map => "map[string]interface {}",
            GoType::Slice => "[]interface {}",
        }
    }
}

/// `reflect.TypeOf(v).String()`.
pub(crate) fn go_type_name(v: &Value) -> &'static str {
    GoType::of(v).name()
}

/// Go's `fmt.Sprintf("%v", v)`: maps as `map[k:v ...]` with sorted keys, lists as `[a b]`,
/// strings bare, `<nil>` for null.
pub(crate) fn go_sprint(v: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, v);
    out
}

/// Go's `fmt.Sprintf("%s", v)`: strings bare, other scalars as `%!s(type=value)`.
pub(crate) fn go_sprint_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Object(_) | Value::Array(_) => go_sprint(v),
        _ => format!("%!s({}={})", go_type_name(v), go_sprint(v)),
    }
}

/// `fmt.Sprint` of several lists, as upstream prints `[][]interface{}`.
pub(crate) fn go_sprint_lists(lists: &[&[Value]]) -> String {
    let mut out = String::from("[");
    for (i, l) in lists.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_list(&mut out, l);
    }
    out.push(']');
    out
}

fn write_list(out: &mut String, items: &[Value]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(out, item);
    }
    out.push(']');
}

fn write_v(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => match n.as_i64() {
            Some(i) => out.push_str(&i.to_string()),
            None => out.push_str(&go_float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::Array(items) => write_list(out, items),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, &m[k.as_str()]);
            }
            out.push(']');
        }
    }
}

/// `%v` of a float64 (`%g` with the shortest precision): the shortest round-trip digits, in
/// `%e` form (`1e+06`) when the decimal exponent is below -4 or at least 6, plain otherwise.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e6".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    // Plain decimal with the same digits.
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_maps_like_go() {
        let v = json!({"name": "web", "hostPath": {"path": "/var"}, "n": 3, "x": null});
        assert_eq!(
            go_sprint(&v),
            "map[hostPath:map[path:/var] n:3 name:web x:<nil>]"
        );
        assert_eq!(go_sprint(&json!(["a", 1, true])), "[a 1 true]");
        assert_eq!(go_sprint_s(&json!(1)), "%!s(int64=1)");
        assert_eq!(go_type_name(&json!(1.5)), "float64");
        assert_eq!(go_type_name(&json!({})), "map[string]interface {}");
    }

    #[test]
    fn renders_floats_like_go_v() {
        assert_eq!(go_sprint(&json!(1.5)), "1.5");
        assert_eq!(go_sprint(&json!(1e21)), "1e+21");
        assert_eq!(go_sprint(&json!(0.00001)), "1e-05");
        assert_eq!(go_sprint(&json!(123456.5)), "123456.5");
        assert_eq!(go_sprint(&json!(1000000.0)), "1e+06");
        assert_eq!(go_sprint(&json!(1234567.5)), "1.2345675e+06");
    }
}
