//! The schema definitions of one group-version document: k8s-openapi's JSON schemas for the
//! served kinds and everything they reference, with upstream's OpenAPI extensions added
//! (`x-kubernetes-group-version-kind`, patch strategies and merge keys).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::kinds;
use crate::patch::strategic::{root_for, Strategy, TypeMeta};
use crate::resources::ResourceInfo;

/// Where `$ref`s point: `#/components/schemas/` (v3) or `#/definitions/` (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    V3,
    V2,
}

impl Flavor {
    pub(crate) fn ref_prefix(self) -> &'static str {
        match self {
            Flavor::V3 => "#/components/schemas/",
            Flavor::V2 => "#/definitions/",
        }
    }

    /// A `$ref` schema to definition `name`.
    pub(crate) fn reference(self, name: &str) -> Value {
        json!({ "$ref": format!("{}{name}", self.ref_prefix()) })
    }
}

/// The generator's own prefix, rewritten per flavor at the end.
const GEN_PREFIX: &str = "#/components/schemas/";

/// Definition names of a resource's kind and list kind.
#[derive(Debug, Clone)]
pub(crate) struct KindNames {
    pub kind: String,
    pub list: String,
}

/// Definition name of a resource's kind: k8s-openapi's for built-ins, upstream's
/// reversed-group form for custom resources (`com.example.stable.v1.CronTab`).
pub(crate) fn kind_names(info: &ResourceInfo) -> KindNames {
    let kind = match kinds::find(&info.group, &info.version, &info.kind) {
        Some(k) if info.decode.is_some() => (k.name)().into_owned(),
        _ => {
            let mut parts: Vec<&str> = info.group.split('.').collect();
            parts.reverse();
            format!("{}.{}.{}", parts.join("."), info.version, info.kind)
        }
    };
    let list = format!("{kind}List");
    KindNames { kind, list }
}

/// The subresources whose body is another kind: (subresource, group, version, kind).
pub(crate) const SUBRESOURCE_KINDS: &[(&str, &str, &str, &str)] = &[
    ("scale", "autoscaling", "v1", "Scale"),
    ("binding", "", "v1", "Binding"),
    ("eviction", "policy", "v1", "Eviction"),
    ("token", "authentication.k8s.io", "v1", "TokenRequest"),
];

/// Builds every definition the resources of one group-version need, sorted by name.
/// `served` lists every served group-version (the meta types name them in their GVK lists).
pub(crate) fn definitions(
    resources: &[Arc<ResourceInfo>],
    served: &[(String, String)],
    flavor: Flavor,
) -> BTreeMap<String, Value> {
    let mut generator: SchemaGenerator = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    kinds::add_meta_types(&mut generator);

    // (definition name, gvk) pairs to tag, and built-in kinds whose patch metadata applies.
    let mut tagged: Vec<(String, [String; 3])> = Vec::new();
    let mut patch_roots: Vec<(String, &'static TypeMeta)> = Vec::new();
    let mut custom: Vec<(KindNames, &ResourceInfo)> = Vec::new();
    for info in resources {
        let names = kind_names(info);
        let gvk = |kind: &str| [info.group.clone(), info.version.clone(), kind.to_string()];
        match kinds::find(&info.group, &info.version, &info.kind) {
            Some(k) if info.decode.is_some() => {
                (k.schema)(&mut generator);
                patch_roots.push((names.kind.clone(), root_for(&info.group, &info.kind)));
            }
            _ => custom.push((names.clone(), info)),
        }
        tagged.push((names.kind.clone(), gvk(&info.kind)));
        tagged.push((names.list.clone(), gvk(&info.list_kind)));
        for (sub, group, version, kind) in SUBRESOURCE_KINDS {
            if info.has_subresource(sub) {
                if let Some(k) = kinds::find(group, version, kind) {
                    (k.schema)(&mut generator);
                    let name = (k.name)().into_owned();
                    tagged.push((
                        name,
                        [group.to_string(), version.to_string(), kind.to_string()],
                    ));
                }
            }
        }
    }

    let mut defs: BTreeMap<String, Value> = generator.take_definitions(false).into_iter().collect();
    for (names, info) in &custom {
        defs.insert(names.kind.clone(), custom_kind_schema(info));
    }
    for info in resources {
        let names = kind_names(info);
        defs.insert(names.list.clone(), list_schema(info, &names.kind));
    }

    for (name, _) in &patch_roots {
        drop_required_metadata(defs.get_mut(name));
    }
    for (name, ty) in &patch_roots {
        let mut seen = HashSet::new();
        annotate_patch_meta(&mut defs, name, ty, &mut seen);
    }
    for (name, [g, v, k]) in &tagged {
        add_gvk(defs.get_mut(name), g, v, k);
    }
    for meta_kind in ["DeleteOptions", "WatchEvent"] {
        let name = format!("io.k8s.apimachinery.pkg.apis.meta.v1.{meta_kind}");
        for (g, v) in served {
            add_gvk(defs.get_mut(&name), g, v, meta_kind);
        }
    }
    add_gvk(defs.get_mut(kinds::STATUS), "", "v1", "Status");

    for schema in defs.values_mut() {
        finish(schema, flavor);
    }
    defs
}

/// A custom resource's schema: any object with the usual type and object metadata (the
/// CRD's own `openAPIV3Schema` is not held by the registry).
fn custom_kind_schema(info: &ResourceInfo) -> Value {
    json!({
        "description": format!("{} is a custom resource served from a CustomResourceDefinition.", info.kind),
        "type": "object",
        "properties": {
            "apiVersion": { "type": "string", "description": API_VERSION_DOC },
            "kind": { "type": "string", "description": KIND_DOC },
            "metadata": {
                "$ref": format!("{GEN_PREFIX}{}", kinds::OBJECT_META),
                "description": "Standard object's metadata."
            }
        },
        "x-kubernetes-preserve-unknown-fields": true
    })
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// `<Kind>List`: items of the kind plus list metadata.
fn list_schema(info: &ResourceInfo, kind_def: &str) -> Value {
    json!({
        "description": format!("{} is a list of {} objects.", info.list_kind, info.kind),
        "type": "object",
        "properties": {
            "apiVersion": { "type": "string", "description": API_VERSION_DOC },
            "items": {
                "description": format!("List of {}.", info.resource),
                "type": "array",
                "items": { "$ref": format!("{GEN_PREFIX}{kind_def}") }
            },
            "kind": { "type": "string", "description": KIND_DOC },
            "metadata": {
                "$ref": format!("{GEN_PREFIX}{}", kinds::LIST_META),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
            }
        },
        "required": ["items"]
    })
}

/// k8s-openapi marks `metadata` required (its Rust field is not optional); upstream does not.
fn drop_required_metadata(schema: Option<&mut Value>) {
    let Some(Value::Object(obj)) = schema else {
        return;
    };
    let empty = match obj.get_mut("required") {
        Some(Value::Array(req)) => {
            req.retain(|r| r != "metadata");
            req.is_empty()
        }
        _ => false,
    };
    if empty {
        obj.remove("required");
    }
}

/// Appends `{group, kind, version}` to a definition's `x-kubernetes-group-version-kind`.
fn add_gvk(schema: Option<&mut Value>, group: &str, version: &str, kind: &str) {
    let Some(Value::Object(obj)) = schema else {
        return;
    };
    let entry = json!({ "group": group, "kind": kind, "version": version });
    let list = obj
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        if !items.contains(&entry) {
            items.push(entry);
        }
    }
}

/// The definition a property refers to, directly or through its list items or map values.
fn referenced_definition(property: &Value) -> Option<String> {
    let target = property
        .get("$ref")
        .or_else(|| property.get("items").and_then(|i| i.get("$ref")))
        .or_else(|| {
            property
                .get("additionalProperties")
                .and_then(|i| i.get("$ref"))
        })?;
    target
        .as_str()?
        .strip_prefix(GEN_PREFIX)
        .map(|s| s.to_string())
}

/// Upstream's `x-kubernetes-patch-strategy` value for a field's tag.
fn strategy_tag(strategy: Strategy, retain_keys: bool) -> Option<&'static str> {
    match (strategy, retain_keys) {
        (Strategy::Merge, false) => Some("merge"),
        (Strategy::Merge, true) => Some("merge,retainKeys"),
        (Strategy::Untagged, true) => Some("retainKeys"),
        (Strategy::Replace, _) => Some("replace"),
        (Strategy::Untagged, false) => None,
    }
}

/// Writes the strategic-merge tags of `ty` onto definition `name` and, through referenced
/// definitions, onto the types below it.
fn annotate_patch_meta(
    defs: &mut BTreeMap<String, Value>,
    name: &str,
    ty: &'static TypeMeta,
    seen: &mut HashSet<(String, usize)>,
) {
    if !seen.insert((name.to_string(), ty as *const TypeMeta as usize)) {
        return;
    }
    let mut below: Vec<(String, &'static TypeMeta)> = Vec::new();
    let Some(props) = defs
        .get_mut(name)
        .and_then(|d| d.get_mut("properties"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for field in ty.fields {
        let Some(Value::Object(prop)) = props.get_mut(field.json) else {
            continue;
        };
        if let Some(tag) = strategy_tag(field.meta.strategy, field.meta.retain_keys) {
            prop.insert("x-kubernetes-patch-strategy".into(), tag.into());
        }
        if let Some(key) = field.meta.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if !field.ty.fields.is_empty() {
            if let Some(target) = referenced_definition(&Value::Object(prop.clone())) {
                below.push((target, field.ty));
            }
        }
    }
    for (target, ty) in below {
        annotate_patch_meta(defs, &target, ty, seen);
    }
}

/// Final per-flavor form: refs point into the flavor's section; in v3 a `$ref` with
/// siblings (a description) becomes `allOf: [{$ref}]` as OpenAPI 3.0 ignores ref siblings.
fn finish(schema: &mut Value, flavor: Flavor) {
    match schema {
        Value::Object(obj) => {
            if let Some(Value::String(r)) = obj.get_mut("$ref") {
                if flavor == Flavor::V2 {
                    if let Some(name) = r.strip_prefix(GEN_PREFIX) {
                        *r = format!("{}{name}", flavor.ref_prefix());
                    }
                }
            }
            if flavor == Flavor::V3 && obj.len() > 1 {
                if let Some(r) = obj.remove("$ref") {
                    let mut wrapped = Map::new();
                    wrapped.insert("$ref".into(), r);
                    obj.insert("allOf".into(), Value::Array(vec![Value::Object(wrapped)]));
                }
            }
            for (key, child) in obj.iter_mut() {
                match (key.as_str(), child) {
                    ("$ref", _) => {}
                    // A map of property names to schemas, not a schema (a property may be
                    // called `$ref`, as in JSONSchemaProps).
                    ("properties", Value::Object(props)) => {
                        props.values_mut().for_each(|p| finish(p, flavor))
                    }
                    (_, child) => finish(child, flavor),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| finish(c, flavor)),
        _ => {}
    }
}
