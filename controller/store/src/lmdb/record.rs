//! Byte layouts of the values kept in LMDB.
//!
//! `objects` value: `create_revision u64 BE | mod_revision u64 BE | JSON`.
//!
//! `history` value: `kind u8 | create_revision u64 BE | prev_mod_revision u64 BE |
//! key_len u32 BE | key | value_len u32 BE | value | prev_value (rest, absent for Added)`.
//! `create_revision` and `prev_mod_revision` describe the key as of the event and before it,
//! so a list at an older revision can be rebuilt without reading anything else.

use std::sync::Arc;

use crate::{Event, EventType, KeyValue, Revision, StoreError};

const OBJECT_HEADER: usize = 16;

/// One object as stored in the `objects` database, borrowed from the map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectRecord<'a> {
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub json: &'a [u8],
}

impl<'a> ObjectRecord<'a> {
    pub fn decode(key: &str, bytes: &'a [u8]) -> Result<Self, StoreError> {
        if bytes.len() < OBJECT_HEADER {
            return Err(StoreError::BadRecord {
                what: format!("object {key}"),
                reason: "shorter than its header",
            });
        }
        Ok(ObjectRecord {
            create_revision: read_u64(&bytes[0..8]),
            mod_revision: read_u64(&bytes[8..16]),
            json: &bytes[OBJECT_HEADER..],
        })
    }

    pub fn encode(create_revision: Revision, mod_revision: Revision, json: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(OBJECT_HEADER + json.len());
        out.extend_from_slice(&create_revision.to_be_bytes());
        out.extend_from_slice(&mod_revision.to_be_bytes());
        out.extend_from_slice(json);
        out
    }

    pub fn to_key_value(self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Arc::from(self.json),
            mod_revision: self.mod_revision,
            create_revision: self.create_revision,
        }
    }
}

/// One history event, borrowed from the map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventRecord<'a> {
    pub kind: EventType,
    pub create_revision: Revision,
    pub prev_mod_revision: Revision,
    pub key: &'a str,
    pub value: &'a [u8],
    pub prev_value: Option<&'a [u8]>,
}

fn bad(revision: Revision, reason: &'static str) -> StoreError {
    StoreError::BadRecord {
        what: format!("history event {revision}"),
        reason,
    }
}

impl<'a> EventRecord<'a> {
    pub fn decode(revision: Revision, bytes: &'a [u8]) -> Result<Self, StoreError> {
        let mut r = Reader { bytes, revision };
        let kind = match r.take(1)?[0] {
            0 => EventType::Added,
            1 => EventType::Modified,
            2 => EventType::Deleted,
            _ => return Err(bad(revision, "unknown event type")),
        };
        let create_revision = read_u64(r.take(8)?);
        let prev_mod_revision = read_u64(r.take(8)?);
        let key_len = read_u32(r.take(4)?) as usize;
        let key =
            std::str::from_utf8(r.take(key_len)?).map_err(|_| bad(revision, "key is not UTF-8"))?;
        let value_len = read_u32(r.take(4)?) as usize;
        let value = r.take(value_len)?;
        let prev_value = match kind {
            EventType::Added => None,
            EventType::Modified | EventType::Deleted => Some(r.bytes),
        };
        Ok(EventRecord {
            kind,
            create_revision,
            prev_mod_revision,
            key,
            value,
            prev_value,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let prev = self.prev_value.unwrap_or_default();
        let mut out =
            Vec::with_capacity(1 + 8 + 8 + 4 + self.key.len() + 4 + self.value.len() + prev.len());
        out.push(match self.kind {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        });
        out.extend_from_slice(&self.create_revision.to_be_bytes());
        out.extend_from_slice(&self.prev_mod_revision.to_be_bytes());
        out.extend_from_slice(&(self.key.len() as u32).to_be_bytes());
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(&(self.value.len() as u32).to_be_bytes());
        out.extend_from_slice(self.value);
        out.extend_from_slice(prev);
        out
    }

    pub fn to_event(self, revision: Revision) -> Event {
        Event {
            revision,
            kind: self.kind,
            key: self.key.to_owned(),
            value: Arc::from(self.value),
            prev_value: self.prev_value.map(Arc::from),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    revision: Revision,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(bad(self.revision, "truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trip_keeps_every_field() {
        let rec = EventRecord {
            kind: EventType::Modified,
            create_revision: 3,
            prev_mod_revision: 7,
            key: "core/pods/default/a",
            value: b"{\"new\":1}",
            prev_value: Some(b"{\"old\":1}"),
        };
        let bytes = rec.encode();
        let back = EventRecord::decode(9, &bytes).unwrap();
        assert_eq!(back.kind, EventType::Modified);
        assert_eq!(back.create_revision, 3);
        assert_eq!(back.prev_mod_revision, 7);
        assert_eq!(back.key, "core/pods/default/a");
        assert_eq!(back.value, b"{\"new\":1}");
        assert_eq!(back.prev_value, Some(&b"{\"old\":1}"[..]));
    }

    #[test]
    fn added_event_has_no_prev_and_truncation_is_detected() {
        let rec = EventRecord {
            kind: EventType::Added,
            create_revision: 5,
            prev_mod_revision: 0,
            key: "k",
            value: b"{}",
            prev_value: None,
        };
        let bytes = rec.encode();
        assert!(EventRecord::decode(5, &bytes).unwrap().prev_value.is_none());
        assert!(matches!(
            EventRecord::decode(5, &bytes[..bytes.len() - 1]),
            Err(StoreError::BadRecord { .. })
        ));
        assert!(matches!(
            ObjectRecord::decode("k", &[0; 3]),
            Err(StoreError::BadRecord { .. })
        ));
    }
}
