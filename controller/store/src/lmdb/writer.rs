//! The single writer thread: group commit of concurrent transactions.
//!
//! Callers send their operations and a oneshot reply over a channel. The writer takes every
//! request queued (up to `max_batch`), applies each one on top of the overlay and LMDB (a
//! failing request is dropped alone), makes the batch durable with one write-ahead log
//! record (`wal`), and only then adds it to the overlay, publishes the events and answers
//! the callers. While one record is being synced, new requests queue up and share the next.
//!
//! LMDB is written by checkpoints (`checkpoint`): when the oldest change only in the log is
//! `checkpoint_interval` old, when the log is full, when the history runs past its limit, on
//! request (backups) and when the store closes. Without a log (`wal_size` 0), or for a batch
//! too large for it, the batch is checkpointed at once.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use heed::RoTxn;
use tokio::sync::{oneshot, watch};

use super::apply::{apply_ops, Lookup};
use super::checkpoint::{lmdb_object, write_changes};
use super::config::Counters;
use super::open::Dbs;
use super::overlay::{Changes, Obj, Overlay};
use super::prealloc::Prealloc;
use super::wal::{encode_record, Wal};
use super::Shared;
use crate::{Event, Op, OpOutcome, Revision, StoreError};

/// The reply to one transaction.
pub(crate) type Reply = oneshot::Sender<Result<Vec<OpOutcome>, StoreError>>;

/// What the writer is asked to do.
pub(crate) enum Request {
    /// One transaction.
    Txn { ops: Vec<Op>, reply: Reply },
    /// A checkpoint now (everything acknowledged so far into LMDB).
    Checkpoint(mpsc::SyncSender<Result<(), StoreError>>),
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<Request>,
    head: watch::Sender<Revision>,
    current: Revision,
    compacted: Revision,
    /// Keeps zeroed space after LMDB's last page (`None` with a log, or if the file could
    /// not be opened).
    prealloc: Option<Prealloc>,
    /// The write-ahead log (`None`: every batch goes straight to LMDB).
    wal: Option<Wal>,
    /// When the oldest change not yet in LMDB was logged.
    dirty_since: Option<Instant>,
}

/// The state a batch's transactions are checked against: the earlier transactions of the
/// batch, the overlay, LMDB.
struct Layers<'a> {
    batch: &'a Changes,
    overlay: &'a Overlay,
    txn: &'a RoTxn<'a>,
    dbs: &'a Dbs,
}

impl Lookup for Layers<'_> {
    fn object(&self, key: &str) -> Result<Option<Obj>, StoreError> {
        if let Some(state) = self.batch.objects.get(key) {
            return Ok(state.clone());
        }
        if let Some(state) = self.overlay.object(key) {
            return Ok(state.clone());
        }
        lmdb_object(self.txn, self.dbs, key)
    }
}

/// A staged batch: each request's result and the changes of the successful ones.
type Staged = (Vec<Result<Vec<OpOutcome>, StoreError>>, Changes);

impl Writer {
    /// Starts the writer thread. It stops when every request sender is dropped, after a
    /// last checkpoint.
    pub fn spawn(
        shared: Arc<Shared>,
        requests: mpsc::Receiver<Request>,
        head: watch::Sender<Revision>,
        current: Revision,
        compacted: Revision,
        wal: Option<Wal>,
        dir: &Path,
    ) -> std::io::Result<JoinHandle<()>> {
        // Only without a log: see `prealloc`.
        let page_size = shared.env.unnamed_database_stat().page_size as u64;
        let prealloc = match wal.is_none().then(|| Prealloc::open(dir, page_size)) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                tracing::warn!(dir = %dir.display(), error = %e, "not preallocating the store's data file");
                None
            }
            None => None,
        };
        let mut writer = Writer {
            shared,
            requests,
            head,
            current,
            compacted,
            prealloc,
            wal,
            dirty_since: None,
        };
        writer.preallocate();
        std::thread::Builder::new()
            .name("bramble-store-writer".into())
            .spawn(move || writer.run())
    }

    fn run(mut self) {
        let max_batch = self.shared.config.max_batch;
        while let Some(first) = self.next_request() {
            let mut batch = Vec::new();
            let mut checkpoint = None;
            match first {
                Request::Txn { ops, reply } => batch.push((ops, reply)),
                Request::Checkpoint(reply) => checkpoint = Some(reply),
            }
            while checkpoint.is_none() && batch.len() < max_batch {
                match self.requests.try_recv() {
                    Ok(Request::Txn { ops, reply }) => batch.push((ops, reply)),
                    Ok(Request::Checkpoint(reply)) => checkpoint = Some(reply),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit_batch(batch);
            }
            if let Some(reply) = checkpoint {
                let _ = reply.send(self.checkpoint(None));
            }
        }
        if let Err(err) = self.checkpoint(None) {
            tracing::error!(error = %err, "last checkpoint of the store failed; the write-ahead log keeps the changes");
        }
        tracing::debug!(revision = self.current, "store writer stopped");
    }

    /// The next request; checkpoints in between when one is due. `None` once every sender
    /// is gone.
    fn next_request(&mut self) -> Option<Request> {
        loop {
            let Some(since) = self.dirty_since else {
                return self.requests.recv().ok();
            };
            let due = since + self.shared.config.checkpoint_interval;
            let now = Instant::now();
            if now >= due {
                if let Err(err) = self.checkpoint(None) {
                    tracing::error!(error = %err, "store checkpoint failed; trying again later");
                    self.dirty_since = Some(now);
                }
                continue;
            }
            match self.requests.recv_timeout(due - now) {
                Ok(request) => return Some(request),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<(Vec<Op>, Reply)>) {
        let span =
            tracing::debug_span!("store_commit", txns = batch.len(), first = self.current + 1);
        let _entered = span.enter();
        let shared = self.shared.clone();
        let counters = &shared.counters;
        let (ops, replies): (Vec<Vec<Op>>, Vec<Reply>) = batch.into_iter().unzip();
        let batch_len = replies.len() as u64;
        counters
            .largest_batch
            .fetch_max(batch_len, Ordering::Relaxed);

        let durable = self.stage(ops).and_then(|(results, changes)| {
            let events = if changes.is_empty() {
                Vec::new()
            } else {
                self.make_durable(changes)?
            };
            Ok((results, events))
        });
        let (results, events) = match durable {
            Ok(done) => done,
            Err(err) => {
                // Nothing of this batch is durable or visible.
                tracing::error!(error = %err, "store commit failed");
                let message = err.to_string();
                Counters::add(&counters.txns_failed, batch_len);
                for reply in replies {
                    let _ = reply.send(Err(StoreError::CommitFailed(message.clone())));
                }
                return;
            }
        };
        if !events.is_empty() {
            self.publish(&events);
            Counters::add(&counters.commits, 1);
            // Compaction happens in checkpoints; as without a log, the history is back
            // within its limit when the write that ran it over is acknowledged. A log
            // holding many objects is checkpointed too, to keep LMDB's transactions small.
            if self.history_over_limit() || self.overlay_over_limit() {
                if let Err(err) = self.checkpoint(None) {
                    tracing::error!(error = %err, "store checkpoint failed; trying again later");
                }
            }
        }
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        Counters::add(&counters.txns_committed, ok);
        Counters::add(&counters.txns_failed, batch_len - ok);
        Counters::add(&counters.ops, events.len() as u64);
        for (reply, result) in replies.into_iter().zip(results) {
            // A caller that stopped waiting still had its write committed.
            let _ = reply.send(result);
        }
    }

    /// Applies every request on top of the overlay and LMDB; writes nothing.
    fn stage(&self, requests: Vec<Vec<Op>>) -> Result<Staged, StoreError> {
        let shared = &*self.shared;
        let overlay = shared.overlay.read().unwrap_or_else(|e| e.into_inner());
        let txn = shared.env.read_txn()?;
        // LMDB's limit applies to the stored key, one prefix byte longer (see `open`).
        let max_key_size = shared.env.max_key_size() - 1;
        let mut batch = Changes::default();
        let mut results = Vec::with_capacity(requests.len());
        let mut revision = self.current;
        for ops in requests {
            let applied = {
                let layers = Layers {
                    batch: &batch,
                    overlay: &overlay,
                    txn: &txn,
                    dbs: &shared.dbs,
                };
                apply_ops(&layers, revision + 1, ops, max_key_size)
            };
            match applied {
                Ok((outcomes, changes)) => {
                    revision += changes.events.len() as u64;
                    batch.extend(changes);
                    results.push(Ok(outcomes));
                }
                Err(err) => results.push(Err(err)),
            }
        }
        Ok((results, batch))
    }

    /// Logs the batch (or, without room in the log, checkpoints it with the overlay) and
    /// adds it to the overlay. Returns its events.
    fn make_durable(&mut self, changes: Changes) -> Result<Vec<Arc<Event>>, StoreError> {
        let events: Vec<Arc<Event>> = changes.events.iter().map(|c| c.event.clone()).collect();
        let payload = self.wal.as_ref().map(|_| {
            encode_record(
                changes
                    .events
                    .iter()
                    .map(|c| (&*c.event, c.create_revision)),
            )
        });
        let fits_empty = match (&self.wal, &payload) {
            (Some(wal), Some(payload)) => wal.could_fit(payload.len()),
            _ => false,
        };
        let (Some(payload), true) = (payload, fits_empty) else {
            // The overlay first, so that while the batch is committed the overlay is empty
            // and readers see LMDB alone: old keys of the overlay never cover the batch's.
            self.checkpoint(None)?;
            self.checkpoint(Some(&changes))?;
            return Ok(events);
        };
        if !self.wal.as_ref().is_some_and(|wal| wal.fits(payload.len())) {
            self.checkpoint(None)?;
        }
        let wal = self.wal.as_mut().ok_or(StoreError::Closed)?;
        let written = wal.append(&payload)?;
        Counters::add(&self.shared.counters.wal_bytes, written);
        let mut overlay = self
            .shared
            .overlay
            .write()
            .unwrap_or_else(|e| e.into_inner());
        overlay.changes.extend(changes);
        drop(overlay);
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(events)
    }

    /// Whether the history (LMDB's and the overlay's) is due for compaction (see
    /// `compaction`), which happens in a checkpoint.
    fn history_over_limit(&self) -> bool {
        let limit = self.shared.config.history_limit;
        self.current.saturating_sub(self.compacted) > limit + limit / 16
    }

    /// Whether the overlay holds more objects than `checkpoint_objects`.
    fn overlay_over_limit(&self) -> bool {
        let overlay = self
            .shared
            .overlay
            .read()
            .unwrap_or_else(|e| e.into_inner());
        overlay.changes.objects.len() > self.shared.config.checkpoint_objects
    }

    /// Puts the overlay, and `extra` after it, into LMDB in one durable commit; then clears
    /// the overlay and starts the log over. `extra` (a batch not in the overlay) is made
    /// visible by the caller.
    fn checkpoint(&mut self, extra: Option<&Changes>) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        let overlay = shared.overlay.read().unwrap_or_else(|e| e.into_inner());
        let mut sets = vec![&overlay.changes];
        sets.extend(extra);
        let Some(current) = sets.iter().rev().find_map(|s| s.last_revision()) else {
            return Ok(());
        };
        let span = tracing::debug_span!("store_checkpoint", from = overlay.base + 1, to = current);
        let _entered = span.enter();
        let compaction = write_changes(
            &shared.env,
            &shared.dbs,
            &sets,
            current,
            self.compacted,
            shared.config.history_limit,
        )?;
        drop(overlay);
        // LMDB has it all now; readers holding the old overlay see the same states.
        shared
            .overlay
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear(current);
        self.dirty_since = None;
        self.compacted = compaction.compacted;
        shared.compacted.store(self.compacted, Ordering::Release);
        Counters::add(&shared.counters.checkpoints, 1);
        Counters::add(&shared.counters.events_compacted, compaction.deleted);
        self.preallocate();
        if let Some(wal) = &mut self.wal {
            if let Err(err) = wal.reset(current) {
                // Its records are all in LMDB; at the next open its base is older than
                // LMDB's and it is ignored.
                tracing::error!(path = %wal.path().display(), error = %err, "restarting the write-ahead log failed; committing straight to LMDB from now on");
                self.wal = None;
            }
        }
        Ok(())
    }

    /// Extends the data file ahead of LMDB (see `prealloc`); on failure, stops trying.
    fn preallocate(&mut self) {
        let Some(prealloc) = &mut self.prealloc else {
            return;
        };
        let last_page = self.shared.env.info().last_page_number as u64;
        match prealloc.after_commit(last_page) {
            Ok(0) => {}
            Ok(added) => tracing::debug!(added, "extended the store's data file"),
            Err(e) => {
                tracing::warn!(path = %prealloc.path().display(), error = %e, "extending the store's data file; not trying again");
                self.prealloc = None;
            }
        }
    }

    /// Makes a durable batch visible to watchers: recent-event ring, revision mirrors, head.
    fn publish(&mut self, events: &[Arc<Event>]) {
        let shared = &*self.shared;
        if shared.recent_capacity > 0 {
            let mut recent = shared.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.extend(events.iter().cloned());
            while recent.len() > shared.recent_capacity {
                recent.pop_front();
            }
        }
        if let Some(last) = events.last() {
            self.current = last.revision;
        }
        shared.current.store(self.current, Ordering::Release);
        self.head.send_replace(self.current);
    }
}
