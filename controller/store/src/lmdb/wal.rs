//! The write-ahead log: one record per group commit, so a commit costs the flash only the
//! sectors of its record.
//!
//! Without it every commit was an LMDB commit: 6-7 B-tree pages and the meta page, each
//! `fsync`ed; idle, one Lease renewal every ten seconds, that was most of the writes to the
//! SD card. Now a commit appends one record here and `fdatasync`s it before any caller is
//! answered; LMDB gets the changes only at a checkpoint (see `checkpoint`).
//!
//! The file (`wal.bramble` next to `data.mdb`) is created at its full size in written zeros
//! and never changes size, so an append overwrites blocks that are already allocated and
//! written: no block allocation, size or extent change, so `fdatasync` needs no ext4 journal
//! commit (only the mtime, which `fdatasync` leaves to the periodic commit). Records start on
//! a boundary of the generation's alignment and are written padded to the next one, with
//! `O_DIRECT` where possible (see `wal_io`): a small record costs the device its own sectors
//! only, and an append never rewrites an acknowledged record.
//!
//! Layout (integers big-endian):
//! - header, in the first [`HEADER_SIZE`] bytes: `MAGIC | version u32 | generation u64 |
//!   base_revision u64 | align u32 | crc32 u32` (the CRC over the bytes before it).
//!   `base_revision` is LMDB's revision when the log was (re)started; the records hold the
//!   revisions after it. `align` (a power of two, at most 4096) is where records start.
//!   Version 1 (before the alignment) has no `align` field and its records follow each
//!   other without padding; it is still read, and the next reset writes version 2.
//! - records from [`HEADER_SIZE`] on, each at a multiple of `align`: `len u32 | crc32 u32 |
//!   payload (len bytes)` and zeros up to the next multiple of `align`, the CRC over
//!   `generation | len | payload`; payload `first_revision u64 | count u32 | count ×
//!   (kind u8 | create_revision u64 | key_len u32 | key | value_len u32 | value)`. The
//!   previous state of each key is not logged: replay reads it from what comes before.
//!
//! Reading stops at the first record that is zeros, runs past the end, fails its CRC or does
//! not continue the revisions (a torn append, or a record of an earlier generation left
//! behind a reset: the generation in the CRC tells them apart).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::wal_io::{align_up, RecordWriter, PAGE};
use crate::{EventType, Revision, StoreError};

/// The log's file name in the store directory.
pub(crate) const WAL_FILE: &str = "wal.bramble";
const MAGIC: &[u8; 8] = b"BRAMBWAL";
/// The version [`Wal::reset`] writes; version 1 (unaligned records) is read too.
const VERSION: u32 = 2;
/// The header's block; records start after it, so appends never rewrite it.
pub(crate) const HEADER_SIZE: u64 = 4096;
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4 + 4;
const RECORD_HEAD: u64 = 8;

/// One logged change; its revision follows from the record's first revision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WalEvent {
    pub revision: Revision,
    pub kind: EventType,
    pub create_revision: Revision,
    pub key: String,
    pub value: Vec<u8>,
}

/// What [`Wal::open`] found.
pub(crate) struct Found {
    /// The header's base revision (`None`: no valid header).
    pub base: Option<Revision>,
    /// The valid records' events, in revision order.
    pub events: Vec<WalEvent>,
    /// How many records they came from.
    pub records: u64,
}

/// The open log.
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    capacity: u64,
    generation: u64,
    base: Revision,
    /// Where the records of this generation start (a multiple of it).
    align: u64,
    writer: RecordWriter,
    /// Where the next record goes.
    end: u64,
    next_revision: Revision,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Wal {
    /// Opens (creating, in zeros, at `capacity` bytes) the log in `dir` and reads its valid
    /// records. The caller replays or discards them and then calls [`Wal::reset`] before
    /// appending (unless [`Wal::is_empty_at`]): a record appended over a bad one could
    /// otherwise make records of the same generation behind it readable again.
    pub fn open(dir: &Path, capacity: u64) -> Result<(Wal, Found), StoreError> {
        Wal::open_with(dir, capacity, RecordWriter::open)
    }

    /// [`Wal::open`] with the record writer `writer` makes for the opened file.
    pub(crate) fn open_with(
        dir: &Path,
        capacity: u64,
        writer: impl FnOnce(&Path, &File) -> RecordWriter,
    ) -> Result<(Wal, Found), StoreError> {
        let path = dir.join(WAL_FILE);
        let capacity = capacity.max(HEADER_SIZE + 4096);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        if len < capacity {
            fill_zeros(&file, len, capacity).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            if len == 0 {
                // The new directory entry.
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(dir))?;
            }
        }
        let capacity = capacity.max(len);
        let mut header = [0u8; HEADER_LEN];
        file.read_exact_at(&mut header, 0).map_err(io_err(&path))?;
        let writer = writer(&path, &file);
        let mut wal = Wal {
            file,
            path,
            capacity,
            generation: 0,
            base: 0,
            align: writer.align(),
            writer,
            end: HEADER_SIZE,
            next_revision: 1,
        };
        let Some((generation, base, align)) = decode_header(&header) else {
            let found = Found {
                base: None,
                events: Vec::new(),
                records: 0,
            };
            return Ok((wal, found));
        };
        wal.generation = generation;
        wal.base = base;
        wal.align = align;
        wal.next_revision = base + 1;
        let mut events = Vec::new();
        let mut records = 0;
        while let Some((len, mut batch)) = wal.read_record(wal.end)? {
            wal.end = align_up(wal.end + RECORD_HEAD + len, wal.align);
            wal.next_revision += batch.len() as u64;
            events.append(&mut batch);
            records += 1;
        }
        let found = Found {
            base: Some(base),
            events,
            records,
        };
        Ok((wal, found))
    }

    /// The log's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether nothing was appended since the last reset, the header is valid and its
    /// records are aligned as this log writes them (a log written by an older Bramble is
    /// reset before the first append).
    pub fn is_empty_at(&self, base: Revision) -> bool {
        self.end == HEADER_SIZE
            && self.base == base
            && self.generation != 0
            && self.align == self.writer.align()
    }

    /// Whether a record of `len` payload bytes fits after the ones in the log.
    pub fn fits(&self, len: usize) -> bool {
        self.end + align_up(RECORD_HEAD + len as u64, self.align) <= self.capacity
    }

    /// Whether a record of `len` payload bytes fits in the empty log.
    pub fn could_fit(&self, len: usize) -> bool {
        HEADER_SIZE + align_up(RECORD_HEAD + len as u64, self.writer.align()) <= self.capacity
    }

    /// Appends one record (from [`encode_record`]) and waits until it is on disk. Returns
    /// the bytes written (the record padded to the log's alignment).
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, StoreError> {
        let first = payload_first_revision(payload);
        debug_assert_eq!(
            first,
            Some(self.next_revision),
            "records continue the revisions"
        );
        let len = payload.len() as u32;
        let mut head = [0u8; RECORD_HEAD as usize];
        head[0..4].copy_from_slice(&len.to_be_bytes());
        head[4..8].copy_from_slice(&record_crc(self.generation, payload).to_be_bytes());
        let written = self
            .writer
            .write(&self.file, self.end, self.align, &head, payload)
            .map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.end += written;
        self.next_revision += payload_count(payload);
        Ok(written)
    }

    /// Starts the log over, empty, after LMDB got everything up to `base`: a new generation,
    /// so records left behind from before are never read as new ones.
    pub fn reset(&mut self, base: Revision) -> Result<(), StoreError> {
        let generation = if self.generation == 0 {
            // No valid header: a generation unlike any earlier one.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                .max(1)
        } else {
            self.generation.wrapping_add(1).max(1)
        };
        let align = self.writer.align();
        let header = encode_header(generation, base, align);
        self.file
            .write_all_at(&header, 0)
            .map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.generation = generation;
        self.base = base;
        self.align = align;
        self.end = HEADER_SIZE;
        self.next_revision = base + 1;
        Ok(())
    }

    /// The record at `at`: its payload length and events, or `None` where the log ends.
    fn read_record(&self, at: u64) -> Result<Option<(u64, Vec<WalEvent>)>, StoreError> {
        if at + RECORD_HEAD > self.capacity {
            return Ok(None);
        }
        let mut head = [0u8; RECORD_HEAD as usize];
        self.file
            .read_exact_at(&mut head, at)
            .map_err(io_err(&self.path))?;
        let len = u64::from(u32::from_be_bytes(
            head[0..4].try_into().unwrap_or_default(),
        ));
        let crc = u32::from_be_bytes(head[4..8].try_into().unwrap_or_default());
        if len == 0 || at + RECORD_HEAD + len > self.capacity {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut payload, at + RECORD_HEAD)
            .map_err(io_err(&self.path))?;
        if record_crc(self.generation, &payload) != crc {
            return Ok(None);
        }
        match decode_record(&payload) {
            Some(events) if events.first().map(|e| e.revision) == Some(self.next_revision) => {
                Ok(Some((len, events)))
            }
            _ => Ok(None),
        }
    }
}

fn fill_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let chunk = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = (to - at).min(chunk.len() as u64) as usize;
        file.write_all_at(&chunk[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

fn encode_header(generation: u64, base: Revision, align: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_SIZE as usize);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_be_bytes());
    h.extend_from_slice(&generation.to_be_bytes());
    h.extend_from_slice(&base.to_be_bytes());
    h.extend_from_slice(&(align as u32).to_be_bytes());
    let crc = crc32(&h);
    h.extend_from_slice(&crc.to_be_bytes());
    h.resize(HEADER_SIZE as usize, 0);
    h
}

/// `(generation, base_revision, align)` of a valid header (version 1: align 1).
fn decode_header(h: &[u8; HEADER_LEN]) -> Option<(u64, Revision, u64)> {
    if &h[0..8] != MAGIC {
        return None;
    }
    let u32_at = |at: usize| Some(u32::from_be_bytes(h.get(at..at + 4)?.try_into().ok()?));
    let (align, crc_at) = match u32_at(8)? {
        1 => (1, 28),
        2 => (u64::from(u32_at(28)?), 32),
        _ => return None,
    };
    if crc32(&h[..crc_at]) != u32_at(crc_at)? || !align.is_power_of_two() || align > PAGE {
        return None;
    }
    let generation = u64::from_be_bytes(h[12..20].try_into().ok()?);
    let base = u64::from_be_bytes(h[20..28].try_into().ok()?);
    (generation != 0).then_some((generation, base, align))
}

fn record_crc(generation: u64, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&generation.to_be_bytes());
    crc.update(&(payload.len() as u32).to_be_bytes());
    crc.update(payload);
    crc.finalize()
}

/// The payload of one record: `events` (consecutive revisions, at least one), each with
/// the key's creation revision.
pub(crate) fn encode_record<'a>(
    events: impl IntoIterator<Item = (&'a crate::Event, Revision)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0u8; 12]);
    let mut first = None;
    let mut count = 0u32;
    for (event, create_revision) in events {
        first.get_or_insert(event.revision);
        count += 1;
        out.push(match event.kind {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        });
        out.extend_from_slice(&create_revision.to_be_bytes());
        out.extend_from_slice(&(event.key.len() as u32).to_be_bytes());
        out.extend_from_slice(event.key.as_bytes());
        out.extend_from_slice(&(event.value.len() as u32).to_be_bytes());
        out.extend_from_slice(&event.value);
    }
    out[0..8].copy_from_slice(&first.unwrap_or(0).to_be_bytes());
    out[8..12].copy_from_slice(&count.to_be_bytes());
    out
}

fn payload_first_revision(payload: &[u8]) -> Option<Revision> {
    Some(u64::from_be_bytes(payload.get(0..8)?.try_into().ok()?))
}

fn payload_count(payload: &[u8]) -> u64 {
    payload
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u64::from(u32::from_be_bytes(b)))
}

/// The events of a record's payload; `None` if it is malformed.
pub(crate) fn decode_record(payload: &[u8]) -> Option<Vec<WalEvent>> {
    let mut r = Cursor(payload);
    let first = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let count = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
    if count == 0 {
        return None;
    }
    let mut events = Vec::with_capacity(count as usize);
    for i in 0..u64::from(count) {
        let kind = match r.take(1)?[0] {
            0 => EventType::Added,
            1 => EventType::Modified,
            2 => EventType::Deleted,
            _ => return None,
        };
        let create_revision = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let key_len = u32::from_be_bytes(r.take(4)?.try_into().ok()?) as usize;
        let key = String::from_utf8(r.take(key_len)?.to_vec()).ok()?;
        let value_len = u32::from_be_bytes(r.take(4)?.try_into().ok()?) as usize;
        let value = r.take(value_len)?.to_vec();
        events.push(WalEvent {
            revision: first + i,
            kind,
            create_revision,
            key,
            value,
        });
    }
    r.0.is_empty().then_some(events)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

/// CRC-32 (IEEE 802.3, as zlib's).
fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
