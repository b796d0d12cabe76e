//! `/openapi/v2` in protobuf: the Swagger 2.0 document encoded as gnostic's `openapi.v2.Document`
//! message, which kubectl 1.27 and 1.28 ask for
//! to learn whether the server does field validation and for client-side validation. Built from
//! the same JSON document `/openapi/v2` serves, so the two never disagree. Field numbers follow
//! gnostic's `openapiv2/OpenAPIv2.proto`; values gnostic keeps as `Any` carry their JSON text in
//! the `yaml` field (JSON is YAML, which is how gnostic's readers parse it).

use serde_json::{Map, Value};

/// The media type of this encoding, as upstream's OpenAPI handler answers it.
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// The deprecated spelling kubectl still sends in `Accept`; answered with [`MEDIA_TYPE`]
/// (its `@` is not valid in a media type, so Go's parser refuses it in a `Content-Type`).
pub const MEDIA_TYPE_DEPRECATED: &str =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// Encodes a Swagger 2.0 JSON document as a gnostic `openapi.v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    let obj = as_obj(doc);
    m.string(1, str_of(obj, "swagger"));
    if let Some(info) = obj.get("info") {
        m.message(2, info_msg(info));
    }
    m.string(3, str_of(obj, "host"));
    m.string(4, str_of(obj, "basePath"));
    m.strings(5, obj.get("schemes"));
    m.strings(6, obj.get("consumes"));
    m.strings(7, obj.get("produces"));
    if let Some(paths) = obj.get("paths") {
        let mut p = Msg::default();
        for (name, item) in as_obj(paths) {
            if name.starts_with("x-") {
                p.message(1, named_any(name, item));
            } else {
                p.message(2, named(name, path_item(item)));
            }
        }
        m.message(8, p);
    }
    if let Some(defs) = obj.get("definitions") {
        m.message(9, named_map(defs, schema));
    }
    if let Some(params) = obj.get("parameters") {
        m.message(10, named_map(params, parameter));
    }
    if let Some(responses) = obj.get("responses") {
        m.message(11, named_map(responses, response));
    }
    for req in array(obj.get("security")) {
        m.message(12, security_requirement(req));
    }
    if let Some(defs) = obj.get("securityDefinitions") {
        m.message(13, named_map(defs, security_definition));
    }
    vendor_extensions(&mut m, 16, obj);
    m.0
}

/// A protobuf message under construction (proto3: default values are left out).
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in array(v) {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }

    fn bool(&mut self, field: u32, v: Option<&Value>) {
        if v.and_then(Value::as_bool) == Some(true) {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_i64).filter(|n| *n != 0) {
            self.key(field, 0);
            self.varint(n as u64);
        }
    }

    fn double(&mut self, field: u32, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_f64).filter(|n| *n != 0.0) {
            self.key(field, 1);
            self.0.extend_from_slice(&n.to_le_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    /// An `Any` holding the value's JSON text.
    fn any(&mut self, field: u32, v: Option<&Value>) {
        if let Some(v) = v {
            self.message(field, any(v));
        }
    }
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

fn as_obj(v: &Value) -> &Map<String, Value> {
    v.as_object().unwrap_or(&EMPTY)
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &v.to_string());
    m
}

fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, value);
    m
}

fn named_any(name: &str, v: &Value) -> Msg {
    named(name, any(v))
}

/// A gnostic "map" message: `repeated Named<T> additional_properties = 1`.
fn named_map(v: &Value, encode: fn(&Value) -> Msg) -> Msg {
    let mut m = Msg::default();
    for (name, item) in as_obj(v) {
        m.message(1, named(name, encode(item)));
    }
    m
}

/// Every `x-` key of an object as `repeated NamedAny vendor_extension = field`.
fn vendor_extensions(m: &mut Msg, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        m.message(field, named_any(k, v));
    }
}

fn info_msg(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    m.string(1, str_of(obj, "title"));
    m.string(2, str_of(obj, "version"));
    m.string(3, str_of(obj, "description"));
    m.string(4, str_of(obj, "termsOfService"));
    vendor_extensions(&mut m, 7, obj);
    m
}

fn path_item(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    m.string(1, str_of(obj, "$ref"));
    for (field, verb) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = obj.get(verb) {
            m.message(field, operation(op));
        }
    }
    for p in array(obj.get("parameters")) {
        m.message(9, parameters_item(p));
    }
    vendor_extensions(&mut m, 10, obj);
    m
}

fn operation(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    m.strings(1, obj.get("tags"));
    m.string(2, str_of(obj, "summary"));
    m.string(3, str_of(obj, "description"));
    m.string(5, str_of(obj, "operationId"));
    m.strings(6, obj.get("produces"));
    m.strings(7, obj.get("consumes"));
    for p in array(obj.get("parameters")) {
        m.message(8, parameters_item(p));
    }
    if let Some(responses) = obj.get("responses") {
        let mut r = Msg::default();
        for (code, resp) in as_obj(responses) {
            if code.starts_with("x-") {
                r.message(2, named_any(code, resp));
            } else {
                r.message(1, named(code, response_value(resp)));
            }
        }
        m.message(9, r);
    }
    m.strings(10, obj.get("schemes"));
    m.bool(11, obj.get("deprecated"));
    vendor_extensions(&mut m, 13, obj);
    m
}

fn json_reference(obj: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    m.string(1, str_of(obj, "$ref"));
    m.string(2, str_of(obj, "description"));
    m
}

fn parameters_item(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    if obj.contains_key("$ref") {
        m.message(2, json_reference(obj));
    } else {
        m.message(1, parameter(v));
    }
    m
}

/// `Parameter`: a body parameter, or one of the four non-body sub-schemas by `in`.
fn parameter(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    let location = str_of(obj, "in");
    if location == "body" {
        let mut b = Msg::default();
        b.string(1, str_of(obj, "description"));
        b.string(2, str_of(obj, "name"));
        b.string(3, location);
        b.bool(4, obj.get("required"));
        if let Some(s) = obj.get("schema") {
            b.message(5, schema(s));
        }
        vendor_extensions(&mut b, 6, obj);
        m.message(1, b);
        return m;
    }
    // Query and formData sub-schemas have `allowEmptyValue` at 5, which shifts their later
    // fields by one against the header and path sub-schemas.
    let (which, shift) = match location {
        "header" => (1, 0),
        "formData" => (2, 1),
        "query" => (3, 1),
        _ => (4, 0),
    };
    let mut s = Msg::default();
    s.bool(1, obj.get("required"));
    s.string(2, location);
    s.string(3, str_of(obj, "description"));
    s.string(4, str_of(obj, "name"));
    if shift == 1 {
        s.bool(5, obj.get("allowEmptyValue"));
    }
    s.string(5 + shift, str_of(obj, "type"));
    s.string(6 + shift, str_of(obj, "format"));
    s.string(8 + shift, str_of(obj, "collectionFormat"));
    s.any(9 + shift, obj.get("default"));
    s.bool(19 + shift, obj.get("uniqueItems"));
    for e in array(obj.get("enum")) {
        s.message(20 + shift, any(e));
    }
    vendor_extensions(&mut s, 22 + shift, obj);
    let mut non_body = Msg::default();
    non_body.message(which, s);
    m.message(2, non_body);
    m
}

fn response_value(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    if obj.contains_key("$ref") {
        m.message(2, json_reference(obj));
    } else {
        m.message(1, response(v));
    }
    m
}

fn response(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    m.string(1, str_of(obj, "description"));
    if let Some(s) = obj.get("schema") {
        let mut item = Msg::default();
        item.message(1, schema(s));
        m.message(2, item);
    }
    vendor_extensions(&mut m, 5, obj);
    m
}

fn schema(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    m.string(1, str_of(obj, "$ref"));
    m.string(2, str_of(obj, "format"));
    m.string(3, str_of(obj, "title"));
    m.string(4, str_of(obj, "description"));
    m.any(5, obj.get("default"));
    m.double(6, obj.get("multipleOf"));
    m.double(7, obj.get("maximum"));
    m.bool(8, obj.get("exclusiveMaximum"));
    m.double(9, obj.get("minimum"));
    m.bool(10, obj.get("exclusiveMinimum"));
    m.int64(11, obj.get("maxLength"));
    m.int64(12, obj.get("minLength"));
    m.string(13, str_of(obj, "pattern"));
    m.int64(14, obj.get("maxItems"));
    m.int64(15, obj.get("minItems"));
    m.bool(16, obj.get("uniqueItems"));
    m.int64(17, obj.get("maxProperties"));
    m.int64(18, obj.get("minProperties"));
    m.strings(19, obj.get("required"));
    for e in array(obj.get("enum")) {
        m.message(20, any(e));
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.key(2, 0);
            a.varint(u64::from(*b));
            m.message(21, a);
        }
        Some(s @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.message(1, schema(s));
            m.message(21, a);
        }
        _ => {}
    }
    match obj.get("type") {
        Some(Value::String(t)) => {
            let mut t_msg = Msg::default();
            t_msg.string(1, t);
            m.message(22, t_msg);
        }
        Some(t @ Value::Array(_)) => {
            let mut t_msg = Msg::default();
            t_msg.strings(1, Some(t));
            m.message(22, t_msg);
        }
        _ => {}
    }
    match obj.get("items") {
        Some(Value::Array(items)) => {
            let mut i = Msg::default();
            for s in items {
                i.message(1, schema(s));
            }
            m.message(23, i);
        }
        Some(s @ Value::Object(_)) => {
            let mut i = Msg::default();
            i.message(1, schema(s));
            m.message(23, i);
        }
        _ => {}
    }
    for s in array(obj.get("allOf")) {
        m.message(24, schema(s));
    }
    if let Some(props) = obj.get("properties") {
        m.message(25, named_map(props, schema));
    }
    m.string(26, str_of(obj, "discriminator"));
    m.bool(27, obj.get("readOnly"));
    m.any(30, obj.get("example"));
    vendor_extensions(&mut m, 31, obj);
    m
}

fn security_requirement(v: &Value) -> Msg {
    let mut m = Msg::default();
    for (name, scopes) in as_obj(v) {
        let mut arr = Msg::default();
        arr.strings(1, Some(scopes));
        m.message(1, named(name, arr));
    }
    m
}

/// `SecurityDefinitionsItem`: the API-key and basic schemes Kubernetes documents.
fn security_definition(v: &Value) -> Msg {
    let obj = as_obj(v);
    let mut m = Msg::default();
    match str_of(obj, "type") {
        "basic" => {
            let mut b = Msg::default();
            b.string(1, "basic");
            b.string(2, str_of(obj, "description"));
            vendor_extensions(&mut b, 3, obj);
            m.message(1, b);
        }
        _ => {
            let mut k = Msg::default();
            k.string(1, str_of(obj, "type"));
            k.string(2, str_of(obj, "name"));
            k.string(3, str_of(obj, "in"));
            k.string(4, str_of(obj, "description"));
            vendor_extensions(&mut k, 5, obj);
            m.message(2, k);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::wire::{Reader, Value as WireValue};
    use serde_json::json;

    /// The length-delimited payloads of `field` in `msg`.
    fn fields(msg: &[u8], field: u32) -> Vec<&[u8]> {
        let mut r = Reader::new(msg);
        let mut out = Vec::new();
        while !r.is_empty() {
            let (n, _, v) = r.field().expect("valid protobuf");
            if let (true, WireValue::Bytes(b)) = (n == field, v) {
                out.push(b);
            }
        }
        out
    }

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn patch_operations_carry_their_query_parameters_and_gvk() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {"/api/v1/namespaces/{namespace}/configmaps/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true}],
                "patch": {
                    "operationId": "patchCoreV1NamespacedConfigMap",
                    "parameters": [
                        {"name": "body", "in": "body", "required": true, "schema": {"type": "object"}},
                        {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true}
                    ],
                    "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}}},
                    "x-kubernetes-group-version-kind": {"group": "", "kind": "ConfigMap", "version": "v1"}
                }
            }}
        });
        let bytes = encode_document(&doc);
        assert_eq!(text(fields(&bytes, 1)[0]), "2.0");
        let paths = fields(&bytes, 8)[0];
        let named_path = fields(paths, 2)[0];
        assert_eq!(
            text(fields(named_path, 1)[0]),
            "/api/v1/namespaces/{namespace}/configmaps/{name}"
        );
        let item = fields(named_path, 2)[0];
        let patch = fields(item, 8)[0];
        assert_eq!(text(fields(patch, 5)[0]), "patchCoreV1NamespacedConfigMap");
        // Parameter 2 is the query sub-schema (NonBodyParameter field 3) named fieldValidation.
        let params = fields(patch, 8);
        assert_eq!(params.len(), 2);
        let non_body = fields(fields(params[1], 1)[0], 2)[0];
        let query = fields(non_body, 3)[0];
        assert_eq!(text(fields(query, 4)[0]), "fieldValidation");
        assert_eq!(text(fields(query, 2)[0]), "query");
        // The GVK extension's value parses back as the JSON it was.
        let ext = fields(patch, 13)[0];
        assert_eq!(text(fields(ext, 1)[0]), "x-kubernetes-group-version-kind");
        let yaml = text(fields(fields(ext, 2)[0], 2)[0]);
        let gvk: Value = serde_json::from_str(yaml).unwrap();
        assert_eq!(gvk["kind"], "ConfigMap");
    }

    #[test]
    fn schemas_keep_types_properties_and_additional_properties() {
        let doc = json!({"definitions": {"io.k8s.api.core.v1.ConfigMap": {
            "type": "object",
            "required": ["metadata"],
            "properties": {
                "data": {"type": "object", "additionalProperties": {"type": "string"}},
                "immutable": {"type": "boolean"},
                "list": {"type": "array", "items": {"$ref": "#/definitions/x"}}
            }
        }}});
        let bytes = encode_document(&doc);
        let defs = fields(&bytes, 9)[0];
        let named_schema = fields(defs, 1)[0];
        let s = fields(named_schema, 2)[0];
        assert_eq!(text(fields(fields(s, 22)[0], 1)[0]), "object");
        assert_eq!(text(fields(s, 19)[0]), "metadata");
        let props = fields(fields(s, 25)[0], 1);
        assert_eq!(props.len(), 3);
        let data = fields(props[0], 2)[0];
        let additional = fields(fields(data, 21)[0], 1)[0];
        assert_eq!(text(fields(fields(additional, 22)[0], 1)[0]), "string");
        let list = fields(props[2], 2)[0];
        let item = fields(fields(list, 23)[0], 1)[0];
        assert_eq!(text(fields(item, 1)[0]), "#/definitions/x");
    }
}
