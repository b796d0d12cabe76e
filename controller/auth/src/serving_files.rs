//! The kubelet's serving certificate on disk (`<data-dir>/pki/kubelet-server.{crt,key}`, as
//! upstream keeps `kubelet-server-current.pem`), so a restarted kubelet serves with the
//! certificate it already had instead of a self-signed one until a new CSR is approved.

use std::io;
use std::path::{Path, PathBuf};

/// Where a serving certificate and key are kept.
#[derive(Debug, Clone)]
pub struct ServingCertFiles {
    dir: PathBuf,
}

impl ServingCertFiles {
    /// Files in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ServingCertFiles { dir: dir.into() }
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.join("kubelet-server.crt")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("kubelet-server.key")
    }

    /// The stored certificate and key, when both are there and the certificate is valid at
    /// `now` (unix seconds).
    pub fn load_valid(&self, now: i64) -> Option<(String, String)> {
        let cert = std::fs::read_to_string(self.cert_path()).ok()?;
        let key = std::fs::read_to_string(self.key_path()).ok()?;
        let (not_before, not_after) = bramble_pki::validity_unix(&cert).ok()?;
        (not_before <= now && now < not_after).then_some((cert, key))
    }

    /// Stores `cert` and `key` (the key readable by its owner only), each written whole
    /// (temporary file, then rename).
    pub fn save(&self, cert: &str, key: &str) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.key_path(), key, 0o600)?;
        write_atomic(&self.cert_path(), cert, 0o644)
    }
}

fn write_atomic(path: &Path, data: &str, mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(data.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_saved_certificate_loads_while_valid() {
        let dir = tempfile::tempdir().unwrap();
        let files = ServingCertFiles::new(dir.path().join("pki"));
        let now = chrono::Utc::now().timestamp();
        assert!(files.load_valid(now).is_none());
        let pki = bramble_pki::ClusterPki::load_or_create(
            &dir.path().join("ca"),
            &bramble_pki::PkiOptions::new("test", &[]),
        )
        .unwrap();
        let (cert_pem, key_pem) = pki
            .issue_client_cert(
                "system:node:n1",
                &["system:nodes"],
                Duration::from_secs(3600),
            )
            .unwrap();
        files.save(&cert_pem, &key_pem).unwrap();
        let (cert, key) = files.load_valid(now).unwrap();
        assert_eq!((cert, key), (cert_pem, key_pem));
        let mode = std::fs::metadata(dir.path().join("pki/kubelet-server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // expired by then
        assert!(files.load_valid(now + 7200).is_none());
    }
}
