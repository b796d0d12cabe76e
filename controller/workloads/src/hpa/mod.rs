//! The HorizontalPodAutoscaler controller (upstream `pkg/controller/podautoscaler`) for
//! Resource and ContainerResource metrics (cpu, memory, ...; Utilization and AverageValue
//! targets) read from `metrics.k8s.io`: every sync period each autoscaler reads its
//! target's scale subresource, the target's pods and their PodMetrics, computes the desired
//! replicas ([`replicas`]), stabilizes and limits them ([`normalize`]), updates the scale
//! and the status, and records events ([`sync`]).

pub mod config;
pub mod events;
pub mod normalize;
pub mod replicas;
pub mod source;
pub mod status;
pub mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use tracing::{debug, warn};

use crate::context::{run_controller, Ctx};
use crate::error::Result;
use bramble_informer::Informer;
pub use config::HpaConfig;
use normalize::History;

/// What the controller remembers per autoscaler.
#[derive(Default)]
struct Entry {
    history: History,
    last_sync: Option<Instant>,
}

/// The controller's own state next to the shared context.
pub struct Autoscalers {
    config: HpaConfig,
    informer: Informer<HorizontalPodAutoscaler>,
    recorder: events::Recorder,
    entries: Mutex<HashMap<String, Entry>>,
}

/// Runs the HorizontalPodAutoscaler controller over the shared HPA informer.
pub async fn run(ctx: Arc<Ctx>, informer: Informer<HorizontalPodAutoscaler>, config: HpaConfig) {
    let state = Arc::new(Autoscalers {
        config,
        informer: informer.clone(),
        recorder: events::Recorder::new(ctx.client.clone()),
        entries: Mutex::new(HashMap::new()),
    });
    let reconcile = move |hpa: Arc<HorizontalPodAutoscaler>, ctx: Arc<Ctx>| {
        let state = state.clone();
        async move { state.reconcile(hpa, ctx).await }
    };
    run_controller(
        "horizontalpodautoscaler",
        ctx,
        informer,
        futures::stream::empty().boxed(),
        reconcile,
    )
    .await;
}

impl Autoscalers {
    /// Syncs an autoscaler at most once per sync period, whatever triggered the call
    /// (upstream queues every HPA with the sync period as its fixed rate limit), and asks
    /// to be called again one period later.
    async fn reconcile(&self, hpa: Arc<HorizontalPodAutoscaler>, ctx: Arc<Ctx>) -> Result<Action> {
        let key = format!("{}/{}", hpa.namespace().unwrap_or_default(), hpa.name_any());
        let period = self.config.sync_period;
        let mut history = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            self.forget_deleted(&mut entries);
            let entry = entries.entry(key.clone()).or_default();
            if let Some(at) = entry.last_sync {
                let since = at.elapsed();
                if since < period {
                    return Ok(Action::requeue(period - since + Duration::from_millis(10)));
                }
            }
            entry.last_sync = Some(Instant::now());
            std::mem::take(&mut entry.history)
        };
        let out = sync::Sync {
            ctx: &ctx,
            config: &self.config,
            recorder: &self.recorder,
            history: &mut history,
        }
        .run(&hpa)
        .await;
        if let Some(entry) = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&key)
        {
            entry.history = history;
        }
        match out {
            Ok(()) => debug!(hpa = %key, "synced"),
            // As upstream: logged, and the autoscaler is synced again one period later.
            Err(e) => warn!(hpa = %key, error = %e, "autoscaler sync failed"),
        }
        Ok(Action::requeue(period))
    }

    /// Drops the memory of autoscalers gone from the cache (upstream `deleteHPA`).
    fn forget_deleted(&self, entries: &mut HashMap<String, Entry>) {
        entries.retain(|key, _| {
            let (ns, name) = key.split_once('/').unwrap_or(("", key));
            self.informer.get(Some(ns), name).is_some()
        });
    }
}
