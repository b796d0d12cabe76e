//! Importing images from archives for air-gapped boards: OCI image layout tarballs (`oci-layout`,
//! `index.json`, `blobs/`) as `skopeo copy ... oci-archive:` writes them, and `docker save`
//! tarballs (`manifest.json`). Every blob is checked against its digest; layers are unpacked
//! straight out of the archive into the layer store.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::digest::{sha256_digest, Verifier};
use crate::manifest::{
    AnyManifest, Descriptor, ImageConfigFile, ImageIndex, ImageManifest, DOCKER_CONFIG,
    DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, DOCKER_MANIFEST,
};
use crate::platform::Platform;
use crate::reference::{ImageRef, ReferenceError};
use crate::store::{unix_ms, ImageRecord, ImageStore, Lease, StoreError};
use crate::unpack::Compression;

/// containerd's annotation carrying the full image name in OCI layouts.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming a manifest in a layout (often just a tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An archive that could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the archive failed.
    #[error("{path}: {source}")]
    Io {
        /// The archive or temporary file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Neither an OCI layout nor a docker-save archive, or inconsistent contents.
    #[error("{path}: {detail}")]
    Format {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An image name in the archive does not parse.
    #[error("{path}: image name {name:?}: {source}")]
    Reference {
        /// The archive.
        path: PathBuf,
        /// The name.
        name: String,
        /// Why.
        source: ReferenceError,
    },
    /// The store refused content (digest mismatch, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Options of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Platform a multi-arch index in the archive resolves to.
    pub platform: Platform,
    /// Repository used for manifests named only by a tag (`ref.name` = `v1`) or not at all.
    pub default_name: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            platform: Platform::current(),
            default_name: None,
        }
    }
}

impl ImageStore {
    /// Imports an OCI-layout or docker-save tarball for this node's platform.
    pub fn import(&self, archive: &Path) -> Result<Vec<ImageRecord>, ImportError> {
        import_archive(self, archive, &ImportOptions::default())
    }
}

/// Where each regular file of the archive lives: data offset and size.
struct Archive {
    path: PathBuf,
    file: File,
    files: HashMap<String, (u64, u64)>,
}

impl Archive {
    fn open(path: &Path) -> Result<Self, ImportError> {
        let io_err = |source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut files = HashMap::new();
        let mut links = Vec::new();
        {
            let f = File::open(path).map_err(io_err)?;
            let mut ar = tar::Archive::new(f);
            for e in ar.entries().map_err(io_err)? {
                let e = e.map_err(io_err)?;
                let name = normalize(&e.path().map_err(io_err)?);
                match e.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        files.insert(name, (e.raw_file_position(), e.size()));
                    }
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        if let Some(t) = e.link_name().map_err(io_err)? {
                            links.push((name, e.header().entry_type(), t.into_owned()));
                        }
                    }
                    _ => {}
                }
            }
        }
        for (name, kind, target) in links {
            let resolved = if kind == tar::EntryType::Symlink {
                let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                normalize(&base.join(target))
            } else {
                normalize(&target)
            };
            if let Some(v) = files.get(&resolved).copied() {
                files.insert(name, v);
            }
        }
        Ok(Archive {
            path: path.to_path_buf(),
            file: File::open(path).map_err(io_err)?,
            files,
        })
    }

    fn format(&self, detail: impl Into<String>) -> ImportError {
        ImportError::Format {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn reader(&self, name: &str) -> Result<(impl Read + '_, u64), ImportError> {
        let (off, size) = *self
            .files
            .get(name)
            .ok_or_else(|| self.format(format!("missing {name}")))?;
        let mut f = &self.file;
        f.seek(SeekFrom::Start(off))
            .map_err(|source| ImportError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok((f.take(size), size))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, ImportError> {
        let (mut r, size) = self.reader(name)?;
        let mut v = Vec::with_capacity(size as usize);
        r.read_to_end(&mut v).map_err(|source| ImportError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(v)
    }

    fn blob_name(digest: &str) -> Result<String, StoreError> {
        Ok(format!(
            "blobs/sha256/{}",
            crate::digest::sha256_hex(digest)?
        ))
    }
}

fn normalize(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.join("/")
}

/// Imports every image of the archive at `path`; returns the records written.
pub fn import_archive(
    store: &ImageStore,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Vec<ImageRecord>, ImportError> {
    let _span = tracing::info_span!("image_import", archive = %path.display()).entered();
    // A gzip-compressed archive (`.tar.gz`) is inflated to tmp/ first: blobs are read by offset.
    let inflated = inflate_if_gzip(store, path)?;
    let ar = Archive::open(inflated.as_ref().map_or(path, |t| t.path()))?;
    let mut lease = store.lease();
    if ar.files.contains_key("index.json") {
        import_oci_layout(store, &ar, opts, &mut lease)
    } else if ar.files.contains_key("manifest.json") {
        import_docker_save(store, &ar, opts, &mut lease)
    } else {
        Err(ar.format(
            "neither an OCI image layout (index.json) nor a docker save archive (manifest.json)",
        ))
    }
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn inflate_if_gzip(store: &ImageStore, path: &Path) -> Result<Option<TempFile>, ImportError> {
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ImportError::Io { path: p, source }
    };
    let mut head = [0u8; 2];
    let mut f = File::open(path).map_err(io_err(path))?;
    let n = f.read(&mut head).map_err(io_err(path))?;
    if Compression::detect(&head[..n]) != Compression::Gzip {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let tmp = TempFile(store.tmp_path("import"));
    let mut out = File::create(tmp.path()).map_err(io_err(tmp.path()))?;
    io::copy(
        &mut flate2::read::MultiGzDecoder::new(io::BufReader::new(f)),
        &mut out,
    )
    .map_err(io_err(path))?;
    Ok(Some(tmp))
}

fn name_ref(ar: &Archive, name: &str, opts: &ImportOptions) -> Result<ImageRef, ImportError> {
    let full = match &opts.default_name {
        Some(base) if !name.contains(['/', ':', '@']) => format!("{base}:{name}"),
        _ => name.to_string(),
    };
    ImageRef::parse_with_default_tag(&full).map_err(|source| ImportError::Reference {
        path: ar.path.clone(),
        name: full,
        source,
    })
}

fn import_oci_layout(
    store: &ImageStore,
    ar: &Archive,
    opts: &ImportOptions,
    lease: &mut Lease,
) -> Result<Vec<ImageRecord>, ImportError> {
    let index: ImageIndex = serde_json::from_slice(&ar.read("index.json")?)
        .map_err(|e| ar.format(format!("index.json: {e}")))?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        let name = desc
            .annotations
            .get(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| desc.annotations.get(ANNOTATION_REF_NAME))
            .cloned()
            .or_else(|| opts.default_name.clone())
            .ok_or_else(|| {
                ar.format(format!(
                    "manifest {} has no image name; give a default name",
                    desc.digest
                ))
            })?;
        let r = name_ref(ar, &name, opts)?;
        let top = read_verified_blob(store, ar, desc, lease)?;
        let (manifest, manifest_digest, platform) = match AnyManifest::parse(&top)
            .map_err(|e| ar.format(format!("manifest {}: {e}", desc.digest)))?
        {
            AnyManifest::Image(m) => (m, desc.digest.clone(), None),
            AnyManifest::Index(idx) => {
                let entry = opts.platform.select(&idx.manifests).ok_or_else(|| {
                    ar.format(format!(
                        "no match for platform {} in manifest {}",
                        opts.platform, desc.digest
                    ))
                })?;
                let bytes = read_verified_blob(store, ar, entry, lease)?;
                let m: ImageManifest = serde_json::from_slice(&bytes)
                    .map_err(|e| ar.format(format!("manifest {}: {e}", entry.digest)))?;
                let p = entry.platform.clone().map(|p| Platform {
                    os: p.os,
                    architecture: p.architecture,
                    variant: p.variant,
                });
                (m, entry.digest.clone(), p)
            }
        };
        let config = read_verified_blob(store, ar, &manifest.config, lease)?;
        for l in &manifest.layers {
            lease.add(&l.digest);
            if !store.has_layer(&l.digest) {
                let (reader, _) = ar.reader(&Archive::blob_name(&l.digest)?)?;
                store.unpack_layer_verified(&l.digest, reader, Some(l.size))?;
            }
        }
        out.push(write_record(
            store,
            ar,
            r,
            desc.digest.clone(),
            manifest_digest,
            &manifest,
            &config,
            platform,
        )?);
    }
    Ok(out)
}

fn read_verified_blob(
    store: &ImageStore,
    ar: &Archive,
    d: &Descriptor,
    lease: &mut Lease,
) -> Result<Vec<u8>, ImportError> {
    lease.add(&d.digest);
    let data = ar.read(&Archive::blob_name(&d.digest)?)?;
    if data.len() as u64 != d.size {
        return Err(StoreError::from(crate::digest::DigestError::SizeMismatch {
            digest: d.digest.clone(),
            expected: d.size,
            actual: data.len() as u64,
        })
        .into());
    }
    store.put_blob(&d.digest, &data)?;
    Ok(data)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker_save(
    store: &ImageStore,
    ar: &Archive,
    opts: &ImportOptions,
    lease: &mut Lease,
) -> Result<Vec<ImageRecord>, ImportError> {
    let entries: Vec<DockerSaveEntry> = serde_json::from_slice(&ar.read("manifest.json")?)
        .map_err(|e| ar.format(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let config = ar.read(&normalize(Path::new(&e.config)))?;
        let config_digest = sha256_digest(&config);
        lease.add(&config_digest);
        store.put_blob(&config_digest, &config)?;
        let mut layers = Vec::new();
        for lp in &e.layers {
            let name = normalize(Path::new(lp));
            // Hash first (the layer's name in the archive is not its digest in old formats),
            // then unpack while verifying the same digest.
            let (mut r, size) = ar.reader(&name)?;
            let mut v = Verifier::default();
            let mut head = Vec::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = r.read(&mut buf).map_err(|source| ImportError::Io {
                    path: ar.path.clone(),
                    source,
                })?;
                if n == 0 {
                    break;
                }
                if head.len() < 8 {
                    head.extend_from_slice(&buf[..n.min(8)]);
                }
                v.update(&buf[..n]);
            }
            let digest = v.digest();
            lease.add(&digest);
            if !store.has_layer(&digest) {
                let (reader, _) = ar.reader(&name)?;
                store.unpack_layer_verified(&digest, reader, Some(size))?;
            }
            let media_type = match Compression::detect(&head) {
                Compression::Gzip => DOCKER_LAYER_GZIP,
                _ => DOCKER_LAYER_TAR,
            };
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest,
                size,
                platform: None,
                annotations: Default::default(),
            });
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: Descriptor {
                media_type: DOCKER_CONFIG.into(),
                digest: config_digest,
                size: config.len() as u64,
                platform: None,
                annotations: Default::default(),
            },
            layers,
        };
        let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let manifest_digest = sha256_digest(&bytes);
        lease.add(&manifest_digest);
        store.put_blob(&manifest_digest, &bytes)?;
        let names = match (e.repo_tags.filter(|t| !t.is_empty()), &opts.default_name) {
            (Some(tags), _) => tags,
            (None, Some(d)) => vec![d.clone()],
            (None, None) => return Err(ar.format("image without RepoTags; give a default name")),
        };
        for n in names {
            let r = name_ref(ar, &n, opts)?;
            out.push(write_record(
                store,
                ar,
                r,
                manifest_digest.clone(),
                manifest_digest.clone(),
                &manifest,
                &config,
                None,
            )?);
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn write_record(
    store: &ImageStore,
    ar: &Archive,
    r: ImageRef,
    repo_digest: String,
    manifest_digest: String,
    manifest: &ImageManifest,
    config: &[u8],
    platform: Option<Platform>,
) -> Result<ImageRecord, ImportError> {
    let cfg: ImageConfigFile = serde_json::from_slice(config)
        .map_err(|e| ar.format(format!("image config {}: {e}", manifest.config.digest)))?;
    let platform = platform
        .map(|p| p.to_string())
        .unwrap_or_else(|| format!("{}/{}", cfg.os, cfg.architecture));
    let now = unix_ms(SystemTime::now());
    let rec = ImageRecord {
        reference: ImageRecord::key_for(&r),
        repo_digest,
        manifest_digest,
        config_digest: manifest.config.digest.clone(),
        layer_digests: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
        size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        platform,
        created_ms: now,
        last_used_ms: now,
    };
    store.put_record(&rec)?;
    tracing::info!(image = %rec.reference, "image imported");
    Ok(rec)
}
