//! `POST /v1/upgrade` on the node: the bundle's boot files are staged on the data partition, its
//! squashfs root is written to the inactive slot's partition and read back, and only when every
//! part matches its SHA-256 are the slot's boot files and the boot record (a one-shot try of the
//! new slot) written to the boot partition. Then the board reboots into the trial.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use bramble_boards::{cmdline_for_slot, Slot};
use bramble_node_api::upgrade::{copy_verified, sha256_prefix};
use bramble_node_api::UpgradeManifest;

use crate::slots::{is_block_device, BootPartition, INITRAMFS, KERNEL};
use crate::sys::sibling_partition;

/// Where boot files are staged before they go to the boot partition.
pub const STAGING_DIR: &str = "/var/lib/bramble/upgrade";
/// Boot files an upgrade may carry.
pub const BOOT_FILES: [&str; 3] = [KERNEL, INITRAMFS, "bramble-image.yaml"];

/// What an upgrade needs to know about the running node.
#[derive(Debug, Clone)]
pub struct UpgradeTarget {
    /// This board's name (`/etc/bramble/board`).
    pub board: String,
    /// The slot running now.
    pub booted: Slot,
    /// The whole disk holding the slots.
    pub disk: Option<PathBuf>,
    /// The boot partition.
    pub boot: BootPartition,
    /// Staging directory on the data partition.
    pub staging: PathBuf,
}

type Refusal = (u16, String);

fn fail(status: u16) -> impl Fn(String) -> Refusal {
    move |m| (status, m)
}

impl UpgradeTarget {
    /// Stream, verify and install the bundle; returns a summary for the client. The caller
    /// reboots afterwards.
    pub fn apply(
        &self,
        m: &UpgradeManifest,
        body: &mut dyn Read,
    ) -> Result<serde_json::Value, Refusal> {
        if m.board != self.board {
            return Err((
                400,
                format!(
                    "board: the image is for `{}`, this node is `{}`",
                    m.board, self.board
                ),
            ));
        }
        for f in &m.files {
            if !BOOT_FILES.contains(&f.name.as_str()) {
                return Err((
                    400,
                    format!(
                        "files: `{}` is not one of {}",
                        f.name,
                        BOOT_FILES.join(", ")
                    ),
                ));
            }
        }
        for need in [KERNEL, INITRAMFS] {
            if !m.files.iter().any(|f| f.name == need) {
                return Err((400, format!("files: the bundle has no `{need}`")));
            }
        }
        let target = self.booted.other();
        let record = self.boot.record().map_err(|e| (500u16, e.to_string()))?;
        let next = record
            .schedule(self.booted, target, 1)
            .map_err(|e| (409u16, e.to_string()))?;
        let disk = self.disk.as_ref().ok_or_else(|| {
            (
                409u16,
                "no data disk found at boot; cannot locate the slots".to_string(),
            )
        })?;
        let part = sibling_partition(disk, target.partition().into());
        if !is_block_device(&part) {
            return Err((
                409,
                format!(
                    "root slot {target} ({}) does not exist: the card had no room for it on first boot",
                    part.display()
                ),
            ));
        }
        let capacity = partition_bytes(&part).map_err(|e| (500u16, e))?;
        if m.root.size > capacity {
            return Err((
                413,
                format!(
                    "root: {} bytes do not fit slot {target} ({capacity} bytes)",
                    m.root.size
                ),
            ));
        }

        // 1. Boot files to the staging directory.
        let _ = std::fs::remove_dir_all(&self.staging);
        std::fs::create_dir_all(&self.staging)
            .map_err(|e| (500u16, format!("{}: {e}", self.staging.display())))?;
        for f in &m.files {
            let path = self.staging.join(&f.name);
            let mut out =
                File::create(&path).map_err(|e| (500u16, format!("{}: {e}", path.display())))?;
            copy_verified(body, &mut out, f).map_err(fail(400))?;
        }
        // 2. The root to the inactive partition, then read back from the device.
        write_root(&part, body, m).map_err(fail(400))?;
        let mut head = [0u8; 4];
        File::open(&part)
            .and_then(|mut f| f.read_exact(&mut head))
            .map_err(|e| (500u16, format!("{}: {e}", part.display())))?;
        if &head != b"hsqs" {
            return Err((400, "root: not a squashfs image".into()));
        }
        let back = File::open(&part)
            .and_then(|f| sha256_prefix(f, m.root.size))
            .map_err(|e| (500u16, format!("read-back of {}: {e}", part.display())))?;
        if back != m.root.sha256 {
            return Err((
                500,
                format!(
                    "read-back of {}: sha256 {back} differs from what was written",
                    part.display()
                ),
            ));
        }
        // 3. Boot files of the slot, its command line, then the record (one try).
        let dir = target.boot_dir();
        let mut files = Vec::new();
        for f in &m.files {
            let data = std::fs::read(self.staging.join(&f.name))
                .map_err(|e| (500u16, format!("{}: {e}", f.name)))?;
            files.push((format!("{dir}{}", f.name), data));
        }
        let current = self
            .boot
            .dir
            .join(format!("{}cmdline.txt", self.booted.boot_dir()));
        let cmdline = std::fs::read_to_string(&current)
            .map_err(|e| (500u16, format!("{}: {e}", current.display())))?;
        files.push((
            format!("{dir}cmdline.txt"),
            format!("{}\n", cmdline_for_slot(cmdline.trim(), target)).into_bytes(),
        ));
        self.boot
            .write(&files, &next)
            .map_err(|e| (500u16, e.to_string()))?;
        let _ = std::fs::remove_dir_all(&self.staging);
        Ok(serde_json::json!({
            "slot": target.letter(),
            "partition": part.display().to_string(),
            "root_bytes": m.root.size,
            "root_sha256": m.root.sha256,
            "version": m.version,
            "reboot": true,
        }))
    }
}

fn write_root(part: &Path, body: &mut dyn Read, m: &UpgradeManifest) -> Result<(), String> {
    let mut dev = OpenOptions::new()
        .write(true)
        .open(part)
        .map_err(|e| format!("{}: {e}", part.display()))?;
    copy_verified(body, &mut dev, &m.root)?;
    dev.flush()
        .and_then(|()| dev.sync_all())
        .map_err(|e| format!("{}: fsync: {e}", part.display()))?;
    // Drop the cached pages so the read-back comes from the medium.
    // SAFETY: posix_fadvise on an open fd.
    unsafe { libc::posix_fadvise(dev.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    Ok(())
}

/// Size of a partition from sysfs (`/sys/class/block/NAME/size`, 512-byte sectors).
fn partition_bytes(part: &Path) -> Result<u64, String> {
    let name = part
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let p = format!("/sys/class/block/{name}/size");
    std::fs::read_to_string(&p)
        .map_err(|e| format!("{p}: {e}"))?
        .trim()
        .parse::<u64>()
        .map(|s| s * 512)
        .map_err(|e| format!("{p}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_node_api::upgrade::part_of;

    fn target(dir: &Path) -> UpgradeTarget {
        UpgradeTarget {
            board: "qemu-virt".into(),
            booted: Slot::A,
            disk: None,
            boot: BootPartition {
                dir: dir.to_path_buf(),
            },
            staging: dir.join("staging"),
        }
    }

    fn manifest(board: &str, files: &[&str]) -> UpgradeManifest {
        UpgradeManifest {
            board: board.into(),
            version: "0".into(),
            files: files.iter().map(|n| part_of(n, b"x")).collect(),
            root: part_of("root", b"hsqs"),
        }
    }

    #[test]
    fn refusals_name_the_field_and_change_nothing() {
        let d = tempfile::tempdir().unwrap();
        let t = target(d.path());
        let mut body: &[u8] = b"xxhsqs";
        let e = t
            .apply(&manifest("rpi-4b", &[KERNEL, INITRAMFS]), &mut body)
            .unwrap_err();
        assert_eq!(e.0, 400);
        assert!(e.1.starts_with("board:"), "{}", e.1);
        let e = t
            .apply(&manifest("qemu-virt", &[KERNEL, "config.txt"]), &mut body)
            .unwrap_err();
        assert!(e.1.contains("`config.txt` is not one of"), "{}", e.1);
        let e = t
            .apply(&manifest("qemu-virt", &[KERNEL]), &mut body)
            .unwrap_err();
        assert!(e.1.contains("no `initrd.img`"), "{}", e.1);
        let e = t
            .apply(&manifest("qemu-virt", &[KERNEL, INITRAMFS]), &mut body)
            .unwrap_err();
        assert_eq!(e.0, 409);
        assert!(e.1.contains("no data disk"), "{}", e.1);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
