//! The reconcile loop: node IPAM, EndpointSlices/Endpoints and LoadBalancer status, all
//! recomputed from the watch caches whenever something changes (and every resync period).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bramble_informer::pod::Pod;
use bramble_informer::{Change, Informer, SharedInformers};
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Notify;

use crate::cache::json_of;
use crate::cidr::CidrAllocator;
use crate::endpoints_logic::{
    desired_endpoints, desired_slices, manages, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY,
};
use crate::error::Error;
use crate::lb;

/// Settings of the network controllers.
#[derive(Debug, Clone)]
pub struct NetctlConfig {
    /// The cluster CIDR node pod CIDRs come from (k3s default 10.42.0.0/16).
    pub cluster_cidr: String,
    /// Prefix length of each node's pod CIDR (k3s default 24).
    pub node_cidr_mask: u8,
    /// How often everything is recomputed even without changes (retries failed writes).
    pub resync: Duration,
}

impl Default for NetctlConfig {
    fn default() -> Self {
        NetctlConfig {
            cluster_cidr: crate::DEFAULT_CLUSTER_CIDR.into(),
            node_cidr_mask: 24,
            resync: Duration::from_secs(30),
        }
    }
}

struct Caches {
    nodes: Informer<Node>,
    services: Informer<Service>,
    pods: Informer<Pod>,
    slices: Informer<EndpointSlice>,
    endpoints: Informer<Endpoints>,
}

/// Runs the controllers on informers of their own (one process's other controllers should
/// share theirs: [`run_with`]).
pub async fn run(client: Client, config: NetctlConfig) -> Result<(), Error> {
    run_with(&SharedInformers::new(client), config).await
}

/// Runs the controllers over the process's shared informers (the Pod cache is the largest
/// thing a controller holds: one copy for every controller) until an unrecoverable error.
pub async fn run_with(informers: &SharedInformers, config: NetctlConfig) -> Result<(), Error> {
    let notify = Arc::new(Notify::new());
    let caches = Caches {
        nodes: informers.get(),
        services: informers.get(),
        pods: informers.get(),
        slices: informers.get(),
        endpoints: informers.get(),
    };
    wake_on_change(&caches.nodes, &notify);
    wake_on_change(&caches.services, &notify);
    wake_on_pod_change(&caches.pods, &caches.services, &notify);
    wake_on_change(&caches.slices, &notify);
    wake_on_change(&caches.endpoints, &notify);
    for ready in [
        caches.nodes.ready().await.is_ok(),
        caches.services.ready().await.is_ok(),
        caches.pods.ready().await.is_ok(),
        caches.slices.ready().await.is_ok(),
        caches.endpoints.ready().await.is_ok(),
    ] {
        if !ready {
            tracing::warn!("a network controller cache closed before it was filled");
        }
    }
    let mut state = State {
        client: informers.client().clone(),
        allocator: CidrAllocator::new(&config.cluster_cidr, config.node_cidr_mask)?,
        pending: BTreeMap::new(),
        managed: BTreeSet::new(),
    };
    tracing::info!(cluster_cidr = %config.cluster_cidr, "network controllers started");
    loop {
        let _ = tokio::time::timeout(config.resync, notify.notified()).await;
        // Let a burst of events land before recomputing.
        tokio::time::sleep(Duration::from_millis(10)).await;
        state.reconcile(&caches).await;
    }
}

/// Every change in `informer`'s cache wakes the reconcile loop; the handler goes away with
/// the loop (when it holds the last reference to `notify`).
fn wake_on_change<K>(informer: &Informer<K>, notify: &Arc<Notify>)
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let notify = notify.clone();
    informer.add_handler(move |_| {
        notify.notify_one();
        Arc::strong_count(&notify) > 1
    });
}

/// Pod changes wake the loop only in namespaces where a pass could write something from
/// them: those with a Service this controller keeps endpoints for (LoadBalancer status and
/// node IPAM read no pods). Without this filter, every status write of 10,000 pending pods
/// regrouped all pods and walked every Service. A Service created later wakes the loop
/// itself, and that pass reads every pod.
fn wake_on_pod_change(pods: &Informer<Pod>, services: &Informer<Service>, notify: &Arc<Notify>) {
    let (services, notify) = (services.clone(), notify.clone());
    pods.add_handler(move |change| {
        if pod_change_matters(change, |ns| services.list_namespace(ns)) {
            notify.notify_one();
        }
        Arc::strong_count(&notify) > 1
    });
}

/// Whether `change` can alter an endpoints pass, given the Services of a namespace.
fn pod_change_matters(
    change: &Change<Pod>,
    services_in: impl FnOnce(&str) -> Vec<Arc<Service>>,
) -> bool {
    let Some(pod) = change.object() else {
        return true;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    services_in(ns).iter().any(|s| manages(s))
}

struct State {
    client: Client,
    allocator: CidrAllocator,
    /// Pod CIDRs written to nodes whose cache entry does not show them yet.
    pending: BTreeMap<String, String>,
    /// `namespace/name` of Services whose Endpoints this controller wrote.
    managed: BTreeSet<(String, String)>,
}

impl State {
    async fn reconcile(&mut self, c: &Caches) {
        let nodes = c.nodes.list();
        if let Err(e) = self.allocate_pod_cidrs(&nodes).await {
            tracing::warn!(error = %e, "node IPAM");
        }
        let pods = c.pods.list();
        let services = c.services.list();
        let mut pods_by_ns: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        for p in pods {
            pods_by_ns
                .entry(p.metadata.namespace.clone().unwrap_or_default())
                .or_default()
                .push(p);
        }
        let mut slices_by_svc: BTreeMap<(String, String), Vec<Arc<EndpointSlice>>> =
            BTreeMap::new();
        // Only the slices this controller manages (the informer holds every slice).
        for s in c.slices.list().into_iter().filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_MANAGED_BY))
                .is_some_and(|m| m == MANAGED_BY)
        }) {
            let svc = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SERVICE_NAME))
                .cloned()
                .unwrap_or_default();
            slices_by_svc
                .entry((s.metadata.namespace.clone().unwrap_or_default(), svc))
                .or_default()
                .push(s);
        }
        let mut live = BTreeSet::new();
        for svc in &services {
            let key = (
                svc.metadata.namespace.clone().unwrap_or_default(),
                svc.metadata.name.clone().unwrap_or_default(),
            );
            if let Some(ingress) = lb::desired_ingress(svc, &nodes) {
                if json_of(&ingress) != json_of(&lb::current_ingress(svc)) {
                    if let Err(e) = self.patch_lb_status(&key, &ingress).await {
                        tracing::warn!(service = ?key, error = %e, "LoadBalancer status");
                    }
                }
            }
            if !manages(svc) || svc.metadata.deletion_timestamp.is_some() {
                continue;
            }
            live.insert(key.clone());
            let pods = pods_by_ns.get(&key.0).map(Vec::as_slice).unwrap_or(&[]);
            let existing = slices_by_svc.remove(&key).unwrap_or_default();
            if let Err(e) = self
                .sync_slices(&key.0, desired_slices(svc, pods), existing)
                .await
            {
                tracing::warn!(service = ?key, error = %e, "EndpointSlices");
            }
            let current = c.endpoints.get(Some(&key.0), &key.1);
            if let Err(e) = self
                .sync_endpoints(desired_endpoints(svc, pods), current)
                .await
            {
                tracing::warn!(service = ?key, error = %e, "Endpoints");
            }
        }
        // Slices of Services that are gone or no longer selected.
        for ((ns, _), stale) in slices_by_svc {
            let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &ns);
            for s in stale {
                let name = s.metadata.name.clone().unwrap_or_default();
                ignore_not_found(
                    api.delete(&name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                )
                .unwrap_or_else(|e| tracing::warn!(slice = %name, error = %e, "deleting"));
            }
        }
        for key in self.managed.difference(&live).cloned().collect::<Vec<_>>() {
            let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &key.0);
            match ignore_not_found(
                api.delete(&key.1, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            ) {
                Ok(()) => {
                    self.managed.remove(&key);
                }
                Err(e) => tracing::warn!(endpoints = ?key, error = %e, "deleting"),
            }
        }
    }

    async fn allocate_pod_cidrs(&mut self, nodes: &[Arc<Node>]) -> Result<(), Error> {
        let names: BTreeSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        for n in nodes {
            if let Some(cidr) = n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()) {
                self.allocator.occupy(cidr);
                if let Some(name) = &n.metadata.name {
                    self.pending.remove(name);
                }
            }
        }
        // Nodes deleted before their allocation showed up free their subnet.
        let gone: Vec<String> = self
            .pending
            .keys()
            .filter(|k| !names.contains(*k))
            .cloned()
            .collect();
        for name in gone {
            if let Some(cidr) = self.pending.remove(&name) {
                self.allocator.release(&cidr);
            }
        }
        let api: Api<Node> = Api::all(self.client.clone());
        for n in nodes {
            let Some(name) = n.metadata.name.clone() else {
                continue;
            };
            let has = n
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.as_ref())
                .is_some_and(|c| !c.is_empty());
            if has || n.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let cidr = match self.pending.get(&name) {
                Some(c) => c.clone(),
                None => match self.allocator.allocate() {
                    Some(c) => c,
                    None => {
                        tracing::error!(node = %name, "CIDRNotAvailable: no pod CIDR left in the cluster CIDR");
                        continue;
                    }
                },
            };
            let patch = json!({ "spec": { "podCIDR": cidr, "podCIDRs": [cidr] } });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(node = %name, pod_cidr = %cidr, "allocated pod CIDR");
                    self.pending.insert(name, cidr);
                }
                Err(e) => {
                    self.allocator.release(&cidr);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn sync_slices(
        &self,
        ns: &str,
        desired: Vec<EndpointSlice>,
        existing: Vec<Arc<EndpointSlice>>,
    ) -> Result<(), Error> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let mut existing: BTreeMap<String, Arc<EndpointSlice>> = existing
            .into_iter()
            .filter_map(|s| Some((s.metadata.name.clone()?, s)))
            .collect();
        for mut want in desired {
            let name = want.metadata.name.clone().unwrap_or_default();
            match existing.remove(&name) {
                None => {
                    api.create(&PostParams::default(), &want).await?;
                }
                Some(have) => {
                    if slice_differs(&want, &have) {
                        want.metadata.resource_version = have.metadata.resource_version.clone();
                        api.replace(&name, &PostParams::default(), &want).await?;
                    }
                }
            }
        }
        for name in existing.into_keys() {
            ignore_not_found(
                api.delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )?;
        }
        Ok(())
    }

    async fn sync_endpoints(
        &mut self,
        mut want: Endpoints,
        have: Option<Arc<Endpoints>>,
    ) -> Result<(), Error> {
        let ns = want.metadata.namespace.clone().unwrap_or_default();
        let name = want.metadata.name.clone().unwrap_or_default();
        self.managed.insert((ns.clone(), name.clone()));
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &ns);
        match have {
            None => {
                api.create(&PostParams::default(), &want).await?;
            }
            Some(have) => {
                let same = json_of(&want.subsets) == json_of(&have.subsets)
                    && json_of(&want.metadata.labels) == json_of(&have.metadata.labels);
                if !same {
                    want.metadata.resource_version = have.metadata.resource_version.clone();
                    api.replace(&name, &PostParams::default(), &want).await?;
                }
            }
        }
        Ok(())
    }

    async fn patch_lb_status(
        &self,
        (ns, name): &(String, String),
        ingress: &[k8s_openapi::api::core::v1::LoadBalancerIngress],
    ) -> Result<(), Error> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({ "status": { "loadBalancer": { "ingress": ingress } } });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

fn slice_differs(want: &EndpointSlice, have: &EndpointSlice) -> bool {
    json_of(&want.endpoints) != json_of(&have.endpoints)
        || json_of(&want.ports) != json_of(&have.ports)
        || want.address_type != have.address_type
        || json_of(&want.metadata.labels) != json_of(&have.metadata.labels)
        || json_of(&want.metadata.owner_references) != json_of(&have.metadata.owner_references)
}

fn ignore_not_found(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use kube::api::ObjectMeta;

    fn pod(ns: &str) -> Change<Pod> {
        let mut p = Pod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some("p".into());
        Change::Applied(Arc::new(p))
    }

    fn service(selector: Option<&str>) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some("s".into()),
                namespace: Some("web".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: selector.map(|app| [("app".to_string(), app.to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn pod_changes_matter_only_where_a_service_selects_pods() {
        let none = |_: &str| Vec::new();
        assert!(!pod_change_matters(&pod("web"), none));
        // The `kubernetes` Service has no selector: its endpoints are not computed here.
        assert!(!pod_change_matters(&pod("web"), |_| vec![service(None)]));
        let asked = std::cell::Cell::new(String::new());
        let selecting = |ns: &str| {
            asked.set(ns.to_string());
            vec![service(None), service(Some("web"))]
        };
        assert!(pod_change_matters(&pod("web"), selecting));
        assert_eq!(asked.take(), "web");
        // A pod deleted from such a namespace matters too, and so does a re-list.
        let Change::Applied(p) = pod("web") else {
            unreachable!()
        };
        assert!(pod_change_matters(&Change::Deleted(p), |_| vec![service(
            Some("x")
        )]));
        assert!(pod_change_matters(&Change::Synced, none));
    }
}
