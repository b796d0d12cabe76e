//! core/v1 and events.k8s.io/v1 Events are one set of objects: what a kube-rs `Recorder`
//! publishes (events.k8s.io/v1, with series updates as merge patches) shows in
//! `kubectl describe` and `kubectl get events`, and a core/v1 Event reads back through
//! events.k8s.io/v1 in that API's field names.

mod common;

use anyhow::{ensure, Result};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Resource};
use serde_json::{json, Value};

use common::{ok, TestController};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_event_apis_share_one_set_of_objects() -> Result<()> {
    let tc = TestController::start()?;
    let client = tc.client().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "settings"}}))?,
        )
        .await?;
    let reference: ObjectReference = cm.object_ref(&());

    // an operator's recorder (events.k8s.io/v1); the second publish is a series update
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "example.com/settings-operator".into(),
            instance: Some("operator-0".into()),
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "BadSetting".into(),
        note: Some("key retries is not a number".into()),
        action: "Validating".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await?;
    recorder.publish(&event, &reference).await?;

    let described = ok(tc.kubectl(&["describe", "configmap", "settings"])?)?;
    ensure!(
        described.contains("BadSetting") && described.contains("key retries is not a number"),
        "describe does not show the recorder's event:\n{described}"
    );
    let listed = ok(tc.kubectl(&["get", "events", "-o", "json"])?)?;
    let listed: Value = serde_json::from_str(&listed)?;
    let core = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["reason"] == "BadSetting")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no core/v1 Event BadSetting in {listed}"))?;
    ensure!(core["apiVersion"] == "v1", "{core}");
    ensure!(core["involvedObject"]["name"] == "settings", "{core}");
    ensure!(core["message"] == "key retries is not a number", "{core}");
    ensure!(
        core["reportingComponent"] == "example.com/settings-operator",
        "{core}"
    );
    ensure!(core["series"]["count"] == 2, "series update lost: {core}");

    // a core/v1 Event (as kubectl, client-go's legacy recorder and the kubelet write them)
    let core_event = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "settings.manual", "namespace": "default"},
        "involvedObject": {"kind": "ConfigMap", "name": "settings", "namespace": "default",
            "apiVersion": "v1"},
        "reason": "Reloaded", "message": "settings reloaded", "type": "Normal",
        "source": {"component": "reloader"}, "count": 1,
        "firstTimestamp": "2026-11-23T10:00:00Z", "lastTimestamp": "2026-11-23T10:00:00Z"});
    ok(tc.kubectl_with(
        common::KUBECTL,
        &["create", "-f", "-"],
        Some(&core_event.to_string()),
    )?)?;
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "default");
    let read = v1.get("settings.manual").await?;
    ensure!(
        read.note.as_deref() == Some("settings reloaded"),
        "{read:?}"
    );
    ensure!(read.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("settings"));
    ensure!(
        read.deprecated_source
            .as_ref()
            .and_then(|s| s.component.as_deref())
            == Some("reloader")
    );
    // patched through events.k8s.io/v1, seen through core/v1
    v1.patch(
        "settings.manual",
        &PatchParams::default(),
        &Patch::Merge(json!({"note": "settings reloaded twice"})),
    )
    .await?;
    let got = ok(tc.kubectl(&[
        "get",
        "event",
        "settings.manual",
        "-o",
        "jsonpath={.message}",
    ])?)?;
    ensure!(got == "settings reloaded twice", "{got}");
    // both APIs list the same objects
    let v1_names: Vec<String> = v1
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|e| e.metadata.name)
        .collect();
    ensure!(
        v1_names.contains(&"settings.manual".to_string()) && v1_names.len() == 2,
        "{v1_names:?}"
    );
    // deleting through one API removes it from the other
    ok(tc.kubectl(&["delete", "event", "settings.manual"])?)?;
    ensure!(v1.get_opt("settings.manual").await?.is_none());
    Ok(())
}
