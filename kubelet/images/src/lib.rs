//! `bramble-images`: the kubelet's image layer.
//!
//! - [`reference`]: image references normalised as upstream (`docker.io/library/`, `:latest`).
//! - [`policy`]: `imagePullPolicy` decisions (`ErrImageNeverPull`).
//! - [`auth`]: credentials from `.dockerconfigjson` pull secrets.
//! - [`registry`]: plain HTTP for loopback and configured insecure registries.
//! - [`platform`]: the node's platform and multi-arch index resolution.
//! - [`manager`]: the kubelet's `EnsureImageExists` (policy, pull back-off, events).
//! - [`pull`]: pulls through `oci-client`, digests verified while streaming to disk.
//! - [`store`]: the content-addressed store (blobs, unpacked overlay-ready layers, records).
//! - [`unpack`]: layer application with OCI whiteouts translated to overlayfs form.
//! - [`import`]: OCI-layout and docker-save archives for air-gapped boards.
//! - [`gc`]: image garbage collection by disk-usage thresholds.
//! - [`mounts`]: which images mounted container rootfs overlays use.
//! - [`cli`]: `bramble image import|ls|rm`.

pub mod auth;
pub mod cli;
pub mod digest;
pub mod gc;
pub mod import;
pub mod manager;
pub mod manifest;
pub mod mounts;
pub mod platform;
pub mod policy;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use auth::{credentials_for_host, Credentials, Keyring};
pub use gc::{DiskStats, FsUsage, GcError, GcPolicy, GcReport, Statvfs};
pub use import::{import_archive, ImportError};
pub use manager::{EnsureFailure, Ensured, ImageEvent, ImageManager};
pub use manifest::ContainerConfig;
pub use platform::Platform;
pub use policy::{decide_pull, ImageNeverPull, PullAction, PullPolicy};
pub use pull::{PullError, Puller};
pub use reference::{ImageRef, ReferenceError};
pub use registry::RegistryConfig;
pub use store::{ImageRecord, ImageStore, NodeImage, StoreError};
