//! Bramble's shared informer layer, used in process by the scheduler and the workload
//! controllers (client-go's SharedInformerFactory shape on top of kube-runtime).
//!
//! - [`SharedInformers`]: ONE [`Informer`] per resource kind for the whole controller
//!   process, started on first use; every component that asks for pods gets the same cache.
//! - [`Informer`]: list+watch through kube-runtime's `watcher` (resumes from the last
//!   resourceVersion, re-lists on 410 Gone, backs off on errors) into kube-runtime's reflector
//!   `Store` (objects held once, as `Arc`s), plus indexes by namespace and by custom indexers
//!   and a fan-out of every change to registered handlers. Objects are compacted before they
//!   are cached: `managedFields` and the `last-applied-configuration` annotation are dropped
//!   (as kube's reflector examples do with `modify`, and upstream's informers with a
//!   transform). Pods are cached as [`pod::Pod`], a type holding only the fields the
//!   in-process readers use, deserialized straight from the watch.
//! - [`WorkQueue`]: a de-duplicating work queue with per-item rate-limited retries and
//!   delayed adds (client-go's `RateLimitingInterface`).

pub mod compact;
pub mod error;
pub mod factory;
pub mod index;
pub mod informer;
pub mod intern;
pub mod pod;
pub mod queue;
pub mod text;

pub use compact::compact;
pub use error::Error;
pub use factory::SharedInformers;
pub use informer::{Change, Informer};
pub use queue::WorkQueue;

#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod pod_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod text_tests;
