//! `bramble qemu run|cluster`: boot board images under QEMU (software emulation). `run` lives
//! in bramble-qemu; `cluster` also talks to the cluster's API (src/cli/qemu_cluster.rs).

use crate::cli::qemu_cluster::{self, ClusterArgs};

/// `bramble qemu ...`.
#[derive(Debug, clap::Args)]
pub struct QemuArgs {
    #[command(subcommand)]
    command: QemuCommand,
}

#[derive(Debug, clap::Subcommand)]
enum QemuCommand {
    /// Boot an image built by `bramble image build` and show its console.
    Run(bramble_qemu::RunArgs),
    /// Boot N qemu-virt boards on a virtual LAN of this machine that form one cluster: board
    /// 0 runs the controller and a kubelet, the others join it with a bootstrap token.
    Cluster(ClusterArgs),
}

/// Runs `bramble qemu ...`.
pub fn run(args: QemuArgs) -> anyhow::Result<()> {
    match args.command {
        QemuCommand::Run(a) => Ok(bramble_qemu::run(a)?),
        QemuCommand::Cluster(a) => qemu_cluster::run(a),
    }
}
