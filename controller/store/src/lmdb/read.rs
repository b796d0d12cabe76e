//! Read paths: get, and list with pagination, on one LMDB snapshot with the overlay of
//! changes not yet checkpointed merged over it (an overlay entry, a tombstone included,
//! wins over LMDB's entry for the same key).

use std::ops::Bound;

use heed::RoTxn;

use super::history::{self, AtRevision};
use super::open::Dbs;
use super::overlay;
use super::record::ObjectRecord;
use super::Shared;
use crate::{KeyValue, ListOptions, ListResult, Revision, StoreError};

/// One object as seen by a list: a key and its record, both borrowed from the snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub key: &'a str,
    pub record: ObjectRecord<'a>,
}

impl Entry<'_> {
    fn to_key_value(self) -> KeyValue {
        self.record.to_key_value(self.key)
    }
}

/// The object `key`: the overlay's state if it holds the key, LMDB's otherwise.
pub(crate) fn get(shared: &Shared, key: &str) -> Result<Option<KeyValue>, StoreError> {
    let overlay = shared.overlay.read().unwrap_or_else(|e| e.into_inner());
    if let Some(state) = overlay.object(key) {
        return Ok(state.as_ref().map(|obj| obj.to_key_value(key)));
    }
    // Opened under the lock: a checkpoint clears the overlay only after its commit.
    let txn = shared.env.read_txn()?;
    drop(overlay);
    match shared.dbs.object(&txn, key)? {
        Some(bytes) => Ok(Some(ObjectRecord::decode(key, bytes)?.to_key_value(key))),
        None => Ok(None),
    }
}

/// The objects under `prefix` (see [`crate::Store::list`]).
pub(crate) fn list(
    shared: &Shared,
    prefix: &str,
    opts: ListOptions<'_>,
) -> Result<ListResult, StoreError> {
    let dbs = &shared.dbs;
    let lower = lower_bound(prefix, opts.start_after.as_deref());
    let (txn, current, copy) = {
        let overlay = shared.overlay.read().unwrap_or_else(|e| e.into_inner());
        let txn = shared.env.read_txn()?;
        let current = overlay.current();
        let older = opts.revision.filter(|&revision| revision < current);
        (txn, current, overlay.copy(prefix, lower, older))
    };
    // LMDB is ahead of an empty overlay while a batch too large for the log is committed
    // straight to it (see `writer`).
    let (lmdb_current, compacted) = dbs.revisions(&txn)?;
    let current = current.max(lmdb_current);
    let live = AtRevision::new(
        scan(&txn, dbs, prefix, lower)?,
        overlay::overrides(&copy.objects),
    );
    match opts.revision {
        None => paginate(live, &opts, current),
        Some(revision) if revision == current => paginate(live, &opts, current),
        Some(requested) if requested > current => {
            Err(StoreError::FutureRevision { requested, current })
        }
        Some(requested) if requested < compacted => Err(StoreError::Compacted {
            requested,
            compacted,
        }),
        Some(revision) => {
            let overrides =
                history::state_overrides(&txn, dbs, prefix, revision, lmdb_current, &copy.events)?;
            let overrides = history::cut_overrides(overrides, lower);
            paginate(AtRevision::new(live, overrides), &opts, revision)
        }
    }
}

/// Where a scan of `prefix` resumes: just after `start_after` when that lies inside or past
/// the prefix range, otherwise at the prefix itself.
pub(crate) fn lower_bound<'a>(prefix: &'a str, start_after: Option<&'a str>) -> Bound<&'a str> {
    match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    }
}

/// The live objects under `prefix` from `lower` on, in key order.
pub(crate) fn scan<'t>(
    txn: &'t RoTxn,
    dbs: &Dbs,
    prefix: &'t str,
    lower: Bound<&'t str>,
) -> Result<impl Iterator<Item = Result<Entry<'t>, StoreError>> + 't, StoreError> {
    let iter = dbs.objects_from(txn, lower)?;
    Ok(iter
        .map(|item| -> Result<Entry<'t>, StoreError> {
            let (key, value) = item?;
            let key = std::str::from_utf8(key).map_err(|_| StoreError::BadRecord {
                what: format!("object key {}", String::from_utf8_lossy(key)),
                reason: "key is not UTF-8",
            })?;
            Ok(Entry {
                key,
                record: ObjectRecord::decode(key, value)?,
            })
        })
        .take_while(move |entry| match entry {
            Ok(entry) => entry.key.starts_with(prefix),
            Err(_) => true,
        }))
}

/// Applies `filter` and `limit` to entries already positioned after `start_after`.
/// `more` is true when a further matching entry follows the last item; `remaining` then
/// counts every entry after the last item, matching or not. A limit of 0 means no limit,
/// as in Kubernetes.
pub(crate) fn paginate<'a>(
    mut entries: impl Iterator<Item = Result<Entry<'a>, StoreError>>,
    opts: &ListOptions<'_>,
    revision: Revision,
) -> Result<ListResult, StoreError> {
    let limit = opts.limit.filter(|&limit| limit > 0);
    let matches = |kv: &KeyValue| opts.filter.is_none_or(|filter| filter(kv));
    let mut items = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if limit == Some(items.len()) {
            // Past the limit: find out whether another match follows, and count the rest.
            let mut remaining = 1u64;
            let mut more = opts.filter.is_none() || matches(&entry.to_key_value());
            for entry in entries {
                let entry = entry?;
                remaining += 1;
                if !more {
                    more = matches(&entry.to_key_value());
                }
            }
            return Ok(ListResult {
                items,
                revision,
                more,
                remaining: more.then_some(remaining),
            });
        }
        let kv = entry.to_key_value();
        if matches(&kv) {
            items.push(kv);
        }
    }
    Ok(ListResult {
        items,
        revision,
        more: false,
        remaining: None,
    })
}
