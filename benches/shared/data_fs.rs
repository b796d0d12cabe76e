//! A board's data partition for benchmarks: a fresh ext4 file system on a loop device,
//! mounted as `bramble init` mounts the data partition (`noatime,lazytime,commit=60`), and
//! the bytes its block device wrote (needs root).
//!
//! What reached the device is the figure for flash wear. A process's `/proc/PID/io`
//! `write_bytes` is not: it is the kernel's page-cache accounting, and with large folios
//! (ext4 on Linux 6.x) it charges a whole folio (up to 1 MiB here) each time a clean folio
//! is dirtied and nothing while it stays dirty, so a 446-byte log append followed by
//! `fdatasync` reads as 1 MiB written while the device wrote one 4 KiB block.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The loop device and its mount, removed on drop.
pub struct DataFs {
    pub mount: PathBuf,
    pub loop_dev: String,
}

impl DataFs {
    /// Makes a `size` (e.g. "512M") ext4 image in `dir`, attaches and mounts it.
    pub fn new(dir: &Path, size: &str) -> DataFs {
        let image = dir.join("data.img");
        let image_s = image.to_str().expect("UTF-8 temp path");
        run("truncate", &["-s", size, image_s]);
        // Initialise inode tables and journal now, not in the background while measuring.
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
                image_s,
            ],
        );
        let loop_dev = run("losetup", &["-f", "--show", image_s]);
        let mount = dir.join("mnt");
        std::fs::create_dir_all(&mount).expect("creating the mount point");
        run(
            "mount",
            &[
                "-o",
                "noatime,lazytime,nodev,nosuid,commit=60",
                &loop_dev,
                mount.to_str().expect("UTF-8 temp path"),
            ],
        );
        DataFs { mount, loop_dev }
    }

    /// Bytes the loop device wrote so far (sectors written, field 7 of its stat).
    pub fn written(&self) -> u64 {
        let name = self.loop_dev.trim_start_matches("/dev/");
        let stat = std::fs::read_to_string(format!("/sys/block/{name}/stat"))
            .expect("reading the loop device's stat");
        stat.split_whitespace()
            .nth(6)
            .and_then(|s| s.parse::<u64>().ok())
            .expect("sectors written in the loop device's stat")
            * 512
    }

    /// Writes back everything dirty on the file system now (`syncfs`), so that
    /// [`DataFs::written`] counts what a phase left in the page cache too.
    pub fn sync(&self) {
        run(
            "sync",
            &["-f", self.mount.to_str().expect("UTF-8 temp path")],
        );
    }
}

impl Drop for DataFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = Command::new("losetup")
            .args(["-d", &self.loop_dev])
            .status();
    }
}

/// Runs `cmd` and returns its trimmed stdout; panics with its stderr if it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The effective uid is 0 (`Uid:` real, effective, ... in /proc/self/status).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}
