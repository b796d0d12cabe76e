//! `bramble`: one static multi-call binary for every part of a Bramble cluster.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bramble", version, about = "Kubernetes-compatible cluster firmware for Raspberry Pi-class boards")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Board images: build flashable SD-card images (`image build`).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Bramble as PID 1 on a board image; `init reboot|poweroff` control it.
    Init(bramble_init::InitArgs),
    /// Write an image to an SD card, with safety checks and read-back verification.
    Flash(bramble_flash::FlashArgs),
    /// Boot board images under QEMU (software emulation).
    Qemu(bramble_qemu::QemuArgs),
    /// Print the version of this binary.
    Version,
}

/// `bramble image ...`: board images.
#[derive(Subcommand)]
enum ImageCommand {
    /// Build a flashable SD-card image for one board.
    Build(bramble_image_builder::BuildArgs),
}

fn main() -> anyhow::Result<()> {
    // Multi-call: invoked as /init, /sbin/init or /sbin/modprobe on a board image.
    let cli = Cli::parse_from(bramble_init::multicall_args(std::env::args_os()));
    match cli.command {
        Command::Image(ImageCommand::Build(args)) => {
            bramble_image_builder::run(args)?;
            Ok(())
        }
        Command::Init(args) => Ok(bramble_init::run(args)?),
        Command::Flash(args) => {
            bramble_flash::run(args)?;
            Ok(())
        }
        Command::Qemu(args) => Ok(bramble_qemu::run(args)?),
        Command::Version => {
            println!("bramble {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
