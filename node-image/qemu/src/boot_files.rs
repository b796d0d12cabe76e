//! Reading the boot files (kernel, initramfs, DTB, cmdline.txt) out of an image's FAT partition
//! with mtools, so QEMU can boot the image the way the Pi firmware would.
//!
//! For A/B root slots this is the board's firmware: it reads the boot record
//! ([`bramble_boards::BootRecord`]) and boots the slot it names. On the `virt` board it is also
//! the counter firmware: a slot under trial is booted while it has tries left, each boot
//! consuming one (written back into the image before QEMU starts), and once they are used up it
//! falls back to the active slot. Board models (raspi3b) have no tryboot: the active slot.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use bramble_boards::{BootRecord, Slot, BOOT_RECORD_FILE};

use crate::error::{io_err, QemuError};

/// Boot files extracted from an image.
#[derive(Debug, Clone)]
pub struct BootFiles {
    /// Kernel (possibly gzip'd Image).
    pub kernel: PathBuf,
    /// Initramfs.
    pub initrd: PathBuf,
    /// Kernel command line from cmdline.txt.
    pub cmdline: String,
    /// Directory the files were extracted to (DTBs are there too).
    pub dir: PathBuf,
    /// The root slot being booted.
    pub slot: Slot,
}

/// (offset, size) in bytes of partition `n` (1-based) from the image's MBR.
pub fn partition_extent(image: &Path, n: usize) -> Result<(u64, u64), QemuError> {
    let mut f = File::open(image).map_err(io_err(image))?;
    let mut mbr = [0u8; 512];
    f.read_exact(&mut mbr).map_err(io_err(image))?;
    if mbr[510..512] != [0x55, 0xaa] {
        return Err(QemuError::BadImage {
            path: image.into(),
            message: "no MBR partition table".into(),
        });
    }
    let o = 446 + 16 * (n - 1);
    let start = u32::from_le_bytes(mbr[o + 8..o + 12].try_into().unwrap_or_default()) as u64;
    let len = u32::from_le_bytes(mbr[o + 12..o + 16].try_into().unwrap_or_default()) as u64;
    if mbr[o + 4] == 0 || len == 0 {
        return Err(QemuError::BadImage {
            path: image.into(),
            message: format!("partition {n} is empty"),
        });
    }
    Ok((start * 512, len * 512))
}

fn copy_range(image: &Path, (offset, size): (u64, u64), out: &Path) -> Result<(), QemuError> {
    let mut f = File::open(image).map_err(io_err(image))?;
    f.seek(SeekFrom::Start(offset)).map_err(io_err(image))?;
    let mut o = File::create(out).map_err(io_err(out))?;
    let mut limited = f.take(size);
    std::io::copy(&mut limited, &mut o).map_err(io_err(out))?;
    o.flush().map_err(io_err(out))
}

fn mcopy(fat: &Path, name: &str, dest: &Path) -> Result<(), QemuError> {
    mtools(&[
        "-n".as_ref(),
        "-i".as_ref(),
        fat.as_os_str(),
        format!("::/{name}").as_ref(),
        dest.as_os_str(),
    ])
}

fn mtools(args: &[&std::ffi::OsStr]) -> Result<(), QemuError> {
    let name = args
        .iter()
        .find(|a| a.to_string_lossy().starts_with("::"))
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = Command::new("mcopy")
        .args(args)
        .output()
        .map_err(|e| QemuError::Tool {
            command: "mcopy".into(),
            message: format!("{e} (install mtools)"),
        })?;
    if !out.status.success() {
        return Err(QemuError::Tool {
            command: format!("mcopy {name}"),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Extract vmlinuz, initrd.img, cmdline.txt and `dtbs` from the image's boot partition into `dir`,
/// for the slot the boot record selects. With `counter` (the `virt` board), a try is consumed
/// and the updated record written back into the image first.
pub fn extract_boot_files(
    image: &Path,
    dtbs: &[String],
    dir: &Path,
    counter: bool,
) -> Result<BootFiles, QemuError> {
    let extent = partition_extent(image, 1)?;
    let fat = dir.join("boot.vfat");
    copy_range(image, extent, &fat)?;
    let record_file = dir.join(BOOT_RECORD_FILE);
    let record = match mcopy(&fat, BOOT_RECORD_FILE, &record_file) {
        Ok(()) => {
            let text = std::fs::read_to_string(&record_file).map_err(io_err(&record_file))?;
            BootRecord::parse(&text).map_err(|e| QemuError::BadImage {
                path: image.into(),
                message: e.to_string(),
            })?
        }
        // Images that never had an upgrade carry no record.
        Err(_) => BootRecord::default(),
    };
    let slot = if counter {
        let (slot, next) = record.firmware_pick();
        if next != record {
            std::fs::write(&record_file, next.render()).map_err(io_err(&record_file))?;
            let target = format!("{}@@{}", image.display(), extent.0);
            mtools(&[
                "-o".as_ref(),
                "-i".as_ref(),
                target.as_ref(),
                record_file.as_os_str(),
                format!("::/{BOOT_RECORD_FILE}").as_ref(),
            ])?;
        }
        slot
    } else {
        record.active
    };
    let prefix = slot.boot_dir();
    for name in ["vmlinuz", "initrd.img", "cmdline.txt"] {
        mcopy(&fat, &format!("{prefix}{name}"), &dir.join(name))?;
    }
    for dtb in dtbs {
        let base = Path::new(dtb)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        mcopy(&fat, &base, &dir.join(&base))?;
    }
    let _ = std::fs::remove_file(&fat);
    let cmdline = std::fs::read_to_string(dir.join("cmdline.txt"))
        .map_err(io_err(dir.join("cmdline.txt")))?;
    Ok(BootFiles {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        cmdline: cmdline.trim().to_string(),
        dir: dir.to_path_buf(),
        slot,
    })
}

/// Replace every `console=` in `cmdline` by `console=<console>` (QEMU's first serial port).
pub fn with_console(cmdline: &str, console: &str) -> String {
    let mut parts: Vec<String> = cmdline
        .split_whitespace()
        .filter(|p| !p.starts_with("console="))
        .map(str::to_string)
        .collect();
    parts.insert(0, format!("console={console}"));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_is_replaced() {
        assert_eq!(
            with_console(
                "console=tty1 console=ttyS1,115200 cgroup_no_v1=all bramble.root=X",
                "ttyAMA0"
            ),
            "console=ttyAMA0 cgroup_no_v1=all bramble.root=X"
        );
    }

    #[test]
    fn extent_rejects_non_images() {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), vec![0u8; 1024]).unwrap();
        assert!(partition_extent(t.path(), 1)
            .unwrap_err()
            .to_string()
            .contains("no MBR"));
    }
}
