//! Static pods (upstream `pkg/kubelet/config/file.go` and `pkg/kubelet/pod/mirror_client.go`):
//! pods read from manifest files in the static pod path, run without the API server, and
//! reflected into the API as read-only mirror pods.
//!
//! - [`manifest`]: decodes one file into a pod and applies upstream's defaults (name suffixed
//!   with the node name, a uid hashed from the manifest, the `kubernetes.io/config.*`
//!   annotations).
//! - [`source`]: polls the directory every `fileCheckFrequency` and turns changes into the
//!   same [`PodEvent`](crate::pod_workers::PodEvent)s the API pod source sends.
//! - [`mirror`]: keeps one mirror pod per static pod in the API (recreated when deleted or
//!   when the manifest changes, orphans removed) and tells the status manager which API
//!   object carries a static pod's status.

pub mod manifest;
pub mod mirror;
pub mod source;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::pod_workers::PodEvent;
use crate::status_manager::StatusManager;
use crate::streaming::PodTable;

pub use mirror::MirrorPods;

/// Annotation naming where a pod came from (`file` for static pods, `api` otherwise).
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// Annotation carrying a static pod's hash (its uid).
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// Annotation with the time the kubelet first saw the pod.
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
/// Annotation marking a mirror pod; its value is the static pod's hash.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
/// [`CONFIG_SOURCE`] of static pods read from files.
pub const SOURCE_FILE: &str = "file";

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Whether `pod` is a mirror pod (the API's reflection of a static pod).
pub fn is_mirror_pod(pod: &Pod) -> bool {
    annotation(pod, CONFIG_MIRROR).is_some()
}

/// Whether `pod` is a static pod read from a file.
pub fn is_static_pod(pod: &Pod) -> bool {
    annotation(pod, CONFIG_SOURCE) == Some(SOURCE_FILE)
}

/// A static pod's hash ([`CONFIG_HASH`]).
pub fn static_hash(pod: &Pod) -> Option<&str> {
    annotation(pod, CONFIG_HASH)
}

/// A mirror pod's hash ([`CONFIG_MIRROR`]).
pub fn mirror_hash(pod: &Pod) -> Option<&str> {
    annotation(pod, CONFIG_MIRROR)
}

/// Upstream's pod full name, `name_namespace`.
pub fn full_name(pod: &Pod) -> String {
    let (ns, name, _) = crate::pod_spec::pod_ids(pod);
    format!("{name}_{ns}")
}

/// What the static pod tasks need.
pub struct StaticPodConfig {
    /// The manifest directory.
    pub path: PathBuf,
    /// Whether `path` is the default (created if missing).
    pub default_path: bool,
    /// How often the directory is read.
    pub period: Duration,
    /// This node.
    pub node: String,
}

/// Starts the file source and the mirror pod manager. The returned receiver fires once the
/// first read of the directory has been sent to `pods`: the API pod source waits for it,
/// so static pods are known before the API's list says which pods are orphans.
pub fn spawn(
    cfg: StaticPodConfig,
    client: Client,
    status: StatusManager,
    mirrors: Arc<MirrorPods>,
    table: Arc<PodTable>,
    pods: mpsc::Sender<PodEvent>,
    stop: watch::Receiver<bool>,
) -> (Vec<JoinHandle<()>>, oneshot::Receiver<()>) {
    if cfg.default_path {
        if let Err(e) = std::fs::create_dir_all(&cfg.path) {
            warn!(path = %cfg.path.display(), error = %e, "creating the static pod directory");
        }
    }
    let (first_tx, first_rx) = oneshot::channel();
    let src = source::FileSource::new(cfg.path, cfg.node.clone());
    let tasks = vec![
        tokio::spawn(source::run(
            src,
            cfg.period,
            pods,
            table,
            mirrors.clone(),
            first_tx,
            stop.clone(),
        )),
        tokio::spawn(mirror::run(mirrors, client, cfg.node, status, stop)),
    ];
    (tasks, first_rx)
}
