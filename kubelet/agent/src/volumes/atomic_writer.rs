//! Upstream's `AtomicWriter`: a volume's files live in a timestamped directory
//! (`..2026_11_23_19_30_00.123456789`); `..data` is a symlink to the current one and each
//! top-level entry the user sees is a symlink through `..data`. An update writes a new
//! timestamped directory and swaps `..data` with one `rename`, so a reader sees the old set
//! of files or the new one, never a mix.

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::error::{io, VolumeError};
use super::ownership::{set_ownership, Ownership};

/// The symlink to the current data directory.
pub const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";

/// One file of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    /// Contents.
    pub data: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

/// Relative path -> file.
pub type Payload = BTreeMap<String, FileProjection>;

/// A payload path must be relative, without `..` elements, and not start with `..`.
fn validate_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("invalid path: must not be empty".into());
    }
    if Path::new(p).is_absolute() {
        return Err(format!("invalid path: must be relative path: {p}"));
    }
    if Path::new(p)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(format!("invalid path: must not contain '..': {p}"));
    }
    if p.starts_with("..") {
        return Err(format!("invalid path: must not start with '..': {p}"));
    }
    Ok(())
}

/// The first element of a payload path (the user-visible symlink).
fn top_level(p: &str) -> &str {
    p.split('/').next().unwrap_or(p)
}

/// Whether `dir` already holds exactly `payload`.
fn same_contents(dir: &Path, payload: &Payload) -> bool {
    fn count_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() {
                            count_files(&p)
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    if count_files(dir) != payload.len() {
        return false;
    }
    payload.iter().all(|(rel, f)| {
        let p = dir.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            return false;
        };
        md.is_file()
            && md.permissions().mode() & 0o7777 == f.mode
            && std::fs::read(&p).is_ok_and(|d| d == f.data)
    })
}

/// Writes payloads into one volume directory.
pub struct AtomicWriter<'a> {
    /// The volume directory.
    pub dir: &'a Path,
    /// Group ownership to apply to the new files (fsGroup).
    pub ownership: Option<Ownership>,
}

impl AtomicWriter<'_> {
    /// Makes the volume show `payload`; returns whether anything changed.
    pub fn write(&self, payload: &Payload) -> Result<bool, VolumeError> {
        for p in payload.keys() {
            validate_path(p).map_err(VolumeError::Setup)?;
        }
        std::fs::create_dir_all(self.dir).map_err(io("mkdir", self.dir))?;
        let data_link = self.dir.join(DATA_DIR);
        let old_ts: Option<PathBuf> = std::fs::read_link(&data_link).ok();
        if let Some(old) = &old_ts {
            if same_contents(&self.dir.join(old), payload) {
                return Ok(false);
            }
        }
        // `..<UTC time>.<nanoseconds>`, as upstream's `MkdirTemp(dir, "..2006_01_02_15_04_05.")`.
        let (ts_name, ts_dir) = loop {
            let name = chrono::Utc::now()
                .format("..%Y_%m_%d_%H_%M_%S.%9f")
                .to_string();
            let dir = self.dir.join(&name);
            match std::fs::create_dir(&dir) {
                Ok(()) => break (name, dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io("mkdir", &dir)(e)),
            }
        };
        std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod", &ts_dir))?;
        for (rel, f) in payload {
            let path = ts_dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
            }
            std::fs::write(&path, &f.data).map_err(io("write", &path))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))
                .map_err(io("chmod", &path))?;
        }
        if let Some(o) = &self.ownership {
            set_ownership(&ts_dir, o)?;
        }
        // Swap `..data` to the new directory in one rename.
        let tmp = self.dir.join(DATA_DIR_TMP);
        let _ = std::fs::remove_file(&tmp);
        symlink(&ts_name, &tmp).map_err(io("symlink", &tmp))?;
        std::fs::rename(&tmp, &data_link).map_err(io("rename", &data_link))?;
        // User-visible entries: add the new ones, remove those gone.
        let wanted: std::collections::BTreeSet<&str> =
            payload.keys().map(|k| top_level(k)).collect();
        for name in &wanted {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new(DATA_DIR).join(name), &link).map_err(io("symlink", &link))?;
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("..") || wanted.contains(name.as_str()) {
                    continue;
                }
                let _ = std::fs::remove_file(e.path());
            }
        }
        if let Some(old) = old_ts {
            let old = self.dir.join(old);
            if old != ts_dir {
                let _ = std::fs::remove_dir_all(old);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn writes_swaps_and_prunes() {
        let d = tempfile::tempdir().unwrap();
        let w = AtomicWriter {
            dir: d.path(),
            ownership: None,
        };
        let mut p = Payload::new();
        p.insert("a".into(), file("1", 0o644));
        p.insert("sub/b".into(), file("2", 0o400));
        assert!(w.write(&p).unwrap());
        let first = std::fs::read_link(d.path().join(DATA_DIR)).unwrap();
        assert!(first.to_str().unwrap().starts_with("..20"));
        assert_eq!(std::fs::read_to_string(d.path().join("a")).unwrap(), "1");
        assert_eq!(
            std::fs::read_to_string(d.path().join("sub/b")).unwrap(),
            "2"
        );
        assert_eq!(
            std::fs::read_link(d.path().join("a")).unwrap(),
            Path::new("..data/a")
        );
        let md = std::fs::metadata(d.path().join("sub/b")).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o400);
        // Same payload: nothing written.
        assert!(!w.write(&p).unwrap());
        // A change: new directory, old one gone, removed key unlinked.
        p.remove("sub/b");
        p.insert("a".into(), file("3", 0o644));
        assert!(w.write(&p).unwrap());
        let second = std::fs::read_link(d.path().join(DATA_DIR)).unwrap();
        assert_ne!(first, second);
        assert!(!d.path().join(&first).exists());
        assert!(std::fs::symlink_metadata(d.path().join("sub")).is_err());
        assert_eq!(std::fs::read_to_string(d.path().join("a")).unwrap(), "3");
        let mut bad = Payload::new();
        bad.insert("../x".into(), file("", 0o644));
        assert!(w.write(&bad).is_err());
    }
}
