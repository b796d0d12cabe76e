//! Bramble's NetworkPolicy enforcement, the part of the node agent that does what the CNI
//! bridge plugin does not: the NetworkPolicies selecting this node's pods become one
//! `inet bramble-netpol` nftables table on the forward hook (kube-router's and Calico's
//! place), so traffic between pods on one bridge (through br_netfilter) and from other nodes
//! is filtered before it reaches a pod, and traffic a pod sends is filtered before it
//! leaves. Replies of allowed connections pass by conntrack state; the node itself reaches
//! its pods through the output hook, so kubelet probes are never blocked (as upstream
//! requires).

pub mod agent;
pub mod error;
pub mod model;
pub mod rules;

pub use agent::{run, spawn};
pub use error::NetpolError;
pub use model::{build_model, NodePolicies};
pub use rules::render;
