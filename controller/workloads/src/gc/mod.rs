//! The garbage collector: a metadata-only watch of every deletable resource builds the
//! ownership [`graph::Graph`]; after each burst of changes (and periodically) the collector
//! plans and carries out deletions, orphaning and finalizer removal. Owners believed gone
//! are confirmed with a live read before anything is deleted, as upstream does.

pub mod graph;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use bramble_api::registry::Registry;
use graph::{Action, Graph, Node, Propagation};

/// Quiet time after a change before a pass, so a burst is handled once.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// A pass runs at least this often.
const RESYNC: Duration = Duration::from_secs(30);

/// One watched resource.
#[derive(Debug, Clone)]
struct Watched {
    ar: ApiResource,
    namespaced: bool,
}

type Meta = PartialObjectMeta<DynamicObject>;

/// The resources the collector watches: every built-in resource that can be listed,
/// watched and deleted, one version per group/resource, events excepted (as upstream's
/// default ignored resources).
fn watched_resources() -> Vec<Watched> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for info in Registry::builtin().all() {
        let verbs = |v: &str| info.verbs.iter().any(|x| x == v);
        if !(verbs("list") && verbs("watch") && verbs("delete")) || info.resource == "events" {
            continue;
        }
        if !seen.insert((info.group.clone(), info.resource.clone())) {
            continue;
        }
        out.push(Watched {
            ar: ApiResource {
                group: info.group.clone(),
                version: info.version.clone(),
                api_version: info.api_version(),
                kind: info.kind.clone(),
                plural: info.resource.clone(),
            },
            namespaced: info.namespaced,
        });
    }
    out
}

fn node_of(resource: usize, m: &Meta) -> Option<Node> {
    let md = &m.metadata;
    Some(Node {
        resource,
        namespace: md.namespace.clone(),
        name: md.name.clone()?,
        uid: md.uid.clone()?,
        resource_version: md.resource_version.clone().unwrap_or_default(),
        owners: md.owner_references.clone().unwrap_or_default(),
        finalizers: md.finalizers.clone().unwrap_or_default(),
        deleting: md.deletion_timestamp.is_some(),
    })
}

/// Runs the garbage collector until the process ends.
pub async fn run(client: Client) {
    let resources = watched_resources();
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Event<Meta>)>();
    for (i, w) in resources.iter().enumerate() {
        let api: Api<Meta> = Api::all_with(client.clone(), &w.ar);
        let tx = tx.clone();
        let kind = w.ar.kind.clone();
        tokio::spawn(async move {
            let mut s = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = s.next().await {
                match ev {
                    Ok(ev) => {
                        if tx.send((i, ev)).is_err() {
                            return;
                        }
                    }
                    Err(e) => debug!(%kind, error = %e, "gc watch failed; retrying"),
                }
            }
        });
    }
    drop(tx);

    let mut graph = Graph::default();
    for w in &resources {
        graph
            .known_kinds
            .insert((w.ar.group.clone(), w.ar.kind.clone()));
    }
    let mut relisting: HashMap<usize, Vec<Node>> = HashMap::new();
    let mut synced = vec![false; resources.len()];
    let mut dirty = true;
    let mut tick = tokio::time::interval(RESYNC);
    info!(resources = resources.len(), "garbage collector started");
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some((i, ev)) = ev else { return };
                apply_event(&mut graph, &mut relisting, &mut synced, i, ev);
                dirty = true;
                continue;
            }
            _ = tokio::time::sleep(DEBOUNCE), if dirty => {}
            _ = tick.tick() => {
                dirty = true;
                continue;
            }
        }
        if !synced.iter().all(|s| *s) {
            continue;
        }
        dirty = false;
        // Owners confirmed gone during this pass are not read again for their siblings.
        let mut gone = HashSet::new();
        for action in graph.plan() {
            if let Err(e) = execute(&client, &resources, &graph, &action, &mut gone).await {
                debug!(?action, error = %e, "gc action failed; retried on the next pass");
                dirty = true;
            }
        }
    }
}

fn apply_event(
    graph: &mut Graph,
    relisting: &mut HashMap<usize, Vec<Node>>,
    synced: &mut [bool],
    i: usize,
    ev: Event<Meta>,
) {
    match ev {
        Event::Apply(m) => {
            if let Some(n) = node_of(i, &m) {
                graph.nodes.insert(n.uid.clone(), n);
            }
        }
        Event::Delete(m) => {
            if let Some(uid) = &m.metadata.uid {
                graph.nodes.remove(uid);
            }
        }
        Event::Init => {
            relisting.insert(i, Vec::new());
        }
        Event::InitApply(m) => {
            if let Some(n) = node_of(i, &m) {
                relisting.entry(i).or_default().push(n);
            }
        }
        Event::InitDone => {
            graph.nodes.retain(|_, n| n.resource != i);
            for n in relisting.remove(&i).unwrap_or_default() {
                graph.nodes.insert(n.uid.clone(), n);
            }
            synced[i] = true;
        }
    }
}

fn api_for(client: &Client, w: &Watched, ns: Option<&str>) -> Api<DynamicObject> {
    match (w.namespaced, ns) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &w.ar),
        _ => Api::all_with(client.clone(), &w.ar),
    }
}

/// Whether an owner reference still points at a live object, read from the API.
async fn owner_exists(
    client: &Client,
    resources: &[Watched],
    ns: Option<&str>,
    owner: &OwnerReference,
) -> Result<bool, kube::Error> {
    let group = owner
        .api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("");
    let Some(w) = resources
        .iter()
        .find(|w| w.ar.group == group && w.ar.kind == owner.kind)
    else {
        return Ok(true);
    };
    match api_for(client, w, ns).get_metadata_opt(&owner.name).await? {
        Some(m) => Ok(m.metadata.uid.as_deref() == Some(owner.uid.as_str())),
        None => Ok(false),
    }
}

async fn execute(
    client: &Client,
    resources: &[Watched],
    graph: &Graph,
    action: &Action,
    gone: &mut HashSet<String>,
) -> Result<(), kube::Error> {
    let uid = match action {
        Action::Delete { uid, .. }
        | Action::RemoveOwners { uid, .. }
        | Action::RemoveFinalizer { uid, .. } => uid,
    };
    let Some(n) = graph.nodes.get(uid) else {
        return Ok(());
    };
    let ns = n.namespace.as_deref();
    let kind = &resources[n.resource].ar.kind;
    let api = api_for(client, &resources[n.resource], ns);
    match action {
        Action::Delete {
            propagation,
            verify,
            ..
        } => {
            for o in verify {
                if gone.contains(&o.uid) {
                    continue;
                }
                if owner_exists(client, resources, ns, o).await? {
                    return Ok(());
                }
                gone.insert(o.uid.clone());
            }
            info!(%kind, namespace = ?ns, name = %n.name, ?propagation, "deleting dependent");
            let dp = DeleteParams {
                propagation_policy: Some(match propagation {
                    Propagation::Background => PropagationPolicy::Background,
                    Propagation::Foreground => PropagationPolicy::Foreground,
                    Propagation::Orphan => PropagationPolicy::Orphan,
                }),
                preconditions: Some(Preconditions {
                    uid: Some(n.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&n.name, &dp).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Action::RemoveOwners { owners, verify, .. } => {
            for o in verify {
                if gone.contains(&o.uid) {
                    continue;
                }
                if owner_exists(client, resources, ns, o).await? {
                    return Ok(());
                }
                gone.insert(o.uid.clone());
            }
            let kept: Vec<_> = n
                .owners
                .iter()
                .filter(|o| !owners.contains(&o.uid))
                .collect();
            debug!(%kind, name = %n.name, ?owners, "removing owner references");
            patch_meta(&api, n, json!({ "ownerReferences": kept })).await
        }
        Action::RemoveFinalizer { finalizer, .. } => {
            let kept: Vec<_> = n.finalizers.iter().filter(|f| f != finalizer).collect();
            debug!(%kind, name = %n.name, %finalizer, "removing finalizer");
            patch_meta(&api, n, json!({ "finalizers": kept })).await
        }
    }
}

/// A merge patch of metadata guarded by the resourceVersion the graph saw.
async fn patch_meta(
    api: &Api<DynamicObject>,
    n: &Node,
    mut meta: serde_json::Value,
) -> Result<(), kube::Error> {
    meta["resourceVersion"] = json!(n.resource_version);
    let patch = json!({ "metadata": meta });
    match api
        .patch(&n.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => {
            warn!(name = %n.name, error = %e, "gc patch failed");
            Err(e)
        }
    }
}
