//! `bramble`: one static multi-call binary for every part of a Bramble cluster.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bramble",
    version,
    about = "Kubernetes-compatible cluster firmware for Raspberry Pi-class boards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: the Kubernetes API server on the embedded store.
    Controller(cli::controller::ControllerArgs),
    /// Run the node agent: register this node and run the pods bound to it.
    Kubelet(Box<cli::kubelet::KubeletArgs>),
    /// Run a single-node cluster on this machine and point kubectl at it.
    Up(cli::controller::UpArgs),
    /// Images: build board SD-card images (`image build`); container images on this node
    /// (`image import|ls|rm`).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Bramble as PID 1 on a board image; `init reboot|poweroff` control it.
    Init(bramble_init::InitArgs),
    /// Write an image to an SD card, with safety checks and read-back verification.
    Flash(bramble_flash::FlashArgs),
    /// Boot board images under QEMU (software emulation).
    Qemu(cli::qemu::QemuArgs),
    /// Manage a board over its node API (status, logs, reboot, poweroff).
    Node(cli::node::NodeArgs),
    /// Bootstrap tokens for joining nodes (`token create|list|delete`).
    Token(cli::token::TokenArgs),
    /// Print the version of this binary.
    Version,
}

/// `bramble image ...`: board images.
#[derive(Subcommand)]
enum ImageCommand {
    /// Build a flashable SD-card image for one board.
    Build(bramble_image_builder::BuildArgs),
    /// Container images on this node (`import FILE`, `ls`, `rm REF`; store directory from
    /// $BRAMBLE_IMAGE_DIR, default /var/lib/bramble/images).
    #[command(flatten)]
    Node(bramble_images::cli::Command),
}

fn main() -> anyhow::Result<()> {
    // `bramble pause` (the pod sandbox's process) and `bramble runtime-helper` (the
    // single-threaded process that calls libcontainer) run before anything else, so no thread
    // exists when they fork.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = bramble_runtime::multicall::dispatch(&args) {
        std::process::exit(code);
    }
    // Multi-call: invoked as /init, /sbin/init or /sbin/modprobe on a board image.
    let cli = Cli::parse_from(bramble_init::multicall_args(std::env::args_os()));
    match cli.command {
        Command::Controller(args) => cli::controller::run_controller(args),
        Command::Up(args) => cli::controller::run_up(args),
        Command::Kubelet(args) => cli::kubelet::run_kubelet(*args),
        Command::Image(ImageCommand::Build(args)) => {
            bramble_image_builder::run(args)?;
            Ok(())
        }
        Command::Image(ImageCommand::Node(command)) => {
            let data_dir = std::env::var_os("BRAMBLE_IMAGE_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| bramble_images::cli::DEFAULT_DATA_DIR.into());
            Ok(bramble_images::cli::run(bramble_images::cli::Args {
                data_dir,
                command,
            })?)
        }
        Command::Init(args) => Ok(bramble_init::run(args)?),
        Command::Flash(args) => {
            bramble_flash::run(args)?;
            Ok(())
        }
        Command::Qemu(args) => cli::qemu::run(args),
        Command::Node(args) => cli::node::run(args),
        Command::Token(args) => cli::token::run(args),
        Command::Version => {
            println!(
                "bramble {} (Kubernetes API v1.33, {}/{})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            Ok(())
        }
    }
}
