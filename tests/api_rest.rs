//! REST semantics over HTTP: errors as `Status` objects with upstream codes, bodies in JSON and
//! YAML, generateName, dryRun, generation, status subresource, finalizers, deletecollection.

mod common;

use anyhow::{ensure, Result};
use common::TestController;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Http {
    client: kube::Client,
}

impl Http {
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Value)> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(kube::client::Body::from(body))?;
        let resp = self.client.send(req).await?;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((code, v))
    }

    async fn json(&self, method: Method, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.send(method, path, "application/json", serde_json::to_vec(body)?)
            .await
    }

    async fn get(&self, path: &str) -> Result<(u16, Value)> {
        self.send(Method::GET, path, "application/json", Vec::new())
            .await
    }
}

fn is_status(v: &Value, code: u16, reason: &str) -> bool {
    v["kind"] == "Status" && v["code"] == code && v["reason"] == reason && v["status"] == "Failure"
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn bad_input_gets_upstream_status_and_changes_nothing() -> Result<()> {
    let c = TestController::start()?;
    let h = Http {
        client: c.client().await?,
    };
    let (_, before) = h.get(CMS).await?;

    let (code, v) = h
        .send(Method::POST, CMS, "application/json", b"{not json".to_vec())
        .await?;
    ensure!(code == 400 && is_status(&v, 400, "BadRequest"), "{v}");

    let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    let (code, v) = h.json(Method::POST, CMS, &wrong_kind).await?;
    ensure!(code == 400 && is_status(&v, 400, "BadRequest"), "{v}");

    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"x": "y".repeat(4 << 20)}});
    let (code, v) = h.json(Method::POST, CMS, &big).await?;
    ensure!(
        code == 413 && is_status(&v, 413, "RequestEntityTooLarge"),
        "{code} {v}"
    );

    let (code, v) = h
        .send(Method::POST, CMS, "text/plain", b"hello".to_vec())
        .await?;
    ensure!(
        code == 415 && is_status(&v, 415, "UnsupportedMediaType"),
        "{v}"
    );

    let (code, v) = h.get("/api/v1/namespaces/default/nosuchthings").await?;
    ensure!(code == 404 && is_status(&v, 404, "NotFound"), "{v}");

    let bad_name = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "UPPER"}});
    let (code, v) = h.json(Method::POST, CMS, &bad_name).await?;
    ensure!(code == 422 && is_status(&v, 422, "Invalid"), "{v}");
    ensure!(v["details"]["causes"][0]["field"] == "metadata.name", "{v}");

    let (code, v) = h
        .json(
            Method::POST,
            "/api/v1/namespaces/nope/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        )
        .await?;
    ensure!(
        code == 404 && v["message"] == "namespaces \"nope\" not found",
        "{v}"
    );

    let (_, after) = h.get(CMS).await?;
    ensure!(before["items"] == after["items"], "nothing changed");
    Ok(())
}

#[tokio::test]
async fn unauthenticated_requests_get_401() -> Result<()> {
    let c = TestController::start()?;
    let url = format!("https://127.0.0.1:{}/api/v1/namespaces", c.port);
    let out = std::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", &url])
        .output();
    if let Ok(out) = out {
        ensure!(String::from_utf8_lossy(&out.stdout) == "401", "{:?}", out);
    }
    let mut kc: Value = serde_json::to_value(kube::config::Kubeconfig::read_from(&c.kubeconfig)?)?;
    kc["users"][0]["user"] = json!({"token": "not-the-token"});
    let kc: kube::config::Kubeconfig = serde_json::from_value(kc)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let h = Http {
        client: kube::Client::try_from(cfg)?,
    };
    let (code, v) = h.get("/api/v1/namespaces").await?;
    ensure!(code == 401 && is_status(&v, 401, "Unauthorized"), "{v}");
    Ok(())
}

#[tokio::test]
async fn yaml_bodies_generate_name_and_dry_run() -> Result<()> {
    let c = TestController::start()?;
    let h = Http {
        client: c.client().await?,
    };
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\ndata:\n  a: b\n";
    let (code, v) = h
        .send(
            Method::POST,
            CMS,
            "application/yaml",
            yaml.as_bytes().to_vec(),
        )
        .await?;
    ensure!(code == 201, "{v}");
    let name = v["metadata"]["name"].as_str().unwrap();
    ensure!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let dry = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}});
    let (code, _) = h
        .json(Method::POST, &format!("{CMS}?dryRun=All"), &dry)
        .await?;
    ensure!(code == 201);
    let (code, _) = h.get(&format!("{CMS}/dry")).await?;
    ensure!(code == 404, "a dry run stores nothing");
    Ok(())
}

#[tokio::test]
async fn generation_status_subresource_and_finalizers() -> Result<()> {
    let c = TestController::start()?;
    let h = Http {
        client: c.client().await?,
    };
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let (code, v) = h.json(Method::POST, deps, &d).await?;
    ensure!(code == 201, "{v}");
    ensure!(
        v["metadata"]["generation"] == 1 && v["spec"]["replicas"] == 1,
        "defaults and generation: {v}"
    );
    ensure!(v["spec"]["template"]["spec"]["restartPolicy"] == "Always");

    // a label change does not bump generation; a spec change does
    let web = format!("{deps}/web");
    let merge = "application/merge-patch+json";
    // The in-process deployment controller sets the revision annotation, and annotation
    // changes bump a Deployment's generation as upstream; wait for it, then count from there.
    let deadline = Instant::now() + Duration::from_secs(20);
    let g0 = loop {
        let (_, v) = h.get(&web).await?;
        if v["metadata"]["annotations"]["deployment.kubernetes.io/revision"].is_string() {
            break v["metadata"]["generation"].as_i64().unwrap_or(0);
        }
        ensure!(Instant::now() < deadline, "no revision annotation: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let v = h_patch(&c, &web, merge, json!({"metadata": {"labels": {"x": "y"}}})).await?;
    ensure!(v["metadata"]["generation"] == g0, "{v}");
    let v = h_patch(&c, &web, merge, json!({"spec": {"replicas": 3}})).await?;
    ensure!(v["metadata"]["generation"] == g0 + 1, "{v}");
    // status through the main resource is ignored; through /status it sticks
    let v = h_patch(&c, &web, merge, json!({"status": {"replicas": 7}})).await?;
    ensure!(v["status"]["replicas"] != 7, "{v}");
    let v = h_patch(
        &c,
        &format!("{deps}/web/status"),
        "application/merge-patch+json",
        json!({"status": {"replicas": 7}, "spec": {"replicas": 9}}),
    )
    .await?;
    ensure!(
        v["status"]["replicas"] == 7 && v["spec"]["replicas"] == 3,
        "{v}"
    );

    // finalizers hold deletion: deletionTimestamp set, object kept until the finalizer goes
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    let (code, _) = h.json(Method::POST, CMS, &cm).await?;
    ensure!(code == 201);
    let (code, v) = h
        .send(
            Method::DELETE,
            &format!("{CMS}/held"),
            "application/json",
            vec![],
        )
        .await?;
    ensure!(
        code == 200 && v["metadata"]["deletionTimestamp"].is_string(),
        "{v}"
    );
    let (code, _) = h.get(&format!("{CMS}/held")).await?;
    ensure!(code == 200, "still there while finalized");
    h_patch(
        &c,
        &format!("{CMS}/held"),
        "application/json-patch+json",
        json!([{"op": "remove", "path": "/metadata/finalizers"}]),
    )
    .await?;
    let (code, _) = h.get(&format!("{CMS}/held")).await?;
    ensure!(code == 404, "gone once the last finalizer is removed");

    // deletecollection with a label selector
    for (n, team) in [("a", "x"), ("b", "x"), ("c", "y")] {
        h.json(Method::POST, CMS, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "labels": {"team": team}}})).await?;
    }
    let (code, _) = h
        .send(
            Method::DELETE,
            &format!("{CMS}?labelSelector=team%3Dx"),
            "application/json",
            vec![],
        )
        .await?;
    ensure!(code == 200);
    let (_, list) = h.get(&format!("{CMS}?labelSelector=team")).await?;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    ensure!(names == ["c"], "{names:?}");
    Ok(())
}

async fn h_patch(c: &TestController, path: &str, content_type: &str, body: Value) -> Result<Value> {
    let h = Http {
        client: c.client().await?,
    };
    let (code, v) = h
        .send(
            Method::PATCH,
            path,
            content_type,
            serde_json::to_vec(&body)?,
        )
        .await?;
    ensure!(code == 200, "PATCH {path}: {code} {v}");
    Ok(v)
}

#[tokio::test]
async fn immutable_fields_and_namespace_deletion() -> Result<()> {
    let c = TestController::start()?;
    let h = Http {
        client: c.client().await?,
    };
    let (code, _) = h
        .json(
            Method::POST,
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "temp"}}),
        )
        .await?;
    ensure!(code == 201);
    let pods = "/api/v1/namespaces/temp/pods";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let (code, v) = h.json(Method::POST, pods, &pod).await?;
    ensure!(
        code == 201 && v["spec"]["restartPolicy"] == "Always" && v["status"]["phase"] == "Pending",
        "{v}"
    );
    ensure!(v["status"]["qosClass"] == "BestEffort", "{v}");
    let (code, v) = h
        .send(
            Method::PATCH,
            &format!("{pods}/p"),
            "application/merge-patch+json",
            serde_json::to_vec(&json!({"spec": {"restartPolicy": "Never"}}))?,
        )
        .await?;
    ensure!(
        code == 422 && is_status(&v, 422, "Invalid"),
        "pod spec is immutable: {v}"
    );

    let (code, v) = h
        .send(
            Method::DELETE,
            "/api/v1/namespaces/temp",
            "application/json",
            vec![],
        )
        .await?;
    ensure!(code == 200 && v["status"]["phase"] == "Terminating", "{v}");
    let (code, v) = h
        .json(
            Method::POST,
            "/api/v1/namespaces/temp/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}),
        )
        .await?;
    ensure!(code == 403 && is_status(&v, 403, "Forbidden"), "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (code, _) = h.get("/api/v1/namespaces/temp").await?;
        if code == 404 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "namespace not deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (code, _) = h.get(&format!("{pods}/p")).await?;
    ensure!(code == 404);
    Ok(())
}
