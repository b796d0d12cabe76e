//! Safety checks on a flash target, from /proc/self/mountinfo and /sys/class/block: is it (or a
//! partition of it, or the file behind a loop device) mounted, does it hold / or /boot, is it
//! removable.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{io_err, FlashError};

/// What the target is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// A regular file (image copy, tests).
    File,
    /// A whole block device with its sysfs name (`sdb`, `mmcblk0`, `loop3`).
    Block {
        /// Kernel name.
        name: String,
        /// (major, minor).
        devno: (u32, u32),
    },
}

/// One mount from mountinfo: (major, minor), mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Device numbers.
    pub devno: (u32, u32),
    /// Where it is mounted.
    pub mountpoint: String,
}

/// Parse /proc/self/mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, _, dev, _, mp) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let (ma, mi) = dev.split_once(':')?;
            Some(MountEntry {
                devno: (ma.parse().ok()?, mi.parse().ok()?),
                mountpoint: mp.replace("\\040", " "),
            })
        })
        .collect()
}

fn major_minor(rdev: u64) -> (u32, u32) {
    (
        libc::major(rdev as libc::dev_t),
        libc::minor(rdev as libc::dev_t),
    )
}

/// Classify `device`.
pub fn target_kind(device: &Path) -> Result<TargetKind, FlashError> {
    let md = std::fs::metadata(device).map_err(io_err(device))?;
    if md.file_type().is_file() {
        return Ok(TargetKind::File);
    }
    if !md.file_type().is_block_device() {
        return Err(FlashError::BadTarget {
            device: device.into(),
        });
    }
    let devno = major_minor(md.rdev());
    let link = std::fs::read_link(format!("/sys/dev/block/{}:{}", devno.0, devno.1))
        .map_err(io_err(device))?;
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(TargetKind::Block { name, devno })
}

/// Device numbers of a block device and all its partitions (from sysfs).
fn block_family(name: &str, devno: (u32, u32)) -> Vec<(u32, u32)> {
    let mut out = vec![devno];
    if let Ok(rd) = std::fs::read_dir(format!("/sys/class/block/{name}")) {
        for e in rd.flatten() {
            let dev = std::fs::read_to_string(e.path().join("dev")).unwrap_or_default();
            if let Some((a, b)) = dev.trim().split_once(':') {
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    out.push((a, b));
                }
            }
        }
    }
    out
}

/// Loop devices whose backing file is `file` (their names).
fn loops_backed_by(file: &Path) -> Vec<(String, (u32, u32))> {
    let Ok(canon) = std::fs::canonicalize(file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/class/block") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let backing =
                std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
            if !backing.is_empty() && Path::new(backing.trim()) == canon {
                let dev = std::fs::read_to_string(e.path().join("dev")).unwrap_or_default();
                if let Some((a, b)) = dev.trim().split_once(':') {
                    if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                        out.push((name, (a, b)));
                    }
                }
            }
        }
    }
    out
}

/// Refuse mounted, system and non-removable targets (all skipped with `force`).
pub fn check_target(device: &Path, force: bool) -> Result<TargetKind, FlashError> {
    let kind = target_kind(device)?;
    if force {
        return Ok(kind);
    }
    let mounts = parse_mountinfo(
        &std::fs::read_to_string("/proc/self/mountinfo").map_err(io_err("/proc/self/mountinfo"))?,
    );
    let family: Vec<(u32, u32)> = match &kind {
        TargetKind::File => loops_backed_by(device)
            .into_iter()
            .flat_map(|(name, devno)| block_family(&name, devno))
            .collect(),
        TargetKind::Block { name, devno } => block_family(name, *devno),
    };
    for m in &mounts {
        if family.contains(&m.devno) {
            if matches!(
                m.mountpoint.as_str(),
                "/" | "/boot" | "/boot/firmware" | "/usr" | "/var"
            ) {
                return Err(FlashError::SystemDisk {
                    device: device.into(),
                    mountpoint: m.mountpoint.clone(),
                });
            }
            return Err(FlashError::Mounted {
                device: device.into(),
                detail: format!("device {}:{} on {}", m.devno.0, m.devno.1, m.mountpoint),
            });
        }
    }
    if let TargetKind::Block { name, .. } = &kind {
        // Loop devices are files in disguise: allowed like regular files.
        let removable = std::fs::read_to_string(format!("/sys/class/block/{name}/removable"))
            .unwrap_or_default();
        if !name.starts_with("loop") && removable.trim() != "1" && !is_sd_card(name) {
            return Err(FlashError::NotRemovable {
                device: device.into(),
            });
        }
    }
    Ok(kind)
}

/// Built-in SD slots (`mmcblk*` on an SD host) report removable=0 but are cards.
fn is_sd_card(name: &str) -> bool {
    let t =
        std::fs::read_to_string(format!("/sys/class/block/{name}/device/type")).unwrap_or_default();
    name.starts_with("mmcblk") && t.trim() == "SD"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parses_devno_and_mountpoint() {
        let t = "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n\
                 40 22 7:3 / /mnt/my\\040card rw - vfat /dev/loop3p1 rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(
            m[0],
            MountEntry {
                devno: (254, 1),
                mountpoint: "/".into()
            }
        );
        assert_eq!(m[1].mountpoint, "/mnt/my card");
        assert_eq!(m[1].devno, (7, 3));
    }

    #[test]
    fn regular_files_pass_and_char_devices_do_not() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(check_target(f.path(), false).unwrap(), TargetKind::File);
        assert!(matches!(
            check_target(Path::new("/dev/null"), false),
            Err(FlashError::BadTarget { .. })
        ));
    }
}
