//! autoscaling/v1 HorizontalPodAutoscalers are the autoscaling/v2 objects seen through v1, as
//! upstream serves them: `kubectl autoscale` of kubectl 1.27-1.29 (which posts v1, as
//! protobuf) and of the kubectl on PATH (v2) make the same autoscaler; one object reads,
//! patches (merge, strategic, JSON, apply), watches and prints through both versions; what v1
//! has no field for travels in upstream's `autoscaling.alpha.kubernetes.io/*` annotations and
//! comes back unchanged; discovery and OpenAPI list v1 with v2 preferred.

mod common;

use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use futures::{StreamExt, TryStreamExt};
use http::Method;
use k8s_openapi::api::autoscaling::{v1 as autoscaling_v1, v2 as autoscaling_v2};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{json, Value};

use common::api::Http;
use common::{fails, ok, TestController, KUBECTL};

const HPAS_V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const HPAS_V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const COLUMNS: [&str; 7] = [
    "NAME",
    "REFERENCE",
    "TARGETS",
    "MINPODS",
    "MAXPODS",
    "REPLICAS",
    "AGE",
];

/// kubectl 1.27 and 1.29 post `kubectl autoscale` as autoscaling/v1; the one on PATH as v2.
fn kubectls() -> Result<Vec<&'static str>> {
    let bins = vec![
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.27",
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.29",
        KUBECTL,
    ];
    for b in &bins {
        ensure!(
            std::path::Path::new(b).exists(),
            "{b} missing: the machine's google-cloud-sdk provides kubectl 1.27-1.33"
        );
    }
    Ok(bins)
}

fn deployment(tc: &TestController) -> Result<()> {
    ok(tc.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1",
        "--replicas=1",
    ])?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_autoscale_of_every_version_makes_one_autoscaler_seen_through_both_apis(
) -> Result<()> {
    let tc = TestController::start()?;
    let http = Http::for_controller(&tc).await?;
    let client = tc.client().await?;
    let v1s: Api<autoscaling_v1::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), "default");
    let v2s: Api<autoscaling_v2::HorizontalPodAutoscaler> = Api::namespaced(client, "default");
    deployment(&tc)?;
    for (i, bin) in kubectls()?.into_iter().enumerate() {
        let name = format!("web-{i}");
        let out = ok(tc.kubectl_with(
            bin,
            &[
                "autoscale",
                "deployment",
                "web",
                "--min=1",
                "--max=3",
                "--cpu-percent=50",
                &format!("--name={name}"),
            ],
            None,
        )?)
        .with_context(|| format!("{bin} autoscale"))?;
        ensure!(
            out.trim_end() == format!("horizontalpodautoscaler.autoscaling/{name} autoscaled"),
            "{bin}: {out}"
        );
        // `get hpa` (the preferred v2) and a get through v1 print the same columns (newer
        // kubectls expand `hpa.v1.autoscaling` to the preferred version: the full name)
        let through_v1 = ok(tc.kubectl_with(
            bin,
            &[
                "get",
                "horizontalpodautoscalers.v1.autoscaling",
                &name,
                "-o",
                "jsonpath={.apiVersion} {.spec.targetCPUUtilizationPercentage}",
            ],
            None,
        )?)?;
        ensure!(through_v1 == "autoscaling/v1 50", "{bin}: {through_v1}");
        for resource in ["hpa", "horizontalpodautoscalers.v1.autoscaling"] {
            let table = ok(tc.kubectl_with(bin, &["get", resource, &name], None)?)?;
            let mut lines = table.lines();
            let header: Vec<&str> = lines
                .next()
                .context("no header")?
                .split_whitespace()
                .collect();
            ensure!(header == COLUMNS, "{bin} get {resource}: {table}");
            let row: Vec<&str> = lines.next().context("no row")?.split_whitespace().collect();
            // NAME REFERENCE "cpu:" "<current>/50%" MINPODS MAXPODS REPLICAS AGE
            ensure!(
                row.len() == 8
                    && row[..3] == [name.as_str(), "Deployment/web", "cpu:"]
                    && row[3].ends_with("/50%")
                    && row[4..6] == ["1", "3"],
                "{bin} get {resource}: {table}"
            );
        }
        let described = ok(tc.kubectl_with(bin, &["describe", "hpa", &name], None)?)?;
        ensure!(
            described.contains("Deployment/web") && described.contains("Max replicas:"),
            "{bin} describe: {described}"
        );
        // one object, both versions
        let v2 = v2s.get(&name).await?;
        let spec = v2.spec.context("no spec")?;
        ensure!((spec.min_replicas, spec.max_replicas) == (Some(1), 3));
        let metrics = serde_json::to_value(spec.metrics)?;
        ensure!(
            metrics
                == json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50}}}]),
            "{bin}: {metrics}"
        );
        let v1 = v1s.get(&name).await?;
        let spec = v1.spec.context("no v1 spec")?;
        ensure!(spec.target_cpu_utilization_percentage == Some(50));
        ensure!(spec.scale_target_ref.name == "web");
        let raw = http.get_ok(&format!("{HPAS_V1}/{name}")).await?;
        ensure!(raw["apiVersion"] == "autoscaling/v1", "{raw}");
        ensure!(
            raw["metadata"]["annotations"].get(METRICS).is_none(),
            "{raw}"
        );
    }
    // every one of them is listed through both versions
    for path in [HPAS_V1, HPAS_V2] {
        let list = http.get_ok(path).await?;
        let n = list["items"].as_array().map_or(0, Vec::len);
        ensure!(n == 3, "{path}: {list}");
    }
    // a v1 autoscaler with a target of 0 is refused as upstream refuses it (the v2 field)
    let err = fails(tc.kubectl_with(
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.27",
        &[
            "autoscale",
            "deployment",
            "web",
            "--max=3",
            "--cpu-percent=0",
            "--name=zero",
        ],
        None,
    )?)?;
    ensure!(
        err.contains(r#"The HorizontalPodAutoscaler "zero" is invalid"#)
            && err.contains(
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
            ),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_creates_patches_applies_and_writes_status() -> Result<()> {
    let tc = TestController::start()?;
    let http = Http::for_controller(&tc).await?;
    let client = tc.client().await?;
    let v1s: Api<autoscaling_v1::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), "default");
    // the target does not exist: the autoscaler controller leaves the spec alone
    let created = http.json_ok(Method::POST,
        HPAS_V1,
        "application/json",
        &json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "absent"},
                "maxReplicas": 3}}),
    )
    .await?;
    // upstream's defaults: minReplicas 1, the 80% CPU target
    ensure!(created["apiVersion"] == "autoscaling/v1", "{created}");
    ensure!(
        created["spec"]["minReplicas"] == 1
            && created["spec"]["targetCPUUtilizationPercentage"] == 80,
        "{created}"
    );
    let path = format!("{HPAS_V1}/api");
    let v2_path = format!("{HPAS_V2}/api");

    let patched = http
        .json_ok(
            Method::PATCH,
            &path,
            "application/merge-patch+json",
            &json!({"spec": {"targetCPUUtilizationPercentage": 70}}),
        )
        .await?;
    ensure!(
        patched["spec"]["targetCPUUtilizationPercentage"] == 70,
        "{patched}"
    );
    http.json_ok(
        Method::PATCH,
        &path,
        "application/strategic-merge-patch+json",
        &json!({"spec": {"maxReplicas": 5}}),
    )
    .await?;
    http.json_ok(
        Method::PATCH,
        &path,
        "application/json-patch+json",
        &json!([{"op": "replace", "path": "/spec/minReplicas", "value": 2}]),
    )
    .await?;
    let v2 = http.get_ok(&v2_path).await?;
    ensure!(
        v2["spec"]["minReplicas"] == 2
            && v2["spec"]["maxReplicas"] == 5
            && v2["spec"]["metrics"]
                == json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}}]),
        "{v2}"
    );

    // server-side apply through v1
    let applied = v1s
        .patch(
            "api",
            &PatchParams::apply("hpa-v1-test").force(),
            &Patch::Apply(json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "api"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "absent"},
                    "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}})),
        )
        .await?;
    ensure!(
        applied
            .spec
            .as_ref()
            .and_then(|s| s.target_cpu_utilization_percentage)
            == Some(60),
        "{applied:?}"
    );
    ensure!(
        applied
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("hpa-v1-test")),
        "{applied:?}"
    );
    let v2 = http.get_ok(&v2_path).await?;
    ensure!(
        v2["spec"]["maxReplicas"] == 4
            && v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60,
        "{v2}"
    );
    // kubectl patch through v1
    ok(tc.kubectl(&[
        "patch",
        "hpa.v1.autoscaling",
        "api",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReplicas":1}}"#,
    ])?)?;
    ensure!(http.get_ok(&v2_path).await?["spec"]["minReplicas"] == 1);

    // client-side `kubectl apply` of a v1 manifest, twice, then `kubectl diff` sees nothing
    let manifest = |cpu: u32| {
        r#"apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: applied}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: absent}
  maxReplicas: 4
  targetCPUUtilizationPercentage: {cpu}
"#
        .replace("{cpu}", &cpu.to_string())
    };
    for cpu in [55, 65] {
        ok(tc.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(&manifest(cpu)))?)?;
    }
    let applied = http.get_ok(&format!("{HPAS_V2}/applied")).await?;
    ensure!(
        applied["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 65,
        "{applied}"
    );
    ok(tc.kubectl_with(KUBECTL, &["diff", "-f", "-"], Some(&manifest(65)))?)?;

    // the status subresource through v1: the CPU utilization and the conditions annotation
    // become v2 status; the spec cannot change there
    let status = http.json_ok(Method::PATCH,
        &format!("{path}/status"),
        "application/merge-patch+json",
        &json!({"metadata": {"annotations": {CONDITIONS:
                r#"[{"type":"AbleToScale","status":"False","lastTransitionTime":"2026-11-24T00:00:00Z","reason":"FailedGetScale","message":"no such deployment"}]"#}},
            "spec": {"maxReplicas": 99},
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 40}}),
    )
    .await?;
    ensure!(
        status["spec"]["maxReplicas"] == 4
            && status["status"]["currentReplicas"] == 2
            && status["status"]["currentCPUUtilizationPercentage"] == 40,
        "{status}"
    );
    let conditions: Value = serde_json::from_str(
        status["metadata"]["annotations"][CONDITIONS]
            .as_str()
            .context("no conditions annotation")?,
    )?;
    ensure!(conditions[0]["reason"] == "FailedGetScale", "{status}");

    // bad input: upstream's 422 naming the v2 field, and strict decoding against v1's schema
    let (code, body) = http
        .post(
            HPAS_V1,
            &json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "bad"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                    "maxReplicas": 2, "targetCPUUtilizationPercentage": 0}}),
        )
        .await?;
    ensure!(code == 422 && body["reason"] == "Invalid", "{code} {body}");
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["field"].as_str())
        .collect();
    ensure!(
        fields == ["spec.metrics[0].resource.target.averageUtilization"],
        "{body}"
    );
    let (code, body) = http
        .post(
            &format!("{HPAS_V1}?fieldValidation=Strict"),
            &json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "strict"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                    "maxReplicas": 2, "metrics": []}}),
        )
        .await?;
    ensure!(
        code == 400
            && body["message"].as_str().is_some_and(
                |m| m.contains(r#"strict decoding error: unknown field "spec.metrics""#)
            ),
        "{code} {body}"
    );
    ensure!(http.get(&format!("{HPAS_V2}/bad")).await?.0 == 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_only_fields_survive_a_trip_through_v1() -> Result<()> {
    let tc = TestController::start()?;
    let http = Http::for_controller(&tc).await?;
    let client = tc.client().await?;
    let v1s: Api<autoscaling_v1::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), "default");
    let v2s: Api<autoscaling_v2::HorizontalPodAutoscaler> = Api::namespaced(client, "default");
    let hpa: autoscaling_v2::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "mem"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "absent"},
            "minReplicas": 1, "maxReplicas": 6,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}},
        },
    }))?;
    v2s.create(&PostParams::default(), &hpa).await?;
    let before = http.get_ok(&format!("{HPAS_V2}/mem")).await?;

    let v1 = http.get_ok(&format!("{HPAS_V1}/mem")).await?;
    ensure!(v1["spec"]["targetCPUUtilizationPercentage"] == 70, "{v1}");
    let annotations = &v1["metadata"]["annotations"];
    ensure!(
        annotations[METRICS]
            == r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#,
        "{v1}"
    );
    let behavior: Value = serde_json::from_str(
        annotations[BEHAVIOR]
            .as_str()
            .context("no behavior annotation")?,
    )?;
    ensure!(
        behavior["ScaleDown"]["StabilizationWindowSeconds"] == 60
            && behavior["ScaleUp"]["SelectPolicy"] == "Max",
        "{behavior}"
    );

    // a v1 client's read-modify-write keeps everything v1 cannot express (retried on 409:
    // the autoscaler controller writes the status meanwhile)
    let mut written = false;
    for _ in 0..20 {
        let mut edited = http.get_ok(&format!("{HPAS_V1}/mem")).await?;
        edited["metadata"]["labels"] = json!({"edited": "through-v1"});
        let (code, out) = http
            .json(
                Method::PUT,
                &format!("{HPAS_V1}/mem"),
                "application/json",
                &edited,
            )
            .await?;
        match code {
            200 => {
                written = true;
                break;
            }
            409 => continue,
            _ => return Err(anyhow!("PUT through v1: {code} {out}")),
        }
    }
    ensure!(written, "PUT through v1 kept conflicting");
    let after = http.get_ok(&format!("{HPAS_V2}/mem")).await?;
    ensure!(
        after["spec"] == before["spec"],
        "before {before}\nafter {after}"
    );
    ensure!(
        after["metadata"]["labels"]["edited"] == "through-v1",
        "{after}"
    );
    ensure!(
        after["metadata"].get("annotations").is_none(),
        "round-trip annotations stored: {after}"
    );

    // a v1 watch sees a v2 write in v1's form
    let rv = v1s
        .get("mem")
        .await?
        .metadata
        .resource_version
        .context("no resourceVersion")?;
    let mut events = v1s
        .watch(&WatchParams::default().fields("metadata.name=mem"), &rv)
        .await?
        .boxed();
    v2s.patch(
        "mem",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"maxReplicas": 8}})),
    )
    .await?;
    let seen = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(e) = events.try_next().await? {
            if let WatchEvent::Modified(h) = e {
                if h.spec.as_ref().map(|s| s.max_replicas) == Some(8) {
                    return Ok::<_, anyhow::Error>(h);
                }
            }
        }
        Err(anyhow!("watch ended"))
    })
    .await
    .context("no MODIFIED event through v1")??;
    ensure!(seen.spec.and_then(|s| s.target_cpu_utilization_percentage) == Some(70));

    // tables through v1 have v2's columns and cells
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let table = |path: String| {
        let http = &http;
        async move {
            let (code, t) = http
                .send(
                    Method::GET,
                    &path,
                    "application/json",
                    Some(accept),
                    Vec::new(),
                )
                .await?;
            ensure!(code == 200 && t["kind"] == "Table", "{code} {t}");
            Ok::<_, anyhow::Error>(t)
        }
    };
    let (t1, t2) = (table(HPAS_V1.into()).await?, table(HPAS_V2.into()).await?);
    ensure!(t1["columnDefinitions"] == t2["columnDefinitions"]);
    ensure!(
        t1["rows"][0]["cells"] == t2["rows"][0]["cells"],
        "{t1}\n{t2}"
    );
    ensure!(
        t1["rows"][0]["cells"][2] == "memory: <unknown>/100Mi, cpu: <unknown>/70%",
        "{t1}"
    );

    // discovery: both versions, v2 preferred, legacy and aggregated
    let group = http.get_ok("/apis/autoscaling").await?;
    ensure!(
        group["versions"]
            == json!([{"groupVersion": "autoscaling/v2", "version": "v2"},
                {"groupVersion": "autoscaling/v1", "version": "v1"}])
            && group["preferredVersion"]["version"] == "v2",
        "{group}"
    );
    let resources = http.get_ok("/apis/autoscaling/v1").await?;
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    ensure!(
        names
            == [
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status"
            ],
        "{resources}"
    );
    let (code, aggregated) = http
        .send(
            Method::GET,
            "/apis",
            "application/json",
            Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            Vec::new(),
        )
        .await?;
    ensure!(code == 200, "{aggregated}");
    let versions: Vec<&str> = aggregated["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["metadata"]["name"] == "autoscaling")
        .and_then(|g| g["versions"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v["version"].as_str())
        .collect();
    ensure!(versions == ["v2", "v1"], "{aggregated}");

    // OpenAPI v2 and v3 describe v1's schema; kubectl explain reads it
    let v2_doc = http.get_ok("/openapi/v2").await?;
    ensure!(v2_doc["definitions"]
        .get("io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler")
        .is_some());
    let v3_doc = http.get_ok("/openapi/v3/apis/autoscaling/v1").await?;
    ensure!(v3_doc["components"]["schemas"]
        .get("io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec")
        .is_some_and(|s| s["properties"]
            .get("targetCPUUtilizationPercentage")
            .is_some()));
    let explained = ok(tc.kubectl(&[
        "explain",
        "hpa.spec.targetCPUUtilizationPercentage",
        "--api-version=autoscaling/v1",
    ])?)?;
    ensure!(
        explained.contains("targetCPUUtilizationPercentage"),
        "{explained}"
    );
    Ok(())
}
