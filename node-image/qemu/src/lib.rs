//! `bramble qemu run`: boot a board image under qemu-system-aarch64 (software emulation here),
//! the way its boot loader would: kernel, initramfs and command line come from the image's boot
//! partition, the image is the disk (virtio-blk on `virt`, the SD card on `raspi3b`), user-mode
//! networking forwards the API port on 127.0.0.1 only.

mod boot_files;
mod error;
mod lan;
mod signals;
mod vm;

use std::path::PathBuf;
use std::time::Duration;

use error::io_err;

pub use boot_files::{extract_boot_files, partition_extent, with_console, BootFiles};
pub use bramble_boards::{BoardConfig, NodeConfig};
pub use error::QemuError;
pub use lan::{Lan, LanNic, FIRST_BOARD_HOST};
pub use signals::{install_stop_handlers, stop_requested, STOP_SIGNALS};
pub use vm::{grow_to_power_of_two, qemu_args, Vm, VmOptions};

/// `bramble qemu run` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Board (`virt` is short for `qemu-virt`; `rpi-3b` runs on QEMU's raspi3b model).
    #[arg(long, default_value = "virt")]
    pub board: String,
    /// Image file (its data partition is written to).
    pub image: PathBuf,
    /// Host port on 127.0.0.1 forwarded to the node's API port 6443.
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Extra forwards HOST:GUEST (TCP, host side on 127.0.0.1).
    #[arg(long = "forward", value_parser = parse_forward)]
    pub forwards: Vec<(u16, u16)>,
    /// Memory in MiB (default: the board's).
    #[arg(long)]
    pub memory: Option<u32>,
    /// CPUs (virt only; default: the board's).
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Extra kernel command line parameters.
    #[arg(long)]
    pub append: Vec<String>,
    /// Cut the guest off from everything but the forwarded ports.
    #[arg(long)]
    pub isolated: bool,
    /// Exit once the console shows this text (prints the time it took).
    #[arg(long)]
    pub until: Option<String>,
    /// Give up after this many seconds (with --until).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Directory of board files.
    #[arg(long, env = "BRAMBLE_BOARD_DIR", default_value = "board-configs")]
    pub board_dir: PathBuf,
}

fn parse_forward(s: &str) -> Result<(u16, u16), String> {
    let (h, g) = s.split_once(':').ok_or("expected HOST:GUEST")?;
    Ok((
        h.parse().map_err(|_| "bad host port")?,
        g.parse().map_err(|_| "bad guest port")?,
    ))
}

/// Loads the board file for a `--board` value (`virt`, `rpi-3b`, ...) from `board_dir`.
pub fn load_board(board_dir: &std::path::Path, arg: &str) -> Result<BoardConfig, QemuError> {
    Ok(bramble_boards::load_board(board_dir, board_name(arg))?)
}

/// Board file name for a `--board` value.
pub fn board_name(arg: &str) -> &str {
    match arg {
        "virt" => "qemu-virt",
        "raspi3b" => "rpi-3b",
        other => other,
    }
}

/// Run `bramble qemu run`: boot the image and copy its console to stdout until QEMU exits,
/// `--until` shows up, or a stop signal (QEMU is stopped then).
pub fn run(a: RunArgs) -> Result<(), QemuError> {
    let board = load_board(&a.board_dir, &a.board)?;
    let opts = VmOptions {
        image: a.image.clone(),
        api_port: Some(a.api_port),
        forwards: a.forwards.clone(),
        memory_mib: a.memory,
        cpus: a.cpus,
        append: a.append.clone(),
        isolated: a.isolated,
        lan: None,
    };
    install_stop_handlers().map_err(io_err("sigaction"))?;
    let mut vm = Vm::start(&board, &opts)?;
    eprintln!(
        "bramble qemu: {} booting {}; API on https://127.0.0.1:{}",
        board.name,
        a.image.display(),
        a.api_port
    );
    let mut printed = 0;
    let timeout = Duration::from_secs(a.timeout);
    loop {
        let text = vm.console();
        if text.len() > printed {
            print!("{}", &text[printed..]);
            printed = text.len();
        }
        if let Some(marker) = &a.until {
            if text.contains(marker.as_str()) {
                eprintln!(
                    "\nbramble qemu: `{marker}` after {:.1} s",
                    vm.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            if vm.elapsed() > timeout {
                return Err(QemuError::Timeout {
                    marker: marker.clone(),
                    secs: a.timeout,
                    tail: String::new(),
                });
            }
        }
        if let Some(signal) = stop_requested() {
            vm.stop(Duration::from_secs(10));
            return Err(QemuError::Interrupted { signal });
        }
        if vm.wait_exit(Duration::from_millis(200)) {
            let text = vm.console();
            print!("{}", &text[printed.min(text.len())..]);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_and_board_aliases() {
        assert_eq!(parse_forward("8080:80"), Ok((8080, 80)));
        assert!(parse_forward("8080").is_err());
        assert_eq!(board_name("virt"), "qemu-virt");
        assert_eq!(board_name("rpi-4b"), "rpi-4b");
    }
}
