//! The card layout and assembling the image file: an MBR partition table written by `sfdisk`
//! on a regular file, partition images copied in at their offsets (no loop devices).
//!
//! Layout: 1 MiB gap, p1 boot (FAT, type 0x0c, bootable; room for slot B's kernel and
//! initramfs), p2 root slot A (squashfs), p3 data (ext4). Root slot B (p4) is created by `bramble init` at the end of the card on first boot,
//! when it grows the data partition, so the image itself stays small.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{io_err, BuildError};
use crate::tools::run;

/// One MiB in bytes.
pub const MIB: u64 = 1024 * 1024;

/// Sizes and offsets of the partitions, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// MBR disk signature.
    pub disk_id: u32,
    /// Offset and size of p1 (boot).
    pub boot: (u64, u64),
    /// Offset and size of p2 (root A).
    pub root: (u64, u64),
    /// Offset and size of p3 (data).
    pub data: (u64, u64),
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

impl Layout {
    /// Plan a layout for the given content sizes. The boot partition has room for a second
    /// slot's kernel and initramfs (`slot_files` bytes: A/B upgrades) beside its content, plus
    /// a quarter of the slot for a larger next kernel; firmware and DTBs are not doubled. The
    /// root slot rounds the squashfs up with 25% headroom (slot B is made the same size).
    pub fn plan(
        disk_id: u32,
        boot_content: u64,
        slot_files: u64,
        root_image: u64,
        data_size: u64,
    ) -> Layout {
        let boot_size = round_up(
            boot_content + slot_files + slot_files / 4 + 2 * MIB,
            4 * MIB,
        )
        .max(32 * MIB);
        let root_size = round_up(root_image + root_image / 4 + 2 * MIB, 4 * MIB);
        let data_size = round_up(data_size, MIB);
        let boot = (MIB, boot_size);
        let root = (boot.0 + boot.1, root_size);
        let data = (root.0 + root.1, data_size);
        Layout {
            disk_id,
            boot,
            root,
            data,
        }
    }

    /// Total image size in bytes.
    pub fn total(&self) -> u64 {
        self.data.0 + self.data.1
    }

    /// The `sfdisk` script for this layout (sectors of 512 bytes).
    pub fn sfdisk_script(&self) -> String {
        let s = |b: u64| b / 512;
        format!(
            "label: dos\nlabel-id: 0x{:08x}\nunit: sectors\n\n\
             start={}, size={}, type=c, bootable\n\
             start={}, size={}, type=83\n\
             start={}, size={}, type=83\n",
            self.disk_id,
            s(self.boot.0),
            s(self.boot.1),
            s(self.root.0),
            s(self.root.1),
            s(self.data.0),
            s(self.data.1),
        )
    }
}

/// Create `image` of the layout's size, write the partition table with sfdisk and copy the three
/// partition images in at their offsets.
pub fn assemble(
    image: &Path,
    layout: &Layout,
    boot_img: &Path,
    root_img: &Path,
    data_img: &Path,
) -> Result<(), BuildError> {
    {
        let f = File::create(image).map_err(io_err(image))?;
        f.set_len(layout.total()).map_err(io_err(image))?;
    }
    run(
        "sfdisk",
        [
            "--no-reread".as_ref(),
            "--no-tell-kernel".as_ref(),
            image.as_os_str(),
        ],
        Some(&layout.sfdisk_script()),
    )?;
    let mut out = OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(io_err(image))?;
    for (part, (offset, size)) in [
        (boot_img, layout.boot),
        (root_img, layout.root),
        (data_img, layout.data),
    ] {
        let len = std::fs::metadata(part).map_err(io_err(part))?.len();
        if len > size {
            return Err(BuildError::Layout(format!(
                "{} is {len} bytes, its partition only {size}",
                part.display()
            )));
        }
        copy_at(part, &mut out, offset).map_err(io_err(part))?;
    }
    out.sync_all().map_err(io_err(image))?;
    Ok(())
}

/// Copy `src` into `out` at byte `offset`, leaving all-zero blocks as holes (sparse image).
fn copy_at(src: &Path, out: &mut File, offset: u64) -> std::io::Result<()> {
    let mut input = File::open(src)?;
    let mut buf = vec![0u8; 4 * MIB as usize];
    let mut pos = offset;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|b| *b != 0) {
            out.seek(SeekFrom::Start(pos))?;
            out.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_aligns_and_orders_partitions() {
        // 20 + 16 + 4 + 2 -> 44 MiB boot; 30 + 7.5 + 2 -> 40 MiB root.
        let l = Layout::plan(0x1234abcd, 20 * MIB, 16 * MIB, 30 * MIB, 16 * MIB);
        assert_eq!(l.boot, (MIB, 44 * MIB));
        assert_eq!(l.root.0, 45 * MIB);
        assert_eq!(l.root.1, 40 * MIB);
        assert_eq!(l.data, (85 * MIB, 16 * MIB));
        assert_eq!(l.total(), 101 * MIB);
        let s = l.sfdisk_script();
        assert!(s.contains("label-id: 0x1234abcd"));
        assert!(s.contains("start=2048, size=90112, type=c, bootable"));
        // Small content still gets a 32 MiB boot partition.
        let small = Layout::plan(1, 4 * MIB, 2 * MIB, 10 * MIB, MIB);
        assert_eq!(small.boot.1, 32 * MIB);
    }
}
