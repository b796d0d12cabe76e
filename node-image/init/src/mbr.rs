//! The MBR partition table and first-boot growth: the data partition (p3) is extended toward the
//! end of the card and root slot B (p4, the size of slot A) is created at the very end.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{io, last_os, InitError};

/// Sectors per MiB (alignment of new partitions).
const ALIGN: u64 = 2048;

/// One primary partition entry (sector units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MbrEntry {
    /// Boot flag (0x80) or 0.
    pub status: u8,
    /// Partition type (0x0c FAT32 LBA, 0x83 Linux), 0 = unused.
    pub kind: u8,
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
}

impl MbrEntry {
    /// One past the last sector.
    pub fn end(&self) -> u64 {
        self.start + self.sectors
    }
}

/// Disk signature plus the four primary entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mbr {
    /// Disk signature (bytes 440..444).
    pub disk_id: u32,
    /// Entries 1..=4.
    pub entries: [MbrEntry; 4],
}

impl Mbr {
    /// Parse sector 0.
    pub fn parse(sector: &[u8; 512]) -> Option<Mbr> {
        if sector[510] != 0x55 || sector[511] != 0xaa {
            return None;
        }
        let disk_id = u32::from_le_bytes(sector[440..444].try_into().ok()?);
        let mut entries = [MbrEntry::default(); 4];
        for (i, e) in entries.iter_mut().enumerate() {
            let o = 446 + 16 * i;
            e.status = sector[o];
            e.kind = sector[o + 4];
            e.start = u32::from_le_bytes(sector[o + 8..o + 12].try_into().ok()?) as u64;
            e.sectors = u32::from_le_bytes(sector[o + 12..o + 16].try_into().ok()?) as u64;
        }
        Some(Mbr { disk_id, entries })
    }

    /// Write the entries into `sector` (CHS fields set to the LBA-only marker).
    pub fn write_into(&self, sector: &mut [u8; 512]) {
        sector[440..444].copy_from_slice(&self.disk_id.to_le_bytes());
        for (i, e) in self.entries.iter().enumerate() {
            let o = 446 + 16 * i;
            let chs: [u8; 3] = if e.kind == 0 {
                [0; 3]
            } else {
                [0xfe, 0xff, 0xff]
            };
            sector[o] = e.status;
            sector[o + 1..o + 4].copy_from_slice(&chs);
            sector[o + 4] = e.kind;
            sector[o + 5..o + 8].copy_from_slice(&chs);
            sector[o + 8..o + 12].copy_from_slice(&(e.start as u32).to_le_bytes());
            sector[o + 12..o + 16].copy_from_slice(&(e.sectors as u32).to_le_bytes());
        }
        sector[510] = 0x55;
        sector[511] = 0xaa;
    }
}

/// What first boot changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowPlan {
    /// New p3 (data) entry.
    pub data: MbrEntry,
    /// New p4 (root slot B), if the card has room for it.
    pub root_b: Option<MbrEntry>,
}

/// Plan the growth for a disk of `disk_sectors`; `None` when there is nothing to do (already
/// grown, or a layout this code did not write).
pub fn plan_growth(mbr: &Mbr, disk_sectors: u64) -> Option<GrowPlan> {
    let [_, root_a, data, slot_b] = mbr.entries;
    if data.kind != 0x83 || root_a.kind != 0x83 || slot_b.kind != 0 || data.end() > disk_sectors {
        return None;
    }
    let usable_end = disk_sectors.min(u32::MAX as u64);
    let b_start = (usable_end.saturating_sub(root_a.sectors)) / ALIGN * ALIGN;
    // Room for slot B and at least as much data as the image had.
    if b_start >= data.end() && b_start + root_a.sectors <= usable_end {
        let grown = MbrEntry {
            sectors: b_start - data.start,
            ..data
        };
        let b = MbrEntry {
            status: 0,
            kind: 0x83,
            start: b_start,
            sectors: root_a.sectors,
        };
        if grown.sectors > data.sectors {
            return Some(GrowPlan {
                data: grown,
                root_b: Some(b),
            });
        }
    }
    let end = usable_end / ALIGN * ALIGN;
    (end > data.end()).then_some(GrowPlan {
        data: MbrEntry {
            sectors: end - data.start,
            ..data
        },
        root_b: None,
    })
}

const BLKPG: libc::c_ulong = 0x1269;
const BLKPG_ADD_PARTITION: libc::c_int = 1;
const BLKPG_RESIZE_PARTITION: libc::c_int = 3;
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

#[repr(C)]
struct BlkpgPartition {
    start: libc::c_longlong,
    length: libc::c_longlong,
    pno: libc::c_int,
    devname: [u8; 64],
    volname: [u8; 64],
}

#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

/// Size of a block device in 512-byte sectors.
pub fn disk_sectors(disk: &Path) -> Result<u64, InitError> {
    let f = std::fs::File::open(disk).map_err(io("open", disk))?;
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), BLKGETSIZE64 as _, &mut size) };
    if r != 0 {
        return Err(last_os("BLKGETSIZE64", disk));
    }
    Ok(size / 512)
}

/// Read the MBR of `disk`.
pub fn read_mbr(disk: &Path) -> Result<Mbr, InitError> {
    let mut f = std::fs::File::open(disk).map_err(io("open", disk))?;
    let mut sector = [0u8; 512];
    f.read_exact(&mut sector).map_err(io("read", disk))?;
    Mbr::parse(&sector).ok_or_else(|| InitError::PartitionTable {
        path: disk.into(),
        message: "no MBR signature".into(),
    })
}

/// Apply `plan` to `disk`: rewrite sector 0, then tell the kernel about the resized p3 and the new
/// p4 with BLKPG (re-reading the whole table is refused while the root partition is in use).
pub fn apply_growth(disk: &Path, plan: &GrowPlan) -> Result<(), InitError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .map_err(io("open", disk))?;
    let mut sector = [0u8; 512];
    f.read_exact(&mut sector).map_err(io("read", disk))?;
    let mut mbr = Mbr::parse(&sector).ok_or_else(|| InitError::PartitionTable {
        path: disk.into(),
        message: "no MBR signature".into(),
    })?;
    mbr.entries[2] = plan.data;
    if let Some(b) = plan.root_b {
        mbr.entries[3] = b;
    }
    mbr.write_into(&mut sector);
    f.seek(SeekFrom::Start(0)).map_err(io("seek", disk))?;
    f.write_all(&sector).map_err(io("write", disk))?;
    f.sync_all().map_err(io("fsync", disk))?;
    blkpg(&f, disk, BLKPG_RESIZE_PARTITION, 3, &plan.data)?;
    if let Some(b) = plan.root_b {
        blkpg(&f, disk, BLKPG_ADD_PARTITION, 4, &b)?;
    }
    Ok(())
}

fn blkpg(
    f: &std::fs::File,
    disk: &Path,
    op: libc::c_int,
    pno: i32,
    e: &MbrEntry,
) -> Result<(), InitError> {
    let mut part = BlkpgPartition {
        start: (e.start * 512) as i64,
        length: (e.sectors * 512) as i64,
        pno,
        devname: [0; 64],
        volname: [0; 64],
    };
    let mut arg = BlkpgIoctlArg {
        op,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as i32,
        data: &mut part as *mut _ as *mut libc::c_void,
    };
    // SAFETY: arg points to a valid blkpg_ioctl_arg whose data points to a blkpg_partition.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), BLKPG as _, &mut arg) };
    if r != 0 {
        return Err(last_os("BLKPG", disk));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_mbr() -> Mbr {
        // As `bramble image build` lays it out: 1 MiB gap, 64 MiB boot, 48 MiB root, 32 MiB data.
        let mib = 2048;
        Mbr {
            disk_id: 0xdeadbeef,
            entries: [
                MbrEntry {
                    status: 0x80,
                    kind: 0x0c,
                    start: mib,
                    sectors: 64 * mib,
                },
                MbrEntry {
                    status: 0,
                    kind: 0x83,
                    start: 65 * mib,
                    sectors: 48 * mib,
                },
                MbrEntry {
                    status: 0,
                    kind: 0x83,
                    start: 113 * mib,
                    sectors: 32 * mib,
                },
                MbrEntry::default(),
            ],
        }
    }

    #[test]
    fn roundtrips_through_a_sector() {
        let m = image_mbr();
        let mut s = [0u8; 512];
        m.write_into(&mut s);
        assert_eq!(Mbr::parse(&s), Some(m));
    }

    #[test]
    fn grows_data_and_adds_slot_b_at_the_end() {
        let mib = 2048;
        let m = image_mbr();
        let p = plan_growth(&m, 1024 * mib).unwrap();
        let b = p.root_b.unwrap();
        assert_eq!(b.start, (1024 - 48) * mib);
        assert_eq!(b.end(), 1024 * mib);
        assert_eq!(p.data.start, 113 * mib);
        assert_eq!(p.data.end(), b.start);
        // Applying it makes the plan a no-op.
        let mut grown = m;
        grown.entries[2] = p.data;
        grown.entries[3] = b;
        assert_eq!(plan_growth(&grown, 1024 * mib), None);
    }

    #[test]
    fn small_card_grows_data_only_or_nothing() {
        let mib = 2048;
        let m = image_mbr();
        assert_eq!(plan_growth(&m, 145 * mib), None);
        let p = plan_growth(&m, 170 * mib).unwrap();
        assert_eq!(p.root_b, None);
        assert_eq!(p.data.end(), 170 * mib);
    }
}
