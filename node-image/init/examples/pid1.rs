//! A stand-alone multi-call binary with only `init` (and its `modprobe` applet), for booting an
//! image while the full `bramble` binary is unavailable: `cargo zigbuild --release --target
//! aarch64-unknown-linux-musl -p bramble-init --example pid1`.

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run as PID 1 (or reboot/poweroff/modprobe).
    Init(bramble_init::InitArgs),
}

fn main() {
    let cli = Cli::parse_from(bramble_init::multicall_args(std::env::args_os()));
    let Command::Init(args) = cli.command;
    if let Err(e) = bramble_init::run(args) {
        eprintln!("bramble init: {e}");
        std::process::exit(1);
    }
}
