//! Which images mounted container root filesystems use, read from the kernel's mount table.
//! The runtime mounts each container rootfs as overlayfs with `lowerdir=` the image's layer
//! directories (see [`ImageStore::layer_dirs`]), so an image whose layer list ends a mount's
//! lowerdir list is in use. `bramble image rm` uses this when it has no kubelet to ask.

use std::io;
use std::path::{Path, PathBuf};

use crate::store::{ImageRecord, ImageStore};

/// The lowerdir stacks of the overlay mounts visible to this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountedImages {
    stacks: Vec<Vec<PathBuf>>,
}

impl MountedImages {
    /// Reads `/proc/self/mountinfo`.
    pub fn read() -> io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(
            "/proc/self/mountinfo",
        )?))
    }

    /// Parses mountinfo text (`man 5 proc`): after the ` - ` separator come the filesystem
    /// type, the source and the superblock options, which hold `lowerdir=a:b:c`.
    pub fn parse(mountinfo: &str) -> Self {
        let stacks = mountinfo
            .lines()
            .filter_map(|line| {
                let (_, tail) = line.split_once(" - ")?;
                let mut f = tail.split(' ');
                if f.next()? != "overlay" {
                    return None;
                }
                let opts = f.nth(1)?;
                let lower = opts.split(',').find_map(|o| o.strip_prefix("lowerdir="))?;
                Some(
                    lower
                        .split(':')
                        .map(|p| PathBuf::from(unescape(p)))
                        .collect(),
                )
            })
            .collect();
        MountedImages { stacks }
    }

    /// Whether a mounted overlay's lower layers end with exactly this image's layers.
    pub fn uses(&self, store: &ImageStore, rec: &ImageRecord) -> bool {
        let dirs: Vec<PathBuf> = rec
            .layer_digests
            .iter()
            .rev()
            .filter_map(|d| store.layer_path(d).ok())
            .collect();
        !dirs.is_empty() && self.stacks.iter().any(|s| ends_with(s, &dirs))
    }
}

fn ends_with(stack: &[PathBuf], image: &[PathBuf]) -> bool {
    stack.len() >= image.len()
        && stack[stack.len() - image.len()..]
            .iter()
            .zip(image)
            .all(|(a, b)| same_path(a, b))
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// Undoes the kernel's octal escapes (`\040` for space, `\134` for backslash, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overlay_lowerdirs_from_mountinfo() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
300 22 0:50 / /run/c1/rootfs rw,relatime - overlay overlay rw,lowerdir=/d/layers/sha256/b:/d/layers/sha256/a,upperdir=/u,workdir=/w
301 22 0:51 / /run/c2/rootfs rw - overlay overlay ro,lowerdir=/my\\040dir/x
";
        let m = MountedImages::parse(text);
        assert_eq!(
            m.stacks,
            vec![
                vec![
                    PathBuf::from("/d/layers/sha256/b"),
                    PathBuf::from("/d/layers/sha256/a")
                ],
                vec![PathBuf::from("/my dir/x")],
            ]
        );
        assert!(ends_with(
            &m.stacks[0],
            &[PathBuf::from("/d/layers/sha256/a")]
        ));
        assert!(!ends_with(
            &m.stacks[0],
            &[PathBuf::from("/d/layers/sha256/b")]
        ));
    }
}
