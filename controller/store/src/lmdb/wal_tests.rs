//! Tests of the write-ahead log's file format (`wal`).

use std::sync::Arc;

use super::*;
use crate::Event;

fn event(revision: Revision, kind: EventType, key: &str, value: &str) -> Event {
    Event {
        revision,
        kind,
        key: key.into(),
        value: Arc::from(value.as_bytes()),
        prev_value: None,
    }
}

fn record(first: Revision, n: u64) -> Vec<u8> {
    let events: Vec<Event> = (0..n)
        .map(|i| {
            event(
                first + i,
                EventType::Modified,
                "k/a",
                &format!("{{\"n\":{i}}}"),
            )
        })
        .collect();
    encode_record(events.iter().map(|e| (e, 3)))
}

#[test]
fn crc32_is_the_ieee_one() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn record_round_trip_keeps_every_event() {
    let events = [
        event(7, EventType::Added, "core/pods/default/a", "{\"a\":1}"),
        event(8, EventType::Modified, "core/pods/default/a", "{\"a\":2}"),
        event(9, EventType::Deleted, "x", ""),
    ];
    let payload = encode_record(events.iter().map(|e| (e, 7)));
    let back = decode_record(&payload).unwrap();
    assert_eq!(back.len(), 3);
    for (got, want) in back.iter().zip(&events) {
        assert_eq!(got.revision, want.revision);
        assert_eq!(got.kind, want.kind);
        assert_eq!(got.key, want.key);
        assert_eq!(got.value, &want.value[..]);
        assert_eq!(got.create_revision, 7);
    }
    // cut anywhere, or with bytes after it: malformed
    for cut in 0..payload.len() {
        assert!(decode_record(&payload[..cut]).is_none(), "cut at {cut}");
    }
    let mut longer = payload.clone();
    longer.push(0);
    assert!(decode_record(&longer).is_none());
}

#[test]
fn a_new_log_is_zeros_at_its_full_size_and_appends_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!((found.base, found.records), (None, 0));
    let path = dir.path().join(WAL_FILE);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 1024);
    wal.reset(10).unwrap();
    wal.append(&record(11, 2)).unwrap();
    wal.append(&record(13, 1)).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 1024);
    drop(wal);
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!(found.base, Some(10));
    assert_eq!(found.records, 2);
    let revisions: Vec<_> = found.events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [11, 12, 13]);
}

#[test]
fn a_torn_tail_and_a_bad_crc_end_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(WAL_FILE);
    let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
    wal.reset(0).unwrap();
    let first = wal.append(&record(1, 1)).unwrap();
    let second = wal.append(&record(2, 1)).unwrap();
    wal.append(&record(3, 1)).unwrap();
    drop(wal);
    let third_at = HEADER_SIZE + first + second;

    // the third record torn: its last bytes never reached the disk
    let bytes = std::fs::read(&path).unwrap();
    let mut torn = bytes.clone();
    let third_len = RECORD_HEAD as usize + record(3, 1).len();
    torn[third_at as usize + third_len - 4..third_at as usize + third_len].fill(0);
    std::fs::write(&path, &torn).unwrap();
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!(found.records, 2);

    // one bit flipped in the second record's payload: the log ends after the first
    let mut flipped = bytes.clone();
    flipped[(HEADER_SIZE + first + RECORD_HEAD + 3) as usize] ^= 1;
    std::fs::write(&path, &flipped).unwrap();
    let (mut wal, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!(found.records, 1);
    // the store replays record 1 and starts the log over before appending again, so the
    // records after the bad one are never read as new
    wal.reset(1).unwrap();
    wal.append(&record(2, 1)).unwrap();
    drop(wal);
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    let revisions: Vec<_> = found.events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [2]);
}

#[test]
fn records_of_an_earlier_generation_are_not_read_after_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
    wal.reset(0).unwrap();
    for revision in 1..=5 {
        wal.append(&record(revision, 1)).unwrap();
    }
    // a checkpoint put 1..=5 into LMDB; the log starts over at 5
    wal.reset(5).unwrap();
    assert!(wal.is_empty_at(5));
    drop(wal);
    let (mut wal, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!((found.base, found.records), (Some(5), 0));
    wal.append(&record(6, 1)).unwrap();
    drop(wal);
    // the old records 2..=5 after the new one stay unread
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    let revisions: Vec<_> = found.events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [6]);

    // the same generation-1 bytes after a reset to the same base (a record of the right
    // revision but the old generation) still fail the CRC
    let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
    let generation = wal.generation;
    wal.reset(5).unwrap();
    assert_ne!(wal.generation, generation);
    drop(wal);
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!(found.records, 0);
}

#[test]
fn a_damaged_header_makes_the_log_empty_and_a_reset_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(WAL_FILE);
    let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
    wal.reset(0).unwrap();
    wal.append(&record(1, 1)).unwrap();
    drop(wal);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[21] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (mut wal, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!((found.base, found.records), (None, 0));
    assert!(!wal.is_empty_at(0));
    wal.reset(0).unwrap();
    drop(wal);
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!((found.base, found.records), (Some(0), 0));
}

#[test]
fn fits_counts_the_record_head_and_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), 16 * 1024).unwrap();
    wal.reset(0).unwrap();
    let room = (16 * 1024 - HEADER_SIZE - RECORD_HEAD) as usize;
    assert!(wal.fits(room) && wal.could_fit(room));
    assert!(!wal.fits(room + 1) && !wal.could_fit(room + 1));
    wal.append(&record(1, 1)).unwrap();
    assert!(!wal.fits(room) && wal.could_fit(room));
}
