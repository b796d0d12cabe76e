//! Kubernetes API semantics for Bramble with no I/O: the resource registry, decoding,
//! validation and defaulting as upstream does them, selectors, and `Status` errors.
//! Shared by the controller and the kubelet.

pub mod apply;
pub mod codec;
pub mod conversion;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod disruption;
pub mod managed_fields;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod pod_resources;
pub mod printers;
pub mod protobuf;
pub mod quantity;
pub mod registry;
pub mod resources;
pub mod roundtrip;
pub mod scale;
pub mod selectors;
pub mod status;
pub mod strategy;
pub mod validation;

pub use resources::ResourceInfo;
pub use status::{Cause, Reason, Status};
