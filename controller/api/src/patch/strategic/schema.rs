//! Patch metadata: for each field of a built-in type, the list patch strategy and merge key
//! upstream declares with Go struct tags (`patchStrategy:"merge" patchMergeKey:"name"`), as a
//! graph of static types rooted at each kind (see `tables`).
//!
//! A type lists only the fields that carry a tag or lead to one. Every other field is
//! untagged upstream, which strategic merge treats uniformly (maps merge recursively, lists are
//! replaced), so it is looked up as [`TypeMeta::UNTAGGED`].

use super::tables;

/// The list (or map) strategy of a field (`patchStrategy` minus `retainKeys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// No tag: lists are replaced by the patch's list, maps merge recursively.
    #[default]
    Untagged,
    /// `merge`: lists of maps merge element by element on the merge key; lists of scalars
    /// merge as ordered sets.
    Merge,
    /// `replace`: the patch's value replaces the field whole (maps included).
    Replace,
}

/// Patch metadata of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldMeta {
    pub strategy: Strategy,
    /// `retainKeys` is part of the tag: `kubectl apply` sends `$retainKeys` for this field.
    pub retain_keys: bool,
    /// `patchMergeKey`: the element field identifying list elements.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type` (with `x-kubernetes-list-map-keys`) when upstream declares
    /// one that differs from what the patch tags imply; on a map or struct field, `Atomic`
    /// is `x-kubernetes-map-type: atomic` (`+structType=atomic`, `+mapType=atomic`). Only
    /// server-side apply reads it ([`FieldMeta::list_type`], [`FieldMeta::atomic_map`]);
    /// strategic merge keeps the single `patchMergeKey` and merges maps.
    pub declared_list: Option<ListType>,
}

/// How server-side apply (structured-merge-diff) treats a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole; owned as one field.
    Atomic,
    /// A set of scalars, elements identified by value (`v:<value>`).
    Set,
    /// A map of objects identified by the key fields (`k:{"port":53,"protocol":"UDP"}`).
    Map(MapKeys),
}

/// The key fields of a `map` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKeys {
    /// The `patchMergeKey` alone (no default).
    MergeKey(&'static str),
    /// `x-kubernetes-list-map-keys`, in declaration order.
    Keys(&'static [ListMapKey]),
}

/// One `x-kubernetes-list-map-keys` field and its schema default (`protocol`: `"TCP"`), which
/// stands in for the field when an element omits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListMapKey {
    pub name: &'static str,
    pub default: Option<&'static str>,
}

impl MapKeys {
    /// The keys, in declaration order.
    pub fn keys(&self) -> impl Iterator<Item = ListMapKey> + '_ {
        let (single, many): (Option<ListMapKey>, &[ListMapKey]) = match self {
            MapKeys::MergeKey(name) => (
                Some(ListMapKey {
                    name,
                    default: None,
                }),
                &[],
            ),
            MapKeys::Keys(keys) => (None, keys),
        };
        single.into_iter().chain(many.iter().copied())
    }
}

impl FieldMeta {
    /// Whether server-side apply treats the field's map or struct as one value: replaced
    /// whole and owned as one field (`f:selector: {}`). A `replace` patch strategy counts.
    pub fn atomic_map(&self) -> bool {
        self.strategy == Strategy::Replace || self.declared_list == Some(ListType::Atomic)
    }

    /// The list type server-side apply uses, as upstream derives it from the OpenAPI
    /// extensions (kube-openapi `schemaconv`): the declared `x-kubernetes-list-type` when
    /// there is one, else `patchStrategy: merge` with a merge key is a map on that key,
    /// `merge` without one a set, and every other list atomic.
    pub fn list_type(&self) -> ListType {
        if let Some(t) = self.declared_list {
            return t;
        }
        match (self.strategy, self.merge_key) {
            (Strategy::Merge, Some(key)) => ListType::Map(MapKeys::MergeKey(key)),
            (Strategy::Merge, None) => ListType::Set,
            _ => ListType::Atomic,
        }
    }
}

/// One field of a [`TypeMeta`].
#[derive(Debug)]
pub struct Field {
    /// JSON name of the field.
    pub json: &'static str,
    pub meta: FieldMeta,
    /// The field's type; for lists, the element type.
    pub ty: &'static TypeMeta,
}

/// An API type (a Go struct upstream) with the fields that matter to strategic merge.
#[derive(Debug)]
pub struct TypeMeta {
    /// Upstream type name, for diagnostics.
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl TypeMeta {
    /// A type (or an untagged field's value) with no tagged field below it.
    pub const UNTAGGED: TypeMeta = TypeMeta {
        name: "",
        fields: &[],
    };

    /// Metadata and type of field `json`; untagged for fields not listed.
    pub fn field(&self, json: &str) -> (FieldMeta, &'static TypeMeta) {
        self.fields
            .iter()
            .find(|f| f.json == json)
            .map(|f| (f.meta, f.ty))
            .unwrap_or((FieldMeta::default(), &UNTAGGED))
    }
}

static UNTAGGED: TypeMeta = TypeMeta::UNTAGGED;

/// `patchStrategy:"merge" patchMergeKey:"<key>"` on a list of `ty`.
pub(crate) const fn merge_by(
    json: &'static str,
    key: &'static str,
    ty: &'static TypeMeta,
) -> Field {
    Field {
        json,
        meta: FieldMeta {
            strategy: Strategy::Merge,
            retain_keys: false,
            merge_key: Some(key),
            declared_list: None,
        },
        ty,
    }
}

/// `patchStrategy:"merge,retainKeys" patchMergeKey:"<key>"`.
pub(crate) const fn merge_retain_by(
    json: &'static str,
    key: &'static str,
    ty: &'static TypeMeta,
) -> Field {
    Field {
        json,
        meta: FieldMeta {
            strategy: Strategy::Merge,
            retain_keys: true,
            merge_key: Some(key),
            declared_list: None,
        },
        ty,
    }
}

/// `patchStrategy:"merge"` on a list of scalars: an ordered set.
pub(crate) const fn merge_set(json: &'static str) -> Field {
    Field {
        json,
        meta: FieldMeta {
            strategy: Strategy::Merge,
            retain_keys: false,
            merge_key: None,
            declared_list: None,
        },
        ty: &UNTAGGED,
    }
}

/// `patchStrategy:"retainKeys"` alone (a union struct such as a Deployment's strategy).
pub(crate) const fn retain_keys(json: &'static str, ty: &'static TypeMeta) -> Field {
    Field {
        json,
        meta: FieldMeta {
            strategy: Strategy::Untagged,
            retain_keys: true,
            merge_key: None,
            declared_list: None,
        },
        ty,
    }
}

/// `patchStrategy:"replace"`.
pub(crate) const fn replace(json: &'static str) -> Field {
    Field {
        json,
        meta: FieldMeta {
            strategy: Strategy::Replace,
            retain_keys: false,
            merge_key: None,
            declared_list: None,
        },
        ty: &UNTAGGED,
    }
}

/// An untagged struct field whose type has tagged fields below it.
pub(crate) const fn nested(json: &'static str, ty: &'static TypeMeta) -> Field {
    Field {
        json,
        meta: FieldMeta {
            strategy: Strategy::Untagged,
            retain_keys: false,
            merge_key: None,
            declared_list: None,
        },
        ty,
    }
}

/// `field` with an `x-kubernetes-list-type` that differs from what its patch tags imply
/// (an untagged [`nested`] field for lists only server-side apply merges).
pub(crate) const fn ssa(field: Field, list_type: ListType) -> Field {
    let mut f = field;
    f.meta.declared_list = Some(list_type);
    f
}

/// `x-kubernetes-list-type: map` on `keys`.
pub(crate) const fn list_map(keys: &'static [ListMapKey]) -> ListType {
    ListType::Map(MapKeys::Keys(keys))
}

/// A list-map key without a default (the field is required).
pub(crate) const fn key(name: &'static str) -> ListMapKey {
    ListMapKey {
        name,
        default: None,
    }
}

/// A list-map key with its schema default.
pub(crate) const fn key_or(name: &'static str, default: &'static str) -> ListMapKey {
    ListMapKey {
        name,
        default: Some(default),
    }
}

/// The root type of a built-in kind in `group` (`""` for core). Kinds with nothing tagged
/// outside their `metadata` get the generic object (ObjectMeta's `finalizers` and
/// `ownerReferences` only).
pub fn root_for(group: &str, kind: &str) -> &'static TypeMeta {
    tables::root(group, kind).unwrap_or(&tables::GENERIC_OBJECT)
}

/// Patch metadata of the field at a dotted JSON path of a kind, list elements transparent:
/// `field_meta("apps", "Deployment", "spec.template.spec.containers.env")` is a merge on
/// `name`. Fields upstream leaves untagged (and unknown ones) give the default (untagged).
pub fn field_meta(group: &str, kind: &str, path: &str) -> FieldMeta {
    let mut ty = root_for(group, kind);
    let mut meta = FieldMeta::default();
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        (meta, ty) = ty.field(segment);
    }
    meta
}
