//! `bramble kubelet`: the node agent, and its in-process start for `bramble up`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bramble_kubelet::client::{client, cluster_ca_pem, ApiAccess};
use bramble_kubelet::config::{parse_labels, parse_taints};
use bramble_kubelet::{Kubelet, KubeletConfig};

/// Flags of `bramble kubelet`.
#[derive(clap::Args, Clone, Debug)]
pub struct KubeletArgs {
    /// Name of the Node object (default: this machine's hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Kubelet state: pod directories and container logs.
    #[arg(long, default_value = bramble_kubelet::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Container image store (shared with `bramble image`).
    #[arg(long, default_value = bramble_images::cli::DEFAULT_DATA_DIR)]
    pub image_dir: PathBuf,
    /// Container runtime state (containers survive kubelet restarts through it).
    #[arg(long, default_value = "/var/lib/bramble/runtime")]
    pub runtime_dir: PathBuf,
    /// Kubeconfig with the API server and credentials.
    #[arg(long, conflicts_with_all = ["server", "token"])]
    pub kubeconfig: Option<PathBuf>,
    /// API server URL (with --token).
    #[arg(long, requires = "token")]
    pub server: Option<String>,
    /// Bearer token (with --server); a bootstrap token (`abcdef.0123456789abcdef`) with
    /// --discovery-token-ca-cert-hash joins the cluster instead.
    #[arg(long, requires = "server")]
    pub token: Option<String>,
    /// Join with the bootstrap --token, trusting the controller's CA only if its public key
    /// hash is one of these (`sha256:<hex>`, as `bramble token create --print-join-command`
    /// prints; repeatable). The node's credentials are kept in <data-dir>/kubeconfig and
    /// renewed before they expire.
    #[arg(long = "discovery-token-ca-cert-hash", requires = "token")]
    pub discovery_token_ca_cert_hashes: Vec<String>,
    /// CA bundle (PEM) the API server's certificate is checked against (with --server).
    #[arg(long)]
    pub certificate_authority: Option<PathBuf>,
    /// The cgroupfs mount.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// Cgroup under which `kubepods` is created, relative to --cgroup-root.
    #[arg(long)]
    pub cgroup_parent: Option<PathBuf>,
    /// Pods this node can run (`status.capacity.pods`; default 110).
    #[arg(long)]
    pub max_pods: Option<u32>,
    /// Port reported as the kubelet endpoint (default 10250).
    #[arg(long)]
    pub kubelet_port: Option<u16>,
    /// The node's InternalIP (default: the address of the default route).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Extra node labels, `key=value,...`.
    #[arg(long, default_value = "")]
    pub node_labels: String,
    /// Taints to register the node with, `key=value:Effect,...`.
    #[arg(long)]
    pub register_with_taints: Option<String>,
    /// Kubelet configuration file (a `kubelet.config.k8s.io/v1beta1` KubeletConfiguration);
    /// flags given on the command line override its fields.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Static pod manifests (`*.yaml`, `*.yml`, `*.json`) run without the API server and
    /// mirrored into it (default: <data-dir>/manifests; also `staticPodPath` in --config).
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// Registry reached over plain HTTP besides loopback (`host[:port]` or CIDR; repeatable).
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Log level when RUST_LOG is not set.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    #[command(flatten)]
    pub network: crate::cli::pod_network::NetworkArgs,
    #[command(flatten)]
    pub ingress: crate::cli::ingress::IngressArgs,
}

/// The kubelet configuration of these flags.
pub fn config_of(args: &KubeletArgs) -> anyhow::Result<KubeletConfig> {
    let name = args
        .node_name
        .clone()
        .unwrap_or_else(bramble_kubelet::node_info::hostname);
    let mut cfg = KubeletConfig::new(name);
    if let Some(file) = &args.config {
        bramble_kubelet::config_file::load_into(file, &mut cfg)?;
    }
    // Absolute: the runtime helper and libcontainer resolve bundle paths from other working
    // directories, so a relative `--runtime-dir` failed every container create.
    cfg.data_dir = std::path::absolute(&args.data_dir)?;
    cfg.image_dir = std::path::absolute(&args.image_dir)?;
    cfg.runtime_dir = std::path::absolute(&args.runtime_dir)?;
    cfg.cgroup_root = args.cgroup_root.clone();
    if let Some(p) = &args.cgroup_parent {
        cfg.cgroup_parent = p.clone();
    }
    if let Some(n) = args.max_pods {
        cfg.max_pods = n;
    }
    if let Some(p) = args.kubelet_port {
        cfg.kubelet_port = p;
    }
    cfg.node_ip = args.node_ip;
    cfg.node_labels = parse_labels(&args.node_labels)?;
    if let Some(t) = &args.register_with_taints {
        cfg.register_with_taints = parse_taints(t)?;
    }
    cfg.insecure_registries = args.insecure_registries.clone();
    if let Some(p) = &args.pod_manifest_path {
        cfg.static_pod_path = Some(p.clone());
    }
    Ok(cfg)
}

/// The join to do when `--token` is a bootstrap token: it needs a CA hash to trust the
/// controller (kubeadm refuses to join without one too).
fn join_config(
    args: &KubeletArgs,
    cfg: &KubeletConfig,
) -> anyhow::Result<Option<bramble_auth::join::JoinConfig>> {
    let (Some(server), Some(token)) = (&args.server, &args.token) else {
        return Ok(None);
    };
    let bootstrap = bramble_auth::bootstrap_token::BootstrapToken::parse(token).is_ok();
    if args.discovery_token_ca_cert_hashes.is_empty() {
        anyhow::ensure!(
            !bootstrap,
            "--token is a bootstrap token but --discovery-token-ca-cert-hash is missing: \
             refusing to join without pinning the controller's CA"
        );
        return Ok(None);
    }
    anyhow::ensure!(
        bootstrap,
        "--token: a bootstrap token of the form [a-z0-9]{{6}}.[a-z0-9]{{16}} is required with \
         --discovery-token-ca-cert-hash"
    );
    Ok(Some(bramble_auth::join::JoinConfig::new(
        server.clone(),
        token.clone(),
        args.discovery_token_ca_cert_hashes.clone(),
        cfg.node_name.clone(),
        bramble_auth::rotation::kubeconfig_path(&cfg.data_dir),
    )))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs `bramble kubelet` until SIGTERM or Ctrl-C (containers keep running).
pub fn run_kubelet(args: KubeletArgs) -> anyhow::Result<()> {
    crate::cli::logging::init(&args.log_level);
    let access = match (&args.kubeconfig, &args.server, &args.token) {
        (Some(k), _, _) => ApiAccess::Kubeconfig(k.clone()),
        (None, Some(server), Some(token)) => ApiAccess::Token {
            server: server.clone(),
            token: token.clone(),
            ca: args.certificate_authority.clone(),
        },
        _ => anyhow::bail!("either --kubeconfig or --server with --token is required"),
    };
    let mut cfg = config_of(&args)?;
    cfg.client_ca_pem = cluster_ca_pem(&access);
    bramble_kubelet::idle_text::limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = match join_config(&args, &cfg)? {
            Some(join) => {
                let (client, ca) = bramble_auth::rotation::kubelet_client(&join)
                    .await
                    .with_context(|| format!("joining {}", join.server))?;
                cfg.client_ca_pem = Some(ca);
                client
            }
            None => client(&access).await.context("building the API client")?,
        };
        crate::cli::pod_network::start(&args.network, &mut cfg, client.clone());
        crate::cli::ingress::start(&args.ingress, &args.network, client.clone());
        let kubelet = Kubelet::start(cfg, client)
            .await
            .context("starting the kubelet")?;
        kubelet.run(shutdown_signal()).await?;
        Ok(())
    })
}

/// Starts a kubelet for this machine inside the controller process (`bramble up`), with
/// its state under `data_dir` and the given in-process API client.
/// What the controller starts for a kubelet in its process once the kubelet has written its
/// Node (see `local_node`): the node's service proxy, NetworkPolicy agent, routes and ingress,
/// which its node's Ready does not wait for.
pub type NodeServices = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Starts the kubelet of `bramble up`; returns its [`NodeServices`].
pub fn spawn_in_process(
    data_dir: &Path,
    client: bramble_kubelet::Client,
    ca_pem: String,
) -> NodeServices {
    let mut cfg = KubeletConfig::new(bramble_kubelet::node_info::hostname());
    // The CA that signs the controller's kubelet client certificate: with it the kubelet
    // serves logs, exec, attach, port-forward and the stats `kubectl top` reads.
    cfg.client_ca_pem = Some(ca_pem);
    let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    cfg.data_dir = data_dir.join("kubelet");
    cfg.image_dir = data_dir.join("images");
    cfg.runtime_dir = data_dir.join("runtime");
    cfg.node_labels.insert(
        "node-role.kubernetes.io/control-plane".into(),
        "true".into(),
    );
    let network = crate::cli::pod_network::NetworkArgs::default();
    crate::cli::pod_network::configure(&network, &mut cfg, client.clone());
    let services = {
        let (node, client) = (cfg.node_name.clone(), client.clone());
        Box::pin(async move {
            crate::cli::pod_network::start_services(&network, &node, client.clone());
            crate::cli::ingress::start(&Default::default(), &network, client);
        })
    };
    tokio::spawn(async move {
        match Kubelet::start(cfg, client).await {
            Ok(k) => {
                if let Err(e) = k.run(std::future::pending()).await {
                    tracing::error!(error = %e, "kubelet stopped");
                }
            }
            Err(e) => tracing::error!(error = %e, "starting the kubelet"),
        }
    });
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kubelet: KubeletArgs,
    }

    #[test]
    fn relative_directories_become_absolute() {
        let cli = Cli::try_parse_from([
            "kubelet",
            "--node-name",
            "n1",
            "--data-dir",
            "state/kubelet",
            "--image-dir",
            "images",
            "--runtime-dir",
            "run",
        ])
        .unwrap();
        let cfg = config_of(&cli.kubelet).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(cfg.data_dir, cwd.join("state/kubelet"));
        assert_eq!(cfg.image_dir, cwd.join("images"));
        assert_eq!(cfg.runtime_dir, cwd.join("run"));
    }
}
