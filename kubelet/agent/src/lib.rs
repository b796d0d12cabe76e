//! `bramble-kubelet`: the API-facing node agent (`bramble kubelet`), shaped like upstream's
//! kubelet with one manager per concern:
//!
//! - [`node_status`]: registers the Node (capacity, allocatable, labels, nodeInfo,
//!   addresses, conditions) and keeps its status current; [`lease`]: the node heartbeat.
//! - [`pod_source`]: the watch on pods bound to the node; [`pod_workers`]: one
//!   [`pod_worker::PodWorker`] task per pod, which creates the sandbox ([`network`] seam),
//!   the pod cgroup ([`pod_cgroups`]), pulls images and runs init and app containers
//!   ([`pod_start`]), restarts them with CrashLoopBackOff ([`backoff`]) and kills them
//!   gracefully ([`pod_kill`]).
//! - [`pleg`]: relists the runtime and wakes workers whose containers changed.
//! - [`status_gen`] builds pod status; [`status_manager`] is its only writer.
//! - [`lookup`]: containers by (namespace, pod, container) for the streaming server.
//! - [`static_pods`]: pods from manifest files, run without the API server and mirrored
//!   into it.
//!
//! Containers run through `bramble-runtime`'s single-threaded helper (never libcontainer in
//! this threaded process) and outlive the kubelet; a restarted kubelet adopts them from the
//! runtime's state and learns exit codes that happened while it was down.

pub mod access_review;
pub mod backoff;
pub mod client;
pub mod config;
pub mod config_file;
pub mod container_config;
pub mod env;
mod error;
pub mod events;
pub mod eviction;
pub mod expansion;
pub mod idle_text;
mod kubelet;
pub mod lease;
pub mod lookup;
pub mod network;
pub mod node_info;
pub mod node_status;
pub mod pleg;
pub mod pod_cgroups;
pub mod pod_context;
pub mod pod_dns;
mod pod_kill;
pub mod pod_source;
pub mod pod_spec;
mod pod_start;
pub mod pod_worker;
pub mod pod_workers;
pub mod prober;
pub mod runtime_pod;
pub mod security_context;
pub mod static_pods;
pub mod stats;
pub mod status_gen;
pub mod status_manager;
pub mod streaming;
pub mod volumes;

pub use config::KubeletConfig;
pub use error::KubeletError;
pub use kube::Client;
pub use kubelet::Kubelet;
pub use lookup::{ContainerLocation, ContainerLookup, RuntimeLookup};
pub use network::{LoopbackOnly, NetworkError, PodNetwork, PodNetworkRequest};
