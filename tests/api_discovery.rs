//! Aggregated discovery against a real controller: every installed kubectl (1.27-1.33 and
//! /usr/bin/kubectl) gets `/api` and `/apis` as `APIGroupDiscoveryList` (no per-version
//! requests), `kubectl api-resources` lists upstream short names and verbs, and
//! `kubectl get all` expands the `all` category.

mod common;

use anyhow::{ensure, Result};
use common::api::Http;
use common::{ok, TestController};
use http::Method;

fn kubectls() -> Vec<String> {
    let mut v: Vec<String> = (27..=33)
        .map(|n| format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{n}"))
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    v.push(common::KUBECTL.to_string());
    v
}

#[tokio::test]
async fn aggregated_discovery_serves_every_kubectl() -> Result<()> {
    let c = TestController::start()?;
    ok(c.kubectl(&["create", "deployment", "web", "--image=nginx"])?)?;
    for bin in kubectls() {
        let out = c.kubectl_with(&bin, &["api-resources", "-v=6"], None)?;
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let stdout = ok(out)?;
        // aggregated discovery: only /api and /apis are fetched
        ensure!(
            !stderr.contains("/apis/apps/v1 ") && !stderr.contains("/apis/apps/v1\""),
            "{bin} fetched a group version:\n{stderr}"
        );
        let line = stdout
            .lines()
            .find(|l| l.starts_with("deployments "))
            .unwrap_or_default();
        let cols: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            cols == ["deployments", "deploy", "apps/v1", "true", "Deployment"],
            "{bin}: {line}"
        );
        ensure!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [
                        "customresourcedefinitions",
                        "crd,crds",
                        "apiextensions.k8s.io/v1",
                        "false",
                        "CustomResourceDefinition"
                    ]),
            "{bin}\n{stdout}"
        );

        let wide = ok(c.kubectl_with(
            &bin,
            &["api-resources", "-o", "wide", "--api-group=apps"],
            None,
        )?)?;
        ensure!(
            wide.contains("[create delete deletecollection get list patch update watch]")
                || wide.contains("create,delete,deletecollection,get,list,patch,update,watch"),
            "{bin}\n{wide}"
        );
        ensure!(
            wide.lines()
                .any(|l| l.starts_with("deployments ") && l.trim_end().ends_with("all")),
            "{bin}\n{wide}"
        );

        let all = ok(c.kubectl_with(&bin, &["get", "all"], None)?)?;
        ensure!(
            all.contains("service/kubernetes") && all.contains("deployment.apps/web"),
            "{bin}\n{all}"
        );
        let short = ok(c.kubectl_with(&bin, &["get", "deploy,svc", "-o", "name"], None)?)?;
        ensure!(
            short.contains("deployment.apps/web") && short.contains("service/kubernetes"),
            "{bin}\n{short}"
        );
    }

    let h = Http::for_controller(&c).await?;
    for (accept, version) in [
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", "v2"),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", "v2beta1"),
    ] {
        for path in ["/api", "/apis"] {
            let resp = h
                .client
                .send(
                    http::Request::builder()
                        .method(Method::GET)
                        .uri(path)
                        .header("accept", accept)
                        .body(kube::client::Body::empty())?,
                )
                .await?;
            let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            ensure!(ct == format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"), "{ct}");
            let (_, v) = h.send(Method::GET, path, "application/json", Some(accept), vec![]).await?;
            ensure!(v["kind"] == "APIGroupDiscoveryList", "{v}");
            ensure!(v["apiVersion"] == format!("apidiscovery.k8s.io/{version}"), "{v}");
        }
    }
    // without the aggregated media type the legacy documents are served
    let (_, v) = h.get("/apis").await?;
    ensure!(
        v["kind"] == "APIGroupList" && v["groups"][0]["name"] == "apps",
        "{v}"
    );
    let (_, v) = h.get("/api").await?;
    ensure!(v["kind"] == "APIVersions", "{v}");
    Ok(())
}
