//! Subcommands of the `bramble` binary that live in the root crate.

pub mod controller;
pub mod ingress;
pub mod kubelet;
pub mod local_node;
pub mod logging;
pub mod node;
pub mod pod_network;
pub mod qemu;
pub mod qemu_cluster;
pub mod token;
