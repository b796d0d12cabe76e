//! ObjectMeta, labels, annotations, owner references, finalizers and label selectors, as
//! upstream's `apimachinery/pkg/api/validation` and `apis/meta/v1/validation` check them.

use serde_json::Value;

use super::field::{
    forbidden, invalid, invalid_str, required, too_long, BadValue, ErrorList, Path,
};
use super::names::{is_qualified_name, is_valid_label_value, NameRule};
use super::obj::{self, bad};

/// Upstream `FieldImmutableErrorMsg`.
pub const FIELD_IMMUTABLE: &str = "field is immutable";
/// Upstream `IsNegativeErrorMsg`.
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";
/// Upstream `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `ValidateNonnegativeField`.
pub fn nonnegative(value: i64, path: &str) -> ErrorList {
    if value < 0 {
        vec![invalid(path, BadValue::Int(value), IS_NEGATIVE)]
    } else {
        vec![]
    }
}

/// `ValidateImmutableField`: `new` must equal `old` (semantically).
pub fn immutable(new: Option<&Value>, old: Option<&Value>, path: &str) -> ErrorList {
    if obj::same(new, old) {
        vec![]
    } else {
        vec![invalid(path, bad(new), FIELD_IMMUTABLE)]
    }
}

/// `ValidateLabelName`.
pub fn label_name(name: &str, path: &str) -> ErrorList {
    is_qualified_name(name)
        .into_iter()
        .map(|m| invalid_str(path, name, &m))
        .collect()
}

/// `ValidateLabels` on a `map[string]string` field of `parent`.
pub fn labels(parent: &Value, key: &str, path: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, v) in obj::string_map(parent, key) {
        errs.extend(label_name(k, path));
        for m in is_valid_label_value(v) {
            errs.push(invalid_str(path, v, &m));
        }
    }
    errs
}

/// `ValidateAnnotations` on `parent[key]`.
pub fn annotations(parent: &Value, key: &str, path: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut total = 0usize;
    for (k, v) in obj::string_map(parent, key) {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(invalid_str(path, k, &m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn owner_references(meta: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let refs = obj::arr(meta, "ownerReferences");
    let mut first_controller = String::new();
    for r in refs {
        let api_version = obj::s(r, "apiVersion");
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let kind = obj::s(r, "kind");
        if version.is_empty() {
            errs.push(invalid_str(
                &path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(invalid_str(
                &path.child("kind"),
                kind,
                "kind must not be empty",
            ));
        }
        if obj::s(r, "name").is_empty() {
            errs.push(invalid_str(
                &path.child("name"),
                "",
                "name must not be empty",
            ));
        }
        if obj::s(r, "uid").is_empty() {
            errs.push(invalid_str(&path.child("uid"), "", "uid must not be empty"));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(invalid(
                path,
                BadValue::Json(r.clone()),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if obj::b(r, "controller") {
            let cur = format!("{kind}/{}", obj::s(r, "name"));
            if first_controller.is_empty() {
                first_controller = cur;
            } else {
                errs.push(invalid(
                    path,
                    BadValue::Json(Value::Array(refs.clone())),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {cur}"),
                ));
            }
        }
    }
    errs
}

/// `ValidateFinalizerName` plus core's `validateKubeFinalizerName` when `kube` is set.
pub fn finalizer_name(name: &str, path: &str, kube: bool) -> ErrorList {
    let mut errs: ErrorList = is_qualified_name(name)
        .into_iter()
        .map(|m| invalid_str(path, name, &m))
        .collect();
    if kube
        && !name.contains('/')
        && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name)
    {
        errs.push(invalid_str(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    errs
}

fn finalizers(meta: &Value, path: &Path, kube: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let list = obj::strings(meta, "finalizers");
    for f in &list {
        errs.extend(finalizer_name(f, path, false));
    }
    if list.contains(&"orphan") && list.contains(&"foregroundDeletion") {
        errs.push(invalid(
            path,
            BadValue::GoRepr(super::field::gorepr::string_slice(
                meta.get("finalizers"),
                "string",
            )),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    if kube {
        for (i, f) in list.iter().enumerate() {
            if !f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(f) {
                errs.push(invalid_str(
                    &path.index(i),
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
    errs
}

/// How to check one object's metadata.
#[derive(Debug, Clone, Copy)]
pub struct MetaRules {
    pub namespaced: bool,
    pub name: NameRule,
    /// Core's extra finalizer-name check (built-in kinds; not custom resources).
    pub kube_finalizers: bool,
}

/// `ValidateObjectMeta` on create.
pub fn object_meta(object: &Value, rules: MetaRules) -> ErrorList {
    let path = Path::new("metadata");
    let empty = Value::Null;
    let meta = obj::get(object, "metadata").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    let generate_name = obj::s(meta, "generateName");
    if !generate_name.is_empty() {
        for m in rules.name.check(generate_name, true) {
            errs.push(invalid_str(&path.child("generateName"), generate_name, &m));
        }
    }
    let name = obj::s(meta, "name");
    if name.is_empty() {
        errs.push(required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for m in rules.name.check(name, false) {
            errs.push(invalid_str(&path.child("name"), name, &m));
        }
    }
    let ns = obj::s(meta, "namespace");
    if rules.namespaced {
        if ns.is_empty() {
            errs.push(required(&path.child("namespace"), ""));
        } else {
            for m in NameRule::Label.check(ns, false) {
                errs.push(invalid_str(&path.child("namespace"), ns, &m));
            }
        }
    } else if !ns.is_empty() {
        errs.push(forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    errs.extend(common_meta(meta, &path, rules.kube_finalizers));
    errs
}

fn common_meta(meta: &Value, path: &Path, kube: bool) -> ErrorList {
    let mut errs = nonnegative(obj::i(meta, "generation"), &path.child("generation"));
    errs.extend(labels(meta, "labels", &path.child("labels")));
    errs.extend(annotations(meta, "annotations", &path.child("annotations")));
    errs.extend(owner_references(meta, &path.child("ownerReferences")));
    errs.extend(finalizers(meta, &path.child("finalizers"), kube));
    errs.extend(managed_fields(meta, &path.child("managedFields")));
    errs
}

/// `ValidateManagedFields`: operation, fieldsType, manager and subresource of each entry.
fn managed_fields(meta: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, entry) in obj::arr(meta, "managedFields").iter().enumerate() {
        let p = path.index(i);
        let op = obj::s(entry, "operation");
        if op != "Apply" && op != "Update" {
            errs.push(invalid(
                &p.child("operation"),
                obj::named(op),
                "must be `Apply` or `Update`",
            ));
        }
        let ft = obj::s(entry, "fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            errs.push(invalid(
                &p.child("fieldsType"),
                obj::named(ft),
                "must be `FieldsV1`",
            ));
        }
        let manager = obj::s(entry, "manager");
        if manager.len() > 128 {
            errs.push(too_long(&p.child("manager"), 128));
        }
        for (pos, c) in manager.char_indices() {
            if c.is_control() {
                errs.push(invalid_str(
                    &p.child("manager"),
                    manager,
                    &format!("invalid character U+{:04X} (at position {pos})", c as u32),
                ));
            }
        }
        if obj::s(entry, "subresource").len() > 256 {
            errs.push(too_long(&p.child("subresource"), 256));
        }
    }
    errs
}

/// `ValidateObjectMetaUpdate`.
pub fn object_meta_update(new: &Value, old: &Value, kube: bool) -> ErrorList {
    let path = Path::new("metadata");
    let empty = Value::Null;
    let nm = obj::get(new, "metadata").unwrap_or(&empty);
    let om = obj::get(old, "metadata").unwrap_or(&empty);
    let mut errs = ErrorList::new();
    if obj::get(om, "deletionTimestamp").is_some() {
        let old_f = obj::strings(om, "finalizers");
        let mut extra: Vec<&str> = obj::strings(nm, "finalizers")
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|e| format!("{e:?}")).collect();
            errs.push(forbidden(
                &path.child("finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    if obj::s(nm, "resourceVersion").is_empty() {
        errs.push(invalid_str(
            &path.child("resourceVersion"),
            "",
            "must be specified for an update",
        ));
    }
    let (ng, og) = (obj::i(nm, "generation"), obj::i(om, "generation"));
    if ng < og {
        errs.push(invalid(
            &path.child("generation"),
            BadValue::Int(ng),
            "must not be decremented",
        ));
    }
    for f in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let (n, o) = (obj::get(nm, f), obj::get(om, f));
        if !obj::same(n, o) {
            let v = match n {
                None if ["name", "namespace", "uid"].contains(&f) => BadValue::Str(String::new()),
                other => bad(other),
            };
            errs.push(invalid(&path.child(f), v, FIELD_IMMUTABLE));
        }
    }
    errs.extend(labels(nm, "labels", &path.child("labels")));
    errs.extend(annotations(nm, "annotations", &path.child("annotations")));
    errs.extend(owner_references(nm, &path.child("ownerReferences")));
    errs.extend(managed_fields(nm, &path.child("managedFields")));
    if kube {
        for (i, f) in obj::strings(nm, "finalizers").iter().enumerate() {
            if !f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(f) {
                errs.push(invalid_str(
                    &path.child("finalizers").index(i),
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
    errs
}

/// `ValidateLabelSelector` (metav1.LabelSelector).
pub fn label_selector(sel: &Value, path: &Path) -> ErrorList {
    let mut errs = labels(sel, "matchLabels", &path.child("matchLabels"));
    for (i, e) in obj::arr(sel, "matchExpressions").iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = obj::strings(e, "values");
        let op = obj::s(e, "operator");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(invalid(
                &p.child("operator"),
                obj::named(op),
                "not a valid selector operator",
            )),
        }
        errs.extend(label_name(obj::s(e, "key"), &p.child("key")));
        for (vi, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(invalid_str(&p.child("values").index(vi), v, &m));
            }
        }
    }
    errs
}

/// Whether a metav1.LabelSelector matches a label set (used for template checks).
pub fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    for (k, v) in obj::string_map(sel, "matchLabels") {
        if get(k) != Some(v) {
            return false;
        }
    }
    for e in obj::arr(sel, "matchExpressions") {
        let key = obj::s(e, "key");
        let values = obj::strings(e, "values");
        let ok = match obj::s(e, "operator") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// True when a selector has neither matchLabels nor matchExpressions.
pub fn selector_is_empty(sel: &Value) -> bool {
    obj::string_map(sel, "matchLabels").is_empty() && obj::arr(sel, "matchExpressions").is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> MetaRules {
        MetaRules {
            namespaced: true,
            name: NameRule::Subdomain,
            kube_finalizers: true,
        }
    }

    #[test]
    fn name_required_unless_generate_name() {
        let errs = object_meta(&json!({"metadata": {"namespace": "default"}}), rules());
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        assert_eq!(
            errs[0].body(),
            "Required value: name or generateName is required"
        );
    }

    #[test]
    fn bad_name_and_namespace_rules() {
        let errs = object_meta(&json!({"metadata": {"name": "Foo_Bar"}}), rules());
        assert_eq!(errs[0].field, "metadata.name");
        assert!(errs[0]
            .body()
            .starts_with("Invalid value: \"Foo_Bar\": a lowercase RFC 1123 subdomain"));
        assert_eq!(errs[1].field, "metadata.namespace");
        assert_eq!(errs[1].body(), "Required value");
        let cluster = MetaRules {
            namespaced: false,
            ..rules()
        };
        let errs = object_meta(
            &json!({"metadata": {"name": "x", "namespace": "a"}}),
            cluster,
        );
        assert_eq!(errs[0].body(), "Forbidden: not allowed on this type");
    }

    #[test]
    fn labels_and_annotations() {
        let o = json!({"metadata": {"name": "x", "namespace": "d",
            "labels": {"app": "-bad"}, "annotations": {"big": "a".repeat(300 * 1024)}}});
        let errs = object_meta(&o, rules());
        assert_eq!(errs[0].field, "metadata.labels");
        assert!(errs[0]
            .body()
            .starts_with("Invalid value: \"-bad\": a valid label must be an empty string"));
        assert_eq!(errs[1].field, "metadata.annotations");
        assert_eq!(
            errs[1].body(),
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(errs[1].kind.reason(), "FieldValueTooLong");
    }

    #[test]
    fn finalizers_and_owner_refs() {
        let o = json!({"metadata": {"name": "x", "namespace": "d", "finalizers": ["custom"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": "u"}]}});
        let errs = object_meta(&o, rules());
        let bodies: Vec<String> = errs
            .iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect();
        assert!(
            bodies.contains(
                &"metadata.ownerReferences.name: Invalid value: \"\": name must not be empty"
                    .to_string()
            ),
            "{bodies:?}"
        );
        assert!(bodies.contains(&"metadata.finalizers[0]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified".to_string()), "{bodies:?}");
    }

    #[test]
    fn update_rules() {
        let old =
            json!({"metadata": {"name": "x", "uid": "1", "resourceVersion": "5", "generation": 2}});
        let new = json!({"metadata": {"name": "y", "uid": "1", "generation": 1}});
        let errs = object_meta_update(&new, &old, true);
        let bodies: Vec<String> = errs
            .iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect();
        assert_eq!(
            bodies,
            vec![
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                "metadata.generation: Invalid value: 1: must not be decremented",
                "metadata.name: Invalid value: \"y\": field is immutable",
            ]
        );
    }

    #[test]
    fn managed_fields_operation() {
        let o = json!({"metadata": {"name": "x", "namespace": "d", "managedFields": [{"manager": "kubectl", "operation": "Patch"}]}});
        let errs = object_meta(&o, rules());
        assert_eq!(errs[0].field, "metadata.managedFields[0].operation");
        assert_eq!(
            errs[0].body(),
            "Invalid value: \"Patch\": must be `Apply` or `Update`"
        );
    }

    #[test]
    fn selectors() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]});
        assert!(selector_matches(&sel, &json!({"app": "web", "tier": "a"})));
        assert!(!selector_matches(&sel, &json!({"app": "web"})));
        let bad = json!({"matchExpressions": [{"key": "k", "operator": "Foo"}]});
        let errs = label_selector(&bad, &Path::new("spec").child("selector"));
        assert_eq!(errs[0].field, "spec.selector.matchExpressions[0].operator");
        assert_eq!(
            errs[0].body(),
            "Invalid value: \"Foo\": not a valid selector operator"
        );
    }
}
