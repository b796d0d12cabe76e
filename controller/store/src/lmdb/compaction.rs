//! Trimming the history to the configured number of events.

use heed::RwTxn;

use super::open::Dbs;
use crate::{Revision, StoreError};

/// What one compaction step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compaction {
    /// The compacted revision after this step.
    pub compacted: Revision,
    /// How many history events were deleted.
    pub deleted: u64,
}

/// Every revision has exactly one history event, so the history holds the events
/// `(compacted, current]`. When there are more than `limit` plus a sixteenth, deletes the
/// oldest down to `limit` in `txn` (the same transaction that added the new ones). The compacted revision is the first
/// remaining event's revision minus one (see [`Dbs::revisions`]).
pub(crate) fn compact(
    txn: &mut RwTxn,
    dbs: &Dbs,
    current: Revision,
    compacted: Revision,
    limit: u64,
) -> Result<Compaction, StoreError> {
    // Deleting the oldest event on every commit would dirty the history's first leaf and its
    // branch pages each time; letting the history run over the limit by a sixteenth and then
    // deleting the surplus in one go writes those pages once per `limit / 16` commits.
    if current.saturating_sub(compacted) <= limit + limit / 16 {
        return Ok(Compaction {
            compacted,
            deleted: 0,
        });
    }
    let new_compacted = current - limit;
    let deleted = dbs.delete_history_upto(txn, new_compacted)? as u64;
    tracing::debug!(
        compacted = new_compacted,
        deleted,
        "compacted store history"
    );
    Ok(Compaction {
        compacted: new_compacted,
        deleted,
    })
}
