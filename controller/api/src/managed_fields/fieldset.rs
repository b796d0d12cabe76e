//! [`FieldSet`]: a tree of path elements with set operations and the `FieldsV1` encoding.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::element::{map_element, set_element};
use crate::patch::strategic::schema::ListType;
use crate::patch::strategic::{root_for, FieldMeta, TypeMeta};

/// One step of a field path, as `FieldsV1` keys spell it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElement {
    /// `f:<name>`: a field of a map or struct.
    Field(String),
    /// `k:<json object>`: a list element identified by its key fields.
    Key(String),
    /// `v:<json value>`: an element of a set-like list of scalars.
    Value(String),
}

impl PathElement {
    /// The `FieldsV1` key (`f:name`, `k:{"name":"c"}`, `v:"x"`).
    pub fn key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
        }
    }

    /// The element in upstream's dotted path form: `.name`, `[port=53,protocol="UDP"]`,
    /// `[="x"]`.
    pub fn dotted(&self) -> String {
        match self {
            PathElement::Field(f) => format!(".{f}"),
            PathElement::Key(key) => {
                let parsed: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            PathElement::Value(val) => format!("[={val}]"),
        }
    }

    fn parse(s: &str) -> Option<PathElement> {
        let (prefix, rest) = s.split_at_checked(2)?;
        match prefix {
            "f:" => Some(PathElement::Field(rest.into())),
            "k:" => Some(PathElement::Key(rest.into())),
            "v:" => Some(PathElement::Value(rest.into())),
            _ => None,
        }
    }
}

/// A set of field paths: `member` marks the node itself as set (a leaf value, or a map or
/// list element that exists as a whole), `children` the paths below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The fields `obj` (an object of built-in kind `group`/`kind`, or an applied
    /// configuration of it) sets. `apiVersion`, `kind` and server-set metadata
    /// (`name`, `namespace`, `uid`, `resourceVersion`, `generation`, `creationTimestamp`,
    /// `managedFields`) are not owned by anyone, as upstream.
    pub fn of_object(group: &str, kind: &str, obj: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(map) = obj.as_object() else {
            return set;
        };
        let root = root_for(group, kind);
        for (k, v) in map {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            let (meta, ty) = root.field(k);
            let mut child = of_value(v, meta, ty);
            if child.is_empty() {
                continue;
            }
            if k == "metadata" {
                for skip in [
                    "name",
                    "namespace",
                    "uid",
                    "resourceVersion",
                    "generation",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "managedFields",
                    "selfLink",
                ] {
                    child.children.remove(&PathElement::Field(skip.into()));
                }
                if child.children.is_empty() {
                    continue;
                }
            }
            set.children.insert(PathElement::Field(k.clone()), child);
        }
        set
    }

    /// A set holding only its own node.
    pub fn leaf() -> FieldSet {
        FieldSet {
            member: true,
            children: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Every path in `self` or `other`.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, v) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// Paths of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Paths in both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = v.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Leaf paths in upstream's dotted form (`.spec.replicas`,
    /// `.spec.template.spec.containers[name="c"].image`), sorted.
    pub fn leaf_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths(String::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: String, out: &mut Vec<String>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            let p = format!("{prefix}{}", k.dotted());
            v.collect_paths(p, out);
        }
    }

    /// The `FieldsV1` JSON (`{"f:spec":{"f:replicas":{}}}`; `"."` marks a node that is a
    /// member and has children).
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, v) in &self.children {
            map.insert(k.key(), v.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Parses `FieldsV1` JSON; unknown keys are skipped.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(map) = v.as_object() else {
            return set;
        };
        if map.is_empty() {
            set.member = true;
            return set;
        }
        for (k, child) in map {
            if k == "." {
                set.member = true;
                continue;
            }
            if let Some(pe) = PathElement::parse(k) {
                set.children.insert(pe, FieldSet::from_fields_v1(child));
            }
        }
        set
    }
}

/// The field set below one value, as upstream's `ToFieldSet`: maps recurse (an empty map or
/// a `null` is a leaf), map lists become elements keyed `k:{...}` by their list-map keys,
/// sets become `v:<value>` elements, atomic lists and scalars are leaves. An element without
/// an identity (a map list element missing a key, which only a configuration that failed
/// [`check_list_keys`](super::check_list_keys) can have) is left out.
fn of_value(v: &Value, meta: FieldMeta, ty: &'static TypeMeta) -> FieldSet {
    match v {
        Value::Object(m) => {
            if meta.atomic_map() || m.is_empty() {
                return FieldSet::leaf();
            }
            let mut set = FieldSet::default();
            for (k, child) in m {
                let (cmeta, cty) = ty.field(k);
                let c = of_value(child, cmeta, cty);
                // an empty granular list sets nothing
                if !c.is_empty() {
                    set.children.insert(PathElement::Field(k.clone()), c);
                }
            }
            set
        }
        Value::Array(items) => {
            let list = meta.list_type();
            let mut set = FieldSet::default();
            for item in items {
                let (pe, mut elem) = match list {
                    ListType::Atomic => return FieldSet::leaf(),
                    ListType::Set => match set_element(item) {
                        Ok(pe) => (pe, FieldSet::leaf()),
                        Err(_) => continue,
                    },
                    ListType::Map(keys) => match map_element(keys, item) {
                        Ok(pe) => (pe, of_value(item, FieldMeta::default(), ty)),
                        Err(_) => continue,
                    },
                };
                elem.member = true;
                set.children.insert(pe, elem);
            }
            set
        }
        _ => FieldSet::leaf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a/b"]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "nginx",
                    "args": ["-x"], "ports": [{"containerPort": 80}]}]}}}})
    }

    #[test]
    fn fields_v1_like_upstream() {
        let set = FieldSet::of_object("apps", "Deployment", &deployment());
        let v = set.to_fields_v1();
        assert_eq!(v["f:spec"]["f:replicas"], json!({}));
        assert_eq!(
            v["f:spec"]["f:selector"],
            json!({}),
            "a LabelSelector is atomic (+structType=atomic)"
        );
        assert_eq!(v["f:metadata"]["f:labels"]["f:app"], json!({}));
        assert!(v["f:metadata"].get("f:name").is_none());
        assert_eq!(v["f:metadata"]["f:finalizers"]["v:\"a/b\""], json!({}));
        let c = &v["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"];
        assert_eq!(c["."], json!({}));
        assert_eq!(c["f:name"], json!({}));
        assert_eq!(c["f:args"], json!({}), "untagged lists are atomic");
        // keyed by containerPort and protocol, the omitted protocol taking its default
        let port = &c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"];
        assert_eq!(port["f:containerPort"], json!({}));
        assert!(port.get("f:protocol").is_none(), "{port}");
        assert_eq!(FieldSet::from_fields_v1(&v), set);
    }

    #[test]
    fn set_operations_and_paths() {
        let a = FieldSet::of_object("apps", "Deployment", &deployment());
        let b = FieldSet::of_object(
            "apps",
            "Deployment",
            &json!({"spec": {"replicas": 3, "paused": true}}),
        );
        let both = a.intersection(&b);
        assert_eq!(both.leaf_paths(), vec![".spec.replicas"]);
        let only_b = b.difference(&a);
        assert_eq!(only_b.leaf_paths(), vec![".spec.paused"]);
        let u = a.union(&b);
        assert!(u.leaf_paths().contains(&".spec.paused".to_string()));
        assert!(u
            .leaf_paths()
            .contains(&".spec.template.spec.containers[name=\"c\"].image".to_string()));
    }
}
