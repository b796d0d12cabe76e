//! `bramble controller` and `bramble up`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use bramble_apiserver::{Controller, ControllerConfig};

/// Flags of `bramble controller`.
#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Directory for the store (`db/`) and the cluster PKI (`pki/`); created if missing.
    #[arg(long, env = "BRAMBLE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Address and port the API server listens on.
    #[arg(long, default_value = "0.0.0.0:6443")]
    pub listen: SocketAddr,
    /// Address other nodes and pods reach this controller at (the `kubernetes` Service
    /// endpoint, the cluster DNS, a serving certificate name); defaults to the listen
    /// address, or for a wildcard one to the address of the interface holding the default
    /// route, IPv4 first, as kube-apiserver (127.0.0.1 with a warning when there is none).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// Serve plain HTTP instead of TLS. Bearer tokens are still required; use only on a
    /// trusted loopback or for debugging.
    #[arg(long)]
    pub plain_http: bool,
    /// Extra DNS name or IP address for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    pub tls_sans: Vec<String>,
    /// Also write an admin kubeconfig to this path (merged into an existing file).
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Also write a kubeconfig for this machine's kubelet to this path: a client certificate
    /// from the cluster CA for `system:node:<--node-name>` in `system:nodes`, kept while it is
    /// usable, issued again when missing, in the last 20% of its lifetime or for another node.
    #[arg(long)]
    pub write_node_kubeconfig: Option<PathBuf>,
    /// This machine's Node name for --write-node-kubeconfig (default: the hostname, as the
    /// kubelet's --node-name).
    #[arg(long, requires = "write_node_kubeconfig")]
    pub node_name: Option<String>,
    /// How many store events are kept so watches can resume from an older resourceVersion.
    #[arg(long, default_value_t = 10_000)]
    pub history_limit: u64,
    /// Seconds between BOOKMARK events on watches that allow them.
    #[arg(long, default_value_t = 60)]
    pub bookmark_interval_seconds: u64,
    /// Directory on each node under which the local-path provisioner's volumes are made.
    #[arg(long, default_value = bramble_storage::DEFAULT_STORAGE_ROOT)]
    pub local_path_dir: String,
    /// Longest validity of certificates signed for CertificateSigningRequests (upstream's
    /// flag; Go duration such as `8760h0m0s` or `90s`).
    #[arg(long, default_value = "8760h0m0s", value_parser = parse_go_duration)]
    pub cluster_signing_duration: Duration,
    /// Authorizers, as upstream's flag: `Node,RBAC` (the default) or `AlwaysAllow` (every
    /// authenticated request allowed: for measurements only).
    #[arg(long, default_value = "Node,RBAC", value_parser = ["Node,RBAC", "RBAC,Node", "AlwaysAllow"])]
    pub authorization_mode: String,
    /// Rotate the audit log (<data-dir>/audit/audit.log) when it passes this many megabytes.
    #[arg(long, default_value_t = 10)]
    pub audit_log_maxsize: u64,
    /// Rotated audit log files kept.
    #[arg(long, default_value_t = 3)]
    pub audit_log_maxbackup: usize,
    /// Upstream's audit.k8s.io/v1 Policy file (levels None and Metadata). Without it, every
    /// mutating request is logged except Events and the Lease renewals of node heartbeats
    /// and leader election (high-volume, low-risk; upstream's GCE policy drops Events too).
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// Log level when RUST_LOG is not set.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Port of the cluster DNS on the advertise address (UDP and TCP; the kube-dns Service
    /// 10.43.0.10:53 forwards there); 0 turns the DNS off.
    #[arg(long, default_value_t = 53)]
    pub dns_port: u16,
    /// The cluster domain the DNS serves.
    #[arg(long, default_value = bramble_dns::DEFAULT_DOMAIN)]
    pub cluster_domain: String,
    /// Run the scheduler and the controllers only while holding the Lease
    /// kube-system/kube-controller-manager (upstream's leader election: 15 s lease, 10 s renew
    /// deadline, 2 s retry); the process exits if it loses the lease. Off for a single
    /// controller.
    #[arg(long)]
    pub leader_elect: bool,
    /// Also run this machine's kubelet in the process (`bramble up`).
    #[arg(skip)]
    pub run_kubelet: bool,
    /// Also run a kubelet in this process as its node, configured by `--kubelet-arg`: one
    /// process instead of two on a board of role `both` (`bramble init` runs it so), and the
    /// kubelet talks to the API in process from the moment the API is set up.
    #[arg(long)]
    pub kubelet: bool,
    /// One `bramble kubelet` flag or value for `--kubelet` (repeatable, in order, e.g.
    /// `--kubelet-arg=--node-name --kubelet-arg=pi-1`); no --kubeconfig, --server or --token.
    #[arg(long = "kubelet-arg", requires = "kubelet", allow_hyphen_values = true)]
    pub kubelet_args: Vec<String>,
    /// Start the `--kubelet` only once this file exists (repeatable; init's mark that the
    /// board's modules are loaded).
    #[arg(long, requires = "kubelet")]
    pub kubelet_after: Vec<PathBuf>,
}

/// Flags of `bramble up`.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Where kubectl finds the cluster: the admin kubeconfig is merged into this file and its
    /// context made current. Defaults to $KUBECONFIG or ~/.kube/config.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub controller: ControllerArgs,
}

/// `/var/lib/bramble` for root, else `~/.local/share/bramble`.
pub fn default_data_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/bramble");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("bramble")
}

/// The kubeconfig kubectl reads by default: the first path of $KUBECONFIG, else ~/.kube/config.
pub fn default_kubeconfig() -> PathBuf {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .filter(|p| !p.as_os_str().is_empty())
    {
        return first;
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".kube/config")
}

/// A Go duration of hours, minutes and seconds (`8760h0m0s`, `1h30m`, `90s`).
fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let (mut total, mut digits) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {c:?}")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: missing number before {c:?}"))?;
        total += n * unit;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(format!("invalid duration {s:?}: expected e.g. 8760h0m0s"));
    }
    Ok(Duration::from_secs(total))
}

fn config_of(args: &ControllerArgs) -> anyhow::Result<ControllerConfig> {
    let mut cfg = ControllerConfig::new(args.data_dir.join("controller"), args.listen);
    cfg.advertise_address = args.advertise_address;
    cfg.plain_http = args.plain_http;
    cfg.tls_sans = args.tls_sans.clone();
    cfg.history_limit = args.history_limit;
    cfg.bookmark_interval = Duration::from_secs(args.bookmark_interval_seconds.max(1));
    cfg.cluster_signing_duration = args.cluster_signing_duration;
    cfg.always_allow = args.authorization_mode == "AlwaysAllow";
    cfg.audit = Some(bramble_apiserver::audit::AuditConfig {
        dir: args.data_dir.join("audit"),
        max_size: args.audit_log_maxsize * 1024 * 1024,
        max_backups: args.audit_log_maxbackup,
        policy: match &args.audit_policy_file {
            Some(path) => bramble_apiserver::audit_policy::AuditPolicy::load(path)?,
            None => bramble_apiserver::audit_policy::AuditPolicy::default(),
        },
    });
    Ok(cfg)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs the controller until SIGTERM or Ctrl-C.
pub fn run_controller(args: ControllerArgs) -> anyhow::Result<()> {
    crate::cli::logging::init(&args.log_level);
    bramble_apiserver::memory::limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The flags are checked before anything starts.
    let node_kubelet = args
        .kubelet
        .then(|| NodeKubelet::parse(&args.kubelet_args))
        .transpose()?;
    rt.block_on(async {
        let cfg = config_of(&args)?;
        let controller = Controller::start(&cfg)
            .await
            .with_context(|| format!("starting the controller in {}", cfg.data_dir.display()))?;
        // This machine's kubelet first: the other controllers start once it has written its
        // Node (see local_node), so that their informers' first lists do not take the CPU its
        // registration needs.
        let kubelet_node = if args.run_kubelet {
            Some(bramble_kubelet::node_info::hostname())
        } else {
            node_kubelet.as_ref().map(|k| k.config.node_name.clone())
        };
        let node_writes = match &kubelet_node {
            Some(node) => Some(
                crate::cli::local_node::NodeWrites::mark(
                    controller.in_process_client("system:kube-controller-manager"),
                    node,
                )
                .await
                .with_context(|| format!("reading Node {node}"))?,
            ),
            None => None,
        };
        let mut node_services = None;
        if args.run_kubelet {
            // `bramble up`: the node agent in the same process, as its node's user.
            let node = bramble_kubelet::node_info::hostname();
            let client = controller.in_process_node_client(&node);
            node_services = Some(crate::cli::kubelet::spawn_in_process(
                &args.data_dir,
                client,
                controller.pki.ca_cert_pem().to_string(),
            ));
        } else if let Some(kubelet) = &node_kubelet {
            let client = controller.in_process_node_client(&kubelet.config.node_name);
            node_services = Some(spawn_node_kubelet(
                kubelet.clone(),
                controller.pki.ca_cert_pem().to_string(),
                args.kubelet_after.clone(),
                client,
            ));
        } else {
            // The controller alone drops the binary's code pages it no longer runs and the
            // heap it freed, at the kubelet's period (a kubelet in this process trims them for
            // both): with 10,000 Pods, text trimmed every 60 s had grown back to 18.6 MiB.
            tokio::spawn(bramble_kubelet::idle_text::run_kubelet());
        }
        let controllers = Controllers {
            informers_client: controller.in_process_client("system:kube-controller-manager"),
            scheduler_client: controller.in_process_client("system:kube-scheduler"),
            lifecycle_client: controller
                .in_process_client("system:serviceaccount:kube-system:node-controller"),
            manager_client: controller.in_process_client("system:kube-controller-manager"),
            dns_client: controller.in_process_client("system:bramble-dns"),
            advertise: controller.advertise_address(),
            args: args.clone(),
        };
        match node_writes {
            Some(writes) => {
                tokio::spawn(async move {
                    match writes.next(crate::cli::local_node::LIMIT).await {
                        Ok(true) => tracing::info!("kubelet wrote its Node; starting controllers"),
                        Ok(false) => tracing::info!(
                            limit_s = crate::cli::local_node::LIMIT.as_secs(),
                            "kubelet has not written its Node yet; starting controllers"
                        ),
                        Err(e) => tracing::warn!(error = %e, "reading Node; starting controllers"),
                    }
                    if let Some(services) = node_services {
                        services.await;
                    }
                    controllers.start().await;
                });
            }
            // Without a kubelet, as before: the DNS is listening when the kubeconfig appears.
            None => controllers.start().await,
        }
        // Before the admin kubeconfig, whose appearance tells waiting tools the controller
        // is up.
        if let Some(path) = &args.write_node_kubeconfig {
            let node = args
                .node_name
                .clone()
                .unwrap_or_else(bramble_kubelet::node_info::hostname);
            controller
                .pki
                .write_node_kubeconfig(path, &controller.url(), &node)
                .with_context(|| format!("writing node kubeconfig {}", path.display()))?;
        }
        if let Some(path) = &args.write_kubeconfig {
            controller
                .write_admin_kubeconfig(path)
                .with_context(|| format!("writing kubeconfig {}", path.display()))?;
        }
        controller.serve(shutdown_signal()).await;
        Ok(())
    })
}

/// The scheduler, the controller-manager's controllers, the network, ingress and storage
/// controllers and the cluster DNS, with the clients they act as.
struct Controllers {
    informers_client: kube::Client,
    scheduler_client: kube::Client,
    lifecycle_client: kube::Client,
    manager_client: kube::Client,
    dns_client: kube::Client,
    advertise: IpAddr,
    args: ControllerArgs,
}

impl Controllers {
    async fn start(self) {
        let args = self.args;
        // One informer (list+watch cache) per kind, shared by the scheduler and the workload
        // controllers.
        let informers = bramble_informer::SharedInformers::new(self.informers_client);
        let netctl_informers = informers.clone();
        let scheduler_client = self.scheduler_client;
        let lifecycle_client = self.lifecycle_client;
        let workloads_client = self.manager_client.clone();
        let start_controllers = move || {
            // Scheduler and node lifecycle controller (upstream intervals unless BRAMBLE_* env).
            bramble_scheduler::spawn(
                scheduler_client,
                lifecycle_client,
                &informers,
                bramble_scheduler::SchedulerConfig::from_env(),
                bramble_scheduler::NodeLifecycleConfig::from_env(),
            );
            // Workload controllers and the garbage collector.
            bramble_workloads::spawn(workloads_client, &informers);
        };
        if args.leader_elect {
            let elector = bramble_apiserver::leader_election::LeaderElector::new(
                self.manager_client.clone(),
                bramble_apiserver::leader_election::ElectionConfig::new("kube-controller-manager"),
            );
            tokio::spawn(async move {
                elector
                    .run(async move {
                        start_controllers();
                        std::future::pending::<()>().await
                    })
                    .await;
                // as upstream's controller-manager: a lost lease ends the process, so the
                // controllers never run next to a new leader's
                tracing::error!("leader election lost; exiting");
                std::process::exit(1);
            });
        } else {
            start_controllers();
        }
        // Node IPAM, EndpointSlices/Endpoints, LoadBalancer status.
        bramble_netctl::spawn(netctl_informers);
        // The default `bramble` IngressClass and the status of the Ingresses it serves.
        bramble_ingress::controller::spawn(self.manager_client.clone());
        // The default local-path StorageClass and its provisioner.
        bramble_storage::spawn(
            self.manager_client,
            bramble_storage::StorageConfig {
                storage_root: args.local_path_dir.clone(),
                ..Default::default()
            },
        );
        // Cluster DNS on the advertise address, published as the kube-dns Service.
        if args.dns_port != 0 {
            let ip = self.advertise;
            let mut dns = bramble_dns::DnsConfig::new(SocketAddr::new(ip, args.dns_port));
            dns.advertise = Some(ip);
            dns.domain = args.cluster_domain.clone();
            if let Err(e) = bramble_dns::start(self.dns_client, dns).await {
                tracing::error!(error = %e, "cluster DNS not started");
            }
        }
    }
}

/// The kubelet of `--kubelet`: its flags and the configuration they make.
#[derive(Clone)]
struct NodeKubelet {
    args: crate::cli::kubelet::KubeletArgs,
    config: bramble_kubelet::KubeletConfig,
}

#[derive(clap::Parser)]
#[command(name = "--kubelet-arg", no_binary_name = true)]
struct KubeletFlags {
    #[command(flatten)]
    kubelet: crate::cli::kubelet::KubeletArgs,
}

impl NodeKubelet {
    fn parse(flags: &[String]) -> anyhow::Result<NodeKubelet> {
        use clap::Parser;
        let args = KubeletFlags::try_parse_from(flags)
            .context("--kubelet-arg")?
            .kubelet;
        anyhow::ensure!(
            args.kubeconfig.is_none() && args.server.is_none() && args.token.is_none(),
            "--kubelet-arg: the kubelet in the controller's process reaches the API in process \
             (no --kubeconfig, --server or --token)"
        );
        let config = crate::cli::kubelet::config_of(&args)?;
        Ok(NodeKubelet { args, config })
    }
}

/// Waits until every file of `after` exists.
async fn wait_for_files(after: &[PathBuf]) {
    while let Some(f) = after.iter().find(|f| !f.exists()) {
        tracing::debug!(file = %f.display(), "kubelet waits");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the `--kubelet` once every `after` file exists. The kubelet serves logs and exec to
/// clients of the cluster CA, as a separate one does. If it fails or stops, the process exits
/// so that its supervisor (init) restarts both, as it would restart a separate kubelet.
/// Returns its [`NodeServices`](crate::cli::kubelet::NodeServices), which also wait for
/// `after` (the proxy needs the netfilter modules).
fn spawn_node_kubelet(
    kubelet: NodeKubelet,
    cluster_ca_pem: String,
    after: Vec<PathBuf>,
    client: kube::Client,
) -> crate::cli::kubelet::NodeServices {
    let services = {
        let (args, after, client) = (kubelet.args.clone(), after.clone(), client.clone());
        let node = kubelet.config.node_name.clone();
        Box::pin(async move {
            wait_for_files(&after).await;
            crate::cli::pod_network::start_services(&args.network, &node, client.clone());
            crate::cli::ingress::start(&args.ingress, &args.network, client);
        })
    };
    tokio::spawn(async move {
        wait_for_files(&after).await;
        let NodeKubelet { args, mut config } = kubelet;
        config.client_ca_pem = Some(cluster_ca_pem);
        crate::cli::pod_network::configure(&args.network, &mut config, client.clone());
        let result = match bramble_kubelet::Kubelet::start(config, client).await {
            Ok(k) => k.run(std::future::pending()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::error!("kubelet stopped; exiting for the supervisor to restart"),
            Err(e) => {
                tracing::error!(error = %e, "kubelet stopped; exiting for the supervisor to restart")
            }
        }
        std::process::exit(1);
    });
    services
}

/// `bramble up`: a single-node cluster on this machine, with kubectl pointed at it.
pub fn run_up(args: UpArgs) -> anyhow::Result<()> {
    let kubeconfig = args.kubeconfig.clone().unwrap_or_else(default_kubeconfig);
    let mut controller = args.controller.clone();
    controller.write_kubeconfig = Some(kubeconfig.clone());
    controller.run_kubelet = true;
    eprintln!(
        "bramble up: data in {}, kubeconfig {} (context \"bramble\")",
        controller.data_dir.display(),
        kubeconfig.display()
    );
    run_controller(controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_in_process_kubelet_takes_kubelet_flags_and_refuses_api_access_flags() {
        use clap::Parser;
        // The command line init gives the controller of a role-both board parses, and its
        // kubelet is the board's node.
        let both = bramble_boards::NodeConfig::parse(
            std::path::Path::new("bramble.yaml"),
            "hostname: pi-1\nservices:\n  kubelet: [--max-pods, '20']\n",
        )
        .unwrap();
        let specs = bramble_init::services::service_specs(&both, None);
        let controller = specs.iter().find(|s| s.name == "controller").unwrap();
        let cli = crate::Cli::try_parse_from(
            std::iter::once("bramble".to_string()).chain(controller.args.iter().cloned()),
        )
        .unwrap();
        let crate::Command::Controller(args) = cli.command else {
            panic!("not the controller command: {:?}", controller.args);
        };
        assert_eq!(
            args.kubelet_after,
            [std::path::Path::new(bramble_init::services::MODULES_LOADED)]
        );
        let k = NodeKubelet::parse(&args.kubelet_args).unwrap();
        assert_eq!(k.config.node_name, "pi-1");
        assert_eq!(
            k.config.data_dir,
            std::path::Path::new(bramble_init::services::STATE_DIR).join("kubelet")
        );
        assert_eq!(k.config.max_pods, 20);
        for refused in [
            &["--kubeconfig", "/k"][..],
            &[
                "--server",
                "https://x:6443",
                "--token",
                "abcdef.0123456789abcdef",
            ],
        ] {
            let mut flags = strings(&["--node-name", "pi-1"]);
            flags.extend(strings(refused));
            let e = NodeKubelet::parse(&flags).map(|_| ()).unwrap_err();
            assert!(
                format!("{e:#}").contains("reaches the API in process"),
                "{e:#}"
            );
        }
        let e = NodeKubelet::parse(&strings(&["--no-such-flag"]))
            .map(|_| ())
            .unwrap_err();
        assert!(format!("{e:#}").starts_with("--kubelet-arg"), "{e:#}");
    }
}
