//! The `kube` crate as an operator uses it: every patch kind, server-side apply with conflicts,
//! and a CRD round trip through `DynamicObject` (create, patch, list, status subresource, delete).

mod common;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use common::TestController;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::json;

const NS: &str = "kube-client";

async fn namespace(client: &kube::Client) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patch_kind_and_apply_conflicts() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    namespace(&client).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}}))?;
    cms.create(&PostParams::default(), &cm).await?;

    let json_patch: json_patch_kube::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/b", "value": "2"}]))?;
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Json::<()>(json_patch),
    )
    .await?;
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": null}})),
    )
    .await?;
    let got = cms.get("cfg").await?;
    ensure!(
        got.data == Some([("b".to_string(), "2".to_string())].into()),
        "after json + merge patches: {:?}",
        got.data
    );

    // A JSON patch whose test op fails changes nothing and answers 422 as upstream.
    let failing: json_patch_kube::Patch = serde_json::from_value(
        json!([{"op": "test", "path": "/data/b", "value": "9"}, {"op": "remove", "path": "/data/b"}]),
    )?;
    match cms
        .patch("cfg", &PatchParams::default(), &Patch::Json::<()>(failing))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 422 => {}
        other => bail!("failing test op: {other:?}"),
    }
    ensure!(cms
        .get("cfg")
        .await?
        .data
        .unwrap_or_default()
        .contains_key("b"));

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "a", "image": "busybox:1"},
                    {"name": "b", "image": "busybox:1"}
                ]}
            }
        }
    }))?;
    deploys.create(&PostParams::default(), &d).await?;
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "b", "image": "busybox:2"}
            ]}}}})),
        )
        .await?;
    let images: Vec<(String, Option<String>)> = deploys
        .get("web")
        .await?
        .spec
        .context("spec")?
        .template
        .spec
        .context("pod spec")?
        .containers
        .into_iter()
        .map(|c| (c.name, c.image))
        .collect();
    ensure!(
        images
            == [
                ("a".to_string(), Some("busybox:1".to_string())),
                ("b".to_string(), Some("busybox:2".to_string()))
            ],
        "strategic merge: {images:?}"
    );

    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"}, "data": {"k": "v"}});
    cms.patch(
        "applied",
        &PatchParams::apply("one"),
        &Patch::Apply(&applied),
    )
    .await?;
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"}, "data": {"k": "w"}});
    match cms
        .patch(
            "applied",
            &PatchParams::apply("two"),
            &Patch::Apply(&theirs),
        )
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "Conflict" => {}
        other => bail!("conflicting apply: {other:?}"),
    }
    cms.patch(
        "applied",
        &PatchParams::apply("two").force(),
        &Patch::Apply(&theirs),
    )
    .await?;
    let got = cms.get("applied").await?;
    ensure!(got.data == Some([("k".to_string(), "w".to_string())].into()));
    let managers: Vec<String> = got
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    ensure!(managers.contains(&"two".to_string()), "{managers:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_round_trip_through_dynamic_objects() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    namespace(&client).await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                }}}
            }]
        }
    }))?;
    crds.create(&PostParams::default(), &crd).await?;
    let established = kube::runtime::wait::await_condition(
        crds.clone(),
        "widgets.example.com",
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .context("CRD never Established")??;

    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }))?;
    widgets.create(&PostParams::default(), &w).await?;
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await?;
    // The status subresource changes only status; the main resource ignores status.
    widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 99}})),
        )
        .await?;
    let got = widgets.get("w1").await?;
    ensure!(
        got.data["spec"]["size"] == 4 && got.data["status"]["ready"] == true,
        "after patches: {}",
        got.data
    );
    let list = widgets.list(&ListParams::default()).await?;
    ensure!(list.items.len() == 1);

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await?;
    // Deleting the CRD removes its objects and stops serving it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match widgets.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) if s.code == 404 => break,
            _ if std::time::Instant::now() > deadline => bail!("widgets still served"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Ok(())
}
