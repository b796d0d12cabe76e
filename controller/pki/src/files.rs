//! Small file helpers: atomic writes with explicit modes, optional reads, private directories.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::PkiError;

/// Mode of private keys, tokens and kubeconfigs.
pub const PRIVATE_MODE: u32 = 0o600;
/// Mode of certificates (public material).
pub const PUBLIC_MODE: u32 = 0o644;

/// Creates `dir` and its parents if missing. A directory created here gets `mode`; an existing
/// one is left as it is.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), PkiError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| PkiError::io("create directory", dir, e))
}

/// Reads `path` as UTF-8, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("read", path, e)),
    }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory is created
/// with `mode`, written, synced and renamed over `path`, so readers see either the old or the
/// new file, never a half-written one, and secrets are never readable by others even briefly.
/// The parent directory is created (mode 0700) if missing.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ensure_dir(&parent, 0o700)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| PkiError::parse(path, "path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let suffix: u64 = rand::rng().random();
    let tmp = parent.join(format!(
        ".{file_name}.tmp-{}-{suffix:x}",
        std::process::id()
    ));

    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| PkiError::io("create", &tmp, e))?;
        // The umask may have removed bits from `mode`; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| PkiError::io("chmod", &tmp, e))?;
        f.write_all(contents)
            .map_err(|e| PkiError::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| PkiError::io("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| PkiError::io("rename into", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable; failure to sync a directory is not worth failing the write.
    if let Ok(d) = fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/secret");
        write_atomic(&p, b"one", PRIVATE_MODE).unwrap();
        write_atomic(&p, b"two", PRIVATE_MODE).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
        assert_eq!(read_optional(&dir.path().join("none")).unwrap(), None);
    }
}
