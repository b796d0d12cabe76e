//! LMDB's lock file on a RAM file system.
//!
//! LMDB keeps its reader table and the last transaction id in `lock.mdb`, a file it maps
//! shared and updates on every transaction, so the kernel writes its pages back to the
//! disk every half minute or so: on an SD card, a steady share of an idle board's writes.
//! Nothing in it has to outlive the processes using the store (LMDB initialises it again
//! when the first process opens the environment), so with [`super::StoreConfig::lock_dir`]
//! set, `<db>/lock.mdb` is a symbolic link to a file in that directory (a tmpfs such as
//! `/dev/shm`), named after the store's path. The file is removed when the store closes,
//! and files of stores whose directory is gone (a process killed before it closed its
//! store in a temporary directory) when another store is placed there.

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

/// Names longer than this are hashed.
const MAX_NAME: usize = 200;
const SUFFIX: &str = ".lock.mdb";

/// The lock file's name: the store's path with `%` and `/` escaped, or, for a long path, a
/// hash of it.
fn lock_name(canonical: &Path) -> String {
    let path = canonical.to_string_lossy();
    let escaped = path.replace('%', "%25").replace('/', "%2F");
    if escaped.len() <= MAX_NAME && path == canonical.as_os_str().to_str().unwrap_or("") {
        format!("{escaped}{SUFFIX}")
    } else {
        format!(
            "{:016x}{SUFFIX}",
            fnv1a(canonical.as_os_str().as_encoded_bytes())
        )
    }
}

/// Removes the lock files in `lock_dir` of stores whose directory no longer exists.
fn collect_orphans(lock_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(lock_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(escaped) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .filter(|n| n.starts_with("%2F"))
        else {
            continue;
        };
        let store = escaped.replace("%2F", "/").replace("%25", "%");
        if !Path::new(&store).exists() {
            let _ = std::fs::remove_file(entry.path());
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
    collect_orphans(lock_dir);
    let canonical = dir.canonicalize().map_err(io(dir))?;
    let target = lock_dir.join(lock_name(&canonical));
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

    #[test]
    fn lock_files_of_stores_that_are_gone_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let ram = root.path().join("ram");
        let (gone, kept) = (root.path().join("gone%db"), root.path().join("kept"));
        for db in [&gone, &kept] {
            std::fs::create_dir_all(db).unwrap();
            let placed = place(db, Some(&ram)).unwrap();
            let target = placed.ram.clone().unwrap();
            if db == &gone {
                assert!(
                    target.to_str().unwrap().ends_with("gone%25db.lock.mdb"),
                    "{target:?}"
                );
            }
            // as a killed process leaves it
            std::fs::write(&target, b"lmdb").unwrap();
            std::mem::forget(placed);
        }
        std::fs::remove_dir_all(&gone).unwrap();
        let other = root.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let _placed = place(&other, Some(&ram)).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&ram)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].ends_with("%2Fkept.lock.mdb"), "{left:?}");
    }
}
