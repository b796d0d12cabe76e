//! How the log's records reach the disk: each record starts on a boundary of the log's
//! alignment and is written padded with zeros to the next one, with `O_DIRECT` where the file
//! system allows it.
//!
//! Through the page cache, an append of a small record followed by `fdatasync` writes back the
//! whole 4 KiB page it landed in, and a record crossing a page boundary two pages: idle, where
//! every commit is one ~0.9 KiB Lease renewal, that was about 5 KiB per renewal, the largest
//! share of the writes to an idle board's SD card. With `O_DIRECT` the write goes to the device
//! as it is, in the device's logical blocks (512 bytes on SD cards and virtio disks): such a
//! record is two sectors, 1 KiB. Because every record starts on a fresh block, an append never
//! rewrites a block holding an acknowledged record, so a torn write can only damage the record
//! being written (which nobody was told is durable yet).
//!
//! The file is written at its full size before any append (see `wal`), so a direct write only
//! overwrites allocated, written blocks inside the file: no block allocation or size change,
//! and the `fdatasync` after it needs no journal commit, only a cache flush.
//!
//! Where `O_DIRECT` is not available (tmpfs, or a file system that refuses the alignment), the
//! records are aligned to 4 KiB pages and written through the page cache: still one page per
//! small record and none rewritten.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The page size records are aligned to without `O_DIRECT`, and the largest alignment used.
pub(crate) const PAGE: u64 = 4096;
/// A buffer grown past this for one large record is not kept for the next ones.
const KEEP_BUFFER: usize = 64 * 1024;

/// `n` rounded up to a multiple of `align` (a power of two).
pub(crate) fn align_up(n: u64, align: u64) -> u64 {
    (n + align - 1) & !(align - 1)
}

/// Writes padded, aligned records to the log file.
pub(crate) struct RecordWriter {
    /// The log opened with `O_DIRECT` (`None`: writes go through the page cache).
    direct: Option<File>,
    /// Where records start and how their length is padded.
    align: u64,
    /// Scratch space for one padded record, over-allocated by a page so that a page-aligned
    /// slice of it can be handed to a direct write.
    buf: Vec<u8>,
}

impl RecordWriter {
    /// A writer for the log at `path` (opened as `file`): direct when the file system
    /// reports direct I/O alignments no larger than a page and the file opens with
    /// `O_DIRECT`, through the page cache otherwise.
    pub fn open(path: &Path, file: &File) -> RecordWriter {
        let direct = dio_alignment(file).and_then(|align| {
            let opened = OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
                .open(path);
            match opened {
                Ok(direct) => Some((direct, align)),
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "write-ahead log without O_DIRECT");
                    None
                }
            }
        });
        match direct {
            Some((direct, align)) => RecordWriter {
                direct: Some(direct),
                align,
                buf: Vec::new(),
            },
            None => RecordWriter::buffered(),
        }
    }

    /// A writer through the page cache, records aligned to pages.
    pub fn buffered() -> RecordWriter {
        RecordWriter {
            direct: None,
            align: PAGE,
            buf: Vec::new(),
        }
    }

    /// The alignment of the records this writer writes.
    pub fn align(&self) -> u64 {
        self.align
    }

    /// Whether records go to the device with `O_DIRECT`.
    #[cfg(test)]
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes `head` and `payload` at `at` (a multiple of the alignment of the log's
    /// generation, which may be smaller than this writer's: a log read at opening), padded
    /// with zeros to a multiple of `align`. Returns the bytes written. Does not sync.
    pub fn write(
        &mut self,
        file: &File,
        at: u64,
        align: u64,
        head: &[u8],
        payload: &[u8],
    ) -> io::Result<u64> {
        let len = head.len() + payload.len();
        let padded = align_up(len as u64, align) as usize;
        let start = self.fill(padded, head, payload);
        let record = &self.buf[start..start + padded];
        let direct_ok = align.is_multiple_of(self.align) && at.is_multiple_of(self.align);
        let direct_failed = match (&self.direct, direct_ok) {
            (Some(direct), true) => direct.write_all_at(record, at).err(),
            _ => {
                file.write_all_at(record, at)?;
                None
            }
        };
        if let Some(e) = direct_failed {
            // Written again through the page cache, as from now on.
            tracing::warn!(error = %e, "direct write to the write-ahead log failed; writing through the page cache");
            self.direct = None;
            file.write_all_at(record, at)?;
        }
        if self.buf.len() > KEEP_BUFFER + PAGE as usize {
            self.buf = Vec::new();
        }
        Ok(padded as u64)
    }

    /// Puts `head`, `payload` and zeros up to `padded` bytes into the scratch buffer at a
    /// page-aligned offset, which it returns.
    fn fill(&mut self, padded: usize, head: &[u8], payload: &[u8]) -> usize {
        let need = padded + PAGE as usize;
        if self.buf.len() < need {
            self.buf = vec![0; need];
        }
        let addr = self.buf.as_ptr() as usize;
        let start = (PAGE as usize - addr % PAGE as usize) % PAGE as usize;
        let record = &mut self.buf[start..start + padded];
        let len = head.len() + payload.len();
        record[..head.len()].copy_from_slice(head);
        record[head.len()..len].copy_from_slice(payload);
        record[len..].fill(0);
        start
    }
}

/// The file offset (and length) alignment direct I/O on `file` needs, when the file system
/// reports one (`statx` `STATX_DIOALIGN`, Linux 6.1) no larger than a page and its memory
/// alignment is met by a page-aligned buffer; at least 512.
fn dio_alignment(file: &File) -> Option<u64> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    let st = statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN).ok()?;
    if st.stx_mask & StatxFlags::DIOALIGN.bits() == 0 {
        return None;
    }
    let (offset, memory) = (
        u64::from(st.stx_dio_offset_align),
        u64::from(st.stx_dio_mem_align),
    );
    let usable =
        offset.is_power_of_two() && offset <= PAGE && memory.is_power_of_two() && memory <= PAGE;
    usable.then_some(offset.max(512))
}
