//! `bramble qemu run` stops its QEMU when it is told to stop: the real binary boots a real
//! qemu-virt image (built by `bramble image build` with the static aarch64 bramble), gets
//! SIGTERM (and, in a second run, SIGINT) while the guest boots, and exits with an error naming
//! the signal; the qemu-system-aarch64 process it started is gone. (Before, the runner died at
//! once and QEMU kept running.)
//! Needs the static aarch64 bramble (scripts/build-aarch64.sh or BRAMBLE_AARCH64_BINARY).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::{bramble_bin, free_port, ok};

const SIGTERM: i32 = 15;
const SIGINT: i32 = 2;

fn aarch64_binary() -> PathBuf {
    std::env::var_os("BRAMBLE_AARCH64_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/aarch64-unknown-linux-musl/release/bramble")
        })
}

/// Children of `pid` whose command name is `comm`.
fn children_named(pid: u32, comm: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") "))
        else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if name == comm && ppid == Some(pid) {
            found.push(child);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn stop_run_with(image: &Path, signal: i32) -> Result<()> {
    let mut run = Command::new(bramble_bin())
        .args(["qemu", "run", "--board", "virt", "--api-port"])
        .arg(free_port().to_string())
        .arg(image)
        .env(
            "BRAMBLE_BOARD_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // The console goes to stdout: wait for the kernel, then QEMU is surely running.
    let mut stdout = run.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen.contains("Linux version") {
                let _ = tx.send(());
            }
        }
    });
    let booting = rx.recv_timeout(Duration::from_secs(300));
    let qemu = children_named(run.id(), "qemu-system-aar");
    ensure!(
        booting.is_ok() && qemu.len() == 1,
        "no kernel output or no QEMU child ({qemu:?})"
    );
    ok(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(run.id().to_string())
        .output()?)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = run.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            bail!("bramble qemu run did not exit within 60 s of signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    run.stderr
        .take()
        .context("stderr")?
        .read_to_string(&mut stderr)?;
    ensure!(!status.success(), "exit status {status}");
    ensure!(
        stderr.contains(&format!("stopped by signal {signal}")),
        "stderr: {stderr}"
    );
    ensure!(
        !alive(qemu[0]),
        "QEMU (pid {}) still runs after bramble qemu run got signal {signal}",
        qemu[0]
    );
    Ok(())
}

#[test]
fn qemu_run_stops_its_qemu_on_sigterm_and_sigint() -> Result<()> {
    let a64 = aarch64_binary();
    ensure!(
        a64.is_file(),
        "{} missing: run scripts/build-aarch64.sh",
        a64.display()
    );
    let dir = tempfile::tempdir()?;
    let image = dir.path().join("virt.img");
    ok(Command::new(bramble_bin())
        .args(["image", "build", "--board", "qemu-virt", "--bramble"])
        .arg(&a64)
        .arg("-o")
        .arg(&image)
        .env(
            "BRAMBLE_BOARD_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs"),
        )
        .output()?)?;
    stop_run_with(&image, SIGTERM)?;
    stop_run_with(&image, SIGINT)?;
    Ok(())
}
