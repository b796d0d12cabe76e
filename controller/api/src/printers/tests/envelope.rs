//! The Table envelope: kind, apiVersion, column definitions, `includeObject`, `noHeaders`,
//! PartialObjectMetadata(List), and custom-resource tables.

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::{ago, info, now};
use crate::printers::{
    custom_resource_table, partial_object_metadata, partial_object_metadata_list, table,
    IncludeObject, PrinterColumn, TableOptions,
};
use crate::resources::ResourceInfo;

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "uid": "u-1", "resourceVersion": "7",
                     "labels": {"app": "x"}, "creationTimestamp": ago(TimeDelta::seconds(5))},
        "data": {"k": "v"}})
}

#[test]
fn table_envelope_is_meta_v1_table() {
    let t = table(
        &info("v1", "ConfigMap"),
        &[cm("a"), cm("b")],
        &TableOptions::at(now()),
    );
    assert_eq!(t["kind"], json!("Table"));
    assert_eq!(t["apiVersion"], json!("meta.k8s.io/v1"));
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(
        t["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name", "priority": 0,
               "description": crate::printers::descriptions::META_NAME})
    );
    assert_eq!(t["columnDefinitions"][1]["format"], json!(""));
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["cells"], json!(["b", 1, "5s"]));
    // Default includeObject=Metadata: a PartialObjectMetadata with the whole metadata.
    assert_eq!(
        rows[0]["object"],
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": cm("a")["metadata"]})
    );
    let empty = table(&info("v1", "ConfigMap"), &[], &TableOptions::at(now()));
    assert_eq!(empty["rows"], json!([]));
}

#[test]
fn include_object_and_no_headers_follow_upstream() {
    let mut opts = TableOptions::at(now());
    opts.include_object = IncludeObject::None;
    opts.no_headers = true;
    let t = table(&info("v1", "ConfigMap"), &[cm("a")], &opts);
    assert_eq!(t["columnDefinitions"], Value::Null);
    assert_eq!(t["rows"][0]["object"], Value::Null);
    assert_eq!(t["rows"][0]["cells"], json!(["a", 1, "5s"]));
    opts.include_object = IncludeObject::Object;
    let t = table(&info("v1", "ConfigMap"), &[cm("a")], &opts);
    assert_eq!(t["rows"][0]["object"], cm("a"));
    // Whole objects carry their apiVersion and kind even when stored without them.
    let mut bare = cm("a");
    bare.as_object_mut().unwrap().remove("apiVersion");
    bare.as_object_mut().unwrap().remove("kind");
    let t = table(&info("v1", "ConfigMap"), &[bare], &opts);
    assert_eq!(t["rows"][0]["object"], cm("a"));

    assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
    assert_eq!(
        IncludeObject::parse("Metadata"),
        Ok(IncludeObject::Metadata)
    );
    assert_eq!(IncludeObject::parse("None"), Ok(IncludeObject::None));
    assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
    assert_eq!(
        IncludeObject::parse("object"),
        Err("unrecognized includeObject value: \"object\"".to_string())
    );
}

#[test]
fn partial_object_metadata_list_carries_every_item() {
    let list = partial_object_metadata_list(&[cm("a"), cm("b")]);
    assert_eq!(list["kind"], json!("PartialObjectMetadataList"));
    assert_eq!(list["apiVersion"], json!("meta.k8s.io/v1"));
    assert_eq!(list["items"][1], partial_object_metadata(&cm("b")));
    assert_eq!(list["items"][1]["metadata"]["name"], json!("b"));
    assert_eq!(partial_object_metadata(&json!({}))["metadata"], json!({}));
}

fn crd_info() -> ResourceInfo {
    ResourceInfo {
        group: "example.com".into(),
        version: "v1".into(),
        resource: "widgets".into(),
        singular: "widget".into(),
        kind: "Widget".into(),
        list_kind: "WidgetList".into(),
        namespaced: true,
        short_names: vec![],
        categories: vec![],
        verbs: vec![],
        subresources: vec![],
        decode: None,
    }
}

fn widget() -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "creationTimestamp": ago(TimeDelta::minutes(3))},
        "spec": {"replicas": 3, "ratio": 1.5, "enabled": true, "tags": {"b": 2, "a": [1, "x"]},
                 "started": ago(TimeDelta::hours(5))},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
}

#[test]
fn custom_resources_default_to_name_and_age() {
    let t = table(&crd_info(), &[widget()], &TableOptions::at(now()));
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Age"]);
    assert_eq!(t["columnDefinitions"][1]["type"], json!("date"));
    assert_eq!(t["rows"][0]["cells"], json!(["w1", "3m"]));
}

#[test]
fn custom_resource_printer_columns_are_typed_like_upstream() {
    let crd_version = json!({"name": "v1", "additionalPrinterColumns": [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
        {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status",
         "description": "Ready condition"},
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
        {"name": "Started", "type": "date", "jsonPath": ".spec.started"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Wrong", "type": "integer", "jsonPath": ".spec.enabled"}
    ]});
    let columns = PrinterColumn::from_crd_version(&crd_version);
    assert_eq!(columns.len(), 8);
    let t = custom_resource_table(&columns, &[widget()], &TableOptions::at(now()));
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "w1",
            3,
            1.5,
            true,
            "True",
            "{\"a\":[1,\"x\"],\"b\":2}",
            "5h",
            null,
            null
        ])
    );
    let defs = t["columnDefinitions"].as_array().unwrap();
    assert_eq!(defs[2]["priority"], json!(1));
    assert_eq!(defs[4]["description"], json!("Ready condition"));
    assert_eq!(
        defs[1]["description"],
        json!("Custom resource definition column (in JSONPath format): .spec.replicas")
    );
    let bad_date = PrinterColumn {
        name: "When".into(),
        type_: "date".into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: ".spec.when".into(),
    };
    let obj = json!({"metadata": {"name": "w"}, "spec": {"when": "yesterday"}});
    let t = custom_resource_table(
        std::slice::from_ref(&bad_date),
        &[obj],
        &TableOptions::at(now()),
    );
    assert_eq!(t["rows"][0]["cells"], json!(["w", "<invalid>"]));
    let obj = json!({"metadata": {"name": "w"}, "spec": {"when": ""}});
    let t = custom_resource_table(&[bad_date], &[obj], &TableOptions::at(now()));
    assert_eq!(t["rows"][0]["cells"], json!(["w", "<unknown>"]));
}
