//! Init's side of the A/B root slots: reading and writing the boot record (and, on Pi boards,
//! the `config.txt` slot sections) on the boot partition, and the health watch that marks a
//! slot under trial good once its services have stayed up, or gives it up (and reboots to the
//! known-good slot) when they do not. The state machine itself is [`bramble_boards::BootRecord`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bramble_boards::{with_slot_sections, BootOutcome, BootRecord, Slot, BOOT_RECORD_FILE};

use crate::boot::Console;
use crate::error::{io, InitError};
use crate::supervisor::{Service, ServiceState};
use crate::sys;

/// Where init mounts the boot partition (read-only except while it writes).
pub const BOOT_MOUNT: &str = "/boot";
/// Kernel and initramfs names in every slot directory.
pub const KERNEL: &str = "vmlinuz";
/// Initramfs name.
pub const INITRAMFS: &str = "initrd.img";

/// Set by an upgrade: the next reboot asks the Pi firmware for a one-shot `tryboot`.
pub static TRYBOOT: AtomicBool = AtomicBool::new(false);

/// Ask for a tryboot reboot on the next reboot.
pub fn request_tryboot() {
    TRYBOOT.store(true, Ordering::SeqCst);
}

/// Was a tryboot reboot requested?
pub fn tryboot_requested() -> bool {
    TRYBOOT.load(Ordering::SeqCst)
}

/// The boot partition's slot files.
#[derive(Debug, Clone)]
pub struct BootPartition {
    /// Mount point (normally [`BOOT_MOUNT`]).
    pub dir: PathBuf,
}

impl BootPartition {
    /// The record (default when missing or unreadable; a malformed one is an error).
    pub fn record(&self) -> Result<BootRecord, InitError> {
        let p = self.dir.join(BOOT_RECORD_FILE);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(BootRecord::parse(&t)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BootRecord::default()),
            Err(e) => Err(io("read", &p)(e)),
        }
    }

    /// Write files (relative names) onto the boot partition, each through a temporary file and
    /// a rename, then the record and (Pi) `config.txt` for `record`. The FAT file system is
    /// remounted read-write for the duration when it is a mount point.
    pub fn write(&self, files: &[(String, Vec<u8>)], record: &BootRecord) -> Result<(), InitError> {
        let mounted = sys::is_mounted(&self.dir);
        if mounted {
            sys::mount(
                "none",
                &self.dir,
                "",
                libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                "",
            )?;
        }
        let result = self.write_rw(files, record);
        // SAFETY: sync(2) so the FAT is consistent before it goes read-only again.
        unsafe { libc::sync() };
        if mounted {
            let _ = sys::mount(
                "none",
                &self.dir,
                "",
                libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC,
                "",
            );
        }
        result
    }

    fn write_rw(&self, files: &[(String, Vec<u8>)], record: &BootRecord) -> Result<(), InitError> {
        // Slot files are replaced in place (old one removed first: the boot partition has room
        // for one more slot, not for a third copy of a kernel). The slot is not booted until
        // the record names it, so a torn write there is harmless.
        for (name, data) in files {
            let path = self.dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io("mkdir", parent))?;
            }
            let _ = std::fs::remove_file(&path);
            write_synced(&path, data)?;
        }
        // config.txt and the record through a temporary file and a rename, the record last.
        let mut small: Vec<(String, Vec<u8>)> = Vec::new();
        let config = self.dir.join("config.txt");
        if let Ok(text) = std::fs::read_to_string(&config) {
            small.push((
                "config.txt".into(),
                with_slot_sections(&text, record, KERNEL, INITRAMFS).into_bytes(),
            ));
        }
        small.push((BOOT_RECORD_FILE.into(), record.render().into_bytes()));
        for (name, data) in &small {
            let path = self.dir.join(name);
            let tmp = path.with_extension("new");
            write_synced(&tmp, data)?;
            std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        }
        Ok(())
    }

    /// Update only the record (and config.txt).
    pub fn write_record(&self, record: &BootRecord) -> Result<(), InitError> {
        self.write(&[], record)
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), InitError> {
    std::fs::write(path, data).map_err(io("write", path))?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync", path))
}

/// Report the booted slot to the record at startup; logs a fallback. Returns the outcome.
pub fn on_boot(console: &Console, boot: &BootPartition, booted: Slot) -> BootOutcome {
    let record = match boot.record() {
        Ok(r) => r,
        Err(e) => {
            console.log(&format!("boot record: {e}"));
            return BootOutcome::Normal;
        }
    };
    let (outcome, next) = record.on_boot(booted);
    match outcome {
        BootOutcome::Normal => console.log(&format!("root slot {booted} (active)")),
        BootOutcome::Trying(s) => console.log(&format!(
            "root slot {s} on trial: marked good once the services stay up"
        )),
        BootOutcome::FellBack(s) => console.log(&format!(
            "UPGRADE FAILED: slot {s} did not boot; fell back to slot {booted}"
        )),
    }
    if next != record {
        if let Err(e) = boot.write_record(&next) {
            console.log(&format!("boot record: {e}"));
        }
    }
    outcome
}

/// What the health watch decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep watching.
    Wait,
    /// Every service has been running for the settle time: mark the slot good.
    Healthy,
    /// The deadline passed first: give the slot up and reboot.
    Unhealthy,
}

/// Watches the services of a slot under trial.
#[derive(Debug, Clone)]
pub struct HealthWatch {
    /// When the watch started (services started).
    pub started: Instant,
    /// How long every service must have been running without a restart.
    pub settle: Duration,
    /// Give up after this long.
    pub deadline: Duration,
}

impl HealthWatch {
    /// Defaults: services up for 30 s, within 15 minutes of boot (a slow board under QEMU).
    pub fn new(started: Instant) -> Self {
        HealthWatch {
            started,
            settle: Duration::from_secs(30),
            deadline: Duration::from_secs(15 * 60),
        }
    }

    /// Decide from the supervisor's services at `now`.
    pub fn check(&self, services: &[Service], now: Instant) -> Verdict {
        let settled = services.iter().all(|s| match s.state {
            ServiceState::Running { since, .. } => {
                now.saturating_duration_since(since) >= self.settle
            }
            _ => false,
        });
        let elapsed = now.saturating_duration_since(self.started);
        if settled && elapsed >= self.settle {
            Verdict::Healthy
        } else if elapsed >= self.deadline {
            Verdict::Unhealthy
        } else {
            Verdict::Wait
        }
    }
}

/// Act on a verdict for the slot under trial: record it good (and drop the copies of the
/// controller's store in `store` kept from before the upgrade), or give it up. Returns true
/// when the board must reboot (unhealthy).
pub fn apply_verdict(
    console: &Console,
    boot: &BootPartition,
    booted: Slot,
    verdict: Verdict,
    store: &Path,
) -> bool {
    let record = match boot.record() {
        Ok(r) => r,
        Err(e) => {
            console.log(&format!("boot record: {e}"));
            return false;
        }
    };
    match verdict {
        Verdict::Wait => false,
        Verdict::Healthy => {
            if let Some(next) = record.mark_good(booted) {
                match boot.write_record(&next) {
                    Ok(()) => console.log(&format!("root slot {booted} marked good (now active)")),
                    Err(e) => console.log(&format!("marking slot {booted} good: {e}")),
                }
            }
            // The upgrade is accepted: a copy of the store from before it must never come back.
            if let Err(e) = bramble_store::lmdb::forget_pre_upgrade_copies(store) {
                console.log(&format!("dropping the pre-upgrade store copy: {e}"));
            }
            false
        }
        Verdict::Unhealthy => {
            if let Some(next) = record.abandon(booted) {
                if let Err(e) = boot.write_record(&next) {
                    console.log(&format!("boot record: {e}"));
                }
            }
            console.log(&format!(
                "UPGRADE FAILED: services of slot {booted} did not stay up; rebooting into slot {}",
                record.active
            ));
            true
        }
    }
}

/// After a fallback from a slot on trial: ask the controller's store in `dir` to go back to
/// the copy kept before the upgrade, should the newer slot have left it in a format this
/// version cannot read (see `bramble_store::lmdb::request_pre_upgrade_restore`).
pub fn request_store_rollback(console: &Console, dir: &Path) {
    match bramble_store::lmdb::request_pre_upgrade_restore(dir) {
        Ok(()) => {
            console.log("store: going back to the pre-upgrade copy if the store is unreadable")
        }
        Err(e) => console.log(&format!("store rollback request: {e}")),
    }
}

/// The slot this boot came from (`bramble.slot=` on the command line; slot A without it).
pub fn booted_slot(param: Option<&str>) -> Slot {
    param.and_then(Slot::parse).unwrap_or(Slot::A)
}

/// Does `path` exist as a block device?
pub fn is_block_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::ServiceSpec;

    fn svc(state: ServiceState) -> Service {
        Service {
            spec: ServiceSpec {
                name: "kubelet".into(),
                args: vec![],
                after: Vec::new(),
            },
            state,
            failures: 0,
            restarts: 0,
            last_exit: None,
        }
    }

    #[test]
    fn health_needs_every_service_up_for_the_settle_time() {
        let t0 = Instant::now();
        let w = HealthWatch {
            started: t0,
            settle: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        };
        let up = |since| svc(ServiceState::Running { pid: 7, since });
        assert_eq!(
            w.check(&[up(t0)], t0 + Duration::from_secs(10)),
            Verdict::Wait
        );
        assert_eq!(
            w.check(&[up(t0)], t0 + Duration::from_secs(31)),
            Verdict::Healthy
        );
        // A restart resets the clock of that service.
        let restarted = up(t0 + Duration::from_secs(25));
        assert_eq!(
            w.check(&[up(t0), restarted.clone()], t0 + Duration::from_secs(40)),
            Verdict::Wait
        );
        let waiting = svc(ServiceState::Waiting {
            until: t0 + Duration::from_secs(400),
        });
        assert_eq!(
            w.check(&[up(t0), waiting], t0 + Duration::from_secs(301)),
            Verdict::Unhealthy
        );
        // No services (debug.no_services): healthy once booted for the settle time.
        assert_eq!(w.check(&[], t0 + Duration::from_secs(30)), Verdict::Healthy);
    }

    #[test]
    fn a_healthy_trial_marks_the_slot_good_and_drops_the_pre_upgrade_store_copy() {
        let (boot_dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let boot = BootPartition {
            dir: boot_dir.path().to_path_buf(),
        };
        let trying = BootRecord::default().schedule(Slot::A, Slot::B, 1).unwrap();
        boot.write_record(&trying).unwrap();
        let copy = store.path().join("pre-upgrade-format-2");
        std::fs::create_dir(&copy).unwrap();
        std::fs::write(copy.join("data.mdb"), b"x").unwrap();
        let console = Console {
            ring: crate::logring::LogRing::new(16),
        };
        // Still waiting: nothing changes.
        assert!(!apply_verdict(
            &console,
            &boot,
            Slot::B,
            Verdict::Wait,
            store.path()
        ));
        assert!(copy.exists());
        assert!(!apply_verdict(
            &console,
            &boot,
            Slot::B,
            Verdict::Healthy,
            store.path()
        ));
        assert_eq!(boot.record().unwrap().active, Slot::B);
        assert!(!copy.exists());
    }

    #[test]
    fn record_and_config_are_written_to_the_boot_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.txt"),
            "arm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n",
        )
        .unwrap();
        let boot = BootPartition {
            dir: d.path().to_path_buf(),
        };
        assert_eq!(boot.record().unwrap(), BootRecord::default());
        let r = BootRecord::default().schedule(Slot::A, Slot::B, 1).unwrap();
        boot.write(&[("slot-b/vmlinuz".into(), b"k".to_vec())], &r)
            .unwrap();
        assert_eq!(boot.record().unwrap(), r);
        assert_eq!(
            std::fs::read(d.path().join("slot-b/vmlinuz")).unwrap(),
            b"k"
        );
        let config = std::fs::read_to_string(d.path().join("config.txt")).unwrap();
        assert!(
            config.contains("[tryboot]\nkernel=slot-b/vmlinuz"),
            "{config}"
        );
        assert!(!d.path().join("config.new").exists());
        assert_eq!(booted_slot(Some("b")), Slot::B);
        assert_eq!(booted_slot(None), Slot::A);
    }
}
