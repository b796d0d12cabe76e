//! Kubernetes API semantics for Bramble with no I/O: the resource registry, decoding,
//! validation and defaulting as upstream does them, selectors, and `Status` errors.
//! Shared by the controller and the kubelet.

pub mod patch;
pub mod resources;
pub mod status;

pub use resources::ResourceInfo;
pub use status::{Cause, Reason, Status};
