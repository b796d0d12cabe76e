//! Wiring: [`Kubelet::start`] builds the runtime helper, image manager, cgroups and status
//! manager; [`Kubelet::run`] runs node registration and status, the lease, the pod source,
//! the PLEG and the pod workers until shutdown. Shutdown leaves containers running (their
//! shims are orphaned); the next kubelet adopts them.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use bramble_images::{ImageManager, ImageStore, Puller, RegistryConfig};
use bramble_runtime::{HelperConfig, RuntimeClient};
use kube::Client;
use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::config::KubeletConfig;
use crate::container_config::NodeContext;
use crate::error::KubeletError;
use crate::events::{reason, EventRecorder, EventType};
use crate::eviction::manager::Evictions;
use crate::eviction::{EvictionManager, NodeSignals, PressureState, StorageLayout};
use crate::lease::LeaseRenewer;
use crate::lookup::{ContainerLookup, RuntimeLookup};
use crate::node_info::{default_node_ip, probe};
use crate::node_status::{node_allocatable, NodeStatusManager};
use crate::pod_cgroups::PodCgroups;
use crate::pod_context::PodContext;
use crate::pod_workers::PodWorkers;
use crate::static_pods::{MirrorPods, StaticPodConfig};
use crate::stats::StatsCollector;
use crate::status_manager::StatusManager;
use crate::streaming::{PodTable, StreamingPods};

/// A started kubelet.
pub struct Kubelet {
    cfg: KubeletConfig,
    client: Client,
    ctx: Arc<PodContext<RuntimeClient>>,
    node_ip: IpAddr,
    image_store: ImageStore,
    pods: Arc<PodTable>,
    pressure: Arc<PressureState>,
    signals: Arc<NodeSignals>,
    stats: Arc<StatsCollector>,
    mirrors: Arc<MirrorPods>,
}

impl Kubelet {
    /// Prepares directories, the runtime helper (a re-exec of `cfg.exe`), the image manager,
    /// the QoS cgroups and the status manager. Needs a tokio runtime.
    pub async fn start(cfg: KubeletConfig, client: Client) -> Result<Kubelet, KubeletError> {
        for d in [&cfg.data_dir, &cfg.image_dir, &cfg.runtime_dir] {
            std::fs::create_dir_all(d).map_err(KubeletError::io("mkdir", d))?;
        }
        let node_ip = cfg.node_ip.unwrap_or_else(default_node_ip);
        let runtime = RuntimeClient::spawn_helper(
            &cfg.exe,
            &HelperConfig {
                state_root: cfg.runtime_dir.clone(),
                cgroup_root: cfg.cgroup_root.clone(),
                pause_binary: cfg.exe.clone(),
            },
        )?;
        bramble_images::pull::install_crypto_provider();
        let image_store = ImageStore::open(&cfg.image_dir)?;
        let puller = Puller::new(
            image_store.clone(),
            RegistryConfig {
                insecure_registries: cfg.insecure_registries.clone(),
                ..Default::default()
            },
        );
        let images = ImageManager::new(image_store.clone(), puller, None);
        let machine = probe(&cfg.data_dir);
        let allocatable = node_allocatable(&machine, &cfg);
        let cgroups = PodCgroups::new(&cfg.cgroup_root, &cfg.cgroup_parent)?
            .with_pids_limit(cfg.pod_pids_limit);
        cgroups.init(allocatable.kubepods_cpu_milli, allocatable.kubepods_memory)?;
        let signals = NodeSignals::new(
            &cfg.cgroup_root,
            &cfg.cgroup_parent,
            machine.memory_bytes,
            allocatable.kubepods_memory,
            &cfg.data_dir,
            &cfg.image_dir,
        )?;
        let stats = StatsCollector::new(
            &cfg.cgroup_root,
            &cfg.cgroup_parent,
            &cfg.node_name,
            machine.memory_bytes,
            &cfg.data_dir,
            &cfg.image_dir,
        )?;
        let runtime = Arc::new(runtime);
        let events = EventRecorder::start(client.clone(), &cfg.node_name);
        let prober = crate::prober::ProberManager::start(runtime.clone(), Arc::new(events.clone()));
        let mirrors = Arc::new(MirrorPods::default());
        let ctx = Arc::new(PodContext {
            runtime,
            prober,
            images: Arc::new(images),
            cgroups: Arc::new(cgroups),
            network: cfg.network.clone(),
            status: StatusManager::start_with(client.clone(), mirrors.clone()),
            events,
            evictions: Arc::new(Evictions::default()),
            client: client.clone(),
            node: NodeContext {
                host_ip: node_ip,
                memory_capacity: machine.memory_bytes,
                data_dir: cfg.data_dir.clone(),
                cluster_dns: cfg.cluster_dns.clone(),
            },
        });
        Ok(Kubelet {
            cfg,
            client,
            ctx,
            node_ip,
            image_store,
            pods: Arc::new(PodTable::default()),
            pressure: Arc::new(PressureState::default()),
            signals: Arc::new(signals),
            stats: Arc::new(stats),
            mirrors,
        })
    }

    /// Finds containers for the streaming server.
    pub fn container_lookup(&self) -> Arc<dyn ContainerLookup> {
        Arc::new(RuntimeLookup::new(self.ctx.runtime.clone()))
    }

    /// The streaming server's pod lookups ([`bramble_kubelet_server::PodContainers`]).
    pub fn streaming_pods(&self) -> Arc<dyn bramble_kubelet_server::PodContainers> {
        Arc::new(StreamingPods::new(
            self.pods.clone(),
            self.ctx.runtime.clone(),
        ))
    }

    /// The container runtime (for exec/attach in the streaming server).
    pub fn runtime(&self) -> Arc<RuntimeClient> {
        self.ctx.runtime.clone()
    }

    /// The node's InternalIP.
    pub fn node_ip(&self) -> IpAddr {
        self.node_ip
    }

    /// Runs until `shutdown` completes; containers keep running afterwards.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), KubeletError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let node_status = NodeStatusManager::new(
            self.cfg.clone(),
            self.client.clone(),
            self.node_ip,
            self.image_store.clone(),
            self.pressure.clone(),
        );
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(node_status.run(stop_rx.clone())));
        let lease = LeaseRenewer::new(
            self.client.clone(),
            self.cfg.node_name.clone(),
            self.cfg.lease_duration_seconds,
        );
        tasks.push(tokio::spawn(lease.run(stop_rx.clone())));
        let (pod_tx, pod_rx) = mpsc::channel(256);
        let (relist_tx, relist_rx) = mpsc::channel(16);
        let (path, default_path) = self.cfg.static_pods_dir();
        let (static_tasks, static_read) = crate::static_pods::spawn(
            StaticPodConfig {
                path,
                default_path,
                period: self.cfg.file_check_frequency,
                node: self.cfg.node_name.clone(),
            },
            self.client.clone(),
            self.ctx.status.clone(),
            self.mirrors.clone(),
            self.pods.clone(),
            pod_tx.clone(),
            stop_rx.clone(),
        );
        tasks.extend(static_tasks);
        let api_pods = crate::pod_source::run(
            self.client.clone(),
            self.cfg.node_name.clone(),
            self.pods.clone(),
            self.mirrors.clone(),
            pod_tx,
        );
        tasks.push(tokio::spawn(async move {
            // Static pods first: the API's list must not make orphans of them.
            let _ = static_read.await;
            api_pods.await
        }));
        if let Some(ca) = self.cfg.client_ca_pem.clone() {
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(crate::streaming::serve(
                self.client.clone(),
                self.cfg.node_name.clone(),
                self.node_ip,
                self.cfg.kubelet_port,
                ca,
                self.streaming_pods(),
                self.ctx.runtime.clone(),
                Some(self.stats.clone() as Arc<dyn bramble_kubelet_server::stats::StatsProvider>),
                Some(self.cfg.data_dir.join("pki")),
                async move {
                    let _ = stop.changed().await;
                },
            )));
        }
        tasks.push(tokio::spawn(self.stats.clone().run(
            self.ctx.runtime.clone(),
            self.pods.clone(),
            stop_rx.clone(),
        )));
        let eviction = EvictionManager::new(
            self.cfg.eviction.clone(),
            self.signals.clone(),
            self.ctx.clone(),
            self.pods.clone(),
            self.image_store.clone(),
            self.pressure.clone(),
            self.ctx.evictions.clone(),
            relist_tx.clone(),
            StorageLayout::new(&self.cfg.data_dir, &self.cfg.runtime_dir),
        );
        tasks.push(tokio::spawn(eviction.run(stop_rx.clone())));
        let prober_ctx = self.ctx.clone();
        let prober_tx = relist_tx.clone();
        tasks.push(tokio::spawn(async move {
            prober_ctx.prober.forward_wakeups(prober_tx).await
        }));
        tasks.push(tokio::spawn(crate::idle_text::run_kubelet()));
        tasks.push(tokio::spawn(crate::pleg::run(
            self.ctx.runtime.clone(),
            self.cfg.relist_period,
            relist_tx,
        )));
        let workers = PodWorkers::new(self.ctx.clone());
        self.ctx
            .events
            .node_event(EventType::Normal, reason::STARTING, "Starting kubelet.");
        info!(node = %self.cfg.node_name, ip = %self.node_ip, "kubelet running");
        tokio::select! {
            _ = workers.run(pod_rx, relist_rx) => {}
            _ = shutdown => {}
        }
        let _ = stop_tx.send(true);
        for t in tasks {
            t.abort();
        }
        info!("kubelet stopped; containers keep running");
        Ok(())
    }
}
