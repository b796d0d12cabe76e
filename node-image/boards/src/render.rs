//! Rendering the boot files the firmware and kernel read: `cmdline.txt` and `config.txt`.

use crate::board::BoardConfig;

/// Where the root and data partitions are: MBR disk signature plus partition numbers, written on
/// the kernel command line as `bramble.root=PARTUUID=<sig>-<nn>` (the same PARTUUID form the
/// kernel and util-linux use), so init finds them whatever the disk is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootRef {
    /// MBR disk signature (bytes 440..444 of the image).
    pub disk_id: u32,
    /// Partition number of the active read-only root (2 = slot A, 4 = slot B).
    pub root_partition: u8,
    /// Partition number of the data partition.
    pub data_partition: u8,
}

impl RootRef {
    /// `PARTUUID=xxxxxxxx-nn` of partition `n`.
    pub fn partuuid(&self, n: u8) -> String {
        format!("PARTUUID={:08x}-{:02x}", self.disk_id, n)
    }
}

/// The kernel command line: the board's parameters, then the root and data partitions.
pub fn render_cmdline(board: &BoardConfig, root: &RootRef) -> String {
    let mut parts: Vec<String> = board.cmdline.clone();
    parts.push(format!(
        "bramble.root={}",
        root.partuuid(root.root_partition)
    ));
    parts.push(format!(
        "bramble.data={}",
        root.partuuid(root.data_partition)
    ));
    parts.join(" ")
}

/// `config.txt` for the Pi firmware: the board's lines plus the kernel and initramfs the builder
/// wrote (`kernel_file`, `initramfs_file` on the FAT partition).
pub fn render_config_txt(board: &BoardConfig, kernel_file: &str, initramfs_file: &str) -> String {
    let mut out = String::from("# Written by `bramble image build`; board ");
    out.push_str(&board.name);
    out.push('\n');
    for line in &board.config_txt {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("kernel={kernel_file}\n"));
    out.push_str(&format!("initramfs {initramfs_file} followkernel\n"));
    out
}
