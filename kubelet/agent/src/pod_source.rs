//! The API pod source (upstream `config/apiserver.go`): a watch on pods with
//! `fieldSelector=spec.nodeName=<node>`, turned into [`PodEvent`]s. Mirror pods are not run:
//! they go to the [`MirrorPods`] of the static pods they reflect.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tracing::warn;

use crate::pod_spec::pod_ids;
use crate::pod_workers::PodEvent;
use crate::static_pods::is_mirror_pod;
use crate::static_pods::mirror::{MirrorPods, Observed};
use crate::streaming::PodTable;

/// Watches the pods bound to `node` and forwards them to `tx` until it closes.
pub async fn run(
    client: Client,
    node: String,
    table: Arc<PodTable>,
    mirrors: Arc<MirrorPods>,
    tx: mpsc::Sender<PodEvent>,
) {
    let api: Api<Pod> = Api::all(client);
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut listed: HashSet<String> = HashSet::new();
    let mut listed_mirrors = Vec::new();
    while let Some(ev) = stream.next().await {
        let out = match ev {
            Ok(Event::Init) => {
                listed.clear();
                listed_mirrors.clear();
                continue;
            }
            Ok(Event::InitApply(p)) if is_mirror_pod(&p) => {
                listed_mirrors.push(p);
                continue;
            }
            Ok(Event::Apply(p)) if is_mirror_pod(&p) => {
                mirrors.observe(Observed::Upsert(p));
                continue;
            }
            Ok(Event::Delete(p)) if is_mirror_pod(&p) => {
                mirrors.observe(Observed::Deleted(p));
                continue;
            }
            Ok(Event::InitApply(p)) => {
                listed.insert(pod_ids(&p).2);
                let p = Arc::new(p);
                table.upsert(&p);
                PodEvent::Upsert(p)
            }
            Ok(Event::InitDone) => {
                mirrors.observe(Observed::Relisted(std::mem::take(&mut listed_mirrors)));
                PodEvent::Synced(std::mem::take(&mut listed))
            }
            Ok(Event::Apply(p)) => {
                let p = Arc::new(p);
                table.upsert(&p);
                PodEvent::Upsert(p)
            }
            Ok(Event::Delete(p)) => {
                table.remove(&p);
                PodEvent::Deleted(Arc::new(p))
            }
            Err(e) => {
                warn!(error = %e, "pod watch");
                continue;
            }
        };
        if tx.send(out).await.is_err() {
            return;
        }
    }
}
