//! Building the qemu-system-aarch64 command line for a board and running it with the serial
//! console captured, so tests (and `bramble qemu run --until`) can wait for console markers.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bramble_boards::{BoardConfig, QemuSpec};

use crate::boot_files::{extract_boot_files, with_console, BootFiles};
use crate::error::{io_err, QemuError};
use crate::lan::LanNic;

/// How to run one board.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// Image to boot (written to: the data partition lives there).
    pub image: PathBuf,
    /// Host TCP port on 127.0.0.1 forwarded to the guest's API port 6443 (virt only).
    pub api_port: Option<u16>,
    /// Extra host->guest TCP forwards on 127.0.0.1.
    pub forwards: Vec<(u16, u16)>,
    /// Memory override in MiB.
    pub memory_mib: Option<u32>,
    /// CPU count override.
    pub cpus: Option<u32>,
    /// Extra kernel command line parameters (appended).
    pub append: Vec<String>,
    /// Isolate the guest network (slirp `restrict=on`: only the forwards reach it).
    pub isolated: bool,
    /// Put the board's NIC on a [`crate::Lan`] tap instead of user-mode networking (virt
    /// only; then there are no forwards: the host reaches the board at its LAN address).
    pub lan: Option<LanNic>,
}

/// The full qemu-system-aarch64 argument list for `board`.
pub fn qemu_args(
    board: &BoardConfig,
    q: &QemuSpec,
    files: &BootFiles,
    opts: &VmOptions,
) -> Vec<String> {
    let mut cmdline = with_console(&files.cmdline, &q.console);
    for a in &opts.append {
        cmdline.push(' ');
        cmdline.push_str(a);
    }
    let memory = opts
        .memory_mib
        .or(q.memory_mib)
        .unwrap_or(board.resources.memory_mib);
    let mut a: Vec<String> = vec!["-M".into(), q.machine.clone()];
    if let Some(cpu) = &q.cpu {
        a.extend(["-cpu".into(), cpu.clone()]);
    }
    a.extend(["-m".into(), memory.to_string()]);
    let image = opts.image.display().to_string();
    if q.machine == "virt" {
        let cpus = opts.cpus.unwrap_or(board.resources.cpus);
        a.extend(["-smp".into(), cpus.to_string()]);
        a.extend([
            "-drive".into(),
            format!("if=none,file={image},format=raw,id=disk0,cache=writeback"),
            "-device".into(),
            "virtio-blk-device,drive=disk0".into(),
            "-device".into(),
            "virtio-rng-device".into(),
        ]);
        let (net, device) = match &opts.lan {
            Some(nic) => (
                format!("tap,id=net0,ifname={},script=no,downscript=no", nic.tap),
                format!("virtio-net-device,netdev=net0,mac={}", nic.mac),
            ),
            None => {
                let mut net = String::from("user,id=net0");
                if opts.isolated {
                    net.push_str(",restrict=on");
                }
                if let Some(p) = opts.api_port {
                    net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{p}-:6443"));
                }
                for (h, g) in &opts.forwards {
                    net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{h}-:{g}"));
                }
                (net, "virtio-net-device,netdev=net0".into())
            }
        };
        a.extend(["-netdev".into(), net, "-device".into(), device]);
    } else {
        // Board models (raspi3b): the SD card and the board's own DTB.
        a.extend(["-drive".into(), format!("if=sd,file={image},format=raw")]);
        if let Some(dtb) = board.dtbs.first() {
            let base = Path::new(dtb)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            a.extend(["-dtb".into(), files.dir.join(base).display().to_string()]);
        }
    }
    a.extend([
        "-kernel".into(),
        files.kernel.display().to_string(),
        "-initrd".into(),
        files.initrd.display().to_string(),
        "-append".into(),
        cmdline,
        "-display".into(),
        "none".into(),
        "-monitor".into(),
        "none".into(),
        "-serial".into(),
        "stdio".into(),
        "-no-reboot".into(),
    ]);
    a
}

/// QEMU's SD card model wants a power-of-two size: grow the image file up to one.
pub fn grow_to_power_of_two(image: &Path) -> Result<Option<u64>, QemuError> {
    let len = std::fs::metadata(image).map_err(io_err(image))?.len();
    let want = len.next_power_of_two();
    if want == len {
        return Ok(None);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(io_err(image))?;
    f.set_len(want).map_err(io_err(image))?;
    Ok(Some(want))
}

/// A running board with its console output collected.
pub struct Vm {
    child: Child,
    console: Arc<Mutex<Vec<u8>>>,
    started: Instant,
    _files: tempfile::TempDir,
}

impl Vm {
    /// Boot `opts.image` as `board`.
    pub fn start(board: &BoardConfig, opts: &VmOptions) -> Result<Vm, QemuError> {
        let q = board
            .qemu
            .as_ref()
            .ok_or_else(|| QemuError::NotEmulated(board.name.clone()))?;
        if q.machine != "virt" {
            grow_to_power_of_two(&opts.image)?;
        }
        let dir = tempfile::tempdir().map_err(io_err(std::env::temp_dir()))?;
        let files = extract_boot_files(&opts.image, &board.dtbs, dir.path(), q.machine == "virt")?;
        tracing::info!(slot = %files.slot, "booting root slot");
        let args = qemu_args(board, q, &files, opts);
        tracing::info!(?args, "qemu-system-aarch64");
        let mut child = Command::new("qemu-system-aarch64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| QemuError::Tool {
                command: "qemu-system-aarch64".into(),
                message: format!("{e} (install the Debian package qemu-system-arm)"),
            })?;
        let console = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = console.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            });
        }
        Ok(Vm {
            child,
            console,
            started: Instant::now(),
            _files: dir,
        })
    }

    /// Everything the console printed so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.console.lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned()
    }

    /// Wait until the console shows `marker`; returns the time since start.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<Duration, QemuError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.console().contains(marker) {
                return Ok(self.started.elapsed());
            }
            let exited = self.child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                // One last look: output may have arrived with the exit.
                std::thread::sleep(Duration::from_millis(200));
                if self.console().contains(marker) {
                    return Ok(self.started.elapsed());
                }
                let text = self.console();
                let tail: String = text
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(QemuError::Timeout {
                    marker: marker.into(),
                    secs: timeout.as_secs(),
                    tail,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for QEMU to exit (the guest powered off), up to `timeout`. Returns true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Time since QEMU was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Vm {
    /// Stops QEMU: SIGTERM (QEMU flushes the disk image and exits), SIGKILL if it is still
    /// there after `grace`; waits for it either way.
    pub fn stop(&mut self, grace: Duration) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) on our own child, not yet reaped (try_wait saw it running).
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            if !self.wait_exit(grace) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }

    /// Whether QEMU has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}
