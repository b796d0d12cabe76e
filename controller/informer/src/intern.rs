//! Toleration lists shared between cached pods.
//!
//! Admission gives every pod that has none of its own the same two tolerations
//! (`node.kubernetes.io/not-ready` and `unreachable`, `NoExecute`, 300 s), and the pods of one
//! workload carry their template's: with 10,000 pods, equal copies of a few lists were about
//! 450 bytes per cached pod (two 112-byte `Toleration`s and their six strings). A cached pod
//! holds its list as an `Arc<[Toleration]>`, and a list equal to one another cached pod holds
//! is that pod's `Arc`. Readers see a slice, as before (`spec.tolerations.as_deref()`).

use std::sync::{Arc, Mutex, Weak};

use k8s_openapi::api::core::v1::Toleration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A cached pod's tolerations.
pub type Tolerations = Arc<[Toleration]>;

/// Most distinct lists the table remembers: it is searched linearly, and a cluster has few
/// distinct lists (the admission defaults and one per workload template). A list that finds
/// the table full of live lists is not shared.
pub const TABLE_SIZE: usize = 64;

/// The lists handed out that some cached pod may still hold.
static TABLE: Mutex<Vec<Weak<[Toleration]>>> = Mutex::new(Vec::new());

/// `list` as an `Arc`: the one already handed out for an equal list while any holder of it
/// lives, else a new one (remembered if the table has room).
pub fn tolerations(list: Vec<Toleration>) -> Tolerations {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    for weak in table.iter() {
        if let Some(shared) = weak.upgrade() {
            if *shared == *list {
                return shared;
            }
        }
    }
    let shared: Tolerations = Arc::from(list);
    table.retain(|w| w.strong_count() > 0);
    if table.len() < TABLE_SIZE {
        table.push(Arc::downgrade(&shared));
    }
    shared
}

/// serde `with` for `Option<Tolerations>`: the same JSON as `Option<Vec<Toleration>>`.
pub mod serde_tolerations {
    use super::*;

    /// Writes the list as a JSON array.
    pub fn serialize<S: Serializer>(v: &Option<Tolerations>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    /// Reads a JSON array (or null) and shares the list ([`tolerations`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tolerations>, D::Error> {
        Ok(Option::<Vec<Toleration>>::deserialize(d)?.map(tolerations))
    }
}
