//! The proxy loop: watches Services and EndpointSlices and re-applies the ruleset whenever
//! the rendered script changes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::ProxyError;
use crate::model::{build_model, ProxyConfig};
use crate::{nft, rules};

/// A reflector of `K` (managedFields dropped: nothing here reads them) that wakes `notify`
/// on every change; the task ends when its handle is aborted.
pub fn watch<K>(api: Api<K>, notify: Arc<Notify>) -> (Store<K>, JoinHandle<()>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, mut writer) = reflector::store::<K>();
    let task = tokio::spawn(async move {
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|o| o.managed_fields_mut().clear())
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    if matches!(event, Event::Apply(_) | Event::Delete(_) | Event::InitDone) {
                        notify.notify_one();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watch failed; retrying"),
            }
        }
    });
    (reader, task)
}

/// Runs the proxy until the task is dropped: every change of a Service or EndpointSlice
/// renders the ruleset and applies it when it differs from the last applied one (failed
/// applies are retried every few seconds).
pub async fn run(client: Client, config: ProxyConfig) -> Result<(), ProxyError> {
    let notify = Arc::new(Notify::new());
    let (services, _services_task): (Store<Service>, _) =
        watch(Api::all(client.clone()), notify.clone());
    let (slices, _slices_task): (Store<EndpointSlice>, _) = watch(Api::all(client), notify.clone());
    let _ = services.wait_until_ready().await;
    let _ = slices.wait_until_ready().await;
    let mut applied = String::new();
    loop {
        let model = build_model(&config, &services.state(), &slices.state());
        let script = rules::render(&config, &model);
        if script != applied {
            tracing::debug!(service_ports = model.len(), "applying proxy rules");
            let script_for_nft = script.clone();
            match tokio::task::spawn_blocking(move || nft::apply(&script_for_nft)).await {
                Ok(Ok(())) => applied = script.clone(),
                Ok(Err(e)) => tracing::error!(error = %e, "applying proxy rules"),
                Err(e) => tracing::error!(error = %e, "proxy sync task"),
            }
        }
        let retry = if applied == script {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(3)
        };
        let _ = tokio::time::timeout(retry, notify.notified()).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Spawns [`run`] on the current runtime, restarting it after an error.
pub fn spawn(client: Client, config: ProxyConfig) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(client.clone(), config.clone()).await {
                tracing::error!(error = %e, "service proxy stopped; restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
