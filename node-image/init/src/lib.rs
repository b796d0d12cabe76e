//! `bramble init`: Bramble as PID 1 on a board.
//!
//! From the initramfs (stage 1) it loads the storage modules, finds the squashfs root by
//! PARTUUID and switch_roots into it; on the real root (stage 2) it mounts proc/sys/dev/run/tmp
//! and cgroup2, loads modules, grows and mounts the data partition, reads `bramble.yaml` from the
//! boot partition, sets hostname and sysctls, turns swap off, brings up the network (DHCP or
//! static), sets the clock (saved floor, then SNTP) and then starts and supervises the
//! controller and/or kubelet, reaping zombies and handling SIGTERM/SIGINT/SIGUSR for shutdown.
//!
//! The pure parts (command line, MBR growth, DHCP and SNTP packets, back-off and the supervisor
//! state machine, module resolution, the log ring) are tested without root.

pub mod boot;
pub mod clock;
pub mod cmdline;
pub mod dhcp;
mod error;
pub mod kmod;
pub mod kmod_parallel;
pub mod logring;
pub mod mbr;
pub mod net;
pub mod node_api;
pub mod selftest;
pub mod services;
pub mod slots;
pub mod status;
pub mod supervisor;
pub mod sys;
pub mod upgrade;

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

pub use error::InitError;

use crate::boot::Console;
use crate::logring::LogRing;
use crate::services::{service_specs, ProcessSpawner};
use crate::supervisor::{Backoff, Event, Supervisor};
use crate::sys::PowerAction;

/// `bramble init` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// What to do; without an action, run as PID 1.
    #[command(subcommand)]
    pub action: Option<InitAction>,
}

/// Actions besides running as PID 1.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum InitAction {
    /// Ask PID 1 to stop services, sync, unmount and reboot.
    Reboot,
    /// Ask PID 1 to stop services, sync, unmount and power off.
    Poweroff,
    /// Run the container runtime self-test (pod sandbox + busybox container with a memory
    /// limit, reported on stdout); init runs it after boot with `debug.runtime_selftest`.
    Selftest {
        /// Working directory holding `busybox`.
        #[arg(long, default_value = selftest::SELFTEST_DIR)]
        dir: std::path::PathBuf,
    },
    /// Load kernel modules (what the kernel runs as /sbin/modprobe; `modprobe` links here).
    Modprobe {
        /// Quiet: no error messages.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Ignored (kmod compatibility).
        #[arg(short = 'b', long = "use-blacklist")]
        blacklist: bool,
        /// Module names or aliases.
        names: Vec<String>,
    },
}

/// Arguments for the multi-call binary: when invoked as `init` (the kernel's /init or
/// /sbin/init) or as `modprobe`, insert the matching subcommand so clap parses them.
pub fn multicall_args<I: IntoIterator<Item = OsString>>(args: I) -> Vec<OsString> {
    let mut v: Vec<OsString> = args.into_iter().collect();
    let base = v
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match base.as_str() {
        "init" if v.get(1).is_none_or(|a| a != "init") => v.insert(1, "init".into()),
        "modprobe" => {
            v.insert(1, "init".into());
            v.insert(2, "modprobe".into());
            // The kernel calls `modprobe -q -- NAME`; clap takes `--` fine after the subcommand.
        }
        _ => {}
    }
    v
}

/// Run `bramble init`.
pub fn run(args: InitArgs) -> Result<(), InitError> {
    match args.action {
        Some(InitAction::Reboot) => signal_pid1(libc::SIGINT),
        Some(InitAction::Poweroff) => signal_pid1(libc::SIGUSR2),
        Some(InitAction::Modprobe { quiet, names, .. }) => {
            let mut a: Vec<String> = names;
            if quiet {
                a.push("-q".into());
            }
            match kmod::modprobe_main(&a) {
                0 => Ok(()),
                _ => std::process::exit(1),
            }
        }
        Some(InitAction::Selftest { dir }) => selftest::run(&selftest::SelftestConfig {
            dir,
            ..Default::default()
        }),
        None => {
            if std::process::id() != 1 {
                return Err(InitError::Usage(
                    "bramble init runs as PID 1 on a board image (use `bramble init reboot|poweroff` to control it)".into(),
                ));
            }
            pid1()
        }
    }
}

fn signal_pid1(sig: i32) -> Result<(), InitError> {
    // SAFETY: kill(2).
    if unsafe { libc::kill(1, sig) } != 0 {
        return Err(error::last_os_pub("kill", "pid 1"));
    }
    Ok(())
}

fn is_initramfs() -> bool {
    // The initramfs root is rootfs (ramfs/tmpfs) and carries the stage-1 module list.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let root = std::ffi::CString::new("/").unwrap_or_default();
    // SAFETY: statfs into a zeroed struct.
    let ok = unsafe { libc::statfs(root.as_ptr(), &mut st) } == 0;
    let ramfs = ok && (st.f_type as i64 == 0x858458f6 || st.f_type as i64 == 0x01021994);
    ramfs && Path::new("/etc/bramble/initramfs-modules").exists()
}

fn pid1() -> Result<(), InitError> {
    let console = Console {
        ring: LogRing::new(1 << 20),
    };
    if is_initramfs() {
        let Err(e) = boot::stage1(&console);
        console.log(&format!("FATAL in stage 1: {e}"));
        std::thread::sleep(Duration::from_secs(10));
        return Err(sys::power(PowerAction::Reboot));
    }
    let started = Instant::now();
    block_signals();
    let controllers = boot::mount_system(&console).unwrap_or_else(|e| {
        console.log(&format!("mounts: {e}"));
        Vec::new()
    });
    console.log(&format!(
        "{} {}",
        boot::CGROUP_MARKER.trim_start_matches("bramble-init: "),
        controllers.join(" ")
    ));
    let cmdline = KernelCmdlineCache::read();
    // SAFETY: reboot(RB_DISABLE_CAD) makes Ctrl-Alt-Del send SIGINT to PID 1.
    unsafe { libc::reboot(libc::RB_DISABLE_CAD) };
    // The modules load beside the data partition, node config, network and clock steps and
    // the controller's start (a file system or driver the kernel needs before the list got to
    // it, it asks /sbin/modprobe for); then the sysctls (bridge netfilter needs its module)
    // and the mark the kubelet waits for.
    let modules_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let modules = std::thread::spawn({
        let console = console.clone();
        let done = modules_done.clone();
        move || {
            boot_load_modules(&console);
            done.store(true, std::sync::atomic::Ordering::Release);
            boot::apply_sysctls(&console);
            let mark = Path::new(services::MODULES_LOADED);
            let written = mark
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(mark, ""));
            if let Err(e) = written {
                console.log(&format!("{}: {e}", mark.display()));
            }
        }
    });
    let data_disk = match cmdline.data.as_deref().map(|d| {
        boot::wait_for_filesystem("ext4", &modules_done);
        boot::mount_data(&console, d)
    }) {
        Some(Ok((part, disk))) => {
            console.log(&format!(
                "data partition {} mounted on /var",
                part.display()
            ));
            Some(disk)
        }
        Some(Err(e)) => {
            console.log(&format!(
                "data partition: {e}; using tmpfs for /var (nothing persists)"
            ));
            let _ = sys::mount("tmpfs", Path::new("/var"), "tmpfs", 0, "mode=0755");
            None
        }
        None => None,
    };
    let _ = std::fs::create_dir_all("/var/lib/bramble/cni/net.d");
    let _ = std::fs::create_dir_all("/var/log");
    if let Some(disk) = &data_disk {
        boot::wait_for_filesystem("vfat", &modules_done);
        boot::mount_boot(&console, disk);
    }
    let boot_part = slots::BootPartition {
        dir: slots::BOOT_MOUNT.into(),
    };
    let booted = slots::booted_slot(cmdline.slot.as_deref());
    let outcome = slots::on_boot(&console, &boot_part, booted);
    if matches!(outcome, bramble_boards::BootOutcome::FellBack(_)) {
        // The newer slot may have rewritten the store into a format this version cannot
        // read: the controller then goes back to the copy kept before that upgrade.
        slots::request_store_rollback(&console, Path::new(services::STORE_DIR));
    }
    let on_trial = data_disk.is_some() && matches!(outcome, bramble_boards::BootOutcome::Trying(_));
    let config_path = cmdline
        .config
        .clone()
        .unwrap_or_else(|| "/boot/bramble.yaml".into());
    let config = boot::read_node_config(&console, Path::new(&config_path));
    if let Some(cfg) = &config {
        console.log(&format!(
            "node config {config_path}: role {:?}, hostname {}",
            cfg.role, cfg.hostname
        ));
        boot::apply_hostname(&console, &cfg.hostname);
    }
    let net = config.as_ref().and_then(|c| boot::network(&console, c));
    if let Some(cfg) = &config {
        boot::set_time(&console, cfg, net.is_some());
    }
    console.log(&format!(
        "{} after {} ms in stage 2",
        boot::READY_MARKER.trim_start_matches("bramble-init: "),
        started.elapsed().as_millis()
    ));

    let specs = match &config {
        Some(c) if !c.debug.no_services => service_specs(c, net.as_ref().map(|n| n.address)),
        _ => Vec::new(),
    };
    if let Some(cfg) = &config {
        let target = upgrade::UpgradeTarget {
            board: std::fs::read_to_string("/etc/bramble/board")
                .unwrap_or_default()
                .trim()
                .to_string(),
            booted,
            disk: data_disk.clone(),
            boot: boot_part.clone(),
            staging: upgrade::STAGING_DIR.into(),
        };
        node_api::start(&console, cfg, net.as_ref().map(|n| n.address), target);
    }
    if config.as_ref().is_some_and(|c| c.debug.runtime_selftest) {
        // Containers need the modules.
        let _ = modules.join();
        // One-shot, output straight to the console; reaped by the main loop.
        match std::process::Command::new("/proc/self/exe")
            .args(["init", "selftest"])
            .stdin(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => console.log(&format!("runtime self-test started (pid {})", child.id())),
            Err(e) => console.log(&format!("runtime self-test: {e}")),
        }
    }
    let spawner = ProcessSpawner {
        exe: "/proc/self/exe".into(),
        ring: console.ring.clone(),
        console: config.as_ref().is_some_and(|c| c.debug.console_logs),
    };
    let mut sup = Supervisor::new(specs, spawner, Backoff::default(), Instant::now());
    let trial = on_trial.then(|| Trial {
        boot: boot_part,
        slot: booted,
        watch: slots::HealthWatch::new(Instant::now()),
        store: services::STORE_DIR.into(),
    });
    let action = main_loop(&console, &mut sup, trial);
    shutdown(&console, &mut sup, action)
}

/// The parsed kernel command line.
struct KernelCmdlineCache;

impl KernelCmdlineCache {
    fn read() -> cmdline::KernelCmdline {
        cmdline::KernelCmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
    }
}

fn boot_load_modules(console: &Console) {
    let dir = Path::new("/lib/modules").join(kmod::kernel_release());
    let Ok(index) = kmod::ModuleIndex::load(&dir) else {
        return console.log(&format!("no modules for kernel {}", kmod::kernel_release()));
    };
    let list = std::fs::read_to_string("/etc/bramble/modules").unwrap_or_default();
    let names: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // One loader per core: more starve init's own steps (the data mount, network, clock),
    // which the controller waits for, of CPU.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = kmod_parallel::load_all(&index, &names, threads, kmod::finit_module);
    for (name, e) in &report.failed {
        console.log(&format!("module {name}: {e}"));
    }
    console.log(&format!("loaded {} module files", report.loaded.len()));
}

const HANDLED: [i32; 6] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPWR,
];

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a zeroed set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn block_signals() {
    let set = signal_set();
    // SAFETY: blocking signals for the whole process (threads spawned later inherit the mask).
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status:#x}")
    }
}

fn log_event(console: &Console, e: &Event) {
    match e {
        Event::Started { name, pid } => console.log(&format!("started {name} (pid {pid})")),
        Event::SpawnFailed {
            name,
            error,
            retry_in,
        } => console.log(&format!(
            "cannot start {name}: {error}; retry in {} s",
            retry_in.as_secs()
        )),
        Event::Exited {
            name,
            pid,
            status,
            retry_in: Some(d),
        } => console.log(&format!(
            "{name} (pid {pid}) {status}; restart in {} s",
            d.as_secs()
        )),
        Event::Exited {
            name,
            pid,
            status,
            retry_in: None,
        } => console.log(&format!("{name} (pid {pid}) {status}")),
        Event::Killed { name, pid } => {
            console.log(&format!("{name} (pid {pid}) did not stop; SIGKILL"))
        }
    }
}

fn reap(console: &Console, sup: &mut Supervisor<ProcessSpawner>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child, non-blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if let Some(e) = sup.on_exit(pid, &describe_status(status), Instant::now()) {
            log_event(console, &e);
        }
    }
}

fn wait_signal(timeout: Duration) -> Option<i32> {
    let set = signal_set();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: sigtimedwait with a valid set and timeout.
    let s = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

/// A root slot under trial and its health watch.
struct Trial {
    boot: slots::BootPartition,
    slot: bramble_boards::Slot,
    watch: slots::HealthWatch,
    /// The controller's store, whose pre-upgrade copy goes once the slot is good.
    store: std::path::PathBuf,
}

fn main_loop(
    console: &Console,
    sup: &mut Supervisor<ProcessSpawner>,
    mut trial: Option<Trial>,
) -> PowerAction {
    let mut last_floor_save = Instant::now();
    loop {
        for e in sup.tick(Instant::now()) {
            log_event(console, &e);
        }
        if let Some(t) = &trial {
            let verdict = t.watch.check(sup.services(), Instant::now());
            if verdict != slots::Verdict::Wait {
                if slots::apply_verdict(console, &t.boot, t.slot, verdict, &t.store) {
                    return PowerAction::Reboot;
                }
                trial = None;
            }
        }
        let wait = sup
            .next_wakeup()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(5))
            .clamp(Duration::from_millis(10), Duration::from_secs(5));
        match wait_signal(wait) {
            Some(libc::SIGTERM) | Some(libc::SIGUSR2) | Some(libc::SIGPWR) => {
                return PowerAction::PowerOff
            }
            Some(libc::SIGINT) | Some(libc::SIGUSR1) => return PowerAction::Reboot,
            _ => reap(console, sup),
        }
        // The clock floor is written hourly (a few bytes, to keep flash writes low).
        if last_floor_save.elapsed() > Duration::from_secs(3600) {
            let _ = clock::save_floor(Path::new(boot::CLOCK_FLOOR), std::time::SystemTime::now());
            last_floor_save = Instant::now();
        }
    }
}

fn shutdown(
    console: &Console,
    sup: &mut Supervisor<ProcessSpawner>,
    action: PowerAction,
) -> Result<(), InitError> {
    console.log(&format!("shutting down ({action:?})"));
    sup.stop_all(Instant::now());
    let deadline = Instant::now() + Duration::from_secs(25);
    while !sup.all_stopped() && Instant::now() < deadline {
        for e in sup.tick(Instant::now()) {
            log_event(console, &e);
        }
        let _ = wait_signal(Duration::from_millis(200));
        reap(console, sup);
    }
    // Everything else (containers, helpers): TERM, then KILL.
    // SAFETY: kill(-1) signals every process but PID 1.
    unsafe { libc::kill(-1, libc::SIGTERM) };
    std::thread::sleep(Duration::from_secs(1));
    unsafe { libc::kill(-1, libc::SIGKILL) };
    reap(console, sup);
    let _ = clock::save_floor(Path::new(boot::CLOCK_FLOOR), std::time::SystemTime::now());
    // SAFETY: sync(2).
    unsafe { libc::sync() };
    for m in ["/boot", "/var"] {
        if sys::is_mounted(Path::new(m)) {
            if let Err(e) = sys::umount(Path::new(m), 0) {
                console.log(&format!("{e}; remounting read-only"));
                let _ = sys::mount(
                    "none",
                    Path::new(m),
                    "",
                    libc::MS_REMOUNT | libc::MS_RDONLY,
                    "",
                );
            }
        }
    }
    console.log("file systems synced and unmounted");
    let action = if action == PowerAction::Reboot && slots::tryboot_requested() {
        PowerAction::TryBoot
    } else {
        action
    };
    Err(sys::power(action))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn multicall_names_map_to_subcommands() {
        assert_eq!(multicall_args(v(&["/init"])), v(&["/init", "init"]));
        assert_eq!(
            multicall_args(v(&["/sbin/init", "init"])),
            v(&["/sbin/init", "init"])
        );
        assert_eq!(
            multicall_args(v(&["/sbin/modprobe", "-q", "--", "fs-ext4"])),
            v(&["/sbin/modprobe", "init", "modprobe", "-q", "--", "fs-ext4"])
        );
        assert_eq!(
            multicall_args(v(&["bramble", "version"])),
            v(&["bramble", "version"])
        );
    }

    #[test]
    fn init_refuses_to_run_unless_pid1() {
        let e = run(InitArgs { action: None }).unwrap_err();
        assert!(e.to_string().contains("PID 1"), "{e}");
    }

    #[test]
    fn clap_parses_modprobe_as_the_kernel_calls_it() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            c: C,
        }
        #[derive(clap::Subcommand)]
        enum C {
            Init(InitArgs),
        }
        let cli = Cli::parse_from(multicall_args(v(&[
            "/sbin/modprobe",
            "-q",
            "--",
            "nft-chain-2-nat",
        ])));
        let C::Init(a) = cli.c;
        match a.action {
            Some(InitAction::Modprobe { quiet, names, .. }) => {
                assert!(quiet);
                assert_eq!(names, vec!["nft-chain-2-nat"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
