//! `bramble node status|logs|kubeconfig|reboot|poweroff|upgrade --node ADDR`: the client of a board's node API
//! (served by `bramble init`, see the bramble-node-api crate).

use std::time::Duration;

use bramble_node_api::{NodeClient, PowerRequest, DEFAULT_PORT};

/// `bramble node ...` arguments.
#[derive(clap::Args)]
pub struct NodeArgs {
    /// The node: HOST or HOST:PORT (default port 50000; with --kubeconfig, the host of its
    /// server by default).
    #[arg(long, global = true, env = "BRAMBLE_NODE")]
    node: Option<String>,
    /// Authenticate with the client certificate of this kubeconfig's current context (a
    /// cluster admin's, e.g. the admin kubeconfig) and verify the node against its cluster
    /// CA: mutual TLS, no token or fingerprint needed.
    #[arg(long, global = true, env = "BRAMBLE_NODE_KUBECONFIG", conflicts_with_all = ["token", "fingerprint", "insecure"])]
    kubeconfig: Option<std::path::PathBuf>,
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
    let cluster = match &args.kubeconfig {
        Some(path) => Some(cluster_credentials(path)?),
        None => None,
    };
    let node = args
        .node
        .clone()
        .or_else(|| cluster.as_ref().and_then(|c| server_host(&c.server)))
        .ok_or_else(|| anyhow::anyhow!("--node HOST[:PORT] is required"))?;
    let addr = if node
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        node
    } else {
        format!("{node}:{DEFAULT_PORT}")
    };
    let client = match cluster {
        Some(c) => NodeClient::with_client_cert(&addr, &c.ca_pem, &c.cert_pem, &c.key_pem)?,
        None => {
            let token = args.token.ok_or_else(|| {
                anyhow::anyhow!(
                    "--token (or BRAMBLE_NODE_TOKEN) is required, or --kubeconfig with a cluster \
                     admin's client certificate"
                )
            })?;
            if args.fingerprint.is_none() && !args.insecure {
                anyhow::bail!(
                    "--fingerprint SHA256 (printed by the node at boot) or --insecure is required"
                );
            }
            NodeClient::new(&addr, &token, args.fingerprint.as_deref())?
        }
    };
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

/// The cluster CA and client certificate of a kubeconfig's current context.
struct ClusterCredentials {
    server: String,
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn cluster_credentials(path: &std::path::Path) -> anyhow::Result<ClusterCredentials> {
    let entry = bramble_pki::read_current_kubeconfig_entry(path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "--kubeconfig {}: no current context with embedded cluster CA and credentials",
            path.display()
        )
    })?;
    match entry.user {
        bramble_pki::KubeconfigUser::ClientCert { cert_pem, key_pem } => Ok(ClusterCredentials {
            server: entry.server,
            ca_pem: entry.ca_pem,
            cert_pem,
            key_pem,
        }),
        bramble_pki::KubeconfigUser::Token(_) => anyhow::bail!(
            "--kubeconfig {}: the current context's user has a token, not a client certificate \
             (the node API takes a cluster admin's certificate, e.g. the admin kubeconfig's)",
            path.display()
        ),
    }
}

/// The host of a kubeconfig's `server` URL (`https://HOST:PORT/...`).
fn server_host(server: &str) -> Option<String> {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next()?),
        None => authority.split(':').next()?.to_string(),
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::server_host;

    #[test]
    fn the_node_defaults_to_the_kubeconfig_servers_host() {
        assert_eq!(
            server_host("https://192.168.1.10:6443").as_deref(),
            Some("192.168.1.10")
        );
        assert_eq!(server_host("https://pi-1:6443/").as_deref(), Some("pi-1"));
        assert_eq!(
            server_host("https://[fd00::1]:6443").as_deref(),
            Some("[fd00::1]")
        );
        assert_eq!(server_host("https://"), None);
    }
}
