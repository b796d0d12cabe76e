//! Applying the operations of one transaction inside a (nested) LMDB write transaction.

use std::sync::Arc;

use heed::RwTxn;
use serde_json::Value;

use super::open::Dbs;
use super::record::{EventRecord, ObjectRecord};
use crate::{Event, EventType, KeyValue, Op, OpOutcome, Revision, StoreError};

/// Applies `ops` in order, the first at revision `first_revision`, the next at the one after.
/// Writes objects and history; returns the outcomes and the events. On error the caller
/// aborts the transaction, so a partial application never survives.
pub(crate) fn apply_ops(
    txn: &mut RwTxn,
    dbs: &Dbs,
    first_revision: Revision,
    ops: Vec<Op>,
    max_key_size: usize,
) -> Result<(Vec<OpOutcome>, Vec<Arc<Event>>), StoreError> {
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut events = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let revision = first_revision + i as u64;
        let (outcome, event) = apply_op(txn, dbs, revision, op, max_key_size)?;
        outcomes.push(outcome);
        events.push(Arc::new(event));
    }
    Ok((outcomes, events))
}

fn apply_op(
    txn: &mut RwTxn,
    dbs: &Dbs,
    revision: Revision,
    op: Op,
    max_key_size: usize,
) -> Result<(OpOutcome, Event), StoreError> {
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
    let existing = match dbs.object(txn, &key)? {
        Some(bytes) => {
            let rec = ObjectRecord::decode(&key, bytes)?;
            Some((
                rec.create_revision,
                rec.mod_revision,
                Arc::<[u8]>::from(rec.json),
            ))
        }
        None => None,
    };
    match op {
        Op::Create { value, .. } => {
            if existing.is_some() {
                return Err(StoreError::AlreadyExists(key));
            }
            let json = stamp(value, revision, &key)?;
            dbs.put_object(txn, &key, &ObjectRecord::encode(revision, revision, &json))?;
            let change = Change {
                kind: EventType::Added,
                create_revision: revision,
                prev_mod_revision: 0,
            };
            let (kv, event) = record_change(txn, dbs, revision, change, key, json, None)?;
            Ok((OpOutcome::Written(kv), event))
        }
        Op::Update {
            value,
            expected_revision,
            ..
        } => {
            let (create_revision, prev_mod, prev_json) =
                check_existing(&key, existing, expected_revision)?;
            let json = stamp(value, revision, &key)?;
            dbs.put_object(
                txn,
                &key,
                &ObjectRecord::encode(create_revision, revision, &json),
            )?;
            let change = Change {
                kind: EventType::Modified,
                create_revision,
                prev_mod_revision: prev_mod,
            };
            let (kv, event) =
                record_change(txn, dbs, revision, change, key, json, Some(prev_json))?;
            Ok((OpOutcome::Written(kv), event))
        }
        Op::Delete {
            expected_revision, ..
        } => {
            let (create_revision, prev_mod, prev_json) =
                check_existing(&key, existing, expected_revision)?;
            let last: Value =
                serde_json::from_slice(&prev_json).map_err(|source| StoreError::Corrupt {
                    key: key.clone(),
                    source,
                })?;
            let json = stamp(last, revision, &key)?;
            dbs.delete_object(txn, &key)?;
            let change = Change {
                kind: EventType::Deleted,
                create_revision,
                prev_mod_revision: prev_mod,
            };
            let (kv, event) =
                record_change(txn, dbs, revision, change, key, json, Some(prev_json))?;
            Ok((OpOutcome::Deleted(kv), event))
        }
    }
}

/// What kind of change one op made, for its history record and event.
struct Change {
    kind: EventType,
    create_revision: Revision,
    prev_mod_revision: Revision,
}

/// Appends the history record of one change and builds its event and resulting key/value,
/// the part every op shares once its object write (or delete) is done.
fn record_change(
    txn: &mut RwTxn,
    dbs: &Dbs,
    revision: Revision,
    change: Change,
    key: String,
    json: Vec<u8>,
    prev_value: Option<Arc<[u8]>>,
) -> Result<(KeyValue, Event), StoreError> {
    let rec = EventRecord {
        kind: change.kind,
        create_revision: change.create_revision,
        prev_mod_revision: change.prev_mod_revision,
        key: &key,
        value: &json,
        prev_value: prev_value.as_deref(),
    };
    append_history(txn, dbs, revision, &rec)?;
    let value: Arc<[u8]> = Arc::from(json);
    let event = Event {
        revision,
        kind: change.kind,
        key: key.clone(),
        value: value.clone(),
        prev_value,
    };
    let kv = KeyValue {
        key,
        value,
        mod_revision: revision,
        create_revision: change.create_revision,
    };
    Ok((kv, event))
}

/// The preconditions shared by update and delete; returns the existing
/// `(create_revision, mod_revision, json)`.
fn check_existing(
    key: &str,
    existing: Option<(Revision, Revision, Arc<[u8]>)>,
    expected_revision: Option<Revision>,
) -> Result<(Revision, Revision, Arc<[u8]>), StoreError> {
    let (create, modified, json) = existing.ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
    if let Some(expected) = expected_revision {
        if expected != modified {
            return Err(StoreError::Conflict {
                key: key.to_owned(),
                expected,
                actual: modified,
            });
        }
    }
    Ok((create, modified, json))
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

/// History keys only grow, so `APPEND` skips the B-tree search.
fn append_history(
    txn: &mut RwTxn,
    dbs: &Dbs,
    revision: Revision,
    rec: &EventRecord<'_>,
) -> Result<(), StoreError> {
    dbs.append_history(txn, revision, &rec.encode())
}
