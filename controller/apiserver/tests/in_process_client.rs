//! The in-process client reaches the same REST and watch paths as a network client.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

use bramble_apiserver::{Controller, ControllerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_client_lists_creates_and_watches() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = ControllerConfig::new(dir.path(), "127.0.0.1:0".parse()?);
    cfg.plain_http = true;
    let controller = Controller::start(&cfg).await?;
    let client = controller.in_process_client("system:kube-controller-manager");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_string()), "{names:?}");

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let list = cms.list(&ListParams::default()).await?;
    let rv = list.metadata.resource_version.unwrap();
    let mut watch = cms
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await?
        .boxed();
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "in-process"}, "data": {"k": "v"}
    }))?;
    let created = cms.create(&PostParams::default(), &cm).await?;
    assert!(created.metadata.uid.is_some());
    match watch.try_next().await? {
        Some(WatchEvent::Added(obj)) => {
            assert_eq!(obj.metadata.name.as_deref(), Some("in-process"))
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
    // Bad input is refused with the upstream Status, as over the network.
    let bad: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "Bad_Name"}}))?;
    let err = cms.create(&PostParams::default(), &bad).await.unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 422),
        e => panic!("expected a 422 Status, got {e}"),
    }
    Ok(())
}
