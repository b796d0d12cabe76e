//! Keeping the [`Zone`] current: reflectors over Services and EndpointSlices, the zone
//! rebuilt (debounced) after every change and swapped in whole.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use tokio::sync::Notify;

use crate::records::Zone;
use crate::server::SharedZone;

fn reflect<K>(api: Api<K>, notify: Arc<Notify>) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .boxed();
        while let Some(e) = events.next().await {
            match e {
                Ok(_) => notify.notify_one(),
                Err(e) => tracing::warn!(error = %e, "DNS watch failed; retrying"),
            }
        }
    });
    reader
}

/// Rebuilds `zone` from the cluster's Services and EndpointSlices until dropped.
pub async fn run(client: Client, domain: String, zone: SharedZone) {
    let notify = Arc::new(Notify::new());
    let services: Store<Service> = reflect(Api::all(client.clone()), notify.clone());
    let slices: Store<EndpointSlice> = reflect(Api::all(client), notify.clone());
    let _ = services.wait_until_ready().await;
    let _ = slices.wait_until_ready().await;
    loop {
        let z = Zone::build(&domain, &services.state(), &slices.state());
        tracing::debug!(names = z.len(), "cluster DNS zone rebuilt");
        zone.set(z);
        notify.notified().await;
        // Coalesce bursts of events into one rebuild.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
