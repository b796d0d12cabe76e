//! The board schema: what `board-configs/<name>.yaml` holds.

use serde::{Deserialize, Serialize};

use crate::error::FieldIssue;

/// Directory (relative to the repository root) that holds the board files.
pub const DEFAULT_BOARD_DIR: &str = "board-configs";

/// How the board's boot loader finds the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootKind {
    /// Raspberry Pi GPU firmware: `bootcode.bin`/`start*.elf` read `config.txt` and `cmdline.txt`
    /// from the FAT partition and load the kernel, DTB and initramfs named there.
    RaspberrypiFirmware,
    /// QEMU `-kernel/-initrd/-dtb/-append`: the files still sit on the FAT partition (so the image
    /// is self-contained), `bramble qemu run` extracts them and passes them to QEMU.
    QemuDirect,
}

/// Which Debian kernel the board boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// Debian kernel flavour: the image package is the dependency of `linux-image-<flavour>`
    /// (for example `arm64`, `rt-arm64`, `cloud-arm64`).
    pub flavour: String,
    /// Debian suite the kernel comes from (`bookworm`, `bookworm-backports`).
    #[serde(default = "default_suite")]
    pub suite: String,
    /// Gzip the kernel on the boot partition (QEMU and the Pi firmware both accept gzip Images).
    #[serde(default)]
    pub compress: bool,
}

fn default_suite() -> String {
    "bookworm".to_string()
}

/// Resources the board offers by default (used for QEMU and as the node's advertised defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores.
    pub cpus: u32,
    /// Memory in MiB (the smallest variant of the board).
    pub memory_mib: u32,
    /// Maximum pods the kubelet should accept on this board.
    #[serde(default = "default_max_pods")]
    pub max_pods: u32,
}

fn default_max_pods() -> u32 {
    110
}

/// How `bramble qemu run` emulates the board (absent for boards QEMU does not model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSpec {
    /// `-M` machine (`virt`, `raspi3b`).
    pub machine: String,
    /// `-cpu` (absent: the machine's own CPU, as raspi3b needs).
    #[serde(default)]
    pub cpu: Option<String>,
    /// `-m` in MiB (absent: `resources.memory_mib`).
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// Guest block device of the image (`/dev/vda`, `/dev/mmcblk0`).
    pub disk: String,
    /// Console device QEMU's first serial port appears as in the guest.
    pub console: String,
}

/// One board: everything the image builder needs to make a bootable card for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    /// Board name; must equal the file stem (`rpi-4b` in `rpi-4b.yaml`).
    pub name: String,
    /// Human-readable model name.
    pub model: String,
    /// CPU architecture; only `aarch64` is supported.
    pub arch: String,
    /// Boot loader kind.
    pub boot: BootKind,
    /// Kernel to boot.
    pub kernel: KernelSpec,
    /// Device tree blob(s), relative to the kernel package's DTB directory
    /// (`/usr/lib/linux-image-<version>/`), e.g. `broadcom/bcm2711-rpi-4-b.dtb`. The first one is
    /// the board's own; the Pi firmware picks among all copied ones by board revision.
    #[serde(default)]
    pub dtbs: Vec<String>,
    /// Files from Debian's `raspi-firmware` (`/usr/lib/raspi-firmware/`) copied to the boot
    /// partition.
    #[serde(default)]
    pub firmware: Vec<String>,
    /// Lines of `config.txt` (Pi firmware only). `kernel=`/`initramfs` lines are added by the
    /// builder from the files it writes.
    #[serde(default)]
    pub config_txt: Vec<String>,
    /// Kernel command line parameters (besides `bramble.root=`, added by the builder).
    pub cmdline: Vec<String>,
    /// Serial console device the board's UART appears as (`ttyS1`, `ttyAMA0`).
    pub uart: String,
    /// Block device of the SD card / disk as the kernel names it.
    pub disk: String,
    /// Kernel modules the initramfs loads to reach the root partition (storage, squashfs).
    pub initramfs_modules: Vec<String>,
    /// Kernel modules the running system loads (overlay, br_netfilter, nf_tables, veth, bridge,
    /// network drivers...).
    pub modules: Vec<String>,
    /// Default resources.
    pub resources: Resources,
    /// QEMU emulation, if QEMU models this board.
    #[serde(default)]
    pub qemu: Option<QemuSpec>,
}

impl BoardConfig {
    /// Semantic checks serde cannot express; each issue names its field.
    pub(crate) fn check(&self, expected_name: Option<&str>) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        let mut bad = |field: &str, message: String| {
            issues.push(FieldIssue {
                field: field.to_string(),
                message,
            })
        };
        if let Some(stem) = expected_name {
            if self.name != stem {
                bad(
                    "name",
                    format!("`{}` does not match the file name `{stem}`", self.name),
                );
            }
        }
        if !is_simple_name(&self.name) {
            bad("name", "must be lower-case letters, digits and `-`".into());
        }
        if self.arch != "aarch64" {
            bad(
                "arch",
                format!("unsupported architecture `{}` (only aarch64)", self.arch),
            );
        }
        if self.kernel.flavour.trim().is_empty() {
            bad("kernel.flavour", "must not be empty".into());
        } else if !is_simple_name(&self.kernel.flavour) {
            bad(
                "kernel.flavour",
                format!("`{}` is not a Debian kernel flavour", self.kernel.flavour),
            );
        }
        if !is_simple_name(&self.kernel.suite) {
            bad(
                "kernel.suite",
                format!("`{}` is not a Debian suite", self.kernel.suite),
            );
        }
        for (i, dtb) in self.dtbs.iter().enumerate() {
            if !dtb.ends_with(".dtb") || dtb.starts_with('/') || dtb.contains("..") {
                bad(
                    &format!("dtbs[{i}]"),
                    format!("`{dtb}` must be a relative path to a .dtb file"),
                );
            }
        }
        for (i, f) in self.firmware.iter().enumerate() {
            if f.contains('/') || f.is_empty() {
                bad(
                    &format!("firmware[{i}]"),
                    format!("`{f}` must be a plain file name"),
                );
            }
        }
        match self.boot {
            BootKind::RaspberrypiFirmware => {
                if !self.config_txt.iter().any(|l| l.trim() == "arm_64bit=1") {
                    bad(
                        "config_txt",
                        "must contain `arm_64bit=1` for the aarch64 kernel".into(),
                    );
                }
                if self.dtbs.is_empty() {
                    bad("dtbs", "a Raspberry Pi board needs its device tree".into());
                }
            }
            BootKind::QemuDirect => {
                if !self.config_txt.is_empty() {
                    bad(
                        "config_txt",
                        "only Raspberry Pi firmware reads config.txt".into(),
                    );
                }
            }
        }
        for (i, line) in self.config_txt.iter().enumerate() {
            let key = line.split('=').next().unwrap_or("").trim();
            if matches!(key, "kernel" | "initramfs" | "cmdline" | "device_tree") {
                bad(
                    &format!("config_txt[{i}]"),
                    format!("`{key}` is written by the image builder; remove this line"),
                );
            }
        }
        for (i, p) in self.cmdline.iter().enumerate() {
            if p.trim().is_empty() || p.contains(char::is_whitespace) {
                bad(
                    &format!("cmdline[{i}]"),
                    format!("`{p}` must be one parameter without spaces"),
                );
            } else if p.starts_with("root=") || p.starts_with("bramble.root=") {
                bad(
                    &format!("cmdline[{i}]"),
                    "the root is set by the image builder (`bramble.root=`)".into(),
                );
            }
        }
        if !self.cmdline.iter().any(|p| p.starts_with("console=")) {
            bad(
                "cmdline",
                "needs a `console=` parameter so boot messages reach the UART".into(),
            );
        }
        if !self.uart.starts_with("tty") {
            bad("uart", format!("`{}` is not a tty device name", self.uart));
        }
        if !self.disk.starts_with("/dev/") {
            bad("disk", format!("`{}` must be a /dev path", self.disk));
        }
        for (field, list) in [
            ("initramfs_modules", &self.initramfs_modules),
            ("modules", &self.modules),
        ] {
            for (i, m) in list.iter().enumerate() {
                if m.is_empty() || m.contains('/') || m.ends_with(".ko") {
                    bad(
                        &format!("{field}[{i}]"),
                        format!("`{m}` must be a module name like `squashfs`"),
                    );
                }
            }
        }
        if !self.initramfs_modules.iter().any(|m| m == "squashfs") {
            bad(
                "initramfs_modules",
                "must load `squashfs` to mount the read-only root".into(),
            );
        }
        if self.resources.cpus == 0 {
            bad("resources.cpus", "must be at least 1".into());
        }
        if self.resources.memory_mib < 256 {
            bad("resources.memory_mib", "must be at least 256".into());
        }
        if let Some(q) = &self.qemu {
            if q.machine.is_empty() {
                bad("qemu.machine", "must not be empty".into());
            }
            if !q.disk.starts_with("/dev/") {
                bad("qemu.disk", format!("`{}` must be a /dev path", q.disk));
            }
        }
        issues
    }
}

fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}
