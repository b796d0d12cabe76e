//! Bramble's scheduler and node lifecycle controller, running inside `bramble controller`.
//!
//! The scheduling logic (filters, scores, preemption, failure messages) works on plain
//! k8s-openapi objects with no I/O ([`algorithm`], [`filters`], [`scores`], [`preemption`]);
//! [`Scheduler`] and [`NodeLifecycleController`] drive it from informer caches over a
//! `kube::Client`.

pub mod algorithm;
pub mod changes;
pub mod config;
pub mod error;
pub mod events;
pub mod filters;
pub mod interpod;
pub mod lifecycle;
pub mod lifecycle_logic;
pub mod matching;
pub mod node_info;
pub mod preemption;
pub mod priority;
pub mod queue;
pub mod report;
pub mod scheduler;
pub mod scores;
pub mod snapshot;
pub mod spread;
mod triggers;

pub use bramble_informer::SharedInformers;
pub use config::{NodeLifecycleConfig, SchedulerConfig};
pub use error::Error;
pub use lifecycle::NodeLifecycleController;
pub use scheduler::Scheduler;

/// Spawns the scheduler and the node lifecycle controller on the current tokio runtime,
/// reading the process's shared informers; each logs and restarts after an error (a cache
/// that could not be filled).
pub fn spawn(
    scheduler_client: kube::Client,
    lifecycle_client: kube::Client,
    informers: &SharedInformers,
    scheduler: SchedulerConfig,
    lifecycle: NodeLifecycleConfig,
) {
    let shared = informers.clone();
    tokio::spawn(async move {
        loop {
            let s = Scheduler::new(scheduler_client.clone(), scheduler.clone(), &shared);
            if let Err(e) = s.run().await {
                tracing::error!(error = %e, "scheduler stopped; restarting");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    let shared = informers.clone();
    tokio::spawn(async move {
        loop {
            let c =
                NodeLifecycleController::new(lifecycle_client.clone(), lifecycle.clone(), &shared);
            if let Err(e) = c.run().await {
                tracing::error!(error = %e, "node lifecycle controller stopped; restarting");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

#[cfg(test)]
mod tests;
