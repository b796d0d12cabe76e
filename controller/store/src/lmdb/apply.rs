//! Applying the operations of one transaction on top of the store's state, without writing
//! anything: the result is the [`Changes`] the writer logs and then makes visible.

use std::sync::Arc;

use serde_json::Value;

use super::overlay::{Change, Changes, Obj};
use crate::{Event, EventType, KeyValue, Op, OpOutcome, Revision, StoreError};

/// The state operations are checked against (the overlay over LMDB, plus the earlier
/// transactions of the same batch).
pub(crate) trait Lookup {
    fn object(&self, key: &str) -> Result<Option<Obj>, StoreError>;
}

/// Applies `ops` in order, the first at revision `first_revision`, the next at the one after.
/// Returns the outcomes and the changes; on error nothing of `ops` is kept.
pub(crate) fn apply_ops(
    base: &dyn Lookup,
    first_revision: Revision,
    ops: Vec<Op>,
    max_key_size: usize,
) -> Result<(Vec<OpOutcome>, Changes), StoreError> {
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut changes = Changes::default();
    for (i, op) in ops.into_iter().enumerate() {
        let revision = first_revision + i as u64;
        let key = match &op {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        };
        let existing = match changes.objects.get(key.as_str()) {
            Some(state) => state.clone(),
            None => base.object(key)?,
        };
        let (outcome, change, state) = apply_op(existing, revision, op, max_key_size)?;
        changes.push(change, state);
        outcomes.push(outcome);
    }
    Ok((outcomes, changes))
}

fn apply_op(
    existing: Option<Obj>,
    revision: Revision,
    op: Op,
    max_key_size: usize,
) -> Result<(OpOutcome, Change, Option<Obj>), StoreError> {
    let key = match &op {
        Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key.clone(),
    };
    if key.len() > max_key_size || key.is_empty() {
        return Err(StoreError::KeyTooLong {
            len: key.len(),
            key,
            max: max_key_size,
        });
    }
    match op {
        Op::Create { value, .. } => {
            if existing.is_some() {
                return Err(StoreError::AlreadyExists(key));
            }
            let json = stamp(value, revision, &key)?;
            let change = Kind {
                kind: EventType::Added,
                create_revision: revision,
                prev_mod_revision: 0,
            };
            let (kv, change) = record_change(revision, change, key, json, None);
            let state = obj(&kv);
            Ok((OpOutcome::Written(kv), change, Some(state)))
        }
        Op::Update {
            value,
            expected_revision,
            ..
        } => {
            let prev = check_existing(&key, existing, expected_revision)?;
            let json = stamp(value, revision, &key)?;
            let change = Kind {
                kind: EventType::Modified,
                create_revision: prev.create_revision,
                prev_mod_revision: prev.mod_revision,
            };
            let (kv, change) = record_change(revision, change, key, json, Some(prev.json));
            let state = obj(&kv);
            Ok((OpOutcome::Written(kv), change, Some(state)))
        }
        Op::Delete {
            expected_revision, ..
        } => {
            let prev = check_existing(&key, existing, expected_revision)?;
            let last: Value =
                serde_json::from_slice(&prev.json).map_err(|source| StoreError::Corrupt {
                    key: key.clone(),
                    source,
                })?;
            let json = stamp(last, revision, &key)?;
            let change = Kind {
                kind: EventType::Deleted,
                create_revision: prev.create_revision,
                prev_mod_revision: prev.mod_revision,
            };
            let (kv, change) = record_change(revision, change, key, json, Some(prev.json));
            Ok((OpOutcome::Deleted(kv), change, None))
        }
    }
}

fn obj(kv: &KeyValue) -> Obj {
    Obj {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        json: kv.value.clone(),
    }
}

/// What kind of change one op made, for its history record and event.
struct Kind {
    kind: EventType,
    create_revision: Revision,
    prev_mod_revision: Revision,
}

/// Builds the change (event and history fields) and the resulting key/value, the part every
/// op shares.
fn record_change(
    revision: Revision,
    kind: Kind,
    key: String,
    json: Vec<u8>,
    prev_value: Option<Arc<[u8]>>,
) -> (KeyValue, Change) {
    let value: Arc<[u8]> = Arc::from(json);
    let event = Event {
        revision,
        kind: kind.kind,
        key: key.clone(),
        value: value.clone(),
        prev_value,
    };
    let kv = KeyValue {
        key,
        value,
        mod_revision: revision,
        create_revision: kind.create_revision,
    };
    let change = Change {
        event: Arc::new(event),
        create_revision: kind.create_revision,
        prev_mod_revision: kind.prev_mod_revision,
    };
    (kv, change)
}

/// The preconditions shared by update and delete; returns the existing object.
fn check_existing(
    key: &str,
    existing: Option<Obj>,
    expected_revision: Option<Revision>,
) -> Result<Obj, StoreError> {
    let existing = existing.ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
    if let Some(expected) = expected_revision {
        if expected != existing.mod_revision {
            return Err(StoreError::Conflict {
                key: key.to_owned(),
                expected,
                actual: existing.mod_revision,
            });
        }
    }
    Ok(existing)
}

/// Sets `metadata.resourceVersion` to the revision (as a decimal string, the only field the
/// store touches) and serialises the object.
fn stamp(mut value: Value, revision: Revision, key: &str) -> Result<Vec<u8>, StoreError> {
    let metadata = value
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| StoreError::NoMetadata {
            key: key.to_owned(),
        })?;
    metadata.insert(
        "resourceVersion".to_owned(),
        Value::String(revision.to_string()),
    );
    serde_json::to_vec(&value).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}
