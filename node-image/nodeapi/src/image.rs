//! The client's side of an upgrade: taking an image built by `bramble image build` apart into
//! the bundle `POST /v1/upgrade` carries. The boot files come out of the FAT partition with
//! mtools' `mcopy`; the root is partition 2 up to the squashfs's own length (its superblock's
//! `bytes_used`, rounded to 4 KiB as mksquashfs pads it).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{io_err, NodeApiError};
use crate::upgrade::{hex, BundlePart, UpgradeManifest};

/// Boot files taken from the image, in bundle order.
pub const BUNDLE_BOOT_FILES: [&str; 3] = ["vmlinuz", "initrd.img", "bramble-image.yaml"];

/// A bundle ready to send: the manifest and where each part's bytes are.
#[derive(Debug)]
pub struct ImageBundle {
    /// The manifest.
    pub manifest: UpgradeManifest,
    /// Extracted boot files (same order as `manifest.files`).
    pub files: Vec<PathBuf>,
    /// The image and the byte offset of the root in it.
    pub root: (PathBuf, u64),
}

impl ImageBundle {
    /// Readers of every part, in bundle order.
    pub fn readers(&self) -> Result<Vec<Box<dyn Read>>, NodeApiError> {
        let mut out: Vec<Box<dyn Read>> = Vec::new();
        for f in &self.files {
            out.push(Box::new(File::open(f).map_err(io_err(f))?));
        }
        let (image, offset) = &self.root;
        let mut f = File::open(image).map_err(io_err(image))?;
        f.seek(SeekFrom::Start(*offset)).map_err(io_err(image))?;
        out.push(Box::new(f.take(self.manifest.root.size)));
        Ok(out)
    }
}

fn bad(image: &Path, m: impl Into<String>) -> NodeApiError {
    NodeApiError::Image {
        path: image.to_path_buf(),
        message: m.into(),
    }
}

/// (offset, size) in bytes of MBR partition `n` (1-based).
fn partition(image: &Path, n: usize) -> Result<(u64, u64), NodeApiError> {
    let mut f = File::open(image).map_err(io_err(image))?;
    let mut mbr = [0u8; 512];
    f.read_exact(&mut mbr).map_err(io_err(image))?;
    if mbr[510..512] != [0x55, 0xaa] {
        return Err(bad(image, "no MBR partition table (not a bramble image)"));
    }
    let o = 446 + 16 * (n - 1);
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let (start, len) = (le(&mbr[o + 8..o + 12]), le(&mbr[o + 12..o + 16]));
    if mbr[o + 4] == 0 || len == 0 {
        return Err(bad(image, format!("partition {n} is empty")));
    }
    Ok((start * 512, len * 512))
}

fn sha256_file(path: &Path, offset: u64, size: u64) -> Result<String, NodeApiError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    f.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut r = f.take(size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Take `image` apart into a bundle; boot files are extracted into `work`.
pub fn bundle_from_image(image: &Path, work: &Path) -> Result<ImageBundle, NodeApiError> {
    let boot = partition(image, 1)?;
    let (root_off, root_len) = partition(image, 2)?;
    let target = format!("{}@@{}", image.display(), boot.0);
    let mut files = Vec::new();
    let mut parts = Vec::new();
    for name in BUNDLE_BOOT_FILES {
        let dest = work.join(name);
        let out = Command::new("mcopy")
            .args(["-n", "-i", &target, &format!("::/{name}")])
            .arg(&dest)
            .output()
            .map_err(|e| bad(image, format!("mcopy: {e} (install mtools)")))?;
        if !out.status.success() {
            return Err(bad(
                image,
                format!(
                    "boot partition has no {name}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let size = std::fs::metadata(&dest).map_err(io_err(&dest))?.len();
        parts.push(BundlePart {
            name: name.into(),
            size,
            sha256: sha256_file(&dest, 0, size)?,
        });
        files.push(dest);
    }
    let manifest_path = work.join("bramble-image.yaml");
    let text = std::fs::read_to_string(&manifest_path).map_err(io_err(&manifest_path))?;
    // The builder writes it with top-level `key: value` scalars.
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
            .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(image, format!("bramble-image.yaml: no `{k}`")))
    };
    let (board, version) = (field("board")?, field("builder_version")?);

    // squashfs superblock: magic "hsqs", bytes_used (u64) at offset 40.
    let mut sb = [0u8; 96];
    let mut f = File::open(image).map_err(io_err(image))?;
    f.seek(SeekFrom::Start(root_off)).map_err(io_err(image))?;
    f.read_exact(&mut sb).map_err(io_err(image))?;
    if &sb[..4] != b"hsqs" {
        return Err(bad(image, "partition 2 does not hold a squashfs root"));
    }
    let used = u64::from_le_bytes(sb[40..48].try_into().unwrap_or_default());
    let size = used.div_ceil(4096) * 4096;
    if size == 0 || size > root_len {
        return Err(bad(
            image,
            format!("squashfs says {used} bytes, its partition has {root_len}"),
        ));
    }
    let root = BundlePart {
        name: "root".into(),
        size,
        sha256: sha256_file(image, root_off, size)?,
    };
    Ok(ImageBundle {
        manifest: UpgradeManifest {
            board,
            version,
            files: parts,
            root,
        },
        files,
        root: (image.to_path_buf(), root_off),
    })
}
