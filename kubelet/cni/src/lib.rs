//! Pod networking through CNI plugins, as the CNI specification 1.0 describes it.
//!
//! [`CniNetwork`] loads the first network configuration list from a configuration directory
//! (default `/etc/cni/net.d`, writing Bramble's default bridge conflist there when none
//! exists), finds plugin executables in the bin directories (default `/opt/cni/bin` and
//! `/usr/lib/cni`), and runs ADD/CHECK/DEL for a pod sandbox: every plugin of the list in
//! order with the previous plugin's result as `prevResult` (DEL in reverse order). The final
//! result of an ADD is cached under the data directory so DEL works after a kubelet restart
//! with exactly the configuration the pod was set up with.

pub mod cache;
pub mod config;
pub mod error;
pub mod exec;
pub mod network;
pub mod node_cidr;
pub mod pod_network;
pub mod types;

pub use config::{DefaultNetwork, NetworkConfigList};
pub use error::CniError;
pub use exec::PluginExec;
pub use network::{CniNetwork, CniNetworkConfig, PodRef};
pub use node_cidr::kubelet_network;
pub use pod_network::CniPodNetwork;
pub use types::{CniResult, PluginError, PortMapping};
