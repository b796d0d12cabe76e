//! The kubelet container manager's cgroup side, as upstream's `pkg/kubelet/cm` does it.
//!
//! - [`CgroupManager`]: create/update/remove a cgroup at a path relative to a root, move a
//!   process in, read stats; [`V1Manager`] (one hierarchy per controller) and [`V2Manager`]
//!   (unified, controllers delegated through `cgroup.subtree_control`), chosen by [`detect`].
//!   The root is a parameter, so unit tests drive temp dirs laid out as cgroupfs would be.
//! - [`qos`]: QoS class, pod cgroups `kubepods[/burstable|/besteffort]/pod<uid>`, the
//!   resources of pod and QoS-parent cgroups, `oom_score_adj` per QoS.
//! - [`convert`]: millicores to shares/quota and shares to v2 weight.
//!
//! Inputs are plain numbers (millicores, bytes); parsing quantities is bramble-api's job.

pub mod convert;
mod error;
mod fsutil;
mod manager;
pub mod qos;
mod v1;
mod v2;

pub use error::{CgroupError, Result};
pub use manager::{detect, manager_for, CgroupManager, CgroupStats, CgroupVersion, Resources};
pub use qos::{ContainerResources, PodResources, QosClass};
pub use v1::{V1Manager, V1_CONTROLLERS};
pub use v2::{V2Manager, V2_CONTROLLERS};
