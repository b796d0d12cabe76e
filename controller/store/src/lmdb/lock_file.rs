//! LMDB's lock file on a RAM file system.
//!
//! LMDB keeps its reader table and the last transaction id in `lock.mdb`, a file it maps
//! shared and updates on every transaction, so the kernel writes its pages back to the
//! disk every half minute or so: on an SD card, a steady share of an idle board's writes.
//! Nothing in it has to outlive the processes using the store (LMDB initialises it again
//! when the first process opens the environment), so with [`super::StoreConfig::lock_dir`]
//! set, `<db>/lock.mdb` is a symbolic link to a file in that directory (a tmpfs such as
//! `/dev/shm`), named after the store's path. The file is removed when the store closes.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// LMDB's name of the lock file in an environment directory.
const LOCK_FILE: &str = "lock.mdb";

/// Where the lock file went; removes a RAM lock file on drop (after the environment closed:
/// it is the last field of the store's shared state).
#[derive(Debug)]
pub(crate) struct LockFile {
    ram: Option<PathBuf>,
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if let Some(ram) = &self.ram {
            let _ = std::fs::remove_file(ram);
        }
    }
}

/// FNV-1a: a name for the store's lock file that stays the same across builds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Puts the lock file of the environment in `dir` (which exists) into `lock_dir`, or, with
/// none, back into `dir` as a regular file. A RAM directory that cannot be created is
/// warned about and the lock file stays in `dir`.
pub(crate) fn place(dir: &Path, lock_dir: Option<&Path>) -> Result<LockFile, StoreError> {
    let link = dir.join(LOCK_FILE);
    let existing = match std::fs::symlink_metadata(&link) {
        Ok(meta) => Some(meta.file_type().is_symlink()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(io(&link)(e)),
    };
    let lock_dir = match lock_dir {
        Some(d) => match std::fs::create_dir_all(d) {
            Ok(()) => Some(d),
            Err(e) => {
                tracing::warn!(dir = %d.display(), error = %e, "cannot use this directory for the store's lock file; keeping it with the data");
                None
            }
        },
        None => None,
    };
    let Some(lock_dir) = lock_dir else {
        if existing == Some(true) {
            std::fs::remove_file(&link).map_err(io(&link))?;
        }
        return Ok(LockFile { ram: None });
    };
    let canonical = dir.canonicalize().map_err(io(dir))?;
    let target = lock_dir.join(format!(
        "{:016x}.lock.mdb",
        fnv1a(canonical.as_os_str().as_encoded_bytes())
    ));
    let linked = existing == Some(true) && std::fs::read_link(&link).map_err(io(&link))? == target;
    if !linked {
        if existing.is_some() {
            std::fs::remove_file(&link).map_err(io(&link))?;
        }
        std::os::unix::fs::symlink(&target, &link).map_err(io(&link))?;
    }
    Ok(LockFile { ram: Some(target) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_moves_to_the_lock_dir_and_back() {
        let root = tempfile::tempdir().unwrap();
        let (db, ram) = (root.path().join("db"), root.path().join("ram"));
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join(LOCK_FILE), b"old").unwrap();
        let placed = place(&db, Some(&ram)).unwrap();
        let target = placed.ram.clone().unwrap();
        assert_eq!(target.parent().unwrap(), ram);
        assert_eq!(std::fs::read_link(db.join(LOCK_FILE)).unwrap(), target);
        std::fs::write(&target, b"lmdb").unwrap();
        // Placed again: the same link and file.
        let again = place(&db, Some(&ram)).unwrap();
        assert_eq!(again.ram.as_ref(), Some(&target));
        drop(again);
        assert!(!target.exists(), "removed when the store closes");
        drop(placed);
        // Without a lock dir the link goes; LMDB creates a regular file.
        let back = place(&db, None).unwrap();
        assert!(back.ram.is_none());
        assert!(std::fs::symlink_metadata(db.join(LOCK_FILE)).is_err());
    }
}
