//! Root filesystems: overlayfs over image layers for app containers (mounted by the helper
//! before `create`), and the shared read-only pause rootfs holding only the `bramble` binary.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::spec::HostLibs;

/// Errors while preparing root filesystems.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `mount(2)`/`umount2(2)` failed.
    #[error("{op} {path}: {source}")]
    Mount {
        /// What was attempted.
        op: &'static str,
        /// The mount point.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// No image layer was given.
    #[error("a container needs at least one image layer")]
    NoLayers,
    /// The overlay option string exceeds the page the kernel accepts.
    #[error("overlay options for {0} layers exceed one page")]
    TooManyLayers(usize),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The overlay mount options: layers bottom-first in, topmost-first in `lowerdir`.
pub fn overlay_options(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<String, RootfsError> {
    if layers.is_empty() {
        return Err(RootfsError::NoLayers);
    }
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if opts.len() >= 4096 {
        return Err(RootfsError::TooManyLayers(layers.len()));
    }
    Ok(opts)
}

/// The directory of a bundle holding the container's writable layer (the overlay's upper
/// dir): what the container wrote to its root filesystem.
pub const UPPER_DIR: &str = "upper";

/// Mounts `bundle/rootfs` as overlayfs over `layers` with `bundle/upper` and `bundle/work`.
pub fn mount_overlay(bundle: &Path, layers: &[PathBuf]) -> Result<PathBuf, RootfsError> {
    let rootfs = bundle.join("rootfs");
    let upper = bundle.join(UPPER_DIR);
    let work = bundle.join("work");
    for d in [&rootfs, &upper, &work] {
        std::fs::create_dir_all(d).map_err(io("mkdir", d))?;
    }
    let opts = overlay_options(layers, &upper, &work)?;
    mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|source| RootfsError::Mount {
        op: "mount overlay",
        path: rootfs.clone(),
        source,
    })?;
    Ok(rootfs)
}

/// Unmounts a bundle's rootfs if mounted (lazily, so a lingering reference cannot block).
pub fn unmount_rootfs(bundle: &Path) -> Result<(), RootfsError> {
    let rootfs = bundle.join("rootfs");
    match umount2(&rootfs, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(RootfsError::Mount {
            op: "umount",
            path: rootfs,
            source,
        }),
    }
}

/// Whether an ELF file has a program interpreter (is dynamically linked). Non-ELF64 or
/// unreadable files count as dynamic, the safe side.
pub fn is_dynamic_elf(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return true;
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return true;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= data.len() && u32::from_le_bytes(data[o..o + 4].try_into().expect("4")) == 3
    })
}

/// Fills the pause rootfs with a copy of `exe` (the running `bramble`) as `/bramble`, plus
/// mount points. Copies only when the size or mtime changed. Returns the host library binds a
/// dynamically linked build needs (none for the static release binary).
pub fn prepare_pause_rootfs(dir: &Path, exe: &Path) -> Result<HostLibs, RootfsError> {
    for sub in ["proc", "dev", "sys", "etc"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(io("mkdir", &d))?;
    }
    let target = dir.join("bramble");
    let src_meta = std::fs::metadata(exe).map_err(io("stat", exe))?;
    let fresh = std::fs::metadata(&target)
        .map(|m| m.len() == src_meta.len() && m.modified().ok() >= src_meta.modified().ok())
        .unwrap_or(false);
    if !fresh {
        let tmp = dir.join(".bramble.tmp");
        std::fs::copy(exe, &tmp).map_err(io("copy", exe))?;
        std::fs::rename(&tmp, &target).map_err(io("rename", &target))?;
    }
    let mut binds = Vec::new();
    if is_dynamic_elf(exe) {
        for lib in ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] {
            let host = Path::new(lib);
            let inside = dir.join(lib.trim_start_matches('/'));
            match std::fs::symlink_metadata(host) {
                Ok(m)
                    if m.file_type().is_symlink()
                        && std::fs::symlink_metadata(&inside).is_err() =>
                {
                    let link = std::fs::read_link(host).map_err(io("readlink", host))?;
                    if let Some(p) = inside.parent() {
                        std::fs::create_dir_all(p).map_err(io("mkdir", p))?;
                    }
                    std::os::unix::fs::symlink(&link, &inside).map_err(io("symlink", &inside))?;
                }
                Ok(m) if m.is_dir() => {
                    std::fs::create_dir_all(&inside).map_err(io("mkdir", &inside))?;
                    binds.push((lib.to_string(), lib.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(HostLibs { binds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_lists_the_top_layer_first() {
        let layers = vec![PathBuf::from("/l/base"), PathBuf::from("/l/app")];
        let o = overlay_options(&layers, Path::new("/b/upper"), Path::new("/b/work")).unwrap();
        assert_eq!(
            o,
            "lowerdir=/l/app:/l/base,upperdir=/b/upper,workdir=/b/work"
        );
        assert!(matches!(
            overlay_options(&[], Path::new("/u"), Path::new("/w")),
            Err(RootfsError::NoLayers)
        ));
    }

    #[test]
    fn elf_interpreter_detection() {
        // Debian's busybox-static is static; the test binary itself is dynamic.
        if Path::new("/bin/busybox").exists() {
            assert!(!is_dynamic_elf(Path::new("/bin/busybox")));
        }
        assert!(is_dynamic_elf(&std::env::current_exe().unwrap()));
    }
}
