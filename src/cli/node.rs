//! `bramble node status|logs|kubeconfig|reboot|poweroff --node ADDR`: the client of a board's node API
//! (served by `bramble init`, see the bramble-node-api crate).

use std::time::Duration;

use bramble_node_api::{NodeClient, PowerRequest, DEFAULT_PORT};

/// `bramble node ...` arguments.
#[derive(clap::Args)]
pub struct NodeArgs {
    /// The node: HOST or HOST:PORT (default port 50000).
    #[arg(long, global = true, env = "BRAMBLE_NODE")]
    node: Option<String>,
    /// The node API bearer token (`api.token` in the node's bramble.yaml).
    #[arg(
        long,
        global = true,
        env = "BRAMBLE_NODE_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// SHA-256 fingerprint of the node certificate (init prints it on the console and in
    /// /var/lib/bramble/node-api/fingerprint); required unless --insecure.
    #[arg(long, global = true, env = "BRAMBLE_NODE_FINGERPRINT")]
    fingerprint: Option<String>,
    /// Accept any node certificate (the token then travels to whoever answers).
    #[arg(long, global = true)]
    insecure: bool,
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(clap::Subcommand)]
enum NodeCommand {
    /// Versions, uptime, memory, processes, disk and flash writes as JSON.
    Status,
    /// Lines from init's log ring (init and the services it runs).
    Logs {
        /// Only this source (`init`, `controller`, `kubelet`).
        #[arg(long)]
        source: Option<String>,
        /// Only lines after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Keep polling for new lines.
        #[arg(short, long)]
        follow: bool,
    },
    /// Print the cluster's admin kubeconfig (from a node that runs the controller).
    Kubeconfig,
    /// Stop services, sync, unmount and reboot.
    Reboot,
    /// Stop services, sync, unmount and power off.
    Poweroff,
}

/// Runs `bramble node ...`.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    let node = args
        .node
        .ok_or_else(|| anyhow::anyhow!("--node HOST[:PORT] is required"))?;
    let addr = if node
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        node
    } else {
        format!("{node}:{DEFAULT_PORT}")
    };
    let token = args
        .token
        .ok_or_else(|| anyhow::anyhow!("--token (or BRAMBLE_NODE_TOKEN) is required"))?;
    if args.fingerprint.is_none() && !args.insecure {
        anyhow::bail!(
            "--fingerprint SHA256 (printed by the node at boot) or --insecure is required"
        );
    }
    let client = NodeClient::new(&addr, &token, args.fingerprint.as_deref())?;
    match args.command {
        NodeCommand::Status => println!("{:#}", client.status()?),
        NodeCommand::Logs {
            source,
            since,
            follow,
        } => {
            let mut last = since;
            loop {
                for l in client.logs(last, source.as_deref())? {
                    println!("{:>6} [{}] {}", l.seq, l.source, l.text);
                    last = l.seq;
                }
                if !follow {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        NodeCommand::Kubeconfig => print!("{}", client.kubeconfig()?),
        NodeCommand::Reboot => {
            client.power(PowerRequest::Reboot)?;
            println!("{addr}: rebooting");
        }
        NodeCommand::Poweroff => {
            client.power(PowerRequest::Poweroff)?;
            println!("{addr}: powering off");
        }
    }
    Ok(())
}
