//! Thin wrappers over the system calls PID 1 uses: mount, umount, switch_root, reboot, swapoff,
//! hostname, sysctl writes; and locating block devices by PARTUUID.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cmdline::PartUuid;
use crate::error::{io, last_os, InitError};
use crate::mbr::Mbr;

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// mount(2). `data` is the option string.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), InitError> {
    std::fs::create_dir_all(target).map_err(io("mkdir", target))?;
    let (s, t, f, d) = (
        CString::new(source).unwrap_or_default(),
        cstr(target),
        CString::new(fstype).unwrap_or_default(),
        CString::new(data).unwrap_or_default(),
    );
    // SAFETY: all pointers are valid NUL-terminated strings for the call's duration.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            if fstype.is_empty() {
                std::ptr::null()
            } else {
                f.as_ptr()
            },
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                d.as_ptr() as *const libc::c_void
            },
        )
    };
    if r != 0 {
        return Err(last_os(
            "mount",
            format!("{source} on {}", target.display()),
        ));
    }
    Ok(())
}

/// Is `path` a mount point (different device from its parent, or `/`)?
pub fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let p = path.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&p))
}

/// Mount unless already mounted.
pub fn ensure_mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<bool, InitError> {
    if is_mounted(target) {
        return Ok(false);
    }
    mount(source, target, fstype, flags, data)?;
    Ok(true)
}

/// umount2(2).
pub fn umount(target: &Path, flags: libc::c_int) -> Result<(), InitError> {
    let t = cstr(target);
    // SAFETY: valid path string.
    if unsafe { libc::umount2(t.as_ptr(), flags) } != 0 {
        return Err(last_os("umount", target));
    }
    Ok(())
}

/// Write a value to a /proc/sys file.
pub fn sysctl(path: &str, value: &str) -> Result<(), InitError> {
    std::fs::write(path, value).map_err(io("write", path))
}

/// sethostname(2).
pub fn set_hostname(name: &str) -> Result<(), InitError> {
    // SAFETY: pointer and length of a valid byte slice.
    if unsafe { libc::sethostname(name.as_ptr() as *const libc::c_char, name.len()) } != 0 {
        return Err(last_os("sethostname", name));
    }
    Ok(())
}

/// Turn off every active swap area listed in /proc/swaps. Returns how many.
pub fn swap_off_all() -> Result<usize, InitError> {
    let text = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let mut n = 0;
    for line in text.lines().skip(1) {
        if let Some(dev) = line.split_whitespace().next() {
            let c = CString::new(dev).unwrap_or_default();
            // SAFETY: valid path string.
            if unsafe { libc::swapoff(c.as_ptr()) } != 0 {
                return Err(last_os("swapoff", dev));
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Find the block device for `spec` (`PARTUUID=xxxxxxxx-nn` or a `/dev` path), waiting up to
/// `wait` for it to appear (storage drivers probe asynchronously). Returns (partition, disk).
pub fn find_partition(spec: &str, wait: Duration) -> Result<(PathBuf, PathBuf), InitError> {
    let start = Instant::now();
    loop {
        if let Some(found) = find_partition_once(spec) {
            return Ok(found);
        }
        if start.elapsed() >= wait {
            return Err(InitError::DeviceNotFound(spec.into(), wait.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find_partition_once(spec: &str) -> Option<(PathBuf, PathBuf)> {
    let Some(want) = PartUuid::parse(spec) else {
        let p = PathBuf::from(spec);
        if !p.exists() {
            return None;
        }
        let name = p.file_name()?.to_string_lossy().into_owned();
        let disk = disk_of(&name)?;
        return Some((p, PathBuf::from("/dev").join(disk)));
    };
    for entry in std::fs::read_dir("/sys/class/block").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Whole disks have no `partition` file: skip them (not an error).
        let part_no: Option<u32> = std::fs::read_to_string(entry.path().join("partition"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        if part_no != Some(want.partition) {
            continue;
        }
        let Some(disk) = disk_of(&name) else {
            continue;
        };
        let disk_dev = PathBuf::from("/dev").join(&disk);
        let mut sector = [0u8; 512];
        let ok = std::fs::File::open(&disk_dev)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut sector))
            .is_ok();
        if ok && Mbr::parse(&sector).is_some_and(|m| m.disk_id == want.disk_id) {
            let dev = PathBuf::from("/dev").join(&name);
            if dev.exists() {
                return Some((dev, disk_dev));
            }
        }
    }
    None
}

/// The whole-disk name of partition `name` (`vda2` -> `vda`, `mmcblk0p2` -> `mmcblk0`).
fn disk_of(name: &str) -> Option<String> {
    let link = std::fs::read_link(format!("/sys/class/block/{name}")).ok()?;
    let parent = link.parent()?.file_name()?.to_string_lossy().into_owned();
    Some(parent)
}

/// Partition `n` of the disk that holds `partition` (`/dev/vda2`, 1 -> `/dev/vda1`).
pub fn sibling_partition(disk: &Path, n: u32) -> PathBuf {
    let d = disk.to_string_lossy();
    let sep = if d.ends_with(|c: char| c.is_ascii_digit()) {
        "p"
    } else {
        ""
    };
    PathBuf::from(format!("{d}{sep}{n}"))
}

/// Move the current root to `new_root` and exec `init` there (the initramfs is freed by deleting
/// its files first, as util-linux's switch_root does; pivot_root does not work from rootfs).
pub fn switch_root(
    new_root: &Path,
    init: &str,
    args: &[&str],
) -> Result<std::convert::Infallible, InitError> {
    for m in ["/dev", "/proc", "/sys", "/run"] {
        let target = new_root.join(m.trim_start_matches('/'));
        if is_mounted(Path::new(m)) {
            mount(m, &target, "", libc::MS_MOVE, "")?;
        }
    }
    let root_dev = std::fs::metadata("/")
        .map(|m| std::os::unix::fs::MetadataExt::dev(&m))
        .unwrap_or(0);
    delete_tree(Path::new("/"), root_dev, new_root);
    std::env::set_current_dir(new_root).map_err(io("chdir", new_root))?;
    mount(".", Path::new("/"), "", libc::MS_MOVE, "")?;
    let dot = CString::new(".").unwrap_or_default();
    // SAFETY: valid path string.
    if unsafe { libc::chroot(dot.as_ptr()) } != 0 {
        return Err(last_os("chroot", new_root));
    }
    std::env::set_current_dir("/").map_err(io("chdir", "/"))?;
    let prog = CString::new(init).unwrap_or_default();
    let mut argv: Vec<CString> = vec![prog.clone()];
    argv.extend(args.iter().map(|a| CString::new(*a).unwrap_or_default()));
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid strings.
    unsafe { libc::execv(prog.as_ptr(), ptrs.as_ptr()) };
    Err(last_os("execv", init))
}

/// Delete the initramfs contents (same device only; never descend into `keep`).
fn delete_tree(dir: &Path, dev: u64, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p == keep {
            continue;
        }
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if std::os::unix::fs::MetadataExt::dev(&md) != dev {
            continue;
        }
        if md.is_dir() {
            delete_tree(&p, dev, keep);
            let _ = std::fs::remove_dir(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// What to do at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Restart the board.
    Reboot,
    /// Power off (QEMU exits).
    PowerOff,
    /// Restart with the one-shot `tryboot` flag for the Pi firmware (`reboot "0 tryboot"`);
    /// boards without it restart normally.
    TryBoot,
}

/// sync, then reboot(2). Never returns on success.
pub fn power(action: PowerAction) -> InitError {
    // SAFETY: plain syscalls; the RESTART2 argument is a NUL-terminated string.
    unsafe {
        libc::sync();
        match action {
            PowerAction::Reboot => libc::reboot(libc::RB_AUTOBOOT),
            PowerAction::PowerOff => libc::reboot(libc::RB_POWER_OFF),
            PowerAction::TryBoot => {
                let arg = c"0 tryboot";
                libc::syscall(
                    libc::SYS_reboot,
                    libc::LINUX_REBOOT_MAGIC1,
                    libc::LINUX_REBOOT_MAGIC2,
                    libc::LINUX_REBOOT_CMD_RESTART2,
                    arg.as_ptr(),
                );
                libc::reboot(libc::RB_AUTOBOOT)
            }
        };
    }
    last_os("reboot", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_partition_names() {
        assert_eq!(
            sibling_partition(Path::new("/dev/vda"), 1),
            PathBuf::from("/dev/vda1")
        );
        assert_eq!(
            sibling_partition(Path::new("/dev/mmcblk0"), 3),
            PathBuf::from("/dev/mmcblk0p3")
        );
        assert_eq!(
            sibling_partition(Path::new("/dev/loop7"), 2),
            PathBuf::from("/dev/loop7p2")
        );
    }

    #[test]
    fn proc_is_mounted_here() {
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/definitely/not/here")));
    }
}
