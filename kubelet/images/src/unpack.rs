//! Applies one layer tarball (plain, gzip or zstd) to an empty directory so that the directory
//! can serve as an overlayfs `lowerdir`: OCI whiteouts `.wh.NAME` become character devices 0/0
//! and opaque markers `.wh..wh..opq` become the `trusted.overlay.opaque=y` xattr on their dir.

use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Prefix of OCI whiteout entries.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque-directory marker.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// The overlayfs xattr marking a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// A layer that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// Reading the archive or writing the tree failed.
    #[error("unpacking layer into {path}: {source}")]
    Io {
        /// Where it happened.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// An entry path that would land outside the layer directory.
    #[error("layer entry {0:?} escapes the layer directory")]
    UnsafePath(String),
    /// The zstd stream header is invalid.
    #[error("invalid zstd layer: {0}")]
    Zstd(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Counts of what a layer held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
    /// Whiteouts turned into 0/0 character devices.
    pub whiteouts: u64,
    /// Directories marked opaque.
    pub opaque_dirs: u64,
}

/// Compression of a layer stream, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Detects from magic bytes: gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

/// Applies the layer file at `blob` to `dest` (created if missing, expected empty).
pub fn unpack_layer_file(blob: &Path, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let f = fs::File::open(blob).map_err(io_err(blob))?;
    unpack_layer(f, dest)
}

/// Applies a layer stream to `dest` (created if missing, expected empty).
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let head = buf.fill_buf().map_err(io_err(dest))?;
    match Compression::detect(head) {
        Compression::None => apply_tar(buf, dest),
        Compression::Gzip => apply_tar(flate2::bufread::MultiGzDecoder::new(buf), dest),
        Compression::Zstd => {
            let dec = ruzstd::decoding::StreamingDecoder::new(buf)
                .map_err(|e| UnpackError::Zstd(e.to_string()))?;
            apply_tar(dec, dest)
        }
    }
}

fn apply_tar(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    let root = fs::canonicalize(dest).map_err(io_err(dest))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let mut stats = UnpackStats::default();
    for entry in archive.entries().map_err(io_err(dest))? {
        let mut entry = entry.map_err(io_err(dest))?;
        let raw = entry.path().map_err(io_err(dest))?.into_owned();
        let rel = clean_relative(&raw)?;
        stats.entries += 1;
        let name = rel.file_name().map(|n| n.as_bytes().to_vec());
        match name.as_deref() {
            Some(n) if n == OPAQUE_WHITEOUT.as_bytes() => {
                let dir = ensure_parent_dir(&root, &rel)?;
                set_xattr(&dir, OVERLAY_OPAQUE_XATTR, b"y")?;
                stats.opaque_dirs += 1;
            }
            Some(n) if n.starts_with(WHITEOUT_PREFIX.as_bytes()) => {
                let dir = ensure_parent_dir(&root, &rel)?;
                let target = dir.join(std::ffi::OsStr::from_bytes(&n[WHITEOUT_PREFIX.len()..]));
                make_whiteout(&target)?;
                let (uid, gid) = (
                    entry.header().uid().unwrap_or(0),
                    entry.header().gid().unwrap_or(0),
                );
                lchown(&target, uid as u32, gid as u32)?;
                stats.whiteouts += 1;
            }
            _ => {
                if rel.as_os_str().is_empty() {
                    // The layer root itself ("./"): only its metadata matters, which the
                    // store's directory keeps as created.
                    continue;
                }
                let applied = entry.unpack_in(&root).map_err(io_err(&root.join(&rel)))?;
                if !applied {
                    return Err(UnpackError::UnsafePath(raw.display().to_string()));
                }
            }
        }
    }
    Ok(stats)
}

/// Strips leading `/` and `./`; refuses `..` components.
fn clean_relative(p: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(UnpackError::UnsafePath(p.display().to_string()))
            }
        }
    }
    Ok(out)
}

/// Creates the parent directory of `rel` under `root` and checks (after symlinks) it is still
/// inside `root`.
fn ensure_parent_dir(root: &Path, rel: &Path) -> Result<PathBuf, UnpackError> {
    let parent = root.join(rel.parent().unwrap_or(Path::new("")));
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let real = fs::canonicalize(&parent).map_err(io_err(&parent))?;
    if !real.starts_with(root) {
        return Err(UnpackError::UnsafePath(rel.display().to_string()));
    }
    Ok(real)
}

fn cstr(p: &Path) -> Result<CString, UnpackError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| UnpackError::UnsafePath(p.display().to_string()))
}

/// An overlayfs whiteout: a character device with device number 0/0.
fn make_whiteout(target: &Path) -> Result<(), UnpackError> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(target).map_err(io_err(target))?,
        Ok(_) => fs::remove_file(target).map_err(io_err(target))?,
        Err(_) => {}
    }
    let c = cstr(target)?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod has no other memory effects.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    if rc != 0 {
        return Err(io_err(target)(io::Error::last_os_error()));
    }
    Ok(())
}

fn lchown(p: &Path, uid: u32, gid: u32) -> Result<(), UnpackError> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(io_err(p))
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> Result<(), UnpackError> {
    let c = cstr(p)?;
    let n = CString::new(name).expect("xattr name has no NUL");
    // SAFETY: valid NUL-terminated strings and a value slice of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io_err(p)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Reads an xattr (used by tests and by callers checking a layer); `None` when absent.
pub fn get_xattr(p: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let c = CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let n = CString::new(name).map_err(io::Error::other)?;
    let mut buf = vec![0u8; 256];
    // SAFETY: buffer pointer and length describe a valid writable allocation.
    let rc = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENODATA) {
            Ok(None)
        } else {
            Err(e)
        };
    }
    buf.truncate(rc as usize);
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn header() -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    fn tar_gz(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (path, data) in entries {
            let mut h = header();
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, path, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_cksum();
                    b.append_data(&mut h, path, io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn whiteouts_become_overlay_char_devices_and_opaque_xattrs() {
        let layer = tar_gz(&[
            ("etc/", None),
            ("etc/hostname", Some(b"node\n")),
            ("etc/.wh.passwd", Some(b"")),
            ("var/cache/", None),
            ("var/cache/.wh..wh..opq", Some(b"")),
            ("var/cache/keep", Some(b"k")),
            ("gone/.wh.deep", Some(b"")),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("layer");
        let stats = unpack_layer(&layer[..], &dest).unwrap();
        assert_eq!(stats.whiteouts, 2);
        assert_eq!(stats.opaque_dirs, 1);
        assert_eq!(fs::read(dest.join("etc/hostname")).unwrap(), b"node\n");
        let wh = fs::symlink_metadata(dest.join("etc/passwd")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!dest.join("etc/.wh.passwd").exists());
        assert!(fs::symlink_metadata(dest.join("gone/deep"))
            .unwrap()
            .file_type()
            .is_char_device());
        assert_eq!(
            get_xattr(&dest.join("var/cache"), OVERLAY_OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
        assert!(!dest.join("var/cache/.wh..wh..opq").exists());
        assert_eq!(fs::read(dest.join("var/cache/keep")).unwrap(), b"k");
        assert_eq!(
            get_xattr(&dest.join("etc"), OVERLAY_OPAQUE_XATTR).unwrap(),
            None
        );
    }

    #[test]
    fn plain_tar_and_modes_and_symlinks() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(2);
        h.set_mode(0o4755);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_cksum();
        b.append_data(&mut h, "bin/tool", &b"#!"[..]).unwrap();
        let mut s = header();
        s.set_entry_type(tar::EntryType::Symlink);
        s.set_size(0);
        s.set_cksum();
        b.append_link(&mut s, "bin/sh", "tool").unwrap();
        let data = b.into_inner().unwrap();
        assert_eq!(Compression::detect(&data), Compression::None);
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&data[..], dir.path()).unwrap();
        let m = fs::metadata(dir.path().join("bin/tool")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        assert_eq!(
            fs::read_link(dir.path().join("bin/sh")).unwrap(),
            PathBuf::from("tool")
        );
    }

    #[test]
    fn escaping_paths_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        // Bypass tar's own path checks to craft a hostile header.
        h.as_old_mut().name[..9].copy_from_slice(b"../evil\0\0");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("l");
        assert!(matches!(
            unpack_layer(&data[..], &dest),
            Err(UnpackError::UnsafePath(_))
        ));
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn compression_detection() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"usr/"), Compression::None);
    }
}
