//! The single writer thread: group commit of concurrent transactions.
//!
//! Callers send their operations and a oneshot reply over a channel. The writer takes every
//! request queued (up to `max_batch`), applies each one in its own nested write transaction
//! (a failing request is rolled back alone), commits the batch once with LMDB's durable
//! commit, and only then publishes the events and answers the callers. While one commit is
//! being synced, new requests queue up and share the next one.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};

use super::apply::apply_ops;
use super::compaction::{compact, Compaction};
use super::config::Counters;
use super::prealloc::Prealloc;
use super::Shared;
use crate::{Event, Op, OpOutcome, Revision, StoreError};

/// The reply to one transaction.
pub(crate) type Reply = oneshot::Sender<Result<Vec<OpOutcome>, StoreError>>;

/// One transaction waiting for the writer.
pub(crate) struct Request {
    pub ops: Vec<Op>,
    pub reply: Reply,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<Request>,
    head: watch::Sender<Revision>,
    current: Revision,
    compacted: Revision,
    /// Keeps zeroed space after LMDB's last page (`None` if the file could not be opened).
    prealloc: Option<Prealloc>,
}

/// What a batch left behind once committed.
struct Committed {
    results: Vec<Result<Vec<OpOutcome>, StoreError>>,
    events: Vec<Arc<Event>>,
    current: Revision,
    compaction: Compaction,
    wrote: bool,
}

impl Writer {
    /// Starts the writer thread. It stops when every request sender is dropped.
    pub fn spawn(
        shared: Arc<Shared>,
        requests: mpsc::Receiver<Request>,
        head: watch::Sender<Revision>,
        current: Revision,
        compacted: Revision,
        dir: &Path,
    ) -> std::io::Result<JoinHandle<()>> {
        let page_size = shared.env.unnamed_database_stat().page_size as u64;
        let prealloc = match Prealloc::open(dir, page_size) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "not preallocating the store's data file");
                None
            }
        };
        let writer = Writer {
            shared,
            requests,
            head,
            current,
            compacted,
            prealloc,
        };
        std::thread::Builder::new()
            .name("bramble-store-writer".into())
            .spawn(move || writer.run())
    }

    fn run(mut self) {
        let max_batch = self.shared.config.max_batch;
        while let Ok(first) = self.requests.recv() {
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match self.requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        tracing::debug!(revision = self.current, "store writer stopped");
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        let span =
            tracing::debug_span!("store_commit", txns = batch.len(), first = self.current + 1);
        let _entered = span.enter();
        let shared = self.shared.clone();
        let counters = &shared.counters;
        let (replies, ops): (Vec<Reply>, Vec<Vec<Op>>) =
            batch.into_iter().map(|r| (r.reply, r.ops)).unzip();
        let batch_len = replies.len() as u64;
        counters
            .largest_batch
            .fetch_max(batch_len, Ordering::Relaxed);

        let committed = match self.write(ops) {
            Ok(committed) => committed,
            Err(err) => {
                // Nothing of this batch reached the disk.
                tracing::error!(error = %err, "store commit failed");
                let message = err.to_string();
                Counters::add(&counters.txns_failed, batch_len);
                for reply in replies {
                    let _ = reply.send(Err(StoreError::CommitFailed(message.clone())));
                }
                return;
            }
        };

        if committed.wrote {
            self.publish(&committed);
            Counters::add(&counters.commits, 1);
        }
        let ok = committed.results.iter().filter(|r| r.is_ok()).count() as u64;
        Counters::add(&counters.txns_committed, ok);
        Counters::add(&counters.txns_failed, batch_len - ok);
        Counters::add(&counters.ops, committed.events.len() as u64);
        Counters::add(&counters.events_compacted, committed.compaction.deleted);
        for (reply, result) in replies.into_iter().zip(committed.results) {
            // A caller that stopped waiting still had its write committed.
            let _ = reply.send(result);
        }
        if committed.wrote {
            self.preallocate();
        }
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

    /// Applies every request in a nested transaction and commits the batch durably.
    fn write(&self, requests: Vec<Vec<Op>>) -> Result<Committed, StoreError> {
        let shared = &*self.shared;
        let env = &shared.env;
        let dbs = shared.dbs;
        let max_key_size = env.max_key_size();
        let mut wtxn = env.write_txn()?;
        let mut revision = self.current;
        let mut results = Vec::with_capacity(requests.len());
        let mut events = Vec::new();
        for ops in requests {
            let count = ops.len() as u64;
            let mut nested = env.nested_write_txn(&mut wtxn)?;
            match apply_ops(&mut nested, &dbs, revision + 1, ops, max_key_size) {
                Ok((outcomes, request_events)) => match nested.commit() {
                    Ok(()) => {
                        revision += count;
                        events.extend(request_events);
                        results.push(Ok(outcomes));
                    }
                    Err(err) => results.push(Err(err.into())),
                },
                Err(err) => {
                    nested.abort();
                    results.push(Err(err));
                }
            }
        }
        let unchanged = Compaction {
            compacted: self.compacted,
            deleted: 0,
        };
        if revision == self.current {
            wtxn.abort();
            return Ok(Committed {
                results,
                events,
                current: revision,
                compaction: unchanged,
                wrote: false,
            });
        }
        let compaction = compact(
            &mut wtxn,
            &dbs,
            revision,
            self.compacted,
            shared.config.history_limit,
        )?;
        // The durable commit: LMDB writes the pages and fsyncs before returning.
        wtxn.commit()?;
        Ok(Committed {
            results,
            events,
            current: revision,
            compaction,
            wrote: true,
        })
    }

    /// Makes a committed batch visible: recent-event ring, revision mirrors, then watchers.
    fn publish(&mut self, committed: &Committed) {
        let shared = &*self.shared;
        if shared.recent_capacity > 0 {
            let mut recent = shared.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.extend(committed.events.iter().cloned());
            while recent.len() > shared.recent_capacity {
                recent.pop_front();
            }
        }
        self.current = committed.current;
        self.compacted = committed.compaction.compacted;
        shared.compacted.store(self.compacted, Ordering::Release);
        shared.current.store(self.current, Ordering::Release);
        self.head.send_replace(self.current);
    }
}
