//! What every reconciler gets: the API client, the clock, the shared informers and the
//! expectations; plus the generic runner (kube-runtime `Controller` over a shared informer,
//! extra triggers, periodic resync, per-object exponential back-off on errors).

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_informer::pod::Pod;
use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::error::Error;
use crate::expectations::Expectations;
use bramble_informer::{Informer, SharedInformers};

/// Every object is reconciled again at least this often, whatever the watches say.
const RESYNC: Duration = Duration::from_secs(60);
/// Back-off of a failing object: base doubled per failure, capped.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(120);

/// Shared informers of every kind the controllers read.
#[derive(Clone)]
pub struct Informers {
    pub pods: Informer<Pod>,
    pub replicasets: Informer<ReplicaSet>,
    pub deployments: Informer<Deployment>,
    pub jobs: Informer<Job>,
    pub cronjobs: Informer<CronJob>,
    pub daemonsets: Informer<DaemonSet>,
    pub statefulsets: Informer<StatefulSet>,
    pub revisions: Informer<ControllerRevision>,
    pub nodes: Informer<Node>,
    pub pvcs: Informer<PersistentVolumeClaim>,
}

impl Informers {
    /// The process's shared informers of these kinds (started on first use).
    pub fn from_shared(shared: &SharedInformers) -> Informers {
        Informers {
            pods: shared.get(),
            replicasets: shared.get(),
            deployments: shared.get(),
            jobs: shared.get(),
            cronjobs: shared.get(),
            daemonsets: shared.get(),
            statefulsets: shared.get(),
            revisions: shared.get(),
            nodes: shared.get(),
            pvcs: shared.get(),
        }
    }

    /// Waits until every cache holds its first list.
    pub async fn ready(&self) -> Result<(), bramble_informer::Error> {
        self.pods.ready().await?;
        self.replicasets.ready().await?;
        self.deployments.ready().await?;
        self.jobs.ready().await?;
        self.cronjobs.ready().await?;
        self.daemonsets.ready().await?;
        self.statefulsets.ready().await?;
        self.revisions.ready().await?;
        self.nodes.ready().await?;
        self.pvcs.ready().await
    }
}

/// The context every reconciler gets.
pub struct Ctx {
    pub client: Client,
    pub clock: Arc<dyn Clock>,
    pub informers: Informers,
    pub expectations: Expectations,
    failures: Mutex<HashMap<String, u32>>,
}

impl Ctx {
    /// A context over started informers.
    pub fn new(client: Client, clock: Arc<dyn Clock>, informers: Informers) -> Ctx {
        Ctx {
            client,
            clock,
            informers,
            expectations: Expectations::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// A namespaced API of `K`.
    pub fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    fn failed(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.to_string()).or_insert(0);
        *n = (*n + 1).min(20);
        BACKOFF_BASE
            .saturating_mul(1u32 << (*n - 1).min(16))
            .min(BACKOFF_MAX)
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Runs one controller: reconciles every object of `main` on its changes, on `triggers`, on
/// a periodic resync, and after errors with per-object exponential back-off.
pub async fn run_controller<K, F, Fut>(
    name: &'static str,
    ctx: Arc<Ctx>,
    main: Informer<K>,
    triggers: BoxStream<'static, ObjectRef<K>>,
    reconcile: F,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let resync =
        tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(RESYNC)).map(|_| ());
    let wrapped = move |obj: Arc<K>, ctx: Arc<Ctx>| {
        let reconcile = reconcile.clone();
        async move {
            let key = format!(
                "{name}:{}/{}",
                obj.namespace().unwrap_or_default(),
                obj.name_any()
            );
            let out = reconcile(obj, ctx.clone()).await;
            if out.is_ok() {
                ctx.succeeded(&key);
            }
            out
        }
    };
    // kube's Controller waits on the store's readiness, which wakes only one of several
    // waiters: let the shared informer's own (any-number-of-waiters) readiness go first.
    if let Err(e) = main.ready().await {
        warn!(controller = name, error = %e, "cache never filled");
        return;
    }
    Controller::for_shared_stream(main.applied(), main.store().clone())
        .reconcile_on(triggers)
        .reconcile_all_on(resync)
        .run(
            wrapped,
            move |obj: Arc<K>, err: &Error, ctx: Arc<Ctx>| {
                let key = format!(
                    "{name}:{}/{}",
                    obj.namespace().unwrap_or_default(),
                    obj.name_any()
                );
                let delay = ctx.failed(&key);
                warn!(controller = name, object = %key, error = %err, ?delay, "reconcile failed");
                Action::requeue(delay)
            },
            ctx,
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                debug!(controller = name, error = %e, "controller event");
            }
        })
        .await;
}

/// The trigger stream mapping changes of `Child` to their controller of kind `Owner`.
pub fn owner_triggers<Child, Owner>(
    informer: &Informer<Child>,
) -> BoxStream<'static, ObjectRef<Owner>>
where
    Child: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    Owner: Resource<DynamicType = ()> + 'static,
{
    informer
        .changes()
        .filter_map(|c| async move {
            let obj = c.object()?;
            let r = crate::meta::controller_ref(obj.meta())?;
            (r.kind == Owner::kind(&()) && r.api_version == Owner::api_version(&())).then(|| {
                let mut o = ObjectRef::<Owner>::new(&r.name);
                if let Some(ns) = obj.meta().namespace.as_deref() {
                    o = o.within(ns);
                }
                o
            })
        })
        .boxed()
}
