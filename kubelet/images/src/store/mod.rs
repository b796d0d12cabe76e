//! The image store under a data directory:
//!
//! ```text
//! blobs/sha256/<hex>        manifests, indexes, configs (and layer blobs while unpacking)
//! layers/sha256/<hex>/      unpacked layers in overlayfs form, keyed by layer blob digest
//! images/<sha256(ref)>.json one record per reference (see ImageRecord)
//! tmp/                      downloads and unpacks in progress
//! ```
//!
//! Layers shared between images are stored once. The runtime mounts overlayfs with
//! `lowerdir=` the directories [`ImageStore::layer_dirs`] returns.

mod content;
mod record;

pub use content::BlobWriter;
pub use record::{unix_ms, ImageRecord};

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::digest::DigestError;
use crate::gc::{DiskStats, Statvfs};
use crate::manifest::{ContainerConfig, ImageConfigFile};
use crate::reference::{ImageRef, ReferenceError};
use crate::unpack::UnpackError;
pub(crate) use content::remove_tree;
use record::{record_file, write_atomic};

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Content did not match its digest, or the digest is malformed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A layer could not be unpacked.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// The image string does not parse.
    #[error("invalid image reference: {0}")]
    Reference(#[from] ReferenceError),
    /// A record or config blob is not the JSON expected.
    #[error("corrupt store entry {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// No image under that reference.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// The image is used by a container.
    #[error("image {0:?} is in use by a container")]
    InUse(String),
}

impl StoreError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A content-addressed image store rooted at a data directory. Cheap to clone; clones share
/// the in-process set of leased digests that GC must not delete.
#[derive(Clone)]
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) disk: Arc<dyn DiskStats>,
    leases: Arc<Mutex<HashMap<String, usize>>>,
    digest_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.root)
            .finish()
    }
}

/// One entry of a node's `status.images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    /// `repo:tag` names, then `repo@digest` names.
    pub names: Vec<String>,
    /// Image size in bytes.
    pub size_bytes: u64,
}

/// Keeps digests safe from GC while a pull or import is between downloading content and
/// writing its record. Released on drop.
pub struct Lease {
    leases: Arc<Mutex<HashMap<String, usize>>>,
    digests: Vec<String>,
}

impl Lease {
    /// Adds a digest to the lease.
    pub fn add(&mut self, digest: &str) {
        *self
            .leases
            .lock()
            .expect("lease lock")
            .entry(digest.to_string())
            .or_default() += 1;
        self.digests.push(digest.to_string());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut m = self.leases.lock().expect("lease lock");
        for d in &self.digests {
            if let Some(n) = m.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    m.remove(d);
                }
            }
        }
    }
}

impl ImageStore {
    /// Opens (creating if needed) a store under `data_dir`, measuring disk usage with statvfs.
    pub fn open(data_dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with_disk_stats(data_dir, Arc::new(Statvfs))
    }

    /// Opens a store with an explicit disk-usage source (the GC's seam).
    pub fn open_with_disk_stats(
        data_dir: impl Into<PathBuf>,
        disk: Arc<dyn DiskStats>,
    ) -> Result<Self, StoreError> {
        let root = data_dir.into();
        for d in ["blobs/sha256", "layers/sha256", "images", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(StoreError::io(&p))?;
        }
        Ok(ImageStore {
            root,
            disk,
            leases: Arc::default(),
            digest_locks: Arc::default(),
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts an empty lease (see [`Lease`]).
    pub fn lease(&self) -> Lease {
        Lease {
            leases: self.leases.clone(),
            digests: Vec::new(),
        }
    }

    /// An async lock per digest, shared by clones of this store, so one task at a time
    /// fetches or unpacks a given layer. Unused locks are dropped from the table.
    pub fn digest_lock(&self, digest: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.digest_locks.lock().expect("digest lock table");
        m.retain(|_, l| Arc::strong_count(l) > 1);
        m.entry(digest.to_string()).or_default().clone()
    }

    pub(crate) fn leased(&self) -> HashSet<String> {
        self.leases
            .lock()
            .expect("lease lock")
            .keys()
            .cloned()
            .collect()
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Writes (or replaces) the record for its reference, atomically.
    pub fn put_record(&self, rec: &ImageRecord) -> Result<(), StoreError> {
        let p = record_file(&self.images_dir(), &rec.reference);
        let bytes = serde_json::to_vec_pretty(rec).expect("record serializes");
        write_atomic(&p, &bytes).map_err(StoreError::io(&p))
    }

    /// All records, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let dir = self.images_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
            let p = e.map_err(StoreError::io(&dir))?.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let data = match fs::read(&p) {
                Ok(d) => d,
                // Removed concurrently.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(&p)(e)),
            };
            let rec: ImageRecord =
                serde_json::from_slice(&data).map_err(|source| StoreError::Json {
                    path: p.clone(),
                    source,
                })?;
            out.push(rec);
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// The record for a reference: by key, and for digest references also any record of the
    /// same repository whose index or manifest digest matches.
    pub fn get(&self, r: &ImageRef) -> Result<Option<ImageRecord>, StoreError> {
        let key = ImageRecord::key_for(r);
        let p = record_file(&self.images_dir(), &key);
        match fs::read(&p) {
            Ok(data) => {
                return serde_json::from_slice(&data)
                    .map(Some)
                    .map_err(|source| StoreError::Json { path: p, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&p)(e)),
        }
        let Some(d) = r.digest() else { return Ok(None) };
        let repo = r.repository();
        Ok(self.list()?.into_iter().find(|rec| {
            rec.repository() == repo && (rec.repo_digest == d || rec.manifest_digest == d)
        }))
    }

    /// Looks an image string up as the kubelet writes it in a pod (`busybox`, `x:1`, ...).
    pub fn find(&self, image: &str) -> Result<Option<ImageRecord>, StoreError> {
        self.get(&ImageRef::parse_with_default_tag(image)?)
    }

    /// Whether the image is present (record and all layers), for pull-policy decisions.
    pub fn is_present(&self, image: &str) -> Result<bool, StoreError> {
        Ok(self
            .find(image)?
            .is_some_and(|rec| rec.layer_digests.iter().all(|d| self.has_layer(d))))
    }

    fn require(&self, image: &str) -> Result<ImageRecord, StoreError> {
        self.find(image)?
            .ok_or_else(|| StoreError::NotFound(image.to_string()))
    }

    /// The overlayfs lower directories of an image, TOP layer first (the order `lowerdir=`
    /// wants). Fails if a layer is missing.
    pub fn layer_dirs(&self, image: &str) -> Result<Vec<PathBuf>, StoreError> {
        let rec = self.require(image)?;
        rec.layer_digests
            .iter()
            .rev()
            .map(|d| {
                let p = self.layer_path(d)?;
                if p.is_dir() {
                    Ok(p)
                } else {
                    Err(StoreError::Io {
                        source: io::Error::new(io::ErrorKind::NotFound, "layer not unpacked"),
                        path: p,
                    })
                }
            })
            .collect()
    }

    /// The image's execution defaults (Entrypoint, Cmd, Env, WorkingDir, User).
    pub fn image_config(&self, image: &str) -> Result<ContainerConfig, StoreError> {
        let rec = self.require(image)?;
        let data = self.read_blob(&rec.config_digest)?;
        let cfg: ImageConfigFile =
            serde_json::from_slice(&data).map_err(|source| StoreError::Json {
                path: self.blob_path(&rec.config_digest).unwrap_or_default(),
                source,
            })?;
        Ok(cfg.config.unwrap_or_default())
    }

    /// Marks the image used now (the kubelet calls this when it starts a container from it);
    /// GC evicts least recently used images first.
    pub fn touch(&self, image: &str) -> Result<(), StoreError> {
        self.set_last_used(image, SystemTime::now())
    }

    /// Sets the last-used time explicitly.
    pub fn set_last_used(&self, image: &str, t: SystemTime) -> Result<(), StoreError> {
        let mut rec = self.require(image)?;
        rec.last_used_ms = unix_ms(t);
        self.put_record(&rec)
    }

    /// Removes the image's record unless `in_use` says a container uses it, then deletes the
    /// layers and blobs no remaining image references. Returns the removed record.
    pub fn remove(
        &self,
        image: &str,
        in_use: impl Fn(&ImageRecord) -> bool,
    ) -> Result<ImageRecord, StoreError> {
        let rec = self.require(image)?;
        if in_use(&rec) {
            return Err(StoreError::InUse(rec.reference));
        }
        self.remove_record(&rec)?;
        self.prune()?;
        Ok(rec)
    }

    pub(crate) fn remove_record(&self, rec: &ImageRecord) -> Result<(), StoreError> {
        let p = record_file(&self.images_dir(), &rec.reference);
        fs::remove_file(&p).map_err(StoreError::io(&p))
    }

    /// The node's `status.images` as the kubelet reports them: one entry per image ID (config
    /// digest) with its `repo:tag` names then `repo@digest` names, largest first, at most `max`
    /// (upstream `nodeStatusMaxImages`, 50).
    pub fn node_status_images(&self, max: usize) -> Result<Vec<NodeImage>, StoreError> {
        let mut by_id: Vec<(String, NodeImage, Vec<String>)> = Vec::new();
        for rec in self.list()? {
            let idx = match by_id.iter().position(|(id, _, _)| *id == rec.config_digest) {
                Some(i) => i,
                None => {
                    by_id.push((
                        rec.config_digest.clone(),
                        NodeImage {
                            names: Vec::new(),
                            size_bytes: rec.size,
                        },
                        Vec::new(),
                    ));
                    by_id.len() - 1
                }
            };
            let (_, img, digests) = &mut by_id[idx];
            if !rec.reference.contains('@') && !img.names.contains(&rec.reference) {
                img.names.push(rec.reference.clone());
            }
            let id = rec.image_id();
            if !digests.contains(&id) {
                digests.push(id);
            }
        }
        let mut out: Vec<NodeImage> = by_id
            .into_iter()
            .map(|(_, mut img, digests)| {
                img.names.extend(digests);
                img
            })
            .collect();
        out.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then(a.names.cmp(&b.names)));
        out.truncate(max);
        Ok(out)
    }

    /// Deletes blobs and layers that no record references and no lease holds, and temporary
    /// files older than an hour. Returns how many entries were removed.
    pub fn prune(&self) -> Result<usize, StoreError> {
        let mut keep: HashSet<String> = self.leased();
        for rec in self.list()? {
            keep.extend(rec.digests().map(|d| d.to_string()));
        }
        let mut removed = 0;
        for sub in ["blobs/sha256", "layers/sha256"] {
            let dir = self.root.join(sub);
            for e in fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
                let e = e.map_err(StoreError::io(&dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&format!("sha256:{name}")) {
                    remove_tree(&e.path())?;
                    removed += 1;
                }
            }
        }
        let tmp = self.root.join("tmp");
        for e in fs::read_dir(&tmp).map_err(StoreError::io(&tmp))? {
            let e = e.map_err(StoreError::io(&tmp))?;
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old {
                remove_tree(&e.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
