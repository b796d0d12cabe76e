//! Watch streams: history first, then live commits, each event once and in order.
//!
//! A watcher keeps only its position (the last revision it has looked at) and a small
//! buffer. When the writer publishes a new head revision through a `tokio::sync::watch`
//! channel, the watcher reads the events after its position, from the in-memory ring of
//! recent events when it still covers them, otherwise from LMDB and the overlay of changes
//! not yet checkpointed, in bounded batches (one short read transaction per batch, never
//! held across an await). A slow watcher therefore
//! costs no memory in the writer and misses nothing; if it falls behind the compaction
//! point it gets [`StoreError::Compacted`] as its last item.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::history;
use super::Shared;
use crate::{Event, EventStream, ProgressStream, Revision, StoreError, WatchItem};

struct Watcher {
    shared: Arc<Shared>,
    prefix: String,
    /// Every event up to this revision has been looked at.
    position: Revision,
    head: watch::Receiver<Revision>,
    pending: VecDeque<Arc<Event>>,
    done: bool,
    /// Whether to yield [`WatchItem::Progress`], and the last revision reported.
    progress: Option<Revision>,
}

/// A stream of the events under `prefix` after `after`. The caller has checked `after`
/// against the compacted revision.
pub(crate) fn stream(shared: Arc<Shared>, prefix: String, after: Revision) -> EventStream {
    let watcher = Watcher::new(shared, prefix, after, false);
    Box::pin(futures::stream::unfold(watcher, |mut watcher| async move {
        loop {
            match watcher.next().await? {
                Ok(WatchItem::Event(event)) => return Some((Ok(event), watcher)),
                Ok(WatchItem::Progress(_)) => continue,
                Err(err) => return Some((Err(err), watcher)),
            }
        }
    }))
}

/// Like [`stream`], also reporting progress.
pub(crate) fn progress_stream(
    shared: Arc<Shared>,
    prefix: String,
    after: Revision,
) -> ProgressStream {
    let watcher = Watcher::new(shared, prefix, after, true);
    Box::pin(futures::stream::unfold(watcher, |mut watcher| async move {
        let item = watcher.next().await?;
        Some((item, watcher))
    }))
}

impl Watcher {
    fn new(shared: Arc<Shared>, prefix: String, after: Revision, progress: bool) -> Self {
        let head = shared.head.clone();
        Watcher {
            shared,
            prefix,
            position: after,
            head,
            pending: VecDeque::new(),
            done: false,
            progress: progress.then_some(after),
        }
    }

    async fn next(&mut self) -> Option<Result<WatchItem, StoreError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(WatchItem::Event(event)));
            }
            if self.done {
                return None;
            }
            let head = *self.head.borrow_and_update();
            if head > self.position {
                if let Err(err) = self.fill(head) {
                    self.done = true;
                    return Some(Err(err));
                }
                // Let other tasks run between batches of a long backlog.
                tokio::task::coop::consume_budget().await;
                continue;
            }
            if let Some(reported) = self.progress.as_mut() {
                if self.position > *reported {
                    *reported = self.position;
                    return Some(Ok(WatchItem::Progress(self.position)));
                }
            }
            if self.head.changed().await.is_err() {
                // The writer has stopped: everything it committed has been delivered.
                if *self.head.borrow() > self.position {
                    continue;
                }
                self.done = true;
                return Some(Err(StoreError::Closed));
            }
        }
    }

    /// Moves the position towards `head`, queueing the matching events.
    fn fill(&mut self, head: Revision) -> Result<(), StoreError> {
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if self.position < compacted {
            return Err(StoreError::Compacted {
                requested: self.position,
                compacted,
            });
        }
        if self.fill_from_recent(head) {
            return Ok(());
        }
        self.fill_from_lmdb(head)
    }

    /// Serves the range from the ring of recent events when the ring reaches back to the
    /// position; returns false when it does not.
    fn fill_from_recent(&mut self, head: Revision) -> bool {
        let recent = self.shared.recent.lock().unwrap_or_else(|e| e.into_inner());
        let Some(front) = recent.front() else {
            return false;
        };
        if front.revision > self.position + 1 {
            return false;
        }
        // The ring holds consecutive revisions, so the index follows from the revision.
        let start = (self.position + 1 - front.revision) as usize;
        let mut last = self.position;
        for event in recent.iter().skip(start).take_while(|e| e.revision <= head) {
            if event.key.starts_with(&self.prefix) {
                self.pending.push_back(event.clone());
            }
            last = event.revision;
        }
        if last == self.position {
            return false;
        }
        self.position = last;
        true
    }

    /// Reads at most `watch_read_batch` history events after the position: from LMDB up to
    /// the revision it holds everything of, the rest from the overlay.
    fn fill_from_lmdb(&mut self, head: Revision) -> Result<(), StoreError> {
        let shared = &*self.shared;
        let upto = head.min(self.position + shared.config.watch_read_batch as u64);
        let (txn, base, newer) = {
            let overlay = shared.overlay.read().unwrap_or_else(|e| e.into_inner());
            // Opened under the lock: it holds at least everything up to `base`.
            let txn = shared.env.read_txn()?;
            let newer = overlay.events_after(self.position.max(overlay.base), upto);
            (txn, overlay.base, newer)
        };
        let (_, compacted) = shared.dbs.revisions(&txn)?;
        if self.position < compacted {
            return Err(StoreError::Compacted {
                requested: self.position,
                compacted,
            });
        }
        let mut last = self.position;
        let lmdb_upto = upto.min(base);
        if lmdb_upto > self.position {
            for item in history::events(&txn, &shared.dbs, self.position, lmdb_upto)? {
                let (revision, record) = item?;
                if record.key.starts_with(&self.prefix) {
                    self.pending.push_back(Arc::new(record.to_event(revision)));
                }
                last = revision;
            }
        }
        for change in newer {
            if change.event.key.starts_with(&self.prefix) {
                self.pending.push_back(change.event.clone());
            }
            last = change.revision();
        }
        if last != upto {
            return Err(StoreError::BadRecord {
                what: format!("history ({}, {upto}]", self.position),
                reason: "events are missing",
            });
        }
        self.position = upto;
        Ok(())
    }
}
