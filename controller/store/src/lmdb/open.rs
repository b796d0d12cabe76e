//! Opening the LMDB environment and its three databases.

use std::path::Path;

use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, WithoutTls};

use super::config::StoreConfig;
use crate::{Revision, StoreError};

/// `meta` key of the newest committed revision.
pub(crate) const META_CURRENT: &str = "current_revision";
/// `meta` key of the compacted revision (events at or below it are gone).
pub(crate) const META_COMPACTED: &str = "compacted_revision";

/// Handles of the store's databases; plain numbers, valid as long as the env is open.
#[derive(Clone, Copy)]
pub(crate) struct Dbs {
    /// key -> [`super::record::ObjectRecord`].
    pub objects: Database<'static, Bytes, Bytes>,
    /// revision (big-endian, so key order is revision order) -> [`super::record::EventRecord`].
    pub history: Database<'static, U64<BigEndian>, Bytes>,
    /// [`META_CURRENT`], [`META_COMPACTED`].
    pub meta: Database<'static, Str, U64<BigEndian>>,
}

impl Dbs {
    /// `(current, compacted)` as of the transaction's snapshot.
    pub fn revisions(&self, txn: &RoTxn) -> Result<(Revision, Revision), StoreError> {
        let current = self.meta.get(txn, META_CURRENT)?.unwrap_or(0);
        let compacted = self.meta.get(txn, META_COMPACTED)?.unwrap_or(0);
        Ok((current, compacted))
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
    let dbs = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
            let objects = opener.create_database::<Bytes, Bytes>(wtxn, Some("objects"))?;
            let history = opener.create_database::<U64<BigEndian>, Bytes>(wtxn, Some("history"))?;
            let meta = opener.create_database::<Str, U64<BigEndian>>(wtxn, Some("meta"))?;
            Ok(CommitOrAbort::<_, ()>::Commit((objects, history, meta)))
        })
        .map_err(|source| StoreError::Open {
            path: dir.to_owned(),
            source,
        })?
        .unwrap_commit();
    let dbs = Dbs {
        objects: dbs.0,
        history: dbs.1,
        meta: dbs.2,
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
