//! tmpfs mounts for memory-backed volumes (emptyDir `medium: Memory`, secret, downwardAPI
//! and projected volumes, as upstream). Pages written to a tmpfs are charged to the memory
//! cgroup of the process that writes them, so the pod's writes count against its limit.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::mount::{MountFlags, UnmountFlags};

use super::error::{io, VolumeError};

/// Whether `path` is the root of a mount (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> bool {
    let (Ok(md), Some(Ok(parent))) = (
        std::fs::symlink_metadata(path),
        path.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    md.dev() != parent.dev() || md.ino() == parent.ino()
}

/// Mounts a tmpfs of `size` bytes (the kernel's default when `None`) on `path` unless one is
/// there already.
pub fn ensure_tmpfs(path: &Path, size: Option<u64>, mode: u32) -> Result<(), VolumeError> {
    std::fs::create_dir_all(path).map_err(io("mkdir", path))?;
    if is_mount_point(path) {
        return Ok(());
    }
    let mut data = format!("mode={mode:o}");
    if let Some(s) = size {
        data.push_str(&format!(",size={s}"));
    }
    let data = std::ffi::CString::new(data).expect("mount options hold no NUL");
    rustix::mount::mount(
        "tmpfs",
        path,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(data.as_c_str()),
    )
    .map_err(|source| VolumeError::Mount {
        what: "tmpfs".into(),
        path: path.to_path_buf(),
        source,
    })
}

/// Unmounts (lazily) every mount at or below `root`, deepest first.
pub fn unmount_all_below(root: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Err(e) = rustix::mount::unmount(p, UnmountFlags::DETACH) {
            tracing::warn!(path = p, error = %e, "unmounting volume");
        }
    }
}
