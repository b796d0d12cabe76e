//! One task per pod (upstream `pod_workers.go` + `SyncPod`): keeps the pod's sandbox and
//! containers as its spec asks, restarts them per `restartPolicy` with CrashLoopBackOff,
//! reports status through the status manager, and terminates the pod when it is deleted.
//!
//! Volumes and probes belong here too and are not implemented yet: a volume manager would
//! mount before [`PodWorker::sync`] creates containers, and a prober would feed readiness
//! into the status generator instead of "running means ready".

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bramble_cgroups::QosClass;
use bramble_images::Keyring;
use bramble_runtime::{ContainerRuntime, ContainerStatusKind, SandboxConfig};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

use crate::backoff::{go_seconds, Backoff};
use crate::error::KubeletError;
use crate::events::{
    reason,
    EventType::{Normal, Warning},
};
use crate::network::PodNetworkRequest;
use crate::node_status::now_time;
use crate::pod_context::PodContext;
use crate::pod_spec::{
    containers, format_pod, host_network, init_containers, pod_ids, pod_resources, qos_class,
    restart_policy,
};
use crate::runtime_pod::{attempt, is_running, RuntimePod};
use crate::status_gen::{generate, StartFailure, StatusInput, Waiting};
use crate::status_manager::StatusUpdate;

/// Waiting reason of app containers while the sandbox cannot be created.
const SANDBOX_WAITING: &str = "ContainerCreating";
/// Waiting reason of init containers while the sandbox cannot be created.
const INIT_WAITING: &str = "PodInitializing";

/// How often a pod is synced when nothing happens (upstream's resync interval).
const RESYNC: Duration = Duration::from_secs(60);

/// A message for one pod's worker.
#[derive(Debug, Clone)]
pub enum WorkerMsg {
    /// The pod object changed.
    Update(Arc<Pod>),
    /// The pod object is gone from the API.
    Deleted(Arc<Pod>),
    /// The runtime reported a change in one of its containers.
    Relist,
}

/// State of one pod's worker.
pub struct PodWorker<R> {
    pub(crate) ctx: Arc<PodContext<R>>,
    pub(crate) pod: Arc<Pod>,
    pub(crate) qos: QosClass,
    pub(crate) keyring: Option<Keyring>,
    pub(crate) waiting: HashMap<String, Waiting>,
    pub(crate) start_failures: HashMap<String, StartFailure>,
    pub(crate) pod_ips: Vec<IpAddr>,
    pub(crate) backoff: Backoff,
    pub(crate) deleted: bool,
    pub(crate) volumes: crate::volumes::PodVolumes,
    network_for: Option<String>,
    start_time: String,
    last_status: Option<Value>,
    requeue: Option<Duration>,
}

/// Whether a container that exited with `code` restarts under `policy`.
pub fn should_restart(policy: &str, code: i32, init: bool) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => code != 0,
        _ if init => code != 0,
        _ => true,
    }
}

impl<R: ContainerRuntime + 'static> PodWorker<R> {
    /// A worker for `pod`.
    pub fn new(ctx: Arc<PodContext<R>>, pod: Arc<Pod>) -> Self {
        let last_status = pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
        let start_time = last_status
            .as_ref()
            .and_then(|s| s["startTime"].as_str().map(str::to_string))
            .unwrap_or_else(now_time);
        let pod_ips = last_status
            .as_ref()
            .and_then(|s| s["podIPs"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i["ip"].as_str().and_then(|s| s.parse().ok()))
            .collect();
        let volumes = crate::volumes::PodVolumes::new(
            &ctx.node.data_dir,
            pod.metadata.uid.as_deref().unwrap_or_default(),
        );
        PodWorker {
            volumes,
            ctx,
            pod,
            qos: QosClass::BestEffort,
            keyring: None,
            waiting: HashMap::new(),
            start_failures: HashMap::new(),
            pod_ips,
            backoff: Backoff::default(),
            deleted: false,
            network_for: None,
            start_time,
            last_status,
            requeue: None,
        }
    }

    pub(crate) fn requeue_in(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    fn apply(&mut self, m: WorkerMsg) {
        match m {
            WorkerMsg::Update(p) => {
                if p.spec.as_ref().and_then(|s| s.image_pull_secrets.as_ref())
                    != self
                        .pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.image_pull_secrets.as_ref())
                {
                    self.keyring = None;
                }
                self.pod = p;
            }
            WorkerMsg::Deleted(p) => {
                // A stub (no name) only says "gone"; keep the last full object.
                if p.metadata.name.as_deref().is_some_and(|n| !n.is_empty()) {
                    self.pod = p;
                }
                self.deleted = true;
            }
            WorkerMsg::Relist => {}
        }
    }

    /// Runs until the pod is terminated and gone, or the channel closes (kubelet shutdown:
    /// containers keep running).
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<WorkerMsg>,
        done: mpsc::UnboundedSender<String>,
    ) {
        let (ns, name, uid) = pod_ids(&self.pod);
        let span = tracing::info_span!("pod", %ns, %name, %uid);
        async move {
            loop {
                if self.deleted
                    || self.pod.metadata.deletion_timestamp.is_some()
                    || crate::eviction::eviction_of(&self.ctx.evictions, &self.pod).is_some()
                {
                    self.terminate().await;
                    if self.deleted {
                        break;
                    }
                } else {
                    self.requeue = None;
                    if let Err(e) = self.sync().await {
                        warn!(error = %e, "sync failed");
                        self.requeue_in(Duration::from_secs(1));
                    }
                }
                let sleep = self.requeue.unwrap_or(RESYNC);
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => self.apply(m),
                        None => return,
                    },
                    _ = tokio::time::sleep(sleep) => {}
                }
                while let Ok(m) = rx.try_recv() {
                    self.apply(m);
                }
            }
            let _ = done.send(uid);
        }
        .instrument(span)
        .await
    }

    /// Generates and submits the pod's status.
    pub(crate) fn publish(
        &mut self,
        rp: &RuntimePod,
        sandbox_ready: bool,
        terminal: bool,
        delete: bool,
    ) {
        let (namespace, name, uid) = pod_ids(&self.pod);
        let probes = self.probe_results(rp, terminal || delete);
        let status = generate(&StatusInput {
            pod: &self.pod,
            runtime: rp,
            waiting: &self.waiting,
            start_failures: &self.start_failures,
            sandbox_ready,
            pod_ips: &self.pod_ips,
            host_ip: self.ctx.node.host_ip,
            start_time: &self.start_time,
            qos_class: self.qos.as_str(),
            terminal,
            old: self.last_status.as_ref(),
            probes: &probes,
        });
        let mut status = status;
        let mut delete = delete;
        if let Some(e) = crate::eviction::eviction_of(&self.ctx.evictions, &self.pod) {
            crate::eviction::manager::mark_evicted(&mut status, &e, &now_time());
            delete = delete && self.pod.metadata.deletion_timestamp.is_some();
        }
        self.last_status = Some(status.clone());
        self.ctx.status.set(StatusUpdate {
            namespace,
            name,
            uid,
            status,
            delete,
        });
    }

    /// One reconciliation of the pod against the runtime.
    async fn sync(&mut self) -> Result<(), KubeletError> {
        let (ns, name, uid) = pod_ids(&self.pod);
        if self.reject_forbidden_sysctls() {
            return Ok(());
        }
        let resources = match pod_resources(&self.pod) {
            Ok(r) => r,
            Err(msg) => {
                for c in init_containers(&self.pod)
                    .iter()
                    .chain(containers(&self.pod))
                {
                    self.waiting.insert(
                        c.name.clone(),
                        Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: msg.clone(),
                        },
                    );
                }
                let rp = self.ctx.runtime_pod(&uid).await?;
                self.publish(&rp, false, false, false);
                return Ok(());
            }
        };
        self.qos = qos_class(&self.pod, &resources);
        let rp = self.ctx.runtime_pod(&uid).await?;
        // A finished pod (nothing will restart) keeps its containers for logs but not its
        // sandbox.
        let preview = self.preview_phase(&rp);
        if preview == "Succeeded" || preview == "Failed" {
            if let Some(sb) = rp.sandbox().filter(|s| is_running(s)) {
                let id = sb.meta.id.clone();
                self.stop_sandbox(&id).await;
            }
            let rp = self.ctx.runtime_pod(&uid).await?;
            self.publish(&rp, false, false, false);
            return Ok(());
        }
        let cgroup = self.ctx.cgroups.ensure_pod(self.qos, &uid, &resources)?;
        if !self.sync_volumes().await {
            let rp = self.ctx.runtime_pod(&uid).await?;
            self.publish(&rp, false, false, false);
            return Ok(());
        }
        let Some(sandbox_id) = self.ensure_sandbox(&rp, &ns, &name, &uid, cgroup).await? else {
            let rp = self.ctx.runtime_pod(&uid).await?;
            self.publish(&rp, false, false, false);
            return Ok(());
        };
        let mut rp = self.ctx.runtime_pod(&uid).await?;
        if self.kill_unhealthy(&rp).await {
            rp = self.ctx.runtime_pod(&uid).await?;
        }
        let policy = restart_policy(&self.pod).to_string();
        let pod = self.pod.clone();
        let mut changed = false;
        // Init containers, in order, one at a time.
        let mut init_done = true;
        for c in init_containers(&pod) {
            match self.next_step(&rp, c, &policy, true) {
                Step::Running => {
                    init_done = false;
                    break;
                }
                Step::Done => continue,
                Step::Finished => {
                    init_done = false;
                    break;
                }
                Step::Start(attempt) => {
                    self.prune_dead(&rp, &c.name).await;
                    self.start_container(c, true, attempt, &sandbox_id).await;
                    changed = true;
                    init_done = false;
                    break;
                }
                Step::Wait => {
                    init_done = false;
                    break;
                }
            }
        }
        if init_done {
            for c in containers(&pod) {
                if let Step::Start(attempt) = self.next_step(&rp, c, &policy, false) {
                    self.prune_dead(&rp, &c.name).await;
                    self.start_container(c, false, attempt, &sandbox_id).await;
                    changed = true;
                }
            }
        }
        let rp = if changed {
            self.ctx.runtime_pod(&uid).await?
        } else {
            rp
        };
        let ready = self.network_for.as_deref() == Some(sandbox_id.as_str());
        self.publish(&rp, ready, false, false);
        Ok(())
    }

    /// The phase the pod would report now (decides whether it is finished).
    fn preview_phase(&self, rp: &RuntimePod) -> String {
        let status = generate(&StatusInput {
            pod: &self.pod,
            runtime: rp,
            waiting: &self.waiting,
            start_failures: &self.start_failures,
            sandbox_ready: true,
            pod_ips: &self.pod_ips,
            host_ip: self.ctx.node.host_ip,
            start_time: &self.start_time,
            qos_class: self.qos.as_str(),
            terminal: false,
            old: None,
            probes: &crate::prober::PodProbes::default(),
        });
        status["phase"].as_str().unwrap_or("Pending").to_string()
    }

    /// What to do about one container: keep it, start it (with this attempt number), or wait
    /// (back-off).
    fn next_step(&mut self, rp: &RuntimePod, c: &Container, policy: &str, init: bool) -> Step {
        let name = c.name.as_str();
        let current = rp.named(name).next();
        let failure = self
            .start_failures
            .get(name)
            .filter(|f| current.is_none_or(|c| f.attempt > attempt(c)))
            .cloned();
        let (exit_code, finished, next_attempt) = match (current, &failure) {
            (_, Some(f)) => (128, f.at.clone(), f.attempt + 1),
            (None, None) => return Step::Start(0),
            (Some(cur), None) => match cur.status {
                ContainerStatusKind::Running => return Step::Running,
                ContainerStatusKind::Created | ContainerStatusKind::Unknown => return Step::Wait,
                ContainerStatusKind::Exited => {
                    let exit = cur.exit.as_ref();
                    (
                        exit.map_or(0, |e| e.exit_code),
                        exit.map_or_else(now_time, |e| e.finished_at.clone()),
                        attempt(cur) + 1,
                    )
                }
            },
        };
        if init && exit_code == 0 {
            return Step::Done;
        }
        if !should_restart(policy, exit_code, init) {
            return Step::Finished;
        }
        let now = chrono::Utc::now();
        let event = chrono::DateTime::parse_from_rfc3339(&finished)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(now);
        if let Some(until) = self.backoff.in_backoff_until(name, event, now) {
            let message = format!(
                "back-off {} restarting failed container={name} pod={}",
                go_seconds(self.backoff.get(name)),
                format_pod(&self.pod)
            );
            let event = format!(
                "Back-off restarting failed container {name} in pod {}",
                format_pod(&self.pod)
            );
            self.ctx
                .events
                .event(&self.pod, Some(name), Warning, reason::BACK_OFF, event);
            self.waiting.insert(
                name.to_string(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message,
                },
            );
            self.requeue_in((until - now).to_std().unwrap_or_default() + Duration::from_millis(20));
            return Step::Wait;
        }
        self.backoff.next(name, event, now);
        Step::Start(next_attempt)
    }

    /// Makes sure a running sandbox with networking exists; returns its id, or `None` when it
    /// could not be made (retried later).
    async fn ensure_sandbox(
        &mut self,
        rp: &RuntimePod,
        ns: &str,
        name: &str,
        uid: &str,
        cgroup: std::path::PathBuf,
    ) -> Result<Option<String>, KubeletError> {
        if let Some(sb) = rp
            .sandbox()
            .filter(|s| s.status == ContainerStatusKind::Running)
        {
            if self.network_for.is_none() {
                // Adopted after a kubelet restart: the network was set up by the previous
                // kubelet; the IPs are those it reported.
                self.network_for = Some(sb.meta.id.clone());
            }
            return Ok(Some(sb.meta.id.clone()));
        }
        if let Some(old) = rp.sandbox() {
            info!(sandbox = %old.meta.id, "sandbox is not running, recreating the pod sandbox");
            let msg = "Pod sandbox changed, it will be killed and re-created.";
            self.ctx
                .events
                .event(&self.pod, None, Normal, reason::SANDBOX_CHANGED, msg);
            let id = old.meta.id.clone();
            self.stop_sandbox(&id).await;
        }
        let hostname = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| name.chars().take(63).collect());
        let cfg = SandboxConfig {
            pod_uid: uid.to_string(),
            pod_name: name.to_string(),
            pod_namespace: ns.to_string(),
            hostname,
            cgroup_parent: cgroup,
            host_network: host_network(&self.pod),
            resolv_conf: Some(self.resolv_conf()),
        };
        let id = match self.ctx.runtime.run_pod_sandbox(&cfg).await {
            Ok(id) => id,
            Err(e) => {
                let msg = format!("Failed to create pod sandbox: {e}");
                self.ctx.events.event(
                    &self.pod,
                    None,
                    Warning,
                    reason::FAILED_CREATE_POD_SANDBOX,
                    msg,
                );
                return Err(e.into());
            }
        };
        if host_network(&self.pod) {
            self.pod_ips = vec![self.ctx.node.host_ip];
            self.network_for = Some(id.clone());
            return Ok(Some(id));
        }
        let st = self.ctx.runtime.sandbox_status(&id).await?;
        let req = PodNetworkRequest {
            namespace: ns.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            sandbox_id: id.clone(),
            netns_path: st.netns_path.unwrap_or_default().into(),
        };
        match self.ctx.network.setup(&req).await {
            Ok(ips) => {
                self.pod_ips = ips;
                self.network_for = Some(id.clone());
                self.waiting
                    .retain(|_, w| w.reason != SANDBOX_WAITING && w.reason != INIT_WAITING);
                Ok(Some(id))
            }
            Err(e) => {
                warn!(error = %e, "pod network setup failed");
                // Upstream's FailedCreatePodSandBox: containers stay waiting (the pod shows
                // ContainerCreating) with the plugin's message.
                let message = format!("Failed to create pod sandbox: {e}");
                self.ctx.events.event(
                    &self.pod,
                    None,
                    Warning,
                    reason::FAILED_CREATE_POD_SANDBOX,
                    message.clone(),
                );
                let pod = self.pod.clone();
                for (c, reason) in init_containers(&pod)
                    .iter()
                    .map(|c| (c, INIT_WAITING))
                    .chain(containers(&pod).iter().map(|c| (c, SANDBOX_WAITING)))
                {
                    self.waiting.insert(
                        c.name.clone(),
                        Waiting {
                            reason: reason.into(),
                            message: message.clone(),
                        },
                    );
                }
                let _ = self.ctx.runtime.stop_pod_sandbox(&id, Duration::ZERO).await;
                let _ = self.ctx.runtime.remove_pod_sandbox(&id).await;
                self.requeue_in(Duration::from_secs(2));
                Ok(None)
            }
        }
    }

    /// Stops a sandbox (and whatever still runs in it) and releases its network.
    pub(crate) async fn stop_sandbox(&mut self, id: &str) {
        let (ns, name, uid) = pod_ids(&self.pod);
        if let Err(e) = self.ctx.runtime.stop_pod_sandbox(id, Duration::ZERO).await {
            warn!(sandbox = %id, error = %e, "stopping sandbox");
        }
        if !host_network(&self.pod) {
            let req = PodNetworkRequest {
                namespace: ns,
                name,
                uid,
                sandbox_id: id.to_string(),
                netns_path: Default::default(),
            };
            if let Err(e) = self.ctx.network.teardown(&req).await {
                warn!(sandbox = %id, error = %e, "pod network teardown");
            }
        }
        if self.network_for.as_deref() == Some(id) {
            self.network_for = None;
        }
    }
}

/// The decision for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// It runs.
    Running,
    /// An init container that succeeded.
    Done,
    /// Exited and will not restart.
    Finished,
    /// Start this attempt now.
    Start(u32),
    /// Not now (back-off, or being created).
    Wait,
}
