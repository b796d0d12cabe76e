//! Workload controllers and the garbage collector of the `bramble controller` process.
//!
//! [`spawn`] starts, in the calling tokio runtime, the garbage collector and one reconciler
//! per workload kind, all talking to the API server through the given client and reading the
//! process's shared informers (`bramble-informer`: one cache per kind, shared with the
//! scheduler). Each reconciler is level-triggered: it reads the informers' caches, compares
//! with the spec and acts through the API; errors are retried with per-object back-off, and
//! every object is reconciled again periodically. Nothing is kept only in memory: after a
//! restart the state is rebuilt from the API.

pub mod claim;
pub mod clock;
pub mod context;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod error;
pub mod expectations;
pub mod gc;
pub mod hash;
pub mod hpa;
pub mod job;
pub mod meta;
pub mod pods;
pub mod replicaset;
pub mod revision;
pub mod statefulset;
pub mod write;

use std::sync::Arc;

pub use bramble_informer::SharedInformers;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;

use context::{Ctx, Informers};

/// Starts the garbage collector and every workload controller on `client`, reading caches
/// from `informers` and time from `clock`. Returns at once; the tasks run until the runtime
/// stops.
pub fn spawn_with_clock(client: kube::Client, informers: &SharedInformers, clock: Arc<dyn Clock>) {
    tokio::spawn(gc::run(client.clone()));
    let hpas = informers.get::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>();
    let informers = Informers::from_shared(informers);
    let ctx = Arc::new(Ctx::new(client, clock, informers));
    tokio::spawn(async move {
        if let Err(e) = ctx.informers.ready().await {
            tracing::error!(error = %e, "workload controllers not started");
            return;
        }
        tracing::info!("workload controllers started");
        tokio::join!(
            replicaset::run(ctx.clone()),
            deployment::run(ctx.clone()),
            job::run(ctx.clone()),
            cronjob::run(ctx.clone()),
            daemonset::run(ctx.clone()),
            statefulset::run(ctx.clone()),
            hpa::run(ctx.clone(), hpas, hpa::HpaConfig::from_env()),
        );
    });
}

/// [`spawn_with_clock`] with the system clock.
pub fn spawn(client: kube::Client, informers: &SharedInformers) {
    spawn_with_clock(client, informers, Arc::new(SystemClock));
}
