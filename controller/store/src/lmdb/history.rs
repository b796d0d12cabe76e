//! Reading the history: events in a revision range, and the state of the store at an
//! older revision (`resourceVersionMatch=Exact`).

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;

use heed::RoTxn;

use super::open::Dbs;
use super::overlay::Change;
use super::read::Entry;
use super::record::{EventRecord, ObjectRecord};
use crate::{EventType, Revision, StoreError};

/// History events with revision in `(after, upto]`, oldest first.
pub(crate) fn events<'t>(
    txn: &'t RoTxn,
    dbs: &Dbs,
    after: Revision,
    upto: Revision,
) -> Result<impl Iterator<Item = Result<(Revision, EventRecord<'t>), StoreError>> + 't, StoreError>
{
    Ok(dbs.history_range(txn, after, upto)?.map(|item| {
        let (revision, bytes) = item?;
        Ok((revision, EventRecord::decode(revision, bytes)?))
    }))
}

/// For every key under `prefix` changed after `revision`, its state at `revision`
/// (`None`: it did not exist). Built by walking the events after `revision` backwards (the
/// oldest event after `revision` carries the state before it): first the overlay's events
/// `newer` (oldest first) after `lmdb_upto`, then LMDB's up to `lmdb_upto`, the newest
/// revision of the snapshot (LMDB and the overlay hold the same events where they overlap).
pub(crate) fn state_overrides<'t>(
    txn: &'t RoTxn,
    dbs: &Dbs,
    prefix: &str,
    revision: Revision,
    lmdb_upto: Revision,
    newer: &'t [Change],
) -> Result<BTreeMap<&'t str, Option<ObjectRecord<'t>>>, StoreError> {
    let mut overrides = BTreeMap::new();
    let from_overlay = newer
        .iter()
        .rev()
        .filter(|change| change.revision() > revision.max(lmdb_upto))
        .map(|change| Ok::<_, StoreError>((change.revision(), change.record())));
    let from_lmdb = (lmdb_upto > revision)
        .then(|| dbs.history_rev_range(txn, revision, lmdb_upto))
        .transpose()?
        .into_iter()
        .flatten()
        .map(|item| {
            let (event_revision, bytes) = item?;
            Ok((event_revision, EventRecord::decode(event_revision, bytes)?))
        });
    for item in from_overlay.chain(from_lmdb) {
        let (event_revision, event): (Revision, EventRecord<'t>) = item?;
        if !event.key.starts_with(prefix) {
            continue;
        }
        let before = match (event.kind, event.prev_value) {
            (EventType::Added, _) => None,
            (_, Some(json)) => Some(ObjectRecord {
                create_revision: event.create_revision,
                mod_revision: event.prev_mod_revision,
                json,
            }),
            (_, None) => {
                return Err(StoreError::BadRecord {
                    what: format!("history event {event_revision}"),
                    reason: "update or delete without the previous object",
                })
            }
        };
        overrides.insert(event.key, before);
    }
    Ok(overrides)
}

/// The objects at an older revision, in key order: the live entries merged with the
/// overrides, an override winning over a live entry with the same key.
pub(crate) struct AtRevision<'t, I: Iterator<Item = Result<Entry<'t>, StoreError>>> {
    live: Peekable<I>,
    overrides: Peekable<std::collections::btree_map::IntoIter<&'t str, Option<ObjectRecord<'t>>>>,
}

impl<'t, I: Iterator<Item = Result<Entry<'t>, StoreError>>> AtRevision<'t, I> {
    /// `overrides` must already be cut to the keys after the scan's lower bound.
    pub fn new(live: I, overrides: BTreeMap<&'t str, Option<ObjectRecord<'t>>>) -> Self {
        AtRevision {
            live: live.peekable(),
            overrides: overrides.into_iter().peekable(),
        }
    }
}

impl<'t, I: Iterator<Item = Result<Entry<'t>, StoreError>>> Iterator for AtRevision<'t, I> {
    type Item = Result<Entry<'t>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let live_key = match self.live.peek() {
                Some(Ok(entry)) => Some(entry.key),
                Some(Err(_)) => return self.live.next(),
                None => None,
            };
            let override_key = self.overrides.peek().map(|(key, _)| *key);
            match (live_key, override_key) {
                (None, None) => return None,
                (Some(live), Some(over)) if live < over => return self.live.next(),
                (Some(_), None) => return self.live.next(),
                (live, Some(over)) => {
                    if live == Some(over) {
                        self.live.next();
                    }
                    let (key, state) = self.overrides.next()?;
                    if let Some(record) = state {
                        return Some(Ok(Entry { key, record }));
                    }
                }
            }
        }
    }
}

/// Drops the overrides at or before the lower bound of a scan.
pub(crate) fn cut_overrides<'t>(
    mut overrides: BTreeMap<&'t str, Option<ObjectRecord<'t>>>,
    lower: Bound<&str>,
) -> BTreeMap<&'t str, Option<ObjectRecord<'t>>> {
    match lower {
        Bound::Included(key) => overrides.split_off(key),
        Bound::Excluded(key) => {
            let mut rest = overrides.split_off(key);
            rest.remove(key);
            rest
        }
        Bound::Unbounded => overrides,
    }
}
