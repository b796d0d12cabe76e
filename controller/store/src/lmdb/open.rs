//! Opening the LMDB environment and its three databases.

use std::path::Path;

use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, WithoutTls};

use super::config::StoreConfig;
use crate::{Revision, StoreError};

/// `meta` key of the on-disk format version, written once when the store is created.
const META_FORMAT: &str = "format_version";
/// The layout described in [`super::record`].
const FORMAT_VERSION: u64 = 1;

/// Handles of the store's databases (the third, `meta`, only holds [`META_FORMAT`] and is
/// only read at open); plain numbers, valid as long as the env is open.
#[derive(Clone, Copy)]
pub(crate) struct Dbs {
    /// key -> [`super::record::ObjectRecord`].
    pub objects: Database<'static, Bytes, Bytes>,
    /// revision (big-endian, so key order is revision order) -> [`super::record::EventRecord`].
    pub history: Database<'static, U64<BigEndian>, Bytes>,
}

impl Dbs {
    /// `(current, compacted)` as of the transaction's snapshot.
    ///
    /// Every revision has exactly one history event and compaction always keeps at least
    /// one, so the history holds exactly `(compacted, current]`: both revisions follow from
    /// its first and last keys. Deriving them instead of storing them saves rewriting a
    /// page of another B-tree on every commit (flash wear).
    pub fn revisions(&self, txn: &RoTxn) -> Result<(Revision, Revision), StoreError> {
        let Some((current, _)) = self.history.last(txn)? else {
            return Ok((0, 0));
        };
        let (first, _) = self.history.first(txn)?.unwrap_or((current, &[]));
        Ok((current, first - 1))
    }
}

/// What [`open_env`] found on disk.
pub(crate) struct Opened {
    pub env: Env<WithoutTls>,
    pub dbs: Dbs,
    pub current: Revision,
    pub compacted: Revision,
}

/// Opens (creating if needed) the environment in `dir` with durable commits: no `NO_SYNC`,
/// `MAP_ASYNC` or `WRITE_MAP`. Read transactions do not use thread-local storage, so they can
/// be opened on any tokio worker thread and several may be open on one thread.
pub(crate) fn open_env(dir: &Path, config: &StoreConfig) -> Result<Opened, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options
        .map_size(config.map_size)
        .max_dbs(4)
        .max_readers(config.max_readers);
    // SAFETY: the data file is only modified through LMDB, by this process (one writer
    // thread) or another process using LMDB's own locking; we never truncate or rewrite it.
    let env = unsafe { options.open(dir) }.map_err(|source| StoreError::Open {
        path: dir.to_owned(),
        source,
    })?;

    // Reader slots of a killed process would pin old pages and make the file grow.
    let stale = env.clear_stale_readers()?;
    if stale > 0 {
        tracing::info!(stale, "cleared stale LMDB readers");
    }

    let wtxn = env.write_txn()?;
    let mut format: Option<u64> = None;
    let dbs = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
            let objects = opener.create_database::<Bytes, Bytes>(wtxn, Some("objects"))?;
            let history = opener.create_database::<U64<BigEndian>, Bytes>(wtxn, Some("history"))?;
            let meta = opener.create_database::<Str, U64<BigEndian>>(wtxn, Some("meta"))?;
            format = meta.get(wtxn, META_FORMAT)?;
            if format.is_none() {
                meta.put(wtxn, META_FORMAT, &FORMAT_VERSION)?;
            }
            Ok(CommitOrAbort::<_, ()>::Commit((objects, history)))
        })
        .map_err(|source| StoreError::Open {
            path: dir.to_owned(),
            source,
        })?
        .unwrap_commit();
    if let Some(found) = format.filter(|&found| found != FORMAT_VERSION) {
        tracing::error!(found, expected = FORMAT_VERSION, "unsupported store format");
        return Err(StoreError::BadRecord {
            what: format!("store format version {found} in {}", dir.display()),
            reason: "unsupported store format",
        });
    }
    let dbs = Dbs {
        objects: dbs.0,
        history: dbs.1,
    };

    let rtxn = env.read_txn()?;
    let (current, compacted) = dbs.revisions(&rtxn)?;
    drop(rtxn);
    Ok(Opened {
        env,
        dbs,
        current,
        compacted,
    })
}
