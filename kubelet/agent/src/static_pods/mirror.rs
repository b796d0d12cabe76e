//! Mirror pods (upstream `pod/mirror_client.go` and the mirror handling of the kubelet's
//! `syncPod` and `HandlePodCleanups`): each static pod has one pod in the API with the
//! `kubernetes.io/config.mirror` annotation (the static pod's hash), bound to the node and
//! owned by the Node object. A mirror pod that is being deleted or carries an old hash is
//! deleted and created again; a mirror pod without a static pod is deleted. The API pod
//! source reports the mirror pods it sees here instead of running them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::{Api, Client};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::{full_name, mirror_hash, static_hash, CONFIG_MIRROR};
use crate::pod_spec::pod_ids;
use crate::status_manager::{StatusManager, UidTranslator};

/// How often mirror pods are checked without a change to wake the manager (retries while
/// the API server is unreachable).
const RESYNC: Duration = Duration::from_secs(10);
/// How long a mirror pod someone deleted gracefully stays before the kubelet removes it for
/// good and creates a new one: `kubectl delete` gets the object, then lists and watches it
/// for the deletion; a replacement made between its get and its list would keep it waiting.
const DELETE_SETTLE: Duration = Duration::from_secs(1);

/// What the API pod source saw of mirror pods.
#[derive(Debug)]
pub enum Observed {
    /// A mirror pod was added or changed.
    Upsert(Pod),
    /// A mirror pod was deleted.
    Deleted(Pod),
    /// A full list: these are all the mirror pods on the node.
    Relisted(Vec<Pod>),
}

#[derive(Default)]
struct State {
    /// Static pods by full name.
    desired: HashMap<String, Arc<Pod>>,
    /// Static pod uid → the uid of its current mirror pod (if any).
    mirror_uids: HashMap<String, Option<String>>,
    /// Mirror pods in the API by full name.
    observed: HashMap<String, Arc<Pod>>,
}

/// The static pods and their mirror pods, shared by the file source, the API pod source, the
/// mirror manager and the status manager.
#[derive(Default)]
pub struct MirrorPods {
    state: Mutex<State>,
    wake: Notify,
}

impl MirrorPods {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mirror pods")
    }

    /// Replaces the set of static pods.
    pub fn set_static(&self, pods: Vec<Arc<Pod>>) {
        let mut st = self.lock();
        let mut uids = HashMap::new();
        for p in &pods {
            let (_, _, uid) = pod_ids(p);
            let old = st.mirror_uids.get(&uid).cloned().flatten();
            uids.insert(uid, old);
        }
        st.mirror_uids = uids;
        st.desired = pods.into_iter().map(|p| (full_name(&p), p)).collect();
        drop(st);
        self.wake.notify_one();
    }

    /// Records mirror pods the API reported.
    pub fn observe(&self, ev: Observed) {
        let mut st = self.lock();
        match ev {
            Observed::Upsert(p) => {
                st.observed.insert(full_name(&p), Arc::new(p));
            }
            Observed::Deleted(p) => {
                let name = full_name(&p);
                if st
                    .observed
                    .get(&name)
                    .is_some_and(|o| o.metadata.uid == p.metadata.uid)
                {
                    st.observed.remove(&name);
                }
            }
            Observed::Relisted(pods) => {
                st.observed = pods
                    .into_iter()
                    .map(|p| (full_name(&p), Arc::new(p)))
                    .collect();
            }
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Links a static pod to its mirror pod; `true` if that changed.
    fn link(&self, static_uid: &str, mirror_uid: Option<String>) -> bool {
        let mut st = self.lock();
        match st.mirror_uids.get_mut(static_uid) {
            Some(m) if *m != mirror_uid => {
                *m = mirror_uid;
                true
            }
            _ => false,
        }
    }

    fn snapshot(&self) -> (Vec<Arc<Pod>>, HashMap<String, Arc<Pod>>) {
        let st = self.lock();
        (st.desired.values().cloned().collect(), st.observed.clone())
    }
}

impl UidTranslator for MirrorPods {
    fn api_uid(&self, uid: &str) -> Option<String> {
        match self.lock().mirror_uids.get(uid) {
            Some(mirror) => mirror.clone(),
            None => Some(uid.to_string()),
        }
    }
}

/// The mirror pod of `pod` on `node` (upstream `CreateMirrorPod`'s copy): the static pod
/// with the mirror annotation and the Node as its controlling owner, without a uid.
pub fn mirror_of(pod: &Pod, node: &str, node_uid: &str) -> Pod {
    let mut m = pod.clone();
    m.status = None;
    m.metadata.uid = None;
    m.metadata.resource_version = None;
    let hash = static_hash(pod).unwrap_or_default().to_string();
    m.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_MIRROR.into(), hash);
    m.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.to_string(),
        uid: node_uid.to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    m
}

/// Whether `mirror` is the current mirror pod of `pod` (upstream `IsMirrorPodOf`).
pub fn is_mirror_pod_of(mirror: &Pod, pod: &Pod) -> bool {
    mirror.metadata.deletion_timestamp.is_none()
        && mirror_hash(mirror).is_some()
        && mirror_hash(mirror) == static_hash(pod)
}

struct Manager {
    mirrors: Arc<MirrorPods>,
    client: Client,
    node: String,
    node_uid: Option<String>,
    status: StatusManager,
    /// When each mirror pod (by uid) was first seen being deleted by someone else.
    deleting_since: HashMap<String, Instant>,
}

impl Manager {
    async fn node_uid(&mut self) -> Option<String> {
        if self.node_uid.is_none() {
            let nodes: Api<Node> = Api::all(self.client.clone());
            match nodes.get_opt(&self.node).await {
                Ok(Some(n)) => self.node_uid = n.metadata.uid,
                Ok(None) => debug!("node not registered yet: no mirror pods"),
                Err(e) => debug!(error = %e, "getting the node for mirror pods"),
            }
        }
        self.node_uid.clone()
    }

    /// Deletes a mirror pod at once (grace period 0, this uid only); `true` once it is gone.
    async fn delete(&self, mirror: &Pod) -> bool {
        let (ns, name, uid) = pod_ids(mirror);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {
                info!(%ns, %name, %uid, "mirror pod deleted");
                self.mirrors.observe(Observed::Deleted(mirror.clone()));
                true
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.mirrors.observe(Observed::Deleted(mirror.clone()));
                true
            }
            Err(e) => {
                warn!(%ns, %name, error = %e, "deleting mirror pod");
                false
            }
        }
    }

    async fn create(&mut self, pod: &Pod) {
        let Some(node_uid) = self.node_uid().await else {
            return;
        };
        let mirror = mirror_of(pod, &self.node, &node_uid);
        let (ns, name, static_uid) = pod_ids(pod);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), &mirror).await {
            Ok(created) => {
                info!(%ns, %name, uid = ?created.metadata.uid, "mirror pod created");
                let uid = created.metadata.uid.clone();
                self.mirrors.observe(Observed::Upsert(created));
                if self.mirrors.link(&static_uid, uid) {
                    self.status.resync(&static_uid);
                }
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                debug!(%ns, %name, "mirror pod exists; waiting for the watch");
            }
            Err(e) => warn!(%ns, %name, error = %e, "creating mirror pod"),
        }
    }

    /// One pass; returns how soon the next pass is due, if sooner than [`RESYNC`].
    async fn reconcile(&mut self) -> Option<Duration> {
        let (desired, observed) = self.mirrors.snapshot();
        let mut next: Option<Duration> = None;
        self.deleting_since.retain(|uid, _| {
            observed
                .values()
                .any(|m| m.metadata.uid.as_deref() == Some(uid))
        });
        for pod in &desired {
            let (_, _, static_uid) = pod_ids(pod);
            match observed.get(&full_name(pod)) {
                Some(m) if is_mirror_pod_of(m, pod) => {
                    if self.mirrors.link(&static_uid, m.metadata.uid.clone()) {
                        self.status.resync(&static_uid);
                    }
                }
                Some(m) => {
                    if m.metadata.deletion_timestamp.is_some() {
                        let uid = m.metadata.uid.clone().unwrap_or_default();
                        let since = *self.deleting_since.entry(uid).or_insert_with(Instant::now);
                        let left = DELETE_SETTLE.saturating_sub(since.elapsed());
                        if !left.is_zero() {
                            next = Some(next.map_or(left, |n| n.min(left)));
                            continue;
                        }
                    }
                    self.mirrors.link(&static_uid, None);
                    info!(pod = %full_name(pod), "mirror pod outdated or deleted: recreating");
                    if self.delete(m).await {
                        self.create(pod).await;
                    }
                }
                None => {
                    self.mirrors.link(&static_uid, None);
                    self.create(pod).await;
                }
            }
        }
        let wanted: std::collections::HashSet<String> =
            desired.iter().map(|p| full_name(p)).collect();
        for (name, m) in &observed {
            if !wanted.contains(name) {
                info!(pod = %name, "deleting orphaned mirror pod");
                self.delete(m).await;
            }
        }
        next
    }
}

/// Keeps the mirror pods in line with the static pods until `stop`.
pub async fn run(
    mirrors: Arc<MirrorPods>,
    client: Client,
    node: String,
    status: StatusManager,
    mut stop: watch::Receiver<bool>,
) {
    let mut m = Manager {
        mirrors: mirrors.clone(),
        client,
        node,
        node_uid: None,
        status,
        deleting_since: HashMap::new(),
    };
    loop {
        let next = m.reconcile().await.unwrap_or(RESYNC);
        tokio::select! {
            _ = mirrors.wake.notified() => {}
            _ = tokio::time::sleep(next) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::static_pods::manifest;
    use std::path::Path;

    fn static_pod(image: &str) -> Arc<Pod> {
        let y = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: s\nspec:\n  containers:\n  - name: c\n    image: {image}\n");
        Arc::new(manifest::load(Path::new("/m/s.yaml"), y.as_bytes(), "n1", "t").unwrap())
    }

    #[test]
    fn mirror_copy_and_identity() {
        let sp = static_pod("a");
        let m = mirror_of(&sp, "n1", "node-uid");
        assert!(crate::static_pods::is_mirror_pod(&m));
        assert_eq!(mirror_hash(&m), static_hash(&sp));
        assert_eq!(m.metadata.uid, None);
        let owner = &m.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "n1", "node-uid")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(m.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        assert!(is_mirror_pod_of(&m, &sp));
        assert!(!is_mirror_pod_of(&m, &static_pod("b")));
        let mut deleting = m.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert!(!is_mirror_pod_of(&deleting, &sp));
    }

    #[test]
    fn status_goes_to_the_mirror_pod() {
        let mp = MirrorPods::default();
        let sp = static_pod("a");
        let uid = sp.metadata.uid.clone().unwrap();
        assert_eq!(mp.api_uid("api-pod").as_deref(), Some("api-pod"));
        mp.set_static(vec![sp.clone()]);
        assert_eq!(mp.api_uid(&uid), None, "no mirror pod yet");
        assert!(mp.link(&uid, Some("m1".into())));
        assert!(!mp.link(&uid, Some("m1".into())));
        assert_eq!(mp.api_uid(&uid).as_deref(), Some("m1"));
        mp.set_static(vec![sp]);
        assert_eq!(
            mp.api_uid(&uid).as_deref(),
            Some("m1"),
            "kept across rescans"
        );
        mp.set_static(vec![]);
        assert_eq!(mp.api_uid(&uid).as_deref(), Some(uid.as_str()));
    }

    #[test]
    fn stale_deletes_do_not_forget_a_newer_mirror() {
        let mp = MirrorPods::default();
        let mut old = mirror_of(&static_pod("a"), "n1", "x");
        old.metadata.uid = Some("old".into());
        let mut new = old.clone();
        new.metadata.uid = Some("new".into());
        mp.observe(Observed::Upsert(new));
        mp.observe(Observed::Deleted(old));
        let (_, observed) = mp.snapshot();
        assert_eq!(
            observed.values().next().unwrap().metadata.uid.as_deref(),
            Some("new")
        );
    }
}
