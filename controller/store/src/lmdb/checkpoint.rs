//! Checkpoints: the overlay's changes into LMDB in one durable transaction, and the replay
//! of the write-ahead log when the store is opened.
//!
//! A checkpoint writes the final state of every key the overlay touched and the history
//! events, compacts the history, and commits with LMDB's normal `fsync`: LMDB is never left
//! half-written. Only then is the overlay cleared and the log started over (`Wal::reset`).
//! A crash between the commit and the reset leaves records LMDB already has; the log's
//! header then names an older base revision than LMDB's, and the records are dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use heed::{Env, RoTxn, WithoutTls};

use super::compaction::{compact, Compaction};
use super::open::{Dbs, Opened};
use super::overlay::{Change, Changes, Obj};
use super::record::ObjectRecord;
use super::wal::{Wal, WalEvent};
use super::StoreConfig;
use crate::{Event, EventType, Revision, StoreError};

/// Writes `sets` (consecutive changes, oldest set first, ending at `current`) to LMDB and
/// compacts the history, in one durable commit.
pub(crate) fn write_changes(
    env: &Env<WithoutTls>,
    dbs: &Dbs,
    sets: &[&Changes],
    current: Revision,
    compacted: Revision,
    history_limit: u64,
) -> Result<Compaction, StoreError> {
    let mut wtxn = env.write_txn()?;
    // Each key once, in key order, in its newest state.
    let mut objects: BTreeMap<&str, &Option<Obj>> = BTreeMap::new();
    for set in sets {
        objects.extend(set.objects.iter().map(|(k, v)| (k.as_str(), v)));
    }
    for (key, state) in objects {
        match state {
            Some(obj) => dbs.put_object(
                &mut wtxn,
                key,
                &ObjectRecord::encode(obj.create_revision, obj.mod_revision, &obj.json),
            )?,
            None => dbs.delete_object(&mut wtxn, key)?,
        }
    }
    let mut events = sets.iter().flat_map(|set| set.events.iter()).peekable();
    let append = match events.peek() {
        Some(first) => dbs.history_is_last(&wtxn, first.revision())?,
        None => false,
    };
    for change in events {
        dbs.append_history(
            &mut wtxn,
            change.revision(),
            &change.record().encode(),
            append,
        )?;
    }
    let compaction = compact(&mut wtxn, dbs, current, compacted, history_limit)?;
    // The durable commit: LMDB writes the pages and fsyncs before returning.
    wtxn.commit()?;
    Ok(compaction)
}

/// The object `key` as LMDB holds it.
pub(crate) fn lmdb_object(txn: &RoTxn, dbs: &Dbs, key: &str) -> Result<Option<Obj>, StoreError> {
    match dbs.object(txn, key)? {
        Some(bytes) => Ok(Some(Obj::from_record(ObjectRecord::decode(key, bytes)?))),
        None => Ok(None),
    }
}

/// Rebuilds the changes of logged events on top of LMDB: the previous state each event's
/// history record carries comes from the events before it or from LMDB.
pub(crate) fn replay(
    env: &Env<WithoutTls>,
    dbs: &Dbs,
    events: Vec<WalEvent>,
) -> Result<Changes, StoreError> {
    let txn = env.read_txn()?;
    let mut changes = Changes::default();
    for e in events {
        let prev = match changes.objects.get(&e.key) {
            Some(state) => state.clone(),
            None => lmdb_object(&txn, dbs, &e.key)?,
        };
        let (prev_mod_revision, prev_value) = match (e.kind, prev) {
            (EventType::Added, _) => (0, None),
            (_, Some(prev)) => (prev.mod_revision, Some(prev.json)),
            (_, None) => {
                return Err(StoreError::BadRecord {
                    what: format!("write-ahead log event {}", e.revision),
                    reason: "update or delete of a key that does not exist",
                })
            }
        };
        let value: Arc<[u8]> = Arc::from(e.value);
        let state = (e.kind != EventType::Deleted).then(|| Obj {
            create_revision: e.create_revision,
            mod_revision: e.revision,
            json: value.clone(),
        });
        let event = Event {
            revision: e.revision,
            kind: e.kind,
            key: e.key,
            value,
            prev_value,
        };
        let change = Change {
            event: Arc::new(event),
            create_revision: e.create_revision,
            prev_mod_revision,
        };
        changes.push(change, state);
    }
    Ok(changes)
}

/// What [`recover`] did.
pub(crate) struct Recovered {
    /// The log, empty and based on LMDB's revision (`None`: the store runs without one).
    pub wal: Option<Wal>,
    /// Records replayed into LMDB.
    pub records: u64,
}

/// Opens the write-ahead log next to the opened LMDB, replays what it holds after LMDB's
/// revision into LMDB (updating `opened`'s revisions), and leaves the log empty.
///
/// The log's records are replayed only when its base revision is LMDB's: if LMDB moved past
/// it, either a checkpoint committed and the reset did not happen (LMDB has every record) or
/// an older Bramble, which knows nothing of the log, wrote to LMDB after an unclean stop
/// (the records would contradict its writes); either way they are dropped.
pub(crate) fn recover(
    dir: &std::path::Path,
    opened: &mut Opened,
    config: &StoreConfig,
) -> Result<Recovered, StoreError> {
    if config.wal_size == 0 {
        return Ok(Recovered {
            wal: None,
            records: 0,
        });
    }
    let (mut wal, found) = Wal::open(dir, config.wal_size)?;
    let mut records = 0;
    match found.base {
        Some(base) if base == opened.current && !found.events.is_empty() => {
            let changes = replay(&opened.env, &opened.dbs, found.events)?;
            let current = changes.last_revision().unwrap_or(opened.current);
            let compaction = write_changes(
                &opened.env,
                &opened.dbs,
                &[&changes],
                current,
                opened.compacted,
                config.history_limit,
            )?;
            tracing::info!(
                path = %wal.path().display(),
                records = found.records,
                from = base + 1,
                to = current,
                "replayed the store's write-ahead log"
            );
            opened.current = current;
            opened.compacted = compaction.compacted;
            records = found.records;
        }
        Some(base) if base != opened.current && !found.events.is_empty() => {
            tracing::warn!(
                path = %wal.path().display(),
                log_base = base,
                lmdb = opened.current,
                records = found.records,
                "ignoring write-ahead log records: the store moved past the log's base (written by an older Bramble?)"
            );
        }
        _ => {}
    }
    if !wal.is_empty_at(opened.current) {
        wal.reset(opened.current)?;
    }
    Ok(Recovered {
        wal: Some(wal),
        records,
    })
}
