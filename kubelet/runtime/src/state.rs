//! On-disk layout of the runtime. Everything needed to recover after a kubelet (and helper)
//! restart lives here, never only in memory:
//!
//! ```text
//! <root>/libcontainer/<id>/      libcontainer's own state (state.json, notify socket)
//! <root>/containers/<id>/        bundle: config.json, rootfs/ (overlay mount), upper/, work/
//!                      meta.json creation metadata     started_at  start time
//!                      shim.pid  the shim's pid        exit.json   written by the shim on exit
//!                      attach.sock  the shim's attach socket while it runs (crate::attach)
//! <root>/pause-rootfs/           the pause image: just the `bramble` binary
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Errors of the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file held invalid JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Paths of the runtime's state root.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The layout under `root` (e.g. `/var/lib/bramble/runtime`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// libcontainer's state root.
    pub fn libcontainer_root(&self) -> PathBuf {
        self.root.join("libcontainer")
    }

    /// Directory of all bundles.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The bundle directory of one container.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// The writable layer of app container `id` (its overlay upper dir), as the kubelet's
    /// eviction manager measures it against `ephemeral-storage` limits.
    pub fn writable_layer(&self, id: &str) -> PathBuf {
        self.bundle(id).join(crate::rootfs::UPPER_DIR)
    }

    /// The pause rootfs shared by every sandbox.
    pub fn pause_rootfs(&self) -> PathBuf {
        self.root.join("pause-rootfs")
    }

    /// Creates the top-level directories.
    pub fn ensure(&self) -> Result<(), StateError> {
        for d in [
            self.libcontainer_root(),
            self.containers_dir(),
            self.pause_rootfs(),
        ] {
            mkdir_all(&d)?;
        }
        Ok(())
    }

    /// Ids of every bundle present.
    pub fn list_ids(&self) -> Result<Vec<String>, StateError> {
        let dir = self.containers_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    op: "read_dir",
                    path: dir,
                    source,
                })
            }
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().join("meta.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// `mkdir -p` with the path in the error.
pub fn mkdir_all(path: &Path) -> Result<(), StateError> {
    std::fs::create_dir_all(path).map_err(|source| StateError::Io {
        op: "mkdir",
        path: path.to_owned(),
        source,
    })
}

/// Writes JSON atomically (temp file + rename), so a reader never sees half a file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec(value).map_err(|source| StateError::Json {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(&tmp, body).map_err(|source| StateError::Io {
        op: "write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| StateError::Io {
        op: "rename",
        path: path.to_owned(),
        source,
    })
}

/// Reads JSON; `None` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StateError::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a small text file atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|source| StateError::Io {
        op: "write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| StateError::Io {
        op: "rename",
        path: path.to_owned(),
        source,
    })
}

/// Reads a small text file, trimmed; `None` when absent.
pub fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Current time, RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
