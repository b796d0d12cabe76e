//! The boot sequence. Stage 1 runs from the initramfs: load storage modules, find the root by
//! PARTUUID, mount the squashfs and switch_root into it. Stage 2 runs on the real root: mounts,
//! cgroup2, modules, data partition (grown on first boot), node config, hostname, sysctls, swap
//! off, network, clock, then the services.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bramble_boards::NodeConfig;

use crate::clock;
use crate::cmdline::KernelCmdline;
use crate::error::InitError;
use crate::kmod::{kernel_release, ModuleIndex};
use crate::logring::LogRing;
use crate::mbr;
use crate::net::{self, NetState};
use crate::sys::{self, ensure_mount, find_partition, mount, sibling_partition};

/// Marker printed on the console when cgroup2 is mounted (tests wait for it).
pub const CGROUP_MARKER: &str = "bramble-init: cgroup2 controllers:";
/// Marker printed when boot is complete and services are about to start.
pub const READY_MARKER: &str = "bramble-init: ready";
/// Clock floor file on the data partition.
pub const CLOCK_FLOOR: &str = "/var/lib/bramble/clock";

/// Log to the console and the ring.
#[derive(Clone)]
pub struct Console {
    /// The ring.
    pub ring: LogRing,
}

impl Console {
    /// Print `msg` as init, after the time since boot as the kernel prints it (`[   7.123]`,
    /// so the boot's steps can be timed from the console), and keep it in the ring.
    pub fn log(&self, msg: &str) {
        eprintln!("{} bramble-init: {msg}", uptime_stamp(boot_time()));
        self.ring.push("init", msg);
    }
}

/// Time since boot (CLOCK_BOOTTIME, the kernel's printk clock on a board without suspend).
pub fn boot_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `[   7.123]`: seconds since boot with milliseconds, right-aligned like the kernel's.
pub fn uptime_stamp(t: Duration) -> String {
    format!("[{:5}.{:03}]", t.as_secs(), t.subsec_millis())
}

fn read_cmdline() -> KernelCmdline {
    KernelCmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
}

fn mount_early() -> Result<(), InitError> {
    let nosuid = libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV;
    ensure_mount("proc", Path::new("/proc"), "proc", nosuid, "")?;
    ensure_mount("sysfs", Path::new("/sys"), "sysfs", nosuid, "")?;
    ensure_mount(
        "devtmpfs",
        Path::new("/dev"),
        "devtmpfs",
        libc::MS_NOSUID,
        "mode=0755",
    )?;
    Ok(())
}

fn load_list(console: &Console, list: &Path) {
    let dir = Path::new("/lib/modules").join(kernel_release());
    let index = match ModuleIndex::load(&dir) {
        Ok(i) => i,
        Err(e) => return console.log(&format!("modules: {e}")),
    };
    let names = std::fs::read_to_string(list).unwrap_or_default();
    let mut loaded = BTreeSet::new();
    let mut failed = Vec::new();
    for name in names
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Err(e) = index.load_module(name, &mut loaded) {
            failed.push(format!("{name} ({e})"));
        }
    }
    console.log(&format!(
        "loaded {} module files from {}",
        loaded.len(),
        list.display()
    ));
    for f in failed {
        console.log(&format!("module failed: {f}"));
    }
}

/// Stage 1 (initramfs): find and mount the root, then switch_root to `/sbin/init init`.
pub fn stage1(console: &Console) -> Result<std::convert::Infallible, InitError> {
    mount_early()?;
    let cmdline = read_cmdline();
    console.log("stage 1 (initramfs)");
    load_list(console, Path::new("/etc/bramble/initramfs-modules"));
    let root = cmdline
        .root
        .ok_or(InitError::MissingParam("bramble.root"))?;
    let (part, _disk) = find_partition(&root, Duration::from_secs(30))?;
    console.log(&format!("root {root} is {}", part.display()));
    mount(
        &part.to_string_lossy(),
        Path::new("/newroot"),
        "squashfs",
        libc::MS_RDONLY,
        "",
    )?;
    // A root that cannot start init (a broken upgrade): fail here, with the initramfs intact.
    if std::fs::metadata("/newroot/sbin/init").is_err() {
        return Err(InitError::Usage(format!("root {root} has no /sbin/init")));
    }
    sys::switch_root(Path::new("/newroot"), "/sbin/init", &["init"])
}

/// Mount /run, /tmp, /dev/pts, /dev/shm and cgroup2; enable every controller for children.
/// Returns the controllers available.
pub fn mount_system(console: &Console) -> Result<Vec<String>, InitError> {
    mount_early()?;
    let nosuid = libc::MS_NOSUID | libc::MS_NODEV;
    ensure_mount("tmpfs", Path::new("/run"), "tmpfs", nosuid, "mode=0755")?;
    ensure_mount("tmpfs", Path::new("/tmp"), "tmpfs", nosuid, "mode=1777")?;
    ensure_mount(
        "devpts",
        Path::new("/dev/pts"),
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "gid=5,mode=620,ptmxmode=666",
    )?;
    ensure_mount("tmpfs", Path::new("/dev/shm"), "tmpfs", nosuid, "mode=1777")?;
    let cg = Path::new("/sys/fs/cgroup");
    ensure_mount(
        "cgroup2",
        cg,
        "cgroup2",
        nosuid | libc::MS_NOEXEC,
        "nsdelegate",
    )?;
    let controllers = std::fs::read_to_string(cg.join("cgroup.controllers")).unwrap_or_default();
    let list: Vec<String> = controllers.split_whitespace().map(str::to_string).collect();
    let enable: String = list.iter().map(|c| format!("+{c} ")).collect();
    if let Err(e) = std::fs::write(cg.join("cgroup.subtree_control"), enable.trim()) {
        console.log(&format!("cgroup.subtree_control: {e}"));
    }
    Ok(list)
}

/// Find, grow (first boot) and mount the data partition at /var. Returns (partition, disk).
pub fn mount_data(console: &Console, spec: &str) -> Result<(PathBuf, PathBuf), InitError> {
    let (part, disk) = find_partition(spec, Duration::from_secs(10))?;
    let table = mbr::read_mbr(&disk)?;
    let sectors = mbr::disk_sectors(&disk)?;
    let plan = mbr::plan_growth(&table, sectors);
    if let Some(p) = &plan {
        console.log(&format!(
            "first boot: growing data partition to {} MiB{}",
            p.data.sectors / 2048,
            if p.root_b.is_some() {
                ", adding root slot B"
            } else {
                ""
            }
        ));
        mbr::apply_growth(&disk, p)?;
    }
    let var = Path::new("/var");
    mount(
        &part.to_string_lossy(),
        var,
        "ext4",
        // lazytime: timestamps of files that are only appended to (the store's write-ahead
        // log, logs) stay in memory until their inode is written for another reason.
        libc::MS_NOATIME | libc::MS_LAZYTIME | libc::MS_NODEV | libc::MS_NOSUID,
        "commit=60",
    )?;
    if let Some(p) = plan {
        resize_ext4(var, p.data.sectors * 512)?;
        console.log("data file system resized");
    }
    Ok((part, disk))
}

/// Grow the ext4 file system mounted at `mountpoint` to `bytes` (online resize).
fn resize_ext4(mountpoint: &Path, bytes: u64) -> Result<(), InitError> {
    const EXT4_IOC_RESIZE_FS: libc::c_ulong = 0x4008_6610;
    let f = std::fs::File::open(mountpoint).map_err(crate::error::io("open", mountpoint))?;
    // SAFETY: statvfs into a zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(mountpoint.to_string_lossy().as_bytes()).unwrap_or_default();
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(crate::error::last_os("statvfs", mountpoint));
    }
    let blocks: u64 = bytes / st.f_frsize.max(1);
    // SAFETY: the ioctl reads one u64 block count.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            EXT4_IOC_RESIZE_FS as _,
            &blocks,
        )
    };
    if r != 0 {
        return Err(crate::error::last_os("EXT4_IOC_RESIZE_FS", mountpoint));
    }
    // Commit the new size now rather than at the next journal commit (commit=60).
    // SAFETY: syncfs on an open directory fd.
    unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    Ok(())
}

/// Read and validate the node config; errors are printed line by line on the console.
pub fn read_node_config(console: &Console, path: &Path) -> Option<NodeConfig> {
    match NodeConfig::load(path) {
        Ok(c) => Some(c),
        Err(e) => {
            console.log("NODE CONFIG ERROR (services not started):");
            for part in e.to_string().split("; ") {
                console.log(&format!("  {part}"));
            }
            None
        }
    }
}

/// Hostname, /run/hostname and /run/hosts.
pub fn apply_hostname(console: &Console, name: &str) {
    if let Err(e) = sys::set_hostname(name) {
        console.log(&format!("hostname: {e}"));
    }
    let _ = std::fs::write("/run/hostname", format!("{name}\n"));
    let _ = std::fs::write(
        "/run/hosts",
        format!("127.0.0.1 localhost\n127.0.1.1 {name}\n::1 localhost\n"),
    );
}

/// Kernel settings a Kubernetes node needs (forwarding, bridge netfilter, no swap) and a
/// write-back delay that suits flash.
pub fn apply_sysctls(console: &Console) {
    for (k, v) in [
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        ("/proc/sys/net/ipv6/conf/all/forwarding", "1"),
        ("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"),
        ("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "1"),
        ("/proc/sys/vm/overcommit_memory", "1"),
        ("/proc/sys/kernel/panic_on_oops", "1"),
        // Dirty page-cache data waits as long as the data partition's journal commit (60 s)
        // instead of 30 s, so a file appended to all the time (logs) has its last block
        // written once a minute with the commit, not twice (flash wear, issue 9). The store's
        // log is fdatasync'd and does not wait.
        ("/proc/sys/vm/dirty_expire_centisecs", "6000"),
    ] {
        if let Err(e) = sys::sysctl(k, v) {
            console.log(&format!("sysctl {k}: {e}"));
        }
    }
    match sys::swap_off_all() {
        Ok(0) => {}
        Ok(n) => console.log(&format!("swap off ({n} areas)")),
        Err(e) => console.log(&format!("swap off: {e}")),
    }
}

/// Clock: floor first, then SNTP; save the result as the new floor.
pub fn set_time(console: &Console, cfg: &NodeConfig, have_network: bool) {
    let floor_path = Path::new(CLOCK_FLOOR);
    if let Some(t) = clock::floor_correction(SystemTime::now(), clock::read_floor(floor_path)) {
        match clock::set_clock(t) {
            Ok(()) => console.log("clock set from the saved-time floor"),
            Err(e) => console.log(&format!("clock floor: {e}")),
        }
    }
    if have_network {
        let timeout = Duration::from_secs(cfg.ntp.timeout_seconds.into());
        for server in &cfg.ntp.servers {
            match clock::sntp_query(server, timeout) {
                Ok(t) => {
                    match clock::set_clock(t) {
                        Ok(()) => console.log(&format!("clock set from NTP server {server}")),
                        Err(e) => console.log(&format!("clock: {e}")),
                    }
                    break;
                }
                Err(e) => console.log(&format!("NTP {server}: {e}")),
            }
        }
    }
    if let Err(e) = clock::save_floor(floor_path, SystemTime::now()) {
        console.log(&format!("clock floor save: {e}"));
    }
}

/// Bring the network up per the config (logging the outcome).
pub fn network(console: &Console, cfg: &NodeConfig) -> Option<NetState> {
    match net::bring_up(&cfg.network, &cfg.hostname, Duration::from_secs(10)) {
        Ok(s) => {
            console.log(&format!(
                "network {} {}/{} via {:?} ({})",
                s.interface, s.address, s.prefix, s.gateway, s.source
            ));
            let _ = std::fs::write("/run/resolv.conf", net::resolv_conf(&s.dns));
            Some(s)
        }
        Err(e) => {
            console.log(&format!("network: {e}"));
            let _ = net::link_up("lo");
            None
        }
    }
}

/// Longest wait for a file system's module before mounting anyway.
const FS_MODULE_WAIT: Duration = Duration::from_secs(2);

/// Wait until the kernel knows file system `fs` or the module loader is done (at most
/// [`FS_MODULE_WAIT`]): a mount before that makes the kernel start `/sbin/modprobe`, this
/// whole binary, for a module the loader is loading already.
pub fn wait_for_filesystem(fs: &str, loader_done: &std::sync::atomic::AtomicBool) {
    let start = std::time::Instant::now();
    while !loader_done.load(std::sync::atomic::Ordering::Acquire)
        && start.elapsed() < FS_MODULE_WAIT
        && !filesystem_known(
            &std::fs::read_to_string("/proc/filesystems").unwrap_or_default(),
            fs,
        )
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `/proc/filesystems` text lists `fs`.
fn filesystem_known(proc_filesystems: &str, fs: &str) -> bool {
    proc_filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fs))
}

/// Mount the boot partition (partition 1 of the disk holding `data_part`) read-only at /boot.
pub fn mount_boot(console: &Console, disk_of_data: &Path) {
    let disk = disk_of_data;
    let boot = sibling_partition(disk, 1);
    if let Err(e) = mount(
        &boot.to_string_lossy(),
        Path::new("/boot"),
        "vfat",
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    ) {
        console.log(&format!("boot partition: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_systems_are_read_from_proc_filesystems() {
        let text = "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\tsquashfs\n";
        assert!(filesystem_known(text, "ext4"));
        assert!(filesystem_known(text, "tmpfs"));
        assert!(!filesystem_known(text, "vfat"));
        assert!(!filesystem_known(text, "ext"));
    }

    #[test]
    fn uptime_stamp_is_the_kernels_format_with_milliseconds() {
        assert_eq!(uptime_stamp(Duration::from_millis(7_123)), "[    7.123]");
        assert_eq!(
            uptime_stamp(Duration::from_micros(123_456_789)),
            "[  123.456]"
        );
        assert!(boot_time() > Duration::ZERO);
    }
}
