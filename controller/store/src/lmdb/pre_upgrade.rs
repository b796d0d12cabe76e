//! Copies of the store taken before a format upgrade, so that an older Bramble can go on.
//!
//! A board upgrades by booting a new root slot on trial; when the slot does not come up
//! healthy, the boot loader falls back to the old slot, whose older Bramble then finds the
//! store as the new one left it. Where the new Bramble rewrote the store into a newer format,
//! the old one cannot read it at all and the node cannot start. So:
//! - before rewriting a store into this version's format, the store keeps a copy of it as it
//!   was: `pre-upgrade-format-N/` in the store's directory, LMDB's consistent copy of
//!   `data.mdb` with the write-ahead log;
//! - init, finding that a slot on trial fell back, asks for that copy
//!   ([`request_pre_upgrade_restore`]); an older Bramble that finds a format it does not know
//!   together with that request moves the newer store aside (`newer-format-M/`) and the copy of
//!   its own format into place. The writes the newer version made since the upgrade are lost:
//!   the alternative is a node that does not start. Without the request (a binary swapped by
//!   hand) nothing is restored, and the error names the copy;
//! - init, marking the slot on trial good, drops the copies ([`forget_pre_upgrade_copies`]):
//!   a copy must never replace a store that went on long after the upgrade was accepted.
//!
//! Every step is a rename, in an order that a restart after a crash can finish.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use heed::{CompactionOption, Env, WithoutTls};

use super::wal::WAL_FILE;
use crate::StoreError;

/// LMDB's data file in an environment directory.
const DATA_FILE: &str = "data.mdb";
/// The copy of a store in format N lives in `<store>/pre-upgrade-format-N`.
const COPY_PREFIX: &str = "pre-upgrade-format-";
/// A newer store moved aside by a restore lives in `<store>/newer-format-M`.
const NEWER_PREFIX: &str = "newer-format-";
/// Init's request, after a fallback, to go back to the copy if the store is unreadable.
const RESTORE_REQUEST: &str = "restore-pre-upgrade";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the copy of a store in `format` is kept.
pub(crate) fn copy_dir(dir: &Path, format: u64) -> PathBuf {
    dir.join(format!("{COPY_PREFIX}{format}"))
}

/// Asks the next opening of the store in `dir` to go back to the copy taken before an
/// upgrade, should it find the store in a format it cannot read. Init calls this when a root
/// slot on trial fell back to the older slot.
pub fn request_pre_upgrade_restore(dir: &Path) -> Result<(), StoreError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let path = dir.join(RESTORE_REQUEST);
    std::fs::write(&path, b"").map_err(io(&path))?;
    sync_dir(dir)
}

/// Drops the copies taken before upgrades, and any newer store a restore moved aside, and
/// any pending restore request. Init calls this when a slot on trial is marked good.
pub fn forget_pre_upgrade_copies(dir: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.starts_with(COPY_PREFIX) || name.starts_with(NEWER_PREFIX) {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
            tracing::info!(path = %path.display(), "dropped a store copy kept for a rollback");
        } else if name == RESTORE_REQUEST {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    sync_dir(dir)
}

/// Keeps a copy of the store in `env` (in `format`, about to be rewritten) with its log.
/// Called with no transaction open: LMDB's copy takes the writer lock for a moment.
pub(crate) fn keep_copy(env: &Env<WithoutTls>, dir: &Path, format: u64) -> Result<(), StoreError> {
    let tmp = dir.join(format!(".{COPY_PREFIX}{format}.tmp"));
    remove_dir_if_present(&tmp)?;
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    let data = tmp.join(DATA_FILE);
    env.copy_to_path(&data, CompactionOption::Enabled)?
        .sync_all()
        .map_err(io(&data))?;
    let wal = dir.join(WAL_FILE);
    if wal.is_file() {
        let to = tmp.join(WAL_FILE);
        std::fs::copy(&wal, &to).map_err(io(&to))?;
        std::fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .map_err(io(&to))?;
    }
    sync_dir(&tmp)?;
    let keep = copy_dir(dir, format);
    remove_dir_if_present(&keep)?;
    std::fs::rename(&tmp, &keep).map_err(io(&keep))?;
    sync_dir(dir)?;
    tracing::info!(
        path = %keep.display(),
        format,
        "kept a copy of the store before rewriting it, for a rollback to an older Bramble"
    );
    Ok(())
}

/// The store in `dir` is in `found`, newer than this version's `format`. When init asked
/// for it and a copy in `format` exists, moves the newer store aside and the copy into place
/// (`true`: open again). Otherwise `false`, and the store stays as it is.
pub(crate) fn restore_requested_copy(
    dir: &Path,
    found: u64,
    format: u64,
) -> Result<bool, StoreError> {
    let copy = copy_dir(dir, format);
    if !dir.join(RESTORE_REQUEST).is_file() || !copy.join(DATA_FILE).is_file() {
        return Ok(false);
    }
    let aside = dir.join(format!("{NEWER_PREFIX}{found}"));
    match std::fs::create_dir(&aside) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(&aside)(e)),
    }
    // The log first: until data.mdb moves, the store still opens as the newer one.
    for name in [WAL_FILE, DATA_FILE] {
        move_if_present(&dir.join(name), &aside.join(name))?;
    }
    sync_dir(dir)?;
    copy_in(dir, &copy)?;
    tracing::error!(
        store = %dir.display(),
        found,
        restored = format,
        aside = %aside.display(),
        "a newer Bramble rewrote this store and its slot fell back: restored the copy taken \
         before that upgrade; the writes made since the upgrade are lost"
    );
    Ok(true)
}

/// Finishes a restore that a crash interrupted between moving the newer store aside and
/// moving the copy in (no data file, a request and a copy in `format`). Called before the
/// environment opens, which would otherwise create an empty store.
pub(crate) fn finish_interrupted_restore(dir: &Path, format: u64) -> Result<(), StoreError> {
    let copy = copy_dir(dir, format);
    if dir.join(RESTORE_REQUEST).is_file()
        && !dir.join(DATA_FILE).exists()
        && copy.join(DATA_FILE).is_file()
    {
        tracing::warn!(store = %dir.display(), "finishing an interrupted restore of the pre-upgrade copy");
        copy_in(dir, &copy)?;
    }
    Ok(())
}

/// After an opening that needed no restore: a pending request is spent.
pub(crate) fn request_answered(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(RESTORE_REQUEST);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!(store = %dir.display(), "the store opened as it is after a fallback; nothing to restore");
            sync_dir(dir)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// The hint for an error about a newer format: where the copy is, if there is one.
pub(crate) fn copy_hint(dir: &Path, format: u64) -> String {
    let copy = copy_dir(dir, format);
    if copy.join(DATA_FILE).is_file() {
        format!(
            "; the copy taken before the upgrade is in {} (moving its files into the store \
             directory goes back to it, losing the writes made since)",
            copy.display()
        )
    } else {
        String::new()
    }
}

/// Moves the copy's log, then its data file, into the store, then drops the request.
fn copy_in(dir: &Path, copy: &Path) -> Result<(), StoreError> {
    for name in [WAL_FILE, DATA_FILE] {
        move_if_present(&copy.join(name), &dir.join(name))?;
    }
    sync_dir(dir)?;
    std::fs::remove_dir(copy).map_err(io(copy))?;
    let request = dir.join(RESTORE_REQUEST);
    std::fs::remove_file(&request).map_err(io(&request))?;
    sync_dir(dir)
}

fn move_if_present(from: &Path, to: &Path) -> Result<(), StoreError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(to)(e)),
    }
}

fn remove_dir_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}
