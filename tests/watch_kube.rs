//! Watch and list semantics through a real client library (the `kube` crate).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, ensure, Result};
use common::TestController;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.to_string());
    if !labels.is_empty() {
        c.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
    }
    c.data = Some([("k".to_string(), name.to_string())].into());
    c
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> Result<WatchEvent<ConfigMap>> {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(ev)) => Ok(ev?),
        Ok(None) => bail!("watch ended"),
        Err(_) => bail!("no watch event within 10 s"),
    }
}

fn describe(ev: &WatchEvent<ConfigMap>) -> String {
    match ev {
        WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(c) => {
            format!("MODIFIED {}", c.metadata.name.clone().unwrap_or_default())
        }
        WatchEvent::Deleted(c) => {
            format!("DELETED {}", c.metadata.name.clone().unwrap_or_default())
        }
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn resume_from_a_resource_version_sees_each_later_event_once() -> Result<()> {
    let c = TestController::start()?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "default");
    let a = api.create(&PostParams::default(), &cm("a", &[])).await?;
    let from = a.metadata.resource_version.clone().unwrap();
    api.create(&PostParams::default(), &cm("b", &[])).await?;
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"k": "changed"}})),
    )
    .await?;
    api.delete("a", &DeleteParams::default()).await?;

    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &from)
        .await?
        .boxed();
    let mut seen = Vec::new();
    let mut last_rv = from.parse::<u64>()?;
    for _ in 0..3 {
        let ev = next_event(&mut stream).await?;
        if let WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) = &ev {
            let rv: u64 = o.metadata.resource_version.as_deref().unwrap().parse()?;
            ensure!(rv > last_rv, "revisions increase: {rv} after {last_rv}");
            last_rv = rv;
        }
        seen.push(describe(&ev));
    }
    ensure!(seen == ["ADDED b", "MODIFIED b", "DELETED a"], "{seen:?}");
    // nothing more until something changes
    ensure!(
        tokio::time::timeout(Duration::from_millis(500), stream.next())
            .await
            .is_err()
    );
    api.create(&PostParams::default(), &cm("c", &[])).await?;
    ensure!(describe(&next_event(&mut stream).await?) == "ADDED c");
    Ok(())
}

#[tokio::test]
async fn bookmarks_arrive_when_allowed() -> Result<()> {
    let c = TestController::start()?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "default");
    let created = api.create(&PostParams::default(), &cm("x", &[])).await?;
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = api.watch(&WatchParams::default(), &rv).await?.boxed();
    let ev = next_event(&mut stream).await?;
    let WatchEvent::Bookmark(b) = ev else {
        bail!("expected a bookmark, got {}", describe(&ev))
    };
    ensure!(b.metadata.resource_version.parse::<u64>()? >= rv.parse::<u64>()?);
    Ok(())
}

#[tokio::test]
async fn a_compacted_resource_version_is_expired() -> Result<()> {
    let c = TestController::start_with(&["--history-limit", "20"])?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "default");
    let first = api
        .create(&PostParams::default(), &cm("first", &[]))
        .await?;
    for i in 0..40 {
        api.create(&PostParams::default(), &cm(&format!("n{i}"), &[]))
            .await?;
    }
    let old = first.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &old)
        .await?
        .boxed();
    match next_event(&mut stream).await {
        Ok(WatchEvent::Error(e)) => ensure!(e.code == 410 && e.reason == "Expired", "{e:?}"),
        Err(e) => ensure!(
            e.to_string().contains("410") || e.to_string().contains("too old"),
            "{e}"
        ),
        Ok(other) => bail!("expected 410, got {}", describe(&other)),
    }
    // an Exact list at the compacted revision is refused with 410 too
    let err = api
        .list(
            &ListParams::default()
                .at(&old)
                .matching(kube::api::VersionMatch::Exact),
        )
        .await
        .unwrap_err();
    ensure!(
        matches!(&err, kube::Error::Api(s) if s.code == 410),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn selectors_turn_label_changes_into_added_and_deleted() -> Result<()> {
    let c = TestController::start()?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "default");
    let base = api
        .create(&PostParams::default(), &cm("s", &[("app", "other")]))
        .await?;
    let rv = base.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(
            &WatchParams::default().disable_bookmarks().labels("app=web"),
            &rv,
        )
        .await?
        .boxed();
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await?;
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"k": "v2"}})),
    )
    .await?;
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await?;
    let seen: Vec<String> = [
        next_event(&mut stream).await?,
        next_event(&mut stream).await?,
        next_event(&mut stream).await?,
    ]
    .iter()
    .map(describe)
    .collect();
    ensure!(seen == ["ADDED s", "MODIFIED s", "DELETED s"], "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn pagination_and_exact_lists() -> Result<()> {
    let c = TestController::start()?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "default");
    for i in 0..10 {
        api.create(
            &PostParams::default(),
            &cm(&format!("p{i:02}"), &[("page", "yes")]),
        )
        .await?;
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().labels("page=yes").limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await?;
        pages += 1;
        names.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
        // a write between pages does not show up in the rest of this list
        if pages == 1 {
            api.create(&PostParams::default(), &cm("p05a", &[("page", "yes")]))
                .await?;
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("p{i:02}")).collect();
    ensure!(names == expected, "{names:?}");
    ensure!(pages == 4);

    let by_name = api
        .list(&ListParams::default().fields("metadata.name=p03"))
        .await?;
    ensure!(by_name.items.len() == 1);
    let err = api
        .list(&ListParams::default().fields("data.k=x"))
        .await
        .unwrap_err();
    ensure!(
        matches!(&err, kube::Error::Api(s) if s.code == 400),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn the_runtime_watcher_lists_then_follows() -> Result<()> {
    let c = TestController::start()?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "default");
    api.create(&PostParams::default(), &cm("before", &[]))
        .await?;
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut init_names = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await?? {
            Some(watcher::Event::InitApply(o)) => init_names.push(o.metadata.name.unwrap()),
            Some(watcher::Event::InitDone) => break,
            Some(_) => {}
            None => bail!("watcher ended"),
        }
    }
    ensure!(init_names.contains(&"before".to_string()), "{init_names:?}");
    api.create(&PostParams::default(), &cm("after", &[]))
        .await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await?? {
            Some(watcher::Event::Apply(o)) if o.metadata.name.as_deref() == Some("after") => break,
            Some(_) => {}
            None => bail!("watcher ended"),
        }
    }
    Ok(())
}
