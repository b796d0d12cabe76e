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
    /// Print the version of this binary.
    Version,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("bramble {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
