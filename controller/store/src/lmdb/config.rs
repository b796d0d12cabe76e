//! Tunables of the LMDB store and the counters it exposes.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;

/// A [`StoreConfig::lock_dir`] on a RAM file system: `bramble init` mounts a tmpfs on
/// `/dev/shm` on the boards, as most Linux hosts have.
pub const RAM_LOCK_DIR: &str = "/dev/shm/bramble-lmdb";

/// How an [`super::LmdbStore`] is opened.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Size of LMDB's memory map in bytes: the largest the data file may grow to. It is
    /// virtual address space only (the file is sparse), so it can be generous.
    pub map_size: usize,
    /// How many events the history keeps for watch resumption and exact-revision lists (at
    /// least; it runs over by up to a sixteenth of this before the surplus is compacted away
    /// in one go, in the same write transaction that adds new events).
    pub history_limit: u64,
    /// Most transactions the writer folds into one commit.
    pub max_batch: usize,
    /// How many of the newest events are also kept in memory so live watchers do not have
    /// to read them back from LMDB (capped at `history_limit`).
    pub recent_events: usize,
    /// Most history entries a watcher reads from LMDB per read transaction.
    pub watch_read_batch: usize,
    /// LMDB reader slots (concurrent read transactions).
    pub max_readers: u32,
    /// A directory on a RAM file system (e.g. `/dev/shm/bramble`) for LMDB's lock file,
    /// which LMDB rewrites on every transaction and which need not survive a reboot; `None`
    /// keeps it next to the data (see `lock_file`).
    pub lock_dir: Option<std::path::PathBuf>,
    /// Size in bytes of the write-ahead log (`wal.bramble`, written in zeros once at this
    /// size): commits append to it and LMDB is written only at checkpoints. 0 commits every
    /// write straight to LMDB, without a log.
    pub wal_size: u64,
    /// Longest time a change stays only in the log before a checkpoint puts it into LMDB.
    /// A full log, a history past its limit, a backup and closing the store checkpoint too.
    pub checkpoint_interval: std::time::Duration,
    /// Most distinct objects the log may hold changes of before a checkpoint. This bounds
    /// the pages one checkpoint's LMDB transaction dirties: LMDB keeps every page a write
    /// transaction dirtied in a list of malloc'd pages for later transactions, freed only
    /// when the store closes, so the largest checkpoint sets the process's memory for good
    /// (4 MiB of log with status updates of 10,000 Pods dirtied about 4,600 pages, 19 MiB).
    pub checkpoint_objects: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            map_size: 1 << 30,
            history_limit: 10_000,
            max_batch: 256,
            recent_events: 256,
            watch_read_batch: 256,
            max_readers: 512,
            lock_dir: None,
            wal_size: 4 << 20,
            checkpoint_interval: std::time::Duration::from_secs(300),
            checkpoint_objects: 512,
        }
    }
}

impl StoreConfig {
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.history_limit == 0 {
            return Err(StoreError::InvalidConfig(
                "history_limit must be at least 1",
            ));
        }
        if self.max_batch == 0 {
            return Err(StoreError::InvalidConfig("max_batch must be at least 1"));
        }
        if self.watch_read_batch == 0 {
            return Err(StoreError::InvalidConfig(
                "watch_read_batch must be at least 1",
            ));
        }
        if self.checkpoint_interval.is_zero() {
            return Err(StoreError::InvalidConfig(
                "checkpoint_interval must be longer than zero",
            ));
        }
        if self.checkpoint_objects == 0 {
            return Err(StoreError::InvalidConfig(
                "checkpoint_objects must be at least 1",
            ));
        }
        if self.map_size < 1 << 20 {
            return Err(StoreError::InvalidConfig("map_size must be at least 1 MiB"));
        }
        Ok(())
    }
}

/// Counters of the writer since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Durable group commits (each one fsync'd group of transactions: a write-ahead log
    /// record, or an LMDB commit without the log).
    pub commits: u64,
    /// Checkpoints: LMDB commits of the changes held in the log.
    pub checkpoints: u64,
    /// Bytes appended to the write-ahead log.
    pub wal_bytes: u64,
    /// Log records replayed into LMDB when the store was opened.
    pub wal_records_replayed: u64,
    /// Transactions that were applied and acknowledged.
    pub txns_committed: u64,
    /// Transactions that failed (precondition or storage error) and were rolled back.
    pub txns_failed: u64,
    /// Operations applied (each took one revision).
    pub ops: u64,
    /// The most transactions that shared one commit.
    pub largest_batch: u64,
    /// History events deleted by compaction.
    pub events_compacted: u64,
}

/// Lock-free mirror of [`StoreStats`], updated by the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub checkpoints: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_records_replayed: AtomicU64,
    pub txns_committed: AtomicU64,
    pub txns_failed: AtomicU64,
    pub ops: AtomicU64,
    pub largest_batch: AtomicU64,
    pub events_compacted: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            wal_bytes: self.wal_bytes.load(Ordering::Relaxed),
            wal_records_replayed: self.wal_records_replayed.load(Ordering::Relaxed),
            txns_committed: self.txns_committed.load(Ordering::Relaxed),
            txns_failed: self.txns_failed.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            events_compacted: self.events_compacted.load(Ordering::Relaxed),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
