//! Tests of the write-ahead log's file format (`wal`).

use std::sync::Arc;

use super::*;
use crate::lmdb::wal_io::RecordWriter;
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

/// A log with `n` one-event records from revision `base + 1`, appended by `wal` after a
/// reset; the offsets the records were written at.
fn append_records(wal: &mut Wal, base: Revision, n: u64) -> Vec<u64> {
    wal.reset(base).unwrap();
    (1..=n)
        .map(|i| {
            let at = wal.end;
            wal.append(&record(base + i, 1)).unwrap();
            at
        })
        .collect()
}

#[test]
fn records_start_on_the_alignment_and_are_read_back_through_either_writer() {
    for direct in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let open = |dir: &Path| {
            if direct {
                Wal::open(dir, 64 * 1024).unwrap()
            } else {
                Wal::open_with(dir, 64 * 1024, |_, _| RecordWriter::buffered()).unwrap()
            }
        };
        let (mut wal, _) = open(dir.path());
        let align = wal.writer.align();
        assert!(align.is_power_of_two() && (512..=4096).contains(&align));
        if !direct {
            assert_eq!((align, wal.writer.is_direct()), (4096, false));
        }
        let offsets = append_records(&mut wal, 20, 5);
        for pair in offsets.windows(2) {
            // each record (well under 512 bytes) has a block of its own
            assert_eq!(
                (pair[0] % align, pair[1] - pair[0]),
                (0, align),
                "direct {direct}"
            );
        }
        drop(wal);
        let (wal, found) = open(dir.path());
        let revisions: Vec<_> = found.events.iter().map(|e| e.revision).collect();
        assert_eq!(revisions, [21, 22, 23, 24, 25], "direct {direct}");
        assert!(!wal.is_empty_at(20) && wal.end == offsets[4] + align);
    }
}

#[test]
fn a_record_larger_than_a_block_is_padded_to_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), 64 * 1024).unwrap();
    let align = wal.writer.align();
    wal.reset(0).unwrap();
    let events: Vec<Event> = (1..=3)
        .map(|r| event(r, EventType::Added, "k/big", &"x".repeat(700)))
        .collect();
    let payload = encode_record(events.iter().map(|e| (e, 1)));
    let written = wal.append(&payload).unwrap();
    assert_eq!(written % align, 0);
    assert!(
        written >= RECORD_HEAD + payload.len() as u64
            && written < RECORD_HEAD + payload.len() as u64 + align
    );
    wal.append(&record(4, 1)).unwrap();
    drop(wal);
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!((found.records, found.events.len()), (2, 4));
}

/// The header and records of a version-1 log (an older Bramble's: no alignment, records
/// back to back).
fn version_1_log(generation: u64, base: Revision, records: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&generation.to_be_bytes());
    bytes.extend_from_slice(&base.to_be_bytes());
    let crc = crc32(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes.resize(HEADER_SIZE as usize, 0);
    for payload in records {
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&record_crc(generation, payload).to_be_bytes());
        bytes.extend_from_slice(payload);
    }
    bytes.resize(64 * 1024, 0);
    bytes
}

#[test]
fn a_version_1_log_is_read_and_the_next_reset_writes_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(WAL_FILE);
    let log = version_1_log(7, 40, &[record(41, 2), record(43, 1), record(44, 3)]);
    std::fs::write(&path, &log).unwrap();
    let (mut wal, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!((found.base, found.records), (Some(40), 3));
    let revisions: Vec<_> = found.events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [41, 42, 43, 44, 45, 46]);
    wal.reset(46).unwrap();
    wal.append(&record(47, 1)).unwrap();
    drop(wal);
    assert_eq!(std::fs::read(&path).unwrap()[8..12], 2u32.to_be_bytes());
    let (_, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    let revisions: Vec<_> = found.events.iter().map(|e| e.revision).collect();
    assert_eq!((found.base, revisions), (Some(46), vec![47]));

    // an empty version-1 log is not appended to as it is: its records would not be aligned
    std::fs::write(&path, version_1_log(9, 50, &[])).unwrap();
    let (wal, found) = Wal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!((found.base, found.records), (Some(50), 0));
    assert!(!wal.is_empty_at(50));
}

#[test]
fn a_header_with_an_alignment_that_is_no_power_of_two_is_not_read() {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&encode_header(3, 10, 512)[..HEADER_LEN]);
    assert_eq!(decode_header(&header), Some((3, 10, 512)));
    let mut bad = encode_header(3, 10, 768);
    bad.truncate(HEADER_LEN);
    header.copy_from_slice(&bad);
    assert_eq!(decode_header(&header), None);
}
