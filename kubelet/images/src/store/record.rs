//! Image records: what a reference resolved to, written atomically under `images/`.

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::sha256_digest;
use crate::reference::ImageRef;

/// One image known to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The record's key: normalised `repo:tag`, or `repo@digest` for digest references.
    pub reference: String,
    /// The digest the reference resolved to at the registry (the index digest for multi-arch
    /// images, else the manifest digest): what `imageID` reports as `repo@digest`.
    pub repo_digest: String,
    /// The platform manifest's digest.
    pub manifest_digest: String,
    /// The image config blob's digest (upstream's image ID).
    pub config_digest: String,
    /// Layer blob digests, base layer first.
    pub layer_digests: Vec<String>,
    /// Bytes of config plus layer blobs as the manifest gives them (compressed sizes).
    pub size: u64,
    /// `os/arch[/variant]` of the chosen manifest.
    pub platform: String,
    /// When the record was written, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When a container last used the image (or it was pulled), ms since the epoch.
    pub last_used_ms: u64,
}

impl ImageRecord {
    /// The key a reference is stored under: digest references by digest, others by tag.
    pub fn key_for(r: &ImageRef) -> String {
        match r.digest() {
            Some(d) => format!("{}@{d}", r.repository()),
            None => r.to_string(),
        }
    }

    /// The repository part of [`ImageRecord::reference`].
    pub fn repository(&self) -> &str {
        if let Some((repo, _)) = self.reference.split_once('@') {
            return repo;
        }
        let slash = self.reference.rfind('/').map_or(0, |i| i + 1);
        match self.reference[slash..].rfind(':') {
            Some(i) => &self.reference[..slash + i],
            None => &self.reference,
        }
    }

    /// `repository@repo_digest`, what the kubelet reports as a container's `imageID`.
    pub fn image_id(&self) -> String {
        format!("{}@{}", self.repository(), self.repo_digest)
    }

    /// Every digest this image keeps alive in the store.
    pub fn digests(&self) -> impl Iterator<Item = &str> {
        [
            self.repo_digest.as_str(),
            self.manifest_digest.as_str(),
            self.config_digest.as_str(),
        ]
        .into_iter()
        .chain(self.layer_digests.iter().map(String::as_str))
    }
}

/// Milliseconds since the epoch for `t`.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Record file name for a key: the sha256 of the key, so any reference maps to a safe name.
pub(crate) fn record_file(dir: &Path, key: &str) -> PathBuf {
    let h = sha256_digest(key.as_bytes());
    dir.join(format!("{}.json", &h["sha256:".len()..]))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_repository() {
        let r = ImageRef::parse_with_default_tag("127.0.0.1:5000/a/b").unwrap();
        assert_eq!(ImageRecord::key_for(&r), "127.0.0.1:5000/a/b:latest");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let rd = ImageRef::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(
            ImageRecord::key_for(&rd),
            format!("docker.io/library/busybox@{d}")
        );
        let mut rec = ImageRecord {
            reference: "127.0.0.1:5000/a/b:latest".into(),
            repo_digest: d.into(),
            manifest_digest: d.into(),
            config_digest: d.into(),
            layer_digests: vec![],
            size: 0,
            platform: "linux/amd64".into(),
            created_ms: 0,
            last_used_ms: 0,
        };
        assert_eq!(rec.repository(), "127.0.0.1:5000/a/b");
        assert_eq!(rec.image_id(), format!("127.0.0.1:5000/a/b@{d}"));
        rec.reference = format!("docker.io/library/busybox@{d}");
        assert_eq!(rec.repository(), "docker.io/library/busybox");
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = record_file(dir.path(), "k");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
