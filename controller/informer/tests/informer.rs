//! The shared informer against the real API server in process: one cache per kind, namespace
//! and custom indexes, handler fan-out of creates/updates/deletes, compaction.

use std::time::Duration;

use anyhow::Result;
use bramble_apiserver::{Controller, ControllerConfig};
use bramble_informer::{Change, SharedInformers};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

async fn start() -> Result<(tempfile::TempDir, Client)> {
    let dir = tempfile::tempdir()?;
    let cfg = ControllerConfig::new(dir.path().join("controller"), "127.0.0.1:0".parse()?);
    let controller = Controller::start(&cfg).await?;
    let client = controller.in_process_client("informer-test");
    std::mem::forget(controller);
    Ok((dir, client))
}

async fn eventually(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn configmap(ns: &str, name: &str, tier: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"tier": tier},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}",
                "keep": "me"}},
        "data": {"k": "v"},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cache_per_kind_with_indexes_and_handlers() -> Result<()> {
    let (_dir, client) = start().await?;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "other"}}))?,
    )
    .await?;
    let pp = PostParams::default();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&pp, &configmap("default", "before", "web"))
        .await?;

    let informers = SharedInformers::new(client.clone());
    let a = informers.get::<ConfigMap>();
    let b = informers.get::<ConfigMap>();
    assert_eq!(informers.len(), 1, "a second get reuses the informer");
    a.add_indexer("tier", |cm: &ConfigMap| {
        cm.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier").cloned())
            .into_iter()
            .collect()
    });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    b.add_handler(move |c: &Change<ConfigMap>| {
        let what = match c {
            Change::Applied(o) => format!("applied {}", o.metadata.name.as_deref().unwrap_or("")),
            Change::Deleted(o) => format!("deleted {}", o.metadata.name.as_deref().unwrap_or("")),
            Change::Synced => "synced".into(),
        };
        s.lock().unwrap().push(what);
        true
    });
    a.ready().await?;

    // the object listed before the handler registered arrives as applied, then synced
    let has = |what: &str| seen.lock().unwrap().iter().any(|s| s == what);
    eventually(|| has("applied before") && has("synced")).await;

    let cached = b.get(Some("default"), "before").expect("cached");
    assert!(
        cached.metadata.managed_fields.is_none(),
        "managedFields dropped"
    );
    let ann = cached.metadata.annotations.clone().unwrap_or_default();
    assert!(!ann.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert_eq!(ann.get("keep").map(String::as_str), Some("me"));

    Api::<ConfigMap>::namespaced(client.clone(), "other")
        .create(&pp, &configmap("other", "x", "db"))
        .await?;
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&pp, &configmap("default", "y", "db"))
        .await?;
    eventually(|| b.by_index("tier", "db").len() == 2).await;
    let mut names: Vec<_> = a
        .list_namespace("other")
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    // kube-root-ca.crt may be published into the namespace too
    names.retain(|n| n != "kube-root-ca.crt");
    assert_eq!(names, vec!["x"]);

    // a relabel moves the object between index values; the update reaches handlers
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .patch(
            "y",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "web"}}})),
        )
        .await?;
    eventually(|| b.by_index("tier", "db").len() == 1 && a.by_index("tier", "web").len() == 2)
        .await;

    Api::<ConfigMap>::namespaced(client.clone(), "other")
        .delete("x", &DeleteParams::default())
        .await?;
    eventually(|| has("deleted x") && a.by_index("tier", "db").is_empty()).await;
    assert!(a.get(Some("other"), "x").is_none());
    assert!(a.by_index("no-such-index", "db").is_empty());
    Ok(())
}

/// Every task waiting for the first list wakes, not only the last one to start waiting (kube's
/// `Store::wait_until_ready` keeps one waker; the scheduler and the node lifecycle controller
/// both waiting on the Node cache once left the scheduler asleep for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_wakes_when_the_cache_fills() -> Result<()> {
    let (_dir, client) = start().await?;
    let informers = SharedInformers::new(client);
    let nodes = informers.get::<k8s_openapi::api::core::v1::Node>();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let n = nodes.clone();
            tokio::spawn(async move { n.ready().await })
        })
        .collect();
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("a waiter was never woken")??;
    }
    // and the kube store handed to kube's Controller is ready by then
    tokio::time::timeout(Duration::from_secs(1), nodes.store().wait_until_ready())
        .await
        .expect("store readiness")?;
    Ok(())
}

/// `wakeups` yields once for what is cached, then at most twice for any number of changes
/// made while it was not polled, and keeps no object alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeups_coalesce_changes_and_hold_no_objects() -> Result<()> {
    use futures::StreamExt;
    let (_dir, client) = start().await?;
    let informers = SharedInformers::new(client.clone());
    let cms = informers.get::<ConfigMap>();
    cms.ready().await?;
    let mut wakeups = cms.wakeups();
    let next = |w: &mut futures::stream::BoxStream<'static, ()>| {
        futures::FutureExt::now_or_never(w.next()).flatten()
    };
    assert_eq!(
        next(&mut wakeups),
        Some(()),
        "a first wake-up for the cached objects"
    );
    assert_eq!(next(&mut wakeups), None, "nothing changed since");

    let api = Api::<ConfigMap>::namespaced(client, "default");
    let before = cms.list().len();
    for i in 0..5 {
        api.create(
            &PostParams::default(),
            &configmap("default", &format!("w{i}"), "web"),
        )
        .await?;
    }
    eventually(|| cms.list().len() == before + 5).await;
    let old = cms.get(Some("default"), "w0").expect("cached");
    api.patch(
        "w0",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await?;
    eventually(|| {
        cms.get(Some("default"), "w0")
            .is_some_and(|c| !std::sync::Arc::ptr_eq(&c, &old))
    })
    .await;
    // the old version is only ours: no queue of changes holds it
    assert_eq!(std::sync::Arc::strong_count(&old), 1);

    // (the wait polled above completes at the first change; the rest leave one more)
    let mut woken = 0;
    while next(&mut wakeups).is_some() {
        woken += 1;
    }
    assert!((1..=2).contains(&woken), "six changes, {woken} wake-ups");
    Ok(())
}

/// `wakeups_when` wakes only after the changes its filter accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_wakeups_ignore_other_changes() -> Result<()> {
    use futures::StreamExt;
    let (_dir, client) = start().await?;
    let informers = SharedInformers::new(client.clone());
    let cms = informers.get::<ConfigMap>();
    cms.ready().await?;
    let mut db_changes = cms.wakeups_when(|c| match c {
        Change::Applied(cm) => cm.labels().get("tier").is_some_and(|t| t == "db"),
        _ => false,
    });
    let next = |w: &mut futures::stream::BoxStream<'static, ()>| {
        futures::FutureExt::now_or_never(w.next()).flatten()
    };
    assert_eq!(next(&mut db_changes), None, "nothing of tier db is cached");

    let api = Api::<ConfigMap>::namespaced(client, "default");
    let pp = PostParams::default();
    api.create(&pp, &configmap("default", "web-1", "web"))
        .await?;
    eventually(|| cms.get(Some("default"), "web-1").is_some()).await;
    assert_eq!(next(&mut db_changes), None, "a web change does not wake");

    api.create(&pp, &configmap("default", "db-1", "db")).await?;
    eventually(|| cms.get(Some("default"), "db-1").is_some()).await;
    assert_eq!(next(&mut db_changes), Some(()), "a db change wakes");
    assert_eq!(next(&mut db_changes), None);
    Ok(())
}
