//! The upgrade bundle `bramble node upgrade IMAGE` sends in the body of `POST /v1/upgrade`: one
//! JSON line (the [`UpgradeManifest`]), then the bytes of each boot file in order, then the
//! squashfs root. Every part carries its size and SHA-256; the node checks each as it streams it
//! to its destination, so a truncated or corrupted upload is refused before anything is switched.

use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest manifest line accepted.
const MAX_MANIFEST: usize = 64 * 1024;

/// One part of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundlePart {
    /// File name on the boot partition (`vmlinuz`, `initrd.img`, ...); `root` for the squashfs.
    pub name: String,
    /// Length in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// The first line of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeManifest {
    /// Board the image was built for (must be the node's board).
    pub board: String,
    /// Builder version of the image (informational).
    pub version: String,
    /// Boot files, in the order their bytes follow.
    pub files: Vec<BundlePart>,
    /// The squashfs root, after the boot files.
    pub root: BundlePart,
}

impl UpgradeManifest {
    /// Total body length: the manifest line plus every part.
    pub fn body_len(&self) -> u64 {
        self.line().len() as u64 + self.files.iter().map(|f| f.size).sum::<u64>() + self.root.size
    }

    /// The manifest line (JSON and a newline).
    pub fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Check the names: plain file names, no `root` among the files, none repeated.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for f in &self.files {
            let ok = !f.name.is_empty()
                && f.name != "root"
                && !f.name.starts_with('.')
                && f.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
            if !ok {
                return Err(format!("files: `{}` is not a plain boot file name", f.name));
            }
            if !seen.insert(&f.name) {
                return Err(format!("files: `{}` appears twice", f.name));
            }
        }
        for p in self.files.iter().chain([&self.root]) {
            if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{}: sha256 is not 64 hex digits", p.name));
            }
        }
        if self.root.size == 0 {
            return Err("root: empty".into());
        }
        Ok(())
    }
}

/// Read the manifest line from the start of the body.
pub fn read_manifest<R: BufRead>(r: &mut R) -> Result<UpgradeManifest, String> {
    let mut line = Vec::new();
    r.take(MAX_MANIFEST as u64)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("reading the manifest: {e}"))?;
    if line.last() != Some(&b'\n') {
        return Err("manifest line missing or longer than 64 KiB".into());
    }
    let m: UpgradeManifest = serde_json::from_slice(&line).map_err(|e| format!("manifest: {e}"))?;
    m.validate()?;
    Ok(m)
}

/// Hex SHA-256 of a digest.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copy exactly `part.size` bytes from `r` to `w`, checking the SHA-256 on the way.
pub fn copy_verified<R: Read + ?Sized, W: Write + ?Sized>(
    r: &mut R,
    w: &mut W,
    part: &BundlePart,
) -> Result<(), String> {
    let mut h = Sha256::new();
    let mut left = part.size;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = r
            .read(&mut buf[..want])
            .map_err(|e| format!("{}: reading: {e}", part.name))?;
        if n == 0 {
            return Err(format!("{}: upload ended {left} bytes early", part.name));
        }
        h.update(&buf[..n]);
        w.write_all(&buf[..n])
            .map_err(|e| format!("{}: writing: {e}", part.name))?;
        left -= n as u64;
    }
    let got = hex(&h.finalize());
    if got != part.sha256 {
        return Err(format!(
            "{}: sha256 {got} does not match the manifest's {}",
            part.name, part.sha256
        ));
    }
    Ok(())
}

/// SHA-256 of the first `size` bytes of `r` (read-back verification of a written slot).
pub fn sha256_prefix<R: Read>(r: R, size: u64) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let n = std::io::copy(&mut r.take(size), &mut HashWriter(&mut h))?;
    if n != size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("only {n} of {size} bytes"),
        ));
    }
    Ok(hex(&h.finalize()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A part described from its bytes.
pub fn part_of(name: &str, bytes: &[u8]) -> BundlePart {
    BundlePart {
        name: name.into(),
        size: bytes.len() as u64,
        sha256: hex(&Sha256::digest(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: &[(&str, &[u8])], root: &[u8]) -> UpgradeManifest {
        UpgradeManifest {
            board: "qemu-virt".into(),
            version: "0.1.0".into(),
            files: files.iter().map(|(n, b)| part_of(n, b)).collect(),
            root: part_of("root", root),
        }
    }

    #[test]
    fn bundle_streams_and_verifies() {
        let m = manifest(
            &[("vmlinuz", b"kernel"), ("initrd.img", b"initrd")],
            b"hsqs...",
        );
        let mut body = m.line();
        body.extend_from_slice(b"kernelinitrdhsqs...");
        assert_eq!(body.len() as u64, m.body_len());
        let mut r = std::io::BufReader::new(&body[..]);
        let got = read_manifest(&mut r).unwrap();
        assert_eq!(got, m);
        let mut out = Vec::new();
        for p in got.files.iter().chain([&got.root]) {
            copy_verified(&mut r, &mut out, p).unwrap();
        }
        assert_eq!(out, b"kernelinitrdhsqs...");
        assert_eq!(
            sha256_prefix(&b"hsqs...junk"[..], 7).unwrap(),
            m.root.sha256
        );
    }

    #[test]
    fn corrupted_or_short_parts_are_refused() {
        let m = manifest(&[("vmlinuz", b"kernel")], b"root");
        let mut out = Vec::new();
        let e = copy_verified(&mut &b"kernal"[..], &mut out, &m.files[0]).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = copy_verified(&mut &b"ker"[..], &mut out, &m.files[0]).unwrap_err();
        assert!(e.contains("3 bytes early"), "{e}");
    }

    #[test]
    fn manifest_names_are_checked() {
        let bad = manifest(&[("../config.txt", b"x")], b"r");
        assert!(bad.validate().unwrap_err().contains("plain boot file name"));
        let twice = manifest(&[("a", b"x"), ("a", b"y")], b"r");
        assert!(twice.validate().unwrap_err().contains("twice"));
        let mut r = std::io::BufReader::new(&b"{not json}\n"[..]);
        assert!(read_manifest(&mut r).unwrap_err().starts_with("manifest:"));
    }
}
