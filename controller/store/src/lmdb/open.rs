//! Opening the LMDB environment, and the store's one B-tree.
//!
//! Format 2 keeps everything in LMDB's main (unnamed) database, told apart by a one-byte
//! prefix: `0x00` + name for meta values, `0x01` + key for objects, `0x02` + revision
//! (big-endian) for history events. One tree instead of three named ones (format 1) saves
//! LMDB's main-database page and, with the object and the history event of a write sharing
//! the upper branch pages, another page or two of every commit; idle, every commit is a
//! Lease renewal, so this is most of the flash writes of an idle board. A format 1 store is
//! rewritten into format 2 in one transaction when it is opened.

use std::ops::Bound;
use std::path::Path;

use heed::byteorder::{BigEndian, ByteOrder};
use heed::types::{Bytes, U64};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, PutFlags, RoTxn, RwTxn, WithoutTls};

use super::config::StoreConfig;
use super::lock_file::{self, LockFile};
use super::pre_upgrade;
use crate::{Revision, StoreError};

/// Meta key of the on-disk format version, written when the store is created.
const META_FORMAT: &[u8] = b"\x00format_version";
/// The layout described above.
const FORMAT_VERSION: u64 = 2;
/// Key prefix of objects.
const OBJECT: u8 = 1;
/// Key prefix of history events; the largest prefix, so history keys sort last.
const HISTORY: u8 = 2;

fn object_key(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(OBJECT);
    k.extend_from_slice(key.as_bytes());
    k
}

fn history_key(revision: Revision) -> [u8; 9] {
    let mut k = [HISTORY; 9];
    BigEndian::write_u64(&mut k[1..], revision);
    k
}

fn history_revision(key: &[u8]) -> Result<Revision, StoreError> {
    match key {
        [HISTORY, rest @ ..] if rest.len() == 8 => Ok(BigEndian::read_u64(rest)),
        _ => Err(StoreError::BadRecord {
            what: format!("history key {key:?}"),
            reason: "not a prefix byte and a 64-bit revision",
        }),
    }
}

/// A borrowed key/value of the tree.
type Item<'t> = Result<(&'t [u8], &'t [u8]), heed::Error>;

/// The store's tree (a plain handle, valid as long as the env is open), with the object and
/// history views the rest of the store uses.
#[derive(Clone, Copy)]
pub(crate) struct Dbs {
    main: Database<'static, Bytes, Bytes>,
}

impl Dbs {
    /// The record of object `key`.
    pub fn object<'t>(&self, txn: &'t RoTxn, key: &str) -> Result<Option<&'t [u8]>, StoreError> {
        Ok(self.main.get(txn, &object_key(key))?)
    }

    /// Writes the record of object `key`.
    pub fn put_object(&self, txn: &mut RwTxn, key: &str, record: &[u8]) -> Result<(), StoreError> {
        Ok(self.main.put(txn, &object_key(key), record)?)
    }

    /// Deletes object `key`.
    pub fn delete_object(&self, txn: &mut RwTxn, key: &str) -> Result<(), StoreError> {
        self.main.delete(txn, &object_key(key))?;
        Ok(())
    }

    /// Objects from `lower` on in key order, as (key, record), to the end of the objects.
    pub fn objects_from<'t>(
        &self,
        txn: &'t RoTxn,
        lower: Bound<&str>,
    ) -> Result<impl Iterator<Item = Item<'t>> + 't, StoreError> {
        let lower = lower.map(object_key);
        let upper = [HISTORY];
        let range = (
            lower.as_ref().map(Vec::as_slice),
            Bound::Excluded(&upper[..]),
        );
        Ok(self
            .main
            .range(txn, &range)?
            .map(|item| item.map(|(k, v)| (&k[1..], v))))
    }

    /// History events with revision in `(after, upto]`, oldest first.
    pub fn history_range<'t>(
        &self,
        txn: &'t RoTxn,
        after: Revision,
        upto: Revision,
    ) -> Result<impl Iterator<Item = Result<(Revision, &'t [u8]), StoreError>> + 't, StoreError>
    {
        let (from, to) = (history_key(after), history_key(upto));
        let range = (Bound::Excluded(&from[..]), Bound::Included(&to[..]));
        Ok(self.main.range(txn, &range)?.map(|item| {
            let (k, v) = item?;
            Ok((history_revision(k)?, v))
        }))
    }

    /// History events with revision in `(after, upto]`, newest first.
    pub fn history_rev_range<'t>(
        &self,
        txn: &'t RoTxn,
        after: Revision,
        upto: Revision,
    ) -> Result<impl Iterator<Item = Result<(Revision, &'t [u8]), StoreError>> + 't, StoreError>
    {
        let (from, to) = (history_key(after), history_key(upto));
        let range = (Bound::Excluded(&from[..]), Bound::Included(&to[..]));
        Ok(self.main.rev_range(txn, &range)?.map(|item| {
            let (k, v) = item?;
            Ok((history_revision(k)?, v))
        }))
    }

    /// Stores the event of `revision`, newer than every stored one. With `append` (see
    /// [`Dbs::history_is_last`]) as `MDB_APPEND`: LMDB then fills each leaf before starting
    /// the next instead of splitting it in half, so the history takes about half the pages
    /// (and a checkpoint writes half as many for it).
    pub fn append_history(
        &self,
        txn: &mut RwTxn,
        revision: Revision,
        record: &[u8],
        append: bool,
    ) -> Result<(), StoreError> {
        let key = history_key(revision);
        if append {
            self.main
                .put_with_flags(txn, PutFlags::APPEND, &key, record)?;
        } else {
            self.main.put(txn, &key, record)?;
        }
        Ok(())
    }

    /// Whether the tree's last key is a history event older than `revision`, so events
    /// from `revision` on can be appended with `MDB_APPEND`. (Not when an older Bramble
    /// added the records of its named databases, which sort after the history.)
    pub fn history_is_last(&self, txn: &RoTxn, revision: Revision) -> Result<bool, StoreError> {
        Ok(match self.main.last(txn)? {
            Some((key, _)) => key.first() == Some(&HISTORY) && history_revision(key)? < revision,
            None => true,
        })
    }

    /// Deletes the events up to and including `revision`; returns how many.
    pub fn delete_history_upto(
        &self,
        txn: &mut RwTxn,
        revision: Revision,
    ) -> Result<usize, StoreError> {
        let (from, to) = ([HISTORY], history_key(revision));
        let range = (Bound::Included(&from[..]), Bound::Included(&to[..]));
        Ok(self.main.delete_range(txn, &range)?)
    }

    /// `(current, compacted)` as of the transaction's snapshot.
    ///
    /// Every revision has exactly one history event and compaction always keeps at least
    /// one, so the history holds exactly `(compacted, current]`: both revisions follow from
    /// its first and last keys. Deriving them instead of storing them saves rewriting a
    /// page on every commit (flash wear).
    pub fn revisions(&self, txn: &RoTxn) -> Result<(Revision, Revision), StoreError> {
        // Not `last()` of the tree: an older Bramble run on this store after a rollback
        // adds its named databases' records, whose keys sort after the history.
        let current = match self.history_rev_range(txn, 0, Revision::MAX)?.next() {
            Some(item) => item?.0,
            None => return Ok((0, 0)),
        };
        let first = match self.history_range(txn, 0, current)?.next() {
            Some(item) => item?.0,
            None => current,
        };
        Ok((current, first - 1))
    }
}

/// What [`open_env`] found on disk.
pub(crate) struct Opened {
    pub env: Env<WithoutTls>,
    pub dbs: Dbs,
    pub current: Revision,
    pub compacted: Revision,
    pub lock_file: LockFile,
}

/// Opens (creating if needed) the environment in `dir` with durable commits: no `NO_SYNC`,
/// `MAP_ASYNC` or `WRITE_MAP`. Read transactions do not use thread-local storage, so they can
/// be opened on any tokio worker thread and several may be open on one thread.
///
/// A store in a format this version does not know is refused, unless init asked for the copy
/// taken before an upgrade and there is one (see [`super::pre_upgrade`]).
pub(crate) fn open_env(dir: &Path, config: &StoreConfig) -> Result<Opened, StoreError> {
    pre_upgrade::finish_interrupted_restore(dir, FORMAT_VERSION)?;
    let mut opened = open_env_once(dir, config)?;
    if let Err(found) = opened {
        if found > FORMAT_VERSION
            && pre_upgrade::restore_requested_copy(dir, found, FORMAT_VERSION)?
        {
            opened = open_env_once(dir, config)?;
        }
    }
    match opened {
        Ok(opened) => {
            pre_upgrade::request_answered(dir)?;
            Ok(opened)
        }
        Err(found) => {
            tracing::error!(found, expected = FORMAT_VERSION, "unsupported store format");
            let newer = if found > FORMAT_VERSION {
                format!(
                    " (written by a newer Bramble; this one reads format {FORMAT_VERSION}{})",
                    pre_upgrade::copy_hint(dir, FORMAT_VERSION)
                )
            } else {
                String::new()
            };
            Err(StoreError::BadRecord {
                what: format!("store format version {found} in {}{newer}", dir.display()),
                reason: "unsupported store format",
            })
        }
    }
}

/// One attempt of [`open_env`]: `Err(format)` for a store in a format it cannot read (the
/// environment closed again).
fn open_env_once(dir: &Path, config: &StoreConfig) -> Result<Result<Opened, u64>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let lock_file = lock_file::place(dir, config.lock_dir.as_deref())?;
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

    if let Some(older) = format_to_rewrite(&env)? {
        pre_upgrade::keep_copy(&env, dir, older)?;
    }
    let wtxn = env.write_txn()?;
    let mut format: Option<u64> = None;
    let main = env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, StoreError> {
        let main = opener.create_database::<Bytes, Bytes>(wtxn, None)?;
        format = main.get(wtxn, META_FORMAT)?.map(BigEndian::read_u64);
        if format.is_none() {
            let old_meta = opener.open_database::<Bytes, U64<BigEndian>>(wtxn, Some("meta"))?;
            if let Some(old_meta) = old_meta {
                let found = old_meta.get(wtxn, b"format_version")?;
                if found != Some(1) {
                    format = found.or(Some(0));
                    return Ok(CommitOrAbort::Abort(()));
                }
                let objects = opener.open_database::<Bytes, Bytes>(wtxn, Some("objects"))?;
                let history = opener.open_database::<Bytes, Bytes>(wtxn, Some("history"))?;
                migrate_from_format_1(wtxn, main, objects, history)?;
                // SAFETY: the handle is not used after it is removed.
                unsafe { old_meta.remove(wtxn)? };
                tracing::info!(path = %dir.display(), "store rewritten from format 1 to format 2");
            } else if !main.is_empty(wtxn)? {
                format = Some(0);
                return Ok(CommitOrAbort::Abort(()));
            }
            let mut version = [0u8; 8];
            BigEndian::write_u64(&mut version, FORMAT_VERSION);
            main.put(wtxn, META_FORMAT, &version)?;
        }
        Ok(CommitOrAbort::Commit(main))
    })?;
    let main = match main {
        CommitOrAbort::Commit(main) => main,
        CommitOrAbort::Abort(()) => return Ok(Err(format.unwrap_or(0))),
    };
    if let Some(found) = format.filter(|&found| found != FORMAT_VERSION) {
        return Ok(Err(found));
    }
    let dbs = Dbs { main };

    let rtxn = env.read_txn()?;
    let (current, compacted) = dbs.revisions(&rtxn)?;
    drop(rtxn);
    Ok(Ok(Opened {
        env,
        dbs,
        current,
        compacted,
        lock_file,
    }))
}

/// The older format this version is about to rewrite the store from, if any: format 1 (its
/// `meta` database says so, the main tree has no format key) or, for later versions, an
/// older format key.
fn format_to_rewrite(env: &Env<WithoutTls>) -> Result<Option<u64>, StoreError> {
    let rtxn = env.read_txn()?;
    let looked = env.open_databases_and_commit(rtxn, |opener, rtxn| -> Result<_, StoreError> {
        let mut older = None;
        if let Some(main) = opener.open_database::<Bytes, Bytes>(rtxn, None)? {
            match main.get(rtxn, META_FORMAT)? {
                Some(found) => {
                    let found = BigEndian::read_u64(found);
                    older = (found < FORMAT_VERSION).then_some(found);
                }
                None => {
                    let meta = opener.open_database::<Bytes, U64<BigEndian>>(rtxn, Some("meta"))?;
                    if let Some(meta) = meta {
                        older = meta.get(rtxn, b"format_version")?.filter(|&f| f == 1);
                    }
                }
            }
        }
        // Nothing to keep open: the real opening follows in a write transaction.
        Ok(CommitOrAbort::<(), _>::Abort(older))
    })?;
    Ok(match looked {
        CommitOrAbort::Abort(older) => older,
        CommitOrAbort::Commit(()) => None,
    })
}

/// Copies format 1's `objects` and `history` databases into the main tree with their
/// prefixes and removes them (in the caller's transaction: all or nothing).
fn migrate_from_format_1(
    wtxn: &mut RwTxn,
    main: Database<'_, Bytes, Bytes>,
    objects: Option<Database<'_, Bytes, Bytes>>,
    history: Option<Database<'_, Bytes, Bytes>>,
) -> Result<(), StoreError> {
    if let Some(objects) = objects {
        let copied: Vec<(Vec<u8>, Vec<u8>)> = objects
            .iter(wtxn)?
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?;
        for (key, value) in copied {
            let mut k = vec![OBJECT];
            k.extend_from_slice(&key);
            main.put(wtxn, &k, &value)?;
        }
        // SAFETY: the handle is not used after it is removed.
        unsafe { objects.remove(wtxn)? };
    }
    if let Some(history) = history {
        let copied: Vec<(Vec<u8>, Vec<u8>)> = history
            .iter(wtxn)?
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?;
        // SAFETY: the handle is not used after it is removed.
        unsafe { history.remove(wtxn)? };
        for (key, value) in copied {
            let mut k = vec![HISTORY];
            k.extend_from_slice(&key);
            main.put(wtxn, &k, &value)?;
        }
    }
    Ok(())
}
