//! The embedded store: LMDB through heed, with a write-ahead log.
//!
//! One B-tree (see `open`) holding the objects (key -> record), the history (revision ->
//! event, trimmed to [`StoreConfig::history_limit`]; its first and last keys give the
//! compacted and current revision) and the format version. One writer thread does every
//! write with group commit (see `writer`): a commit is one record of the write-ahead log
//! (`wal`), and its changes stay in an in-memory overlay (`overlay`) until a checkpoint
//! (`checkpoint`) writes them into LMDB. Reads run on the caller's thread in short read
//! transactions on LMDB's memory map, merged with the overlay (`read`).
//!
//! An older Bramble (before the log) opening this directory reads LMDB only: after a clean
//! stop that is everything (closing checkpoints and empties the log); after an unclean one
//! it misses the changes since the last checkpoint, and once it has written, the log is
//! stale and is ignored when this version opens the store again (see `checkpoint::recover`).

mod apply;
mod checkpoint;
mod compaction;
mod config;
mod history;
mod lock_file;
mod open;
mod overlay;
mod pre_upgrade;
mod prealloc;
mod read;
mod record;
pub mod residency;
mod wal;
mod wal_io;
mod watch;
mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use heed::{CompactionOption, Env, WithoutTls};
use tokio::sync::{oneshot, watch as head_channel};

use self::config::Counters;
pub use self::config::{StoreConfig, StoreStats, RAM_LOCK_DIR};
use self::open::Dbs;
use self::overlay::Overlay;
pub use self::pre_upgrade::{forget_pre_upgrade_copies, request_pre_upgrade_restore};
use self::writer::{Request, Writer};
use crate::{
    BoxFuture, Event, EventStream, KeyValue, ListOptions, ListResult, Op, OpOutcome,
    ProgressStream, Revision, Store, StoreError,
};

/// State shared by the store handle, the writer thread and the watch streams.
pub(crate) struct Shared {
    env: Env<WithoutTls>,
    dbs: Dbs,
    config: StoreConfig,
    /// Mirror of the committed revision, updated after each commit.
    current: AtomicU64,
    /// Mirror of the compacted revision.
    compacted: AtomicU64,
    /// The changes not yet checkpointed into LMDB.
    overlay: RwLock<Overlay>,
    /// The newest committed events, consecutive revisions, at most `recent_capacity`.
    recent: Mutex<VecDeque<Arc<Event>>>,
    recent_capacity: usize,
    /// The head revision published by the writer after each commit.
    head: head_channel::Receiver<Revision>,
    counters: Counters,
    /// Last, so it is dropped after `env` closed.
    _lock_file: lock_file::LockFile,
}

/// The LMDB-backed [`Store`].
pub struct LmdbStore {
    shared: Arc<Shared>,
    path: PathBuf,
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
}

impl LmdbStore {
    /// Opens the store in directory `dir` (created if missing) and starts its writer thread.
    /// Revisions continue from the ones stored there. Dropping the returned handle stops the
    /// writer after it has answered every queued transaction; the LMDB environment closes
    /// when the last watch stream is dropped too.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Arc<LmdbStore>, StoreError> {
        config.validate()?;
        let mut opened = open::open_env(dir, &config)?;
        let recovered = checkpoint::recover(dir, &mut opened, &config)?;
        let (head_tx, head_rx) = head_channel::channel(opened.current);
        let recent_capacity = config
            .recent_events
            .min(usize::try_from(config.history_limit).unwrap_or(usize::MAX));
        let shared = Arc::new(Shared {
            env: opened.env,
            dbs: opened.dbs,
            config,
            current: AtomicU64::new(opened.current),
            compacted: AtomicU64::new(opened.compacted),
            overlay: RwLock::new(Overlay::new(opened.current)),
            recent: Mutex::new(VecDeque::with_capacity(recent_capacity)),
            recent_capacity,
            head: head_rx,
            counters: Counters::default(),
            _lock_file: opened.lock_file,
        });
        Counters::add(&shared.counters.wal_records_replayed, recovered.records);
        let (tx, rx) = mpsc::channel();
        let writer = Writer::spawn(
            shared.clone(),
            rx,
            head_tx,
            opened.current,
            opened.compacted,
            recovered.wal,
            dir,
        )
        .map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        tracing::info!(
            path = %dir.display(),
            revision = opened.current,
            compacted = opened.compacted,
            "opened store"
        );
        Ok(Arc::new(LmdbStore {
            shared,
            path: dir.to_owned(),
            requests: Some(tx),
            writer: Some(writer),
        }))
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// Writer counters since the store was opened.
    pub fn stats(&self) -> StoreStats {
        self.shared.counters.snapshot()
    }

    /// Size of the data file on disk in bytes.
    pub fn disk_size(&self) -> Result<u64, StoreError> {
        Ok(self.shared.env.real_disk_size()?)
    }

    /// Puts every acknowledged write into LMDB now (a checkpoint; see `checkpoint`).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(Request::Checkpoint(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// Writes a consistent, compacted copy of the store (an LMDB data file) to `file`, which
    /// must not exist yet; opening a directory holding it as `data.mdb` restores the store.
    /// Checkpoints first, then runs alongside writes (LMDB copies one read snapshot); the
    /// copy holds at least every write acknowledged before the call.
    pub fn backup_to(&self, file: &Path) -> Result<(), StoreError> {
        self.checkpoint()?;
        self.shared
            .env
            .copy_to_path(file, CompactionOption::Enabled)
            .map_err(|source| StoreError::Open {
                path: file.to_owned(),
                source,
            })?;
        Ok(())
    }
}

impl Drop for LmdbStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish the queued requests and exit.
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

impl Store for LmdbStore {
    fn current_revision(&self) -> Revision {
        self.shared.current.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        read::get(&self.shared, key)
    }

    fn list(&self, prefix: &str, opts: ListOptions<'_>) -> Result<ListResult, StoreError> {
        read::list(&self.shared, prefix, opts)
    }

    fn txn(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<Vec<OpOutcome>, StoreError>> {
        if ops.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let (reply, answer) = oneshot::channel();
        let sent = match &self.requests {
            Some(requests) => requests
                .send(Request::Txn { ops, reply })
                .map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        };
        Box::pin(async move {
            sent?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<EventStream, StoreError> {
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        Ok(watch::stream(self.shared.clone(), prefix.to_owned(), after))
    }

    fn watch_with_progress(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<ProgressStream, StoreError> {
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        Ok(watch::progress_stream(
            self.shared.clone(),
            prefix.to_owned(),
            after,
        ))
    }
}
