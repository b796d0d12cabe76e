//! `bramble flash IMAGE DEVICE`: checks the target (refuses mounted, system and non-removable
//! devices unless `--force`), writes the image with progress, flushes, drops the device's cache
//! and reads it back to compare SHA-256 hashes. Works on block devices (SD cards, loop devices)
//! and regular files.

mod checks;
mod error;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

pub use checks::{check_target, parse_mountinfo, target_kind, MountEntry, TargetKind};
pub use error::FlashError;

use crate::error::io_err;

const CHUNK: usize = 4 << 20;

/// `bramble flash` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct FlashArgs {
    /// Image built by `bramble image build`.
    pub image: PathBuf,
    /// Target: an SD card block device (`/dev/sdX`, `/dev/mmcblkN`), a loop device or a file.
    pub device: PathBuf,
    /// Skip the safety checks (mounted, system, non-removable, not an image).
    #[arg(long)]
    pub force: bool,
    /// Skip the read-back verification.
    #[arg(long)]
    pub no_verify: bool,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashReport {
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of the image (hex).
    pub sha256: String,
    /// Whether the read-back matched (false only with --no-verify).
    pub verified: bool,
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn device_size(f: &File, kind: &TargetKind) -> Option<u64> {
    match kind {
        TargetKind::File => None,
        TargetKind::Block { .. } => {
            let mut size: u64 = 0;
            // SAFETY: BLKGETSIZE64 writes one u64.
            let r = unsafe { libc::ioctl(f.as_raw_fd(), 0x8008_1272u64 as _, &mut size) };
            (r == 0).then_some(size)
        }
    }
}

fn drop_cache(f: &File, kind: &TargetKind) {
    // SAFETY: fsync/ioctl/fadvise on an open fd.
    unsafe {
        libc::fsync(f.as_raw_fd());
        if matches!(kind, TargetKind::Block { .. }) {
            libc::ioctl(f.as_raw_fd(), 0x1261u64 as _, 0); // BLKFLSBUF
        }
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// Progress reporter (stderr).
struct Progress {
    quiet: bool,
    total: u64,
    start: Instant,
    verb: &'static str,
}

impl Progress {
    fn show(&self, done: u64) {
        if self.quiet {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r{} {:>6.1} / {:.1} MiB ({:>3}%) {:>6.1} MiB/s",
            self.verb,
            done as f64 / 1048576.0,
            self.total as f64 / 1048576.0,
            (done * 100).checked_div(self.total).unwrap_or(100),
            done as f64 / 1048576.0 / secs
        );
    }
    fn finish(&self, done: u64) {
        self.show(done);
        if !self.quiet {
            eprintln!();
        }
    }
}

/// Flash `image` to `device`.
pub fn flash(
    image: &Path,
    device: &Path,
    force: bool,
    verify: bool,
    quiet: bool,
) -> Result<FlashReport, FlashError> {
    let mut img = File::open(image).map_err(io_err(image))?;
    let len = img.metadata().map_err(io_err(image))?.len();
    let mut sector = [0u8; 512];
    let is_image = img.read_exact(&mut sector).is_ok() && sector[510..512] == [0x55, 0xaa];
    if !is_image && !force {
        return Err(FlashError::NotAnImage {
            image: image.into(),
        });
    }
    let kind = check_target(device, force)?;
    let mut out = OpenOptions::new()
        .write(true)
        .read(true)
        .open(device)
        .map_err(io_err(device))?;
    if let Some(size) = device_size(&out, &kind) {
        if size < len {
            return Err(FlashError::TooSmall {
                device: device.into(),
                device_bytes: size,
                image_bytes: len,
            });
        }
    }
    let mut img = File::open(image).map_err(io_err(image))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    let p = Progress {
        quiet,
        total: len,
        start: Instant::now(),
        verb: "writing",
    };
    loop {
        let n = read_full(&mut img, &mut buf).map_err(io_err(image))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io_err(device))?;
        hasher.update(&buf[..n]);
        done += n as u64;
        p.show(done);
    }
    out.sync_all().map_err(io_err(device))?;
    p.finish(done);
    let sha256 = hex(&hasher.finalize());
    if !verify {
        return Ok(FlashReport {
            bytes: done,
            sha256,
            verified: false,
        });
    }
    drop_cache(&out, &kind);
    drop(out);
    let mut back = File::open(device).map_err(io_err(device))?;
    drop_cache(&back, &kind);
    let mut h = Sha256::new();
    let mut left = len;
    let p = Progress {
        quiet,
        total: len,
        start: Instant::now(),
        verb: "verifying",
    };
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = read_full(&mut back, &mut buf[..want]).map_err(io_err(device))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        left -= n as u64;
        p.show(len - left);
    }
    p.finish(len - left);
    let actual = hex(&h.finalize());
    if actual != sha256 {
        return Err(FlashError::Verify {
            expected: sha256,
            actual,
        });
    }
    Ok(FlashReport {
        bytes: done,
        sha256,
        verified: true,
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Run `bramble flash`.
pub fn run(args: FlashArgs) -> Result<FlashReport, FlashError> {
    let r = flash(
        &args.image,
        &args.device,
        args.force,
        !args.no_verify,
        args.quiet,
    )?;
    println!(
        "{}: wrote {} bytes of {} (sha256 {}){}",
        args.device.display(),
        r.bytes,
        args.image.display(),
        r.sha256,
        if r.verified {
            ", read back and verified"
        } else {
            ", not verified"
        }
    );
    Ok(r)
}
