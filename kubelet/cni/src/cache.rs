//! The per-container result cache (`<data-dir>/results/<network>-<container>-<ifname>`), in
//! the shape of libcni's `cniCacheV1` so DEL after a restart uses what ADD used.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CniError;
use crate::types::{CniResult, PortMapping};

/// One cached attachment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CachedAttachment {
    /// Always `cniCacheV1`.
    pub kind: String,
    /// The sandbox id.
    pub container_id: String,
    /// The conflist JSON the ADD ran with, base64 as libcni stores it.
    pub config: String,
    /// Interface name.
    pub if_name: String,
    /// Network name.
    pub network_name: String,
    /// `CNI_ARGS` pairs.
    #[serde(default)]
    pub cni_args: Vec<(String, String)>,
    /// Port mappings passed as the portMappings capability.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// The final result of the chain.
    pub result: CniResult,
}

impl CachedAttachment {
    /// The conflist JSON this attachment was created with.
    pub fn config_json(&self) -> Option<Value> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.config)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Encodes a conflist for [`CachedAttachment::config`].
    pub fn encode_config(config: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(config.to_string())
    }
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct ResultCache {
    dir: PathBuf,
}

impl ResultCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ResultCache { dir: dir.into() }
    }

    fn path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{network}-{container_id}-{ifname}"))
    }

    /// Stores an attachment atomically.
    pub fn store(&self, entry: &CachedAttachment) -> Result<(), CniError> {
        std::fs::create_dir_all(&self.dir).map_err(CniError::io(&self.dir))?;
        let path = self.path(&entry.network_name, &entry.container_id, &entry.if_name);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(entry)?).map_err(CniError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(CniError::io(&path))
    }

    /// The attachment of a container to a network, if cached (an unreadable entry counts as
    /// missing and is logged).
    pub fn load(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Option<CachedAttachment> {
        let path = self.path(network, container_id, ifname);
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(entry) => Some(entry),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable CNI cache entry");
                None
            }
        }
    }

    /// Every cached attachment of a container (any network, any interface).
    pub fn load_container(&self, container_id: &str) -> Vec<CachedAttachment> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let marker = format!("-{container_id}-");
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(&marker))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<CachedAttachment>(&b).ok())
            .filter(|a| a.container_id == container_id)
            .collect()
    }

    /// Removes an entry; a missing one is fine.
    pub fn remove(&self, network: &str, container_id: &str, ifname: &str) -> Result<(), CniError> {
        let path = self.path(network, container_id, ifname);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CniError::io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
