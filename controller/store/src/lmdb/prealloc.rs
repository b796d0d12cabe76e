//! Keeping zeroed, allocated space ahead of LMDB's last page.
//!
//! LMDB grows its data file by writing pages past its end. On ext4 the `fdatasync` of such a
//! commit also has to commit the journal (the new blocks and the file size), several blocks
//! more than the commit's own pages; idle, where every commit is one Lease renewal ten
//! seconds after the last, that was about a third of the flash writes. So after a commit the
//! writer keeps the file at least [`MIN_AHEAD_PAGES`] pages longer than LMDB's last page,
//! extending it by [`CHUNK_PAGES`] pages of zeros at a time (written, not `fallocate`d:
//! writing into unwritten extents changes the extent tree, which is journalled too). LMDB
//! later writes its new pages over the zeros with no metadata change: one journal commit per
//! chunk instead of one per growing commit, for writing each grown page once more.
//!
//! LMDB never reads past the last page its meta page names, so the zeros are never seen,
//! and a copy (backup) only holds the pages in use.
//!
//! Only for a store without a write-ahead log (`wal`): with one, LMDB is written at
//! checkpoints only, a few minutes apart, and one journal commit per checkpoint that grows
//! the file costs far less than writing every grown page twice (measured idle: the zeros
//! were 1.7 MiB/h, more than the whole log).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Pages the file is extended by at a time.
pub(crate) const CHUNK_PAGES: u64 = 64;
/// Fewer pages than this beyond LMDB's last page start a new chunk.
pub(crate) const MIN_AHEAD_PAGES: u64 = 16;

/// The writer's handle on the data file.
pub(crate) struct Prealloc {
    file: File,
    path: PathBuf,
    page_size: u64,
}

impl Prealloc {
    /// Opens `data.mdb` in `dir` for extending it.
    pub fn open(dir: &Path, page_size: u64) -> io::Result<Prealloc> {
        let path = dir.join("data.mdb");
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        Ok(Prealloc {
            file,
            path,
            page_size,
        })
    }

    /// The data file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After a commit whose last page in use is `last_page`: extends the file with zeros when
    /// fewer than [`MIN_AHEAD_PAGES`] pages follow it. Returns the bytes added.
    pub fn after_commit(&mut self, last_page: u64) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        let used = (last_page + 1) * self.page_size;
        if len >= used + MIN_AHEAD_PAGES * self.page_size {
            return Ok(0);
        }
        let target = used + CHUNK_PAGES * self.page_size;
        let zeros = vec![0u8; (target - len) as usize];
        self.file.write_all_at(&zeros, len)?;
        self.file.sync_data()?;
        Ok(target - len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_stays_a_chunk_ahead_of_the_last_page_in_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.mdb");
        std::fs::write(&path, vec![7u8; 3 * 4096]).unwrap();
        let mut p = Prealloc::open(dir.path(), 4096).unwrap();
        // pages 0..=2 in use: extended to 3 + 64 pages, the used ones untouched
        assert_eq!(p.after_commit(2).unwrap(), 64 * 4096);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 67 * 4096);
        assert!(bytes[..3 * 4096].iter().all(|&b| b == 7));
        assert!(bytes[3 * 4096..].iter().all(|&b| b == 0));
        // still 16 or more pages ahead: nothing written
        assert_eq!(p.after_commit(50).unwrap(), 0);
        // fewer: the next chunk
        assert_eq!(p.after_commit(51).unwrap(), (52 + 64 - 67) * 4096);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), (52 + 64) * 4096);
    }
}
