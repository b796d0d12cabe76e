//! Renders operations and definitions as an OpenAPI 3.0 document or a Swagger 2.0 one.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::params::Param;
use super::paths::{Operation, PathItem};
use super::schemas::Flavor;

/// `info.version`: the Kubernetes API release whose types are served.
pub(crate) const API_VERSION: &str = "v1.33.0";

fn param_v3(p: &Param) -> Value {
    let mut v = json!({
        "description": p.description,
        "in": p.location,
        "name": p.name,
        "schema": { "type": p.ty, "uniqueItems": true }
    });
    if p.location == "path" {
        v["required"] = true.into();
    }
    v
}

fn param_v2(p: &Param) -> Value {
    let mut v = json!({
        "description": p.description,
        "in": p.location,
        "name": p.name,
        "type": p.ty,
        "uniqueItems": true
    });
    if p.location == "path" {
        v["required"] = true.into();
    }
    v
}

fn gvk(op: &Operation) -> Value {
    json!({ "group": op.gvk[0], "kind": op.gvk[2], "version": op.gvk[1] })
}

fn schema_of(name: &Option<String>, flavor: Flavor) -> Value {
    match name {
        Some(n) => flavor.reference(n),
        None => json!({ "type": "string" }),
    }
}

fn operation_v3(op: &Operation) -> Value {
    let mut out = Map::new();
    out.insert("description".into(), op.description.clone().into());
    out.insert("operationId".into(), op.id.clone().into());
    if !op.query.is_empty() {
        let params = op.query.iter().map(|p| param_v3(p)).collect();
        out.insert("parameters".into(), Value::Array(params));
    }
    if let Some((def, types)) = &op.body {
        let content: Map<String, Value> = types
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    json!({ "schema": Flavor::V3.reference(def) }),
                )
            })
            .collect();
        out.insert(
            "requestBody".into(),
            json!({ "content": content, "required": op.method != "delete" }),
        );
    }
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|r| {
            let content: Map<String, Value> = op
                .produces
                .iter()
                .map(|t| {
                    (
                        t.to_string(),
                        json!({ "schema": schema_of(&r.schema, Flavor::V3) }),
                    )
                })
                .collect();
            (
                r.code.to_string(),
                json!({ "content": content, "description": r.description }),
            )
        })
        .collect();
    out.insert("responses".into(), Value::Object(responses));
    out.insert("tags".into(), json!([op.tag]));
    out.insert("x-kubernetes-action".into(), op.action.into());
    out.insert("x-kubernetes-group-version-kind".into(), gvk(op));
    Value::Object(out)
}

fn operation_v2(op: &Operation) -> Value {
    let mut out = Map::new();
    let consumes: Vec<&str> = match &op.body {
        Some((_, types)) => types.to_vec(),
        None => vec!["*/*"],
    };
    out.insert("consumes".into(), json!(consumes));
    out.insert("description".into(), op.description.clone().into());
    out.insert("operationId".into(), op.id.clone().into());
    let mut params: Vec<Value> = Vec::new();
    if let Some((def, _)) = &op.body {
        params.push(json!({
            "in": "body",
            "name": "body",
            "required": op.method != "delete",
            "schema": Flavor::V2.reference(def)
        }));
    }
    params.extend(op.query.iter().map(|p| param_v2(p)));
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    out.insert("produces".into(), json!(op.produces));
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|r| {
            (
                r.code.to_string(),
                json!({ "description": r.description, "schema": schema_of(&r.schema, Flavor::V2) }),
            )
        })
        .collect();
    out.insert("responses".into(), Value::Object(responses));
    out.insert("schemes".into(), json!(["https"]));
    out.insert("tags".into(), json!([op.tag]));
    out.insert("x-kubernetes-action".into(), op.action.into());
    out.insert("x-kubernetes-group-version-kind".into(), gvk(op));
    Value::Object(out)
}

/// The `paths` object, sorted by path, each item's keys sorted as upstream prints them.
pub(crate) fn paths(items: Vec<PathItem>, flavor: Flavor) -> Value {
    let mut sorted: BTreeMap<String, Value> = BTreeMap::new();
    for item in items {
        let mut keys: BTreeMap<String, Value> = BTreeMap::new();
        for op in &item.operations {
            let rendered = match flavor {
                Flavor::V3 => operation_v3(op),
                Flavor::V2 => operation_v2(op),
            };
            keys.insert(op.method.to_string(), rendered);
        }
        let params: Vec<Value> = item
            .params
            .iter()
            .map(|p| match flavor {
                Flavor::V3 => param_v3(p),
                Flavor::V2 => param_v2(p),
            })
            .collect();
        keys.insert("parameters".into(), Value::Array(params));
        sorted.insert(item.path, Value::Object(keys.into_iter().collect()));
    }
    Value::Object(sorted.into_iter().collect())
}

fn info() -> Value {
    json!({ "title": "Kubernetes", "version": API_VERSION })
}

/// An OpenAPI 3.0 document.
pub(crate) fn document_v3(paths: Value, schemas: BTreeMap<String, Value>) -> Value {
    json!({
        "components": {
            "schemas": Value::Object(schemas.into_iter().collect()),
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey"
                }
            }
        },
        "info": info(),
        "openapi": "3.0.0",
        "paths": paths,
        "security": [{ "BearerToken": [] }]
    })
}

/// A Swagger 2.0 document.
pub(crate) fn document_v2(paths: Value, definitions: BTreeMap<String, Value>) -> Value {
    json!({
        "definitions": Value::Object(definitions.into_iter().collect()),
        "info": info(),
        "paths": paths,
        "security": [{ "BearerToken": [] }],
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey"
            }
        },
        "swagger": "2.0"
    })
}
