//! Small helpers reading and writing cgroupfs control files with the path in every error.

use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Reads a control file to a string.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })
}

/// Reads a control file, `None` when it does not exist (controller absent or older kernel).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a value to a control file in one `write(2)`, as the kernel expects.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    tracing::trace!(path = %path.display(), value, "cgroup write");
    std::fs::write(path, value).map_err(|source| CgroupError::Io {
        op: "write",
        path: path.to_owned(),
        source,
    })
}

/// Creates a directory and its parents.
pub(crate) fn mkdir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Io {
        op: "mkdir",
        path: path.to_owned(),
        source,
    })
}

/// Parses a single integer control file value (`max` reads as `None`).
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<Option<u64>> {
    let t = text.trim();
    if t == "max" {
        return Ok(None);
    }
    t.parse::<u64>().map(Some).map_err(|e| CgroupError::Parse {
        path: path.to_owned(),
        detail: format!("{t:?}: {e}"),
    })
}

/// Looks a key up in a flat-keyed file (`key value` per line: `cpu.stat`, `memory.stat`,
/// `memory.events`, `memory.oom_control`).
pub(crate) fn flat_key(path: &Path, text: &str, key: &str) -> Result<Option<u64>> {
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some(key) {
            let v = parts.next().unwrap_or_default();
            return v.parse::<u64>().map(Some).map_err(|e| CgroupError::Parse {
                path: path.to_owned(),
                detail: format!("{key} {v:?}: {e}"),
            });
        }
    }
    Ok(None)
}

/// Parses `cgroup.procs`: one pid per line.
pub(crate) fn parse_pids(path: &Path, text: &str) -> Result<Vec<u32>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<u32>().map_err(|e| CgroupError::Parse {
                path: path.to_owned(),
                detail: format!("pid {l:?}: {e}"),
            })
        })
        .collect()
}

/// Checks that a cgroup path is relative and does not climb out of the root.
pub(crate) fn check_relative(rel: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return Err(CgroupError::BadPath(rel.to_owned())),
        }
    }
    Ok(out)
}

/// Removes a cgroup directory tree bottom-up with `rmdir` (cgroupfs directories are removed
/// with their control files by `rmdir`; regular files are never deleted). Retries briefly
/// while the kernel still counts exiting tasks (`EBUSY`).
pub(crate) fn rmdir_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Io {
                op: "read_dir",
                path: dir.to_owned(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            rmdir_tree(&entry.path())?;
        }
    }
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(16) && attempt < 50 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "rmdir",
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
}
