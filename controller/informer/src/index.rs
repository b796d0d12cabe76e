//! Secondary indexes over an informer's cache: index name -> indexed value -> object keys.
//! Objects themselves stay in the reflector store; indexes hold keys only.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kube::Resource;

/// Name of the built-in index of namespaced objects by namespace.
pub const NAMESPACE: &str = "namespace";

/// Key of a cached object: (namespace, name).
pub type Key = (Option<String>, String);

/// Computes the values an object is indexed under.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// The key of `obj`.
pub fn key_of<K: Resource>(obj: &K) -> Key {
    let m = obj.meta();
    (m.namespace.clone(), m.name.clone().unwrap_or_default())
}

struct Index<K> {
    func: IndexFn<K>,
    values: HashMap<String, HashSet<Key>>,
}

/// Every index of one informer.
pub struct Indexes<K> {
    indexes: HashMap<String, Index<K>>,
}

impl<K: Resource> Default for Indexes<K> {
    fn default() -> Self {
        let mut i = Indexes {
            indexes: HashMap::new(),
        };
        i.indexes.insert(
            NAMESPACE.to_string(),
            Index {
                func: Arc::new(|o: &K| o.meta().namespace.clone().into_iter().collect()),
                values: HashMap::new(),
            },
        );
        i
    }
}

impl<K: Resource> Indexes<K> {
    /// Adds (or replaces) the index `name` and fills it from `objects`.
    pub fn add<'a>(&mut self, name: &str, func: IndexFn<K>, objects: impl Iterator<Item = &'a K>)
    where
        K: 'a,
    {
        let mut index = Index {
            func,
            values: HashMap::new(),
        };
        for o in objects {
            insert(&mut index, o);
        }
        self.indexes.insert(name.to_string(), index);
    }

    /// Whether an index called `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.indexes.contains_key(name)
    }

    /// Moves `old` (if any) to `new` (if any) in every index.
    pub fn update(&mut self, old: Option<&K>, new: Option<&K>) {
        for index in self.indexes.values_mut() {
            if let Some(o) = old {
                remove(index, o);
            }
            if let Some(n) = new {
                insert(index, n);
            }
        }
    }

    /// Rebuilds every index from `objects` (after a re-list).
    pub fn rebuild<'a>(&mut self, objects: impl Iterator<Item = &'a K> + Clone)
    where
        K: 'a,
    {
        for index in self.indexes.values_mut() {
            index.values.clear();
            for o in objects.clone() {
                insert(index, o);
            }
            index.values.shrink_to_fit();
        }
    }

    /// Keys of the objects indexed under `value` in `name`; `None` for an unknown index.
    pub fn keys(&self, name: &str, value: &str) -> Option<Vec<Key>> {
        let index = self.indexes.get(name)?;
        Some(
            index
                .values
                .get(value)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }
}

fn insert<K>(index: &mut Index<K>, obj: &K)
where
    K: Resource,
{
    let key = key_of(obj);
    for v in (index.func)(obj) {
        index.values.entry(v).or_default().insert(key.clone());
    }
}

fn remove<K>(index: &mut Index<K>, obj: &K)
where
    K: Resource,
{
    let key = key_of(obj);
    for v in (index.func)(obj) {
        if let Some(set) = index.values.get_mut(&v) {
            set.remove(&key);
            if set.is_empty() {
                index.values.remove(&v);
            }
        }
    }
}
