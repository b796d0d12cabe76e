//! The writes that are in the write-ahead log but not yet in LMDB.
//!
//! Between checkpoints (see `checkpoint`) a commit only appends to the log (`wal`); what it
//! changed lives here, in memory: the newest state of every key it touched (a tombstone for a
//! deleted key) and its history events. Every read path merges this over one LMDB snapshot.
//! The writer thread is the only one changing it; readers take the lock only to copy what
//! they need and to open their LMDB read transaction, so that snapshot never lacks a change
//! the copy does not carry (a checkpoint clears the overlay only after its LMDB commit).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::record::{EventRecord, ObjectRecord};
use crate::{Event, KeyValue, Revision};

/// One object's state, owned.
#[derive(Debug, Clone)]
pub(crate) struct Obj {
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub json: Arc<[u8]>,
}

impl Obj {
    pub fn from_record(record: ObjectRecord<'_>) -> Obj {
        Obj {
            create_revision: record.create_revision,
            mod_revision: record.mod_revision,
            json: Arc::from(record.json),
        }
    }

    pub fn record(&self) -> ObjectRecord<'_> {
        ObjectRecord {
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            json: &self.json,
        }
    }

    pub fn to_key_value(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.json.clone(),
            mod_revision: self.mod_revision,
            create_revision: self.create_revision,
        }
    }
}

/// One change as the history keeps it: the event and what its history record adds.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub event: Arc<Event>,
    pub create_revision: Revision,
    pub prev_mod_revision: Revision,
}

impl Change {
    pub fn revision(&self) -> Revision {
        self.event.revision
    }

    /// The history record of this change (as LMDB stores it).
    pub fn record(&self) -> EventRecord<'_> {
        EventRecord {
            kind: self.event.kind,
            create_revision: self.create_revision,
            prev_mod_revision: self.prev_mod_revision,
            key: &self.event.key,
            value: &self.event.value,
            prev_value: self.event.prev_value.as_deref(),
        }
    }
}

/// Consecutive changes and the state they leave every key they touched in (`None`: deleted).
#[derive(Debug, Default, Clone)]
pub(crate) struct Changes {
    pub objects: BTreeMap<String, Option<Obj>>,
    pub events: Vec<Change>,
    /// Bytes of keys and values held, roughly (the overlay's memory bound).
    pub bytes: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The newest revision held, if any.
    pub fn last_revision(&self) -> Option<Revision> {
        self.events.last().map(Change::revision)
    }

    /// Records one change, which leaves its key in `state`.
    pub fn push(&mut self, change: Change, state: Option<Obj>) {
        let event = &change.event;
        self.bytes +=
            event.key.len() + event.value.len() + event.prev_value.as_ref().map_or(0, |v| v.len());
        self.objects.insert(event.key.clone(), state);
        self.events.push(change);
    }

    /// Adds `later`, whose changes follow these.
    pub fn extend(&mut self, later: Changes) {
        self.bytes += later.bytes;
        self.objects.extend(later.objects);
        self.events.extend(later.events);
    }
}

/// The overlay: every change after `base`, the revision LMDB holds everything up to.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    pub base: Revision,
    pub changes: Changes,
}

/// What a list copies out of the overlay under its lock.
pub(crate) struct OverlayCopy {
    /// The overlay's objects under the prefix from the scan's lower bound on.
    pub objects: Vec<(String, Option<Obj>)>,
    /// The overlay's events after the revision a list reads at (empty for the newest).
    pub events: Vec<Change>,
}

impl Overlay {
    pub fn new(base: Revision) -> Overlay {
        Overlay {
            base,
            changes: Changes::default(),
        }
    }

    /// The newest revision (the overlay's, or LMDB's when the overlay is empty).
    pub fn current(&self) -> Revision {
        self.changes.last_revision().unwrap_or(self.base)
    }

    /// `Some(state)` when the overlay holds key `key`.
    pub fn object(&self, key: &str) -> Option<&Option<Obj>> {
        self.changes.objects.get(key)
    }

    /// The objects under `prefix` from `lower` on, and the events after `after`.
    pub fn copy(&self, prefix: &str, lower: Bound<&str>, after: Option<Revision>) -> OverlayCopy {
        let objects = self
            .changes
            .objects
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, state)| (key.clone(), state.clone()))
            .collect();
        OverlayCopy {
            objects,
            events: after.map_or_else(Vec::new, |after| self.events_after(after, Revision::MAX)),
        }
    }

    /// The overlay's events in `(after, upto]`, oldest first.
    pub fn events_after(&self, after: Revision, upto: Revision) -> Vec<Change> {
        let events = &self.changes.events;
        // Revisions are consecutive from `base + 1`.
        let skip = after.saturating_sub(self.base) as usize;
        events
            .iter()
            .skip(skip)
            .take_while(|c| c.revision() <= upto)
            .cloned()
            .collect()
    }

    /// After a checkpoint put everything up to `base` into LMDB.
    pub fn clear(&mut self, base: Revision) {
        self.base = base;
        self.changes = Changes::default();
    }
}

/// The overlay's objects as overrides of a scan (see `history::AtRevision`).
pub(crate) fn overrides(
    objects: &[(String, Option<Obj>)],
) -> BTreeMap<&str, Option<ObjectRecord<'_>>> {
    objects
        .iter()
        .map(|(key, state)| (key.as_str(), state.as_ref().map(Obj::record)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventType;

    fn change(revision: Revision, key: &str) -> (Change, Option<Obj>) {
        let value: Arc<[u8]> = Arc::from(&b"{}"[..]);
        let event = Event {
            revision,
            kind: EventType::Added,
            key: key.into(),
            value: value.clone(),
            prev_value: None,
        };
        let obj = Obj {
            create_revision: revision,
            mod_revision: revision,
            json: value,
        };
        let change = Change {
            event: Arc::new(event),
            create_revision: revision,
            prev_mod_revision: 0,
        };
        (change, Some(obj))
    }

    #[test]
    fn copies_cover_the_prefix_from_the_bound_and_the_events_after_a_revision() {
        let mut overlay = Overlay::new(10);
        for (i, key) in ["a/1", "a/2", "b/1", "a/3"].iter().enumerate() {
            let (c, s) = change(11 + i as u64, key);
            overlay.changes.push(c, s);
        }
        assert_eq!(overlay.current(), 14);
        let copy = overlay.copy("a/", Bound::Excluded("a/1"), Some(12));
        let keys: Vec<_> = copy.objects.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a/2", "a/3"]);
        let revs: Vec<_> = copy.events.iter().map(Change::revision).collect();
        assert_eq!(revs, [13, 14]);
        assert_eq!(overlay.events_after(5, 12).len(), 2);
        overlay.clear(14);
        assert_eq!(
            (overlay.current(), overlay.object("a/1").is_none()),
            (14, true)
        );
    }
}
