//! Idle writes benchmark: `cargo bench --bench idle_writes` (needs root; prints a Markdown
//! table and writes it to target/bench-idle-writes.md).
//!
//! What an idle single-node cluster costs the SD card of a board: `bramble up` (controller
//! and kubelet in one process, as role `both`) runs in a network namespace of its own with
//! its data directory on a fresh ext4 file system on a loop device, mounted as `bramble init`
//! mounts the data partition (`noatime,lazytime,commit=60`). After it has settled, the sectors the
//! loop device wrote over a window (the block device statistics, as on the board: the
//! figure) and the process's `/proc/PID/io` `write_bytes` are extrapolated to an hour. The
//! latter is the kernel's page-cache accounting: with large folios (ext4 on Linux 6.x) it
//! charges a whole folio per dirtying and nothing for a folio already dirty, so it can be
//! far above or below what reached the disk.
//!
//! `BENCH_IDLE_SECS` (default 300) is the window, `BENCH_IDLE_SETTLE_SECS` (default 60) the
//! wait after the node registered, `BENCH_BRAMBLE_BIN` the `bramble` binary to run (default:
//! the one built with the bench). Logs go to /dev/null (the board keeps them in RAM).
//!
//! The device's writes are also split by where they landed: the block layer's
//! `block_rq_complete` trace events of the loop device (an ftrace instance of its own) give
//! each write's sectors, which are matched to the blocks of every file on the file system
//! (`filefrag`) and of the ext4 journal (`debugfs`); the rest is file-system metadata
//! written back from the journal (inode tables, bitmaps).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "shared/data_fs.rs"]
mod data_fs;
use data_fs::{is_root, run, DataFs};

/// Block-layer trace of the writes to one device, in an ftrace instance of its own.
struct WriteTrace {
    instance: PathBuf,
}

impl WriteTrace {
    /// Starts tracing completed requests of the block device `loop_dev`; `None` when ftrace
    /// is not available.
    fn start(loop_dev: &str) -> Option<WriteTrace> {
        let name = loop_dev.trim_start_matches("/dev/");
        let devnum = std::fs::read_to_string(format!("/sys/block/{name}/dev")).ok()?;
        let (major, minor) = devnum.trim().split_once(':')?;
        let dev = (major.parse::<u64>().ok()? << 20) | minor.parse::<u64>().ok()?;
        let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.join("instances").is_dir())?;
        let instance = root.join(format!("instances/bramble-idle-{}", std::process::id()));
        std::fs::create_dir(&instance).ok()?;
        let trace = WriteTrace { instance };
        let event = trace.instance.join("events/block/block_rq_complete");
        let ok = std::fs::write(trace.instance.join("buffer_size_kb"), "8192").is_ok()
            && std::fs::write(event.join("filter"), format!("dev == {dev}")).is_ok()
            && std::fs::write(event.join("enable"), "1").is_ok();
        ok.then_some(trace)
    }

    /// Clears what was traced so far.
    fn restart(&self) {
        let _ = std::fs::write(self.instance.join("trace"), "");
    }

    /// `(first sector, sectors)` of every completed write since the last restart.
    fn writes(&self) -> Vec<(u64, u64)> {
        let text = std::fs::read_to_string(self.instance.join("trace")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                // "... block_rq_complete: 7,3 WS () 123456 + 8 none,0,0 [0]"
                let rest = line.split_once("block_rq_complete: ")?.1;
                let mut f = rest.split_whitespace();
                let (_dev, rwbs, _cmd) = (f.next()?, f.next()?, f.next()?);
                let sector = f.next()?.parse().ok()?;
                let (_, sectors) = (f.next()?, f.next()?.parse().ok()?);
                (rwbs.contains('W') && sectors > 0).then_some((sector, sectors))
            })
            .collect()
    }
}

impl Drop for WriteTrace {
    fn drop(&mut self) {
        let event = self.instance.join("events/block/block_rq_complete");
        let _ = std::fs::write(event.join("enable"), "0");
        let _ = std::fs::remove_dir(&self.instance);
    }
}

/// Which file (path relative to the mount), or "ext4 journal", holds each 4 KiB block.
fn block_owners(mount: &Path, dev: &str) -> BTreeMap<u64, String> {
    let mut owners = BTreeMap::new();
    let journal = Command::new("debugfs")
        .args(["-R", "blocks <8>", dev])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for block in journal.split_whitespace().filter_map(|b| b.parse().ok()) {
        owners.insert(block, "ext4 journal".to_string());
    }
    let files = run("find", &[mount.to_str().unwrap(), "-xdev", "-type", "f"]);
    for file in files.lines() {
        let out = Command::new("filefrag")
            .args(["-v", "-b4096", file])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let name = file
            .strip_prefix(mount.to_str().unwrap())
            .unwrap_or(file)
            .trim_start_matches('/')
            .to_string();
        // "   0:        0..     255:      34816..     35071:    256: ..."
        for line in out.lines() {
            let fields: Vec<&str> = line.split(':').map(str::trim).collect();
            let Some(physical) = fields.get(2) else {
                continue;
            };
            let Some((start, end)) = physical.split_once("..") else {
                continue;
            };
            let (Ok(start), Ok(end)) = (start.trim().parse::<u64>(), end.trim().parse::<u64>())
            else {
                continue;
            };
            for block in start..=end {
                owners.insert(block, name.clone());
            }
        }
    }
    owners
}

/// Bytes written per owner of the blocks (see [`block_owners`]); unknown blocks are
/// file-system metadata.
fn split_writes(writes: &[(u64, u64)], owners: &BTreeMap<u64, String>) -> BTreeMap<String, u64> {
    let mut split = BTreeMap::new();
    for &(sector, sectors) in writes {
        // 512-byte sectors, 4 KiB blocks.
        for s in (sector..sector + sectors).step_by(8) {
            let owner = owners
                .get(&(s / 8))
                .cloned()
                .unwrap_or_else(|| "file-system metadata".to_string());
            *split.entry(owner).or_insert(0) += 4096.min((sector + sectors - s) * 512);
        }
    }
    split
}

/// The `bramble` binary to measure: `BENCH_BRAMBLE_BIN` (to compare builds, e.g. one of an
/// older commit) or the one this bench was built with.
fn bramble_binary() -> PathBuf {
    std::env::var_os("BENCH_BRAMBLE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bramble")))
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

/// The data file system and the network namespace, removed on drop.
struct Scratch {
    fs: DataFs,
    netns: String,
}

impl Scratch {
    fn new(dir: &Path) -> Scratch {
        let fs = DataFs::new(dir, "512M");
        let netns = format!("bramble-idle-{}", std::process::id());
        run("ip", &["netns", "add", &netns]);
        run("ip", &["-n", &netns, "link", "set", "lo", "up"]);
        Scratch { fs, netns }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `write_bytes` of the process and its children (the runtime helper).
fn proc_write_bytes(pid: u32) -> u64 {
    let read = |pid: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    read(&pid.to_string()) + children.split_whitespace().map(read).sum::<u64>()
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn per_hour(bytes: u64, window: Duration) -> String {
    let mib = bytes as f64 * 3600.0 / window.as_secs_f64() / (1024.0 * 1024.0);
    format!("{mib:.2} MiB/h ({bytes} B in {} s)", window.as_secs())
}

fn main() {
    if !is_root() {
        eprintln!("idle_writes: needs root (loop device, mount, network namespace); skipped");
        return;
    }
    let window = env_secs("BENCH_IDLE_SECS", 300);
    let settle = env_secs("BENCH_IDLE_SETTLE_SECS", 60);
    let dir = tempfile::tempdir().unwrap();
    let scratch = Scratch::new(dir.path());
    let data = scratch.fs.mount.join("data");
    let kubeconfig = dir.path().join("kubeconfig");
    // nsenter, not `ip netns exec`: that one also remounts /sys, hiding the cgroup
    // hierarchy from the kubelet.
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", scratch.netns))
        .arg(bramble_binary())
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--local-path-dir")
        .arg(scratch.fs.mount.join("local-path"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting bramble up");
    let pid = child.id();
    let bramble = Proc(child);
    let audit = data.join("audit/audit.log");
    let deadline = Instant::now() + Duration::from_secs(180);
    // The node registered: the kubelet's create of its Lease is in the audit log.
    let lease_created = || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.contains("\"verb\":\"create\"")
                    && l.contains("\"resource\":\"leases\"")
                    && l.contains("system:node:")
            })
    };
    while !lease_created() {
        assert!(Instant::now() < deadline, "the node did not register");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "bramble up pid {pid} registered; settling {} s, then measuring {} s",
        settle.as_secs(),
        window.as_secs()
    );
    std::thread::sleep(settle);
    let trace = WriteTrace::start(&scratch.fs.loop_dev);
    if trace.is_none() {
        eprintln!("no block-layer trace (ftrace instances unavailable): no split by file");
    }
    let db = data.join("controller/db/data.mdb");
    // What the settling left dirty is written now, and what the window dirtied at its end:
    // the window's figure is then what it wrote, wherever the write-back timers stood.
    scratch.fs.sync();
    let (blk0, proc0, audit0, db0) = (
        scratch.fs.written(),
        proc_write_bytes(pid),
        file_size(&audit),
        file_size(&db),
    );
    let started = Instant::now();
    if let Some(trace) = &trace {
        trace.restart();
    }
    std::thread::sleep(window);
    let elapsed = started.elapsed();
    scratch.fs.sync();
    let traced = trace.as_ref().map(WriteTrace::writes);
    let (blk1, proc1, audit1, db1) = (
        scratch.fs.written(),
        proc_write_bytes(pid),
        file_size(&audit),
        file_size(&db),
    );
    drop(bramble);
    let split = traced.map(|writes| {
        split_writes(
            &writes,
            &block_owners(&scratch.fs.mount, &scratch.fs.loop_dev),
        )
    });

    let mut table = String::from(
        "| measurement (idle, controller+kubelet, `bramble up`) | value |\n|---|---|\n",
    );
    table.push_str(&format!(
        "| idle bytes written per hour, data partition block device (ext4 lazytime, commit=60) | {} |\n",
        per_hour(blk1 - blk0, elapsed)
    ));
    table.push_str(&format!(
        "| idle bytes written per hour, /proc/PID/io write_bytes (page-cache accounting) | {} |\n",
        per_hour(proc1 - proc0, elapsed)
    ));
    table.push_str(&format!(
        "| audit log growth per hour | {} |\n",
        per_hour(audit1.saturating_sub(audit0), elapsed)
    ));
    table.push_str(&format!(
        "| store file (data.mdb) growth per hour | {} |\n",
        per_hour(db1.saturating_sub(db0), elapsed)
    ));
    for (owner, bytes) in split.iter().flatten() {
        table.push_str(&format!(
            "| ... of which to {owner} (block trace) | {} |\n",
            per_hour(*bytes, elapsed)
        ));
    }
    println!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-idle-writes.md");
    let _ = std::fs::write(&out, &table);
    eprintln!("written to {}", out.display());
}
