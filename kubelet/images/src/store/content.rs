//! Content-addressed blobs (`blobs/sha256/<hex>`) and unpacked layers (`layers/sha256/<hex>/`).
//! Everything is written under `tmp/` first and renamed into place once verified, so a path in
//! `blobs/` or `layers/` always holds complete, verified content.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::{ImageStore, StoreError};
use crate::digest::{sha256_hex, DigestError, Verifier};
use crate::unpack::{unpack_layer, UnpackStats};

impl ImageStore {
    /// Path of a blob (whether or not it exists).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("blobs/sha256").join(sha256_hex(digest)?))
    }

    /// Path of an unpacked layer directory, keyed by the layer blob's digest.
    pub fn layer_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("layers/sha256").join(sha256_hex(digest)?))
    }

    /// Whether the blob is stored.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Whether the layer is unpacked.
    pub fn has_layer(&self, digest: &str) -> bool {
        self.layer_path(digest).is_ok_and(|p| p.is_dir())
    }

    /// Reads a stored blob and re-checks its digest (used for the small JSON blobs).
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(digest)?;
        let data = fs::read(&p).map_err(StoreError::io(&p))?;
        crate::digest::verify(&data, digest)?;
        Ok(data)
    }

    /// Stores `data` under `digest` after checking it hashes to `digest`.
    pub fn put_blob(&self, digest: &str, data: &[u8]) -> Result<PathBuf, StoreError> {
        crate::digest::verify(data, digest)?;
        let dst = self.blob_path(digest)?;
        if dst.is_file() {
            return Ok(dst);
        }
        let tmp = self.tmp_path("blob");
        fs::write(&tmp, data).map_err(StoreError::io(&tmp))?;
        self.commit_file(&tmp, &dst)?;
        Ok(dst)
    }

    /// A writer that streams a blob to `tmp/`, hashing as it goes; [`BlobWriter::commit`] moves
    /// it into `blobs/` only when digest and size match.
    pub async fn blob_writer(
        &self,
        digest: &str,
        size: Option<u64>,
    ) -> Result<BlobWriter, StoreError> {
        let dst = self.blob_path(digest)?;
        let tmp = self.tmp_path("blob");
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(StoreError::io(&tmp))?;
        Ok(BlobWriter {
            file: tokio::io::BufWriter::with_capacity(256 * 1024, file),
            verifier: Verifier::default(),
            digest: digest.to_string(),
            size,
            tmp,
            dst,
        })
    }

    /// Unpacks the stored blob `digest` into `layers/sha256/<hex>/` (no-op when present).
    pub fn unpack_layer_blob(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let blob = self.blob_path(digest)?;
        let f = fs::File::open(&blob).map_err(StoreError::io(&blob))?;
        self.unpack_layer_verified(digest, f, None)
    }

    /// Unpacks a layer from a stream, hashing the (compressed) stream as it is read: the layer
    /// is committed only when the stream's digest (and `size`, if given) match. Used by imports,
    /// which read layers straight out of an archive.
    pub fn unpack_layer_verified(
        &self,
        digest: &str,
        reader: impl Read,
        size: Option<u64>,
    ) -> Result<PathBuf, StoreError> {
        let dst = self.layer_path(digest)?;
        if dst.is_dir() {
            return Ok(dst);
        }
        let tmp = self.tmp_path("layer");
        let mut hashing = HashingReader {
            inner: reader,
            verifier: Verifier::default(),
        };
        let result: Result<UnpackStats, StoreError> = unpack_layer(&mut hashing, &tmp)
            .map_err(StoreError::from)
            .and_then(|stats| {
                // Drain trailing bytes (tar padding after the end marker) so the digest covers
                // the whole blob.
                io::copy(&mut hashing, &mut io::sink()).map_err(StoreError::io(&tmp))?;
                Ok(stats)
            });
        let verified = result.and_then(|stats| {
            hashing.verifier.finish(digest, size)?;
            Ok(stats)
        });
        match verified {
            Ok(stats) => {
                tracing::debug!(digest, entries = stats.entries, "layer unpacked");
                // Flush the unpacked files before the rename publishes the layer: after a power
                // cut a board must not find a layer directory with empty files in it.
                if let Err(e) = syncfs(&tmp) {
                    let _ = remove_tree(&tmp);
                    return Err(e);
                }
                match fs::rename(&tmp, &dst) {
                    Ok(()) => {}
                    // Another pull of the same layer won the race: keep its copy.
                    Err(_) if dst.is_dir() => remove_tree(&tmp)?,
                    Err(e) => return Err(StoreError::io(&dst)(e)),
                }
                Ok(dst)
            }
            Err(e) => {
                let _ = remove_tree(&tmp);
                Err(e)
            }
        }
    }

    pub(crate) fn tmp_path(&self, kind: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{kind}-{}-{n}", std::process::id()))
    }

    fn commit_file(&self, tmp: &Path, dst: &Path) -> Result<(), StoreError> {
        fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(StoreError::io(tmp))?;
        fs::rename(tmp, dst).map_err(StoreError::io(dst))
    }
}

/// `syncfs(2)` on the filesystem holding `p`.
fn syncfs(p: &Path) -> Result<(), StoreError> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(p).map_err(StoreError::io(p))?;
    // SAFETY: `f` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(StoreError::io(p)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes a file or directory tree, ignoring "not found".
pub(crate) fn remove_tree(p: &Path) -> Result<(), StoreError> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(StoreError::io(p))
}

struct HashingReader<R> {
    inner: R,
    verifier: Verifier,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.verifier.update(&buf[..n]);
        Ok(n)
    }
}

/// A blob being streamed to disk; see [`ImageStore::blob_writer`].
pub struct BlobWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    verifier: Verifier,
    digest: String,
    size: Option<u64>,
    tmp: PathBuf,
    dst: PathBuf,
}

impl BlobWriter {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.verifier.update(chunk);
        if let Some(s) = self.size {
            if self.verifier.len() > s {
                return Err(DigestError::SizeMismatch {
                    digest: self.digest.clone(),
                    expected: s,
                    actual: self.verifier.len(),
                }
                .into());
            }
        }
        self.file
            .write_all(chunk)
            .await
            .map_err(StoreError::io(&self.tmp))
    }

    /// Verifies digest and size, then renames into `blobs/`. On mismatch the partial file is
    /// deleted and nothing is stored.
    pub async fn commit(mut self) -> Result<PathBuf, StoreError> {
        self.file.flush().await.map_err(StoreError::io(&self.tmp))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(StoreError::io(&self.tmp))?;
        std::mem::take(&mut self.verifier).finish(&self.digest, self.size)?;
        tokio::fs::rename(&self.tmp, &self.dst)
            .await
            .map_err(StoreError::io(&self.dst))?;
        Ok(self.dst.clone())
    }
}

impl Drop for BlobWriter {
    /// Removes the partial file unless it was committed (then the temporary name is gone).
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}
