//! Nothing acknowledged is lost: concurrent writers, SIGKILL at a random moment, restart on
//! the same LMDB files; every acknowledged write is there with its resourceVersion, and a watch
//! resumed from before the crash sees every later event exactly once.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Result};
use common::TestController;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use rand::Rng;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() -> Result<()> {
    let mut c = TestController::start()?;
    let client = c.client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let before = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap();

    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let api = api.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("w{w}-{n}"));
                cm.data = Some([("payload".to_string(), "x".repeat(1024))].into());
                match api.create(&PostParams::default(), &cm).await {
                    Ok(created) => {
                        acked.lock().unwrap().insert(
                            created.metadata.name.unwrap(),
                            created.metadata.resource_version.unwrap(),
                        );
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    let wait_ms = rand::rng().random_range(300..1500);
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    c.kill();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    ensure!(
        acked.len() > 10,
        "only {} writes acknowledged before the kill",
        acked.len()
    );

    c.restart()?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "default");
    let listed = api.list(&ListParams::default()).await?;
    let stored: HashMap<String, String> = listed
        .items
        .into_iter()
        // Only this test's writes: the controller's own kube-root-ca.crt lives here too.
        .filter(|cm| cm.metadata.name.as_deref() != Some("kube-root-ca.crt"))
        .map(|cm| {
            (
                cm.metadata.name.unwrap(),
                cm.metadata.resource_version.unwrap(),
            )
        })
        .collect();
    for (name, rv) in &acked {
        ensure!(
            stored.get(name) == Some(rv),
            "acknowledged {name} at {rv}, found {:?}",
            stored.get(name)
        );
    }

    // a watch resumed from before the crash replays every write once, in order
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &before)
        .await?
        .boxed();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut last = before.parse::<u64>()?;
    while seen.len() < stored.len() {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await?
            .expect("watch ended")?;
        match ev {
            WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("kube-root-ca.crt") => {}
            WatchEvent::Added(cm) => {
                let rv: u64 = cm.metadata.resource_version.unwrap().parse()?;
                ensure!(rv > last, "out of order: {rv} after {last}");
                last = rv;
                *seen.entry(cm.metadata.name.unwrap()).or_default() += 1;
            }
            other => anyhow::bail!("unexpected event {other:?}"),
        }
    }
    ensure!(seen.values().all(|n| *n == 1), "duplicates: {seen:?}");
    for name in acked.keys() {
        ensure!(seen.contains_key(name), "watch missed {name}");
    }
    ensure!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err()
    );
    Ok(())
}
