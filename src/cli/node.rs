//! `bramble node status|logs|kubeconfig|reboot|poweroff|upgrade --node ADDR`: the client of a board's node API
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
    /// Write IMAGE (from `bramble image build`) to the node's inactive root slot, verify it and
    /// reboot into it on trial: it becomes the active slot once its services stay up, otherwise
    /// the node falls back to the current slot.
    Upgrade {
        /// The new image.
        image: std::path::PathBuf,
    },
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
        NodeCommand::Upgrade { image } => {
            let work = std::env::temp_dir().join(format!("bramble-upgrade-{}", std::process::id()));
            std::fs::create_dir_all(&work)?;
            let bundle = bramble_node_api::image::bundle_from_image(&image, &work);
            let bundle = bundle.inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&work);
            })?;
            eprintln!(
                "{addr}: sending {} ({} MiB root, board {})",
                image.display(),
                bundle.manifest.root.size >> 20,
                bundle.manifest.board
            );
            let mut readers = bundle.readers()?;
            let mut refs: Vec<&mut dyn std::io::Read> = readers
                .iter_mut()
                .map(|r| r.as_mut() as &mut dyn std::io::Read)
                .collect();
            let answer = client.upgrade(&bundle.manifest, &mut refs);
            let _ = std::fs::remove_dir_all(&work);
            println!("{:#}", answer?);
        }
        NodeCommand::Poweroff => {
            client.power(PowerRequest::Poweroff)?;
            println!("{addr}: powering off");
        }
    }
    Ok(())
}
