//! What a node reports about itself (node API `status`, the `debug.stats_seconds` console line):
//! versions, uptime, memory, the processes' resident memory, the data file system's space and
//! the block devices' I/O counters (bytes written to flash).
//!
//! Everything is read from procfs/sysfs under a root passed in, so tests use a fake tree.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Memory from `/proc/meminfo`, KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// MemTotal.
    pub total_kib: u64,
    /// MemAvailable.
    pub available_kib: u64,
    /// MemTotal - MemAvailable: what the board uses.
    pub used_kib: u64,
    /// The `/proc/meminfo` fields that say where that memory is ([`BREAKDOWN_FIELDS`]: the
    /// processes' anonymous pages, tmpfs, kernel slab, stacks, page tables, vmalloc (modules),
    /// page cache), KiB.
    #[serde(default)]
    pub breakdown: std::collections::BTreeMap<String, u64>,
}

/// `/proc/meminfo` fields kept in [`Memory::breakdown`].
pub const BREAKDOWN_FIELDS: [&str; 14] = [
    "MemFree",
    "Buffers",
    "Cached",
    "AnonPages",
    "Mapped",
    "Shmem",
    "Slab",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "VmallocUsed",
    "Percpu",
    "Unevictable",
];

/// One process's resident memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMemory {
    /// Pid.
    pub pid: u32,
    /// First two words of the command line (`/bin/bramble controller`).
    pub command: String,
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// RssAnon (heap, stacks: what MemAvailable cannot count), KiB.
    #[serde(default)]
    pub anon_kib: u64,
}

/// A block device's counters from `/sys/block/<dev>/stat` (and its partitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIo {
    /// Device name (`vda`, `vda3`, `mmcblk0p3`).
    pub device: String,
    /// Bytes read since boot.
    pub read_bytes: u64,
    /// Bytes written since boot.
    pub written_bytes: u64,
}

/// Space on a mounted file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Mount point.
    pub path: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Free bytes for unprivileged users.
    pub available_bytes: u64,
}

/// A node's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Hostname.
    pub hostname: String,
    /// Version of this `bramble` binary.
    pub bramble_version: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// The image manifest (`/boot/bramble-image.yaml`), if the boot partition is mounted.
    pub image_manifest: Option<String>,
    /// Seconds since the kernel booted.
    pub uptime_seconds: f64,
    /// Board memory.
    pub memory: Memory,
    /// Resident memory of every process, largest first.
    pub processes: Vec<ProcessMemory>,
    /// The data file system.
    pub data_disk: Option<Disk>,
    /// Block devices and partitions that did any I/O.
    pub block_io: Vec<BlockIo>,
}

/// Where to read from: `/` on a board, a fake tree in tests.
#[derive(Debug, Clone)]
pub struct StatusSource {
    /// Root holding `proc/` and `sys/`.
    pub root: PathBuf,
    /// Mount point of the data partition.
    pub data_mount: PathBuf,
}

impl Default for StatusSource {
    fn default() -> Self {
        StatusSource {
            root: "/".into(),
            data_mount: "/var".into(),
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `/proc/meminfo` fields.
pub fn parse_meminfo(text: &str) -> Memory {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (total, available) = (field("MemTotal"), field("MemAvailable"));
    Memory {
        total_kib: total,
        available_kib: available,
        used_kib: total.saturating_sub(available),
        breakdown: BREAKDOWN_FIELDS
            .iter()
            .map(|f| (f.to_string(), field(f)))
            .collect(),
    }
}

/// Sectors read and written (fields 3 and 7 of a block `stat` file), in bytes.
pub fn parse_block_stat(text: &str) -> Option<(u64, u64)> {
    let f: Vec<u64> = text
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    Some((*f.get(2)? * 512, *f.get(6)? * 512))
}

impl StatusSource {
    /// Collects the node's status now.
    pub fn collect(&self) -> NodeStatus {
        let r = &self.root;
        let hostname = read(&r.join("proc/sys/kernel/hostname")).trim().to_string();
        let kernel_release = read(&r.join("proc/sys/kernel/osrelease"))
            .trim()
            .to_string();
        let uptime_seconds = read(&r.join("proc/uptime"))
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        let manifest = r.join("boot/bramble-image.yaml");
        NodeStatus {
            hostname,
            bramble_version: env!("CARGO_PKG_VERSION").to_string(),
            kernel_release,
            image_manifest: std::fs::read_to_string(manifest).ok(),
            uptime_seconds,
            memory: parse_meminfo(&read(&r.join("proc/meminfo"))),
            processes: self.processes(),
            data_disk: disk(&self.data_mount),
            block_io: self.block_io(),
        }
    }

    fn processes(&self) -> Vec<ProcessMemory> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.root.join("proc")) else {
            return out;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let status = read(&e.path().join("status"));
            let kib = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            };
            let Some(rss) = kib("VmRSS") else {
                continue; // kernel threads
            };
            let cmdline = read(&e.path().join("cmdline"));
            let command = cmdline
                .split('\0')
                .filter(|w| !w.is_empty())
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            out.push(ProcessMemory {
                pid,
                command,
                rss_kib: rss,
                anon_kib: kib("RssAnon").unwrap_or(0),
            });
        }
        out.sort_by(|a, b| b.rss_kib.cmp(&a.rss_kib).then(a.pid.cmp(&b.pid)));
        out
    }

    fn block_io(&self) -> Vec<BlockIo> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.root.join("sys/class/block")) else {
            return out;
        };
        for e in rd.flatten() {
            let device = e.file_name().to_string_lossy().into_owned();
            if device.starts_with("loop") || device.starts_with("ram") {
                continue;
            }
            if let Some((read_bytes, written_bytes)) =
                parse_block_stat(&read(&e.path().join("stat")))
            {
                if read_bytes + written_bytes > 0 {
                    out.push(BlockIo {
                        device,
                        read_bytes,
                        written_bytes,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.device.cmp(&b.device));
        out
    }
}

fn disk(path: &Path) -> Option<Disk> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs into a zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(Disk {
        path: path.display().to_string(),
        total_bytes: st.f_blocks as u64 * st.f_frsize as u64,
        available_bytes: st.f_bavail as u64 * st.f_frsize as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_block_stat_parse() {
        let m = parse_meminfo(
            "MemTotal:         500000 kB\nMemFree: 1 kB\nMemAvailable:     400000 kB\nShmem: 7 kB\nSUnreclaim:  9 kB\n",
        );
        assert_eq!(m.breakdown["MemFree"], 1);
        assert_eq!(m.breakdown["Shmem"], 7);
        assert_eq!(m.breakdown["SUnreclaim"], 9);
        assert_eq!(m.breakdown["AnonPages"], 0, "missing fields read as 0");
        assert_eq!(m.breakdown.len(), BREAKDOWN_FIELDS.len());
        assert_eq!(
            (m.total_kib, m.available_kib, m.used_kib),
            (500000, 400000, 100000)
        );
        let s = "     210      0    9120     101      33       12     1064     150        0      250      251";
        assert_eq!(parse_block_stat(s), Some((9120 * 512, 1064 * 512)));
        assert_eq!(parse_block_stat("1 2"), None);
    }

    #[test]
    fn collects_from_a_fake_tree() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let w = |p: &str, t: &str| {
            let p = r.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        w("proc/sys/kernel/hostname", "pi-1\n");
        w("proc/sys/kernel/osrelease", "6.1.0-test\n");
        w("proc/uptime", "12.50 10.00\n");
        w("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 600 kB\n");
        w("proc/1/status", "Name:\tbramble\nVmRSS:\t    2048 kB\n");
        w("proc/1/cmdline", "/bin/bramble\0init\0");
        w(
            "proc/7/status",
            "Name:\tbramble\nVmRSS:\t   40000 kB\nRssAnon:\t   30000 kB\n",
        );
        w(
            "proc/7/cmdline",
            "/proc/self/exe\0controller\0--data-dir\0x\0",
        );
        w("proc/2/status", "Name:\tkthreadd\n");
        w("sys/class/block/vda/stat", "1 0 100 0 2 0 8 0 0 0 0\n");
        w("sys/class/block/vda3/stat", "1 0 10 0 2 0 4 0 0 0 0\n");
        w("sys/class/block/loop0/stat", "1 0 10 0 2 0 4 0 0 0 0\n");
        let s = StatusSource {
            root: r.to_path_buf(),
            data_mount: r.to_path_buf(),
        }
        .collect();
        assert_eq!(s.hostname, "pi-1");
        assert_eq!(s.kernel_release, "6.1.0-test");
        assert_eq!(s.uptime_seconds, 12.5);
        assert_eq!(s.memory.used_kib, 400);
        assert_eq!(
            s.processes
                .iter()
                .map(|p| (p.pid, p.command.as_str(), p.rss_kib))
                .collect::<Vec<_>>(),
            [
                (7, "/proc/self/exe controller", 40000),
                (1, "/bin/bramble init", 2048)
            ]
        );
        assert_eq!(s.processes[0].anon_kib, 30000);
        assert_eq!(
            s.block_io
                .iter()
                .map(|b| (b.device.as_str(), b.written_bytes))
                .collect::<Vec<_>>(),
            [("vda", 8 * 512), ("vda3", 4 * 512)]
        );
        assert!(s.data_disk.unwrap().total_bytes > 0);
    }
}
