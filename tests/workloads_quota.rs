//! ResourceQuota and LimitRange admission against a real `bramble controller`, driven with
//! the real kubectl: object counts and compute resources refused with upstream's 403
//! messages, `status.used` kept by the quota controller (and freed after deletions),
//! LimitRange defaults filled in and min/max enforced.

mod common;
mod workloads_support;

use anyhow::{ensure, Result};
use common::{fails, ok, TestController, KUBECTL};
use workloads_support::*;

fn apply(c: &TestController, yaml: &str) -> Result<String> {
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(yaml))?)
}

fn pod_yaml(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: registry.k8s.io/pause:3.10\n    resources: {resources}\n"
    )
}

async fn wait_used(c: &TestController, quota: &str, resource: &str, want: &str) -> Result<()> {
    wait_for(&format!("{quota} used {resource}={want}"), 60, || async {
        let out = kc(c, &["get", "resourcequota", quota, "-o", "json"])?;
        let q: serde_json::Value = serde_json::from_str(&out)?;
        Ok((q["status"]["used"][resource] == want).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_count_quota_refuses_with_upstreams_message_and_frees_on_delete() -> Result<()> {
    let c = TestController::start()?;
    kc(
        &c,
        &["create", "quota", "q", "--hard=pods=2,count/configmaps=2"],
    )?;
    wait_used(&c, "q", "pods", "0").await?;
    // As upstream (and its conformance test "capture the life of a configMap", which sets
    // the hard count to the ConfigMaps already there plus one), the namespace's published
    // `kube-root-ca.crt` counts: one of the two is taken before the test creates any.
    wait_used(&c, "q", "count/configmaps", "1").await?;
    let names = kc(&c, &["get", "configmaps", "-o", "name"])?;
    ensure!(
        names.trim() == "configmap/kube-root-ca.crt",
        "configmaps: {names}"
    );
    for p in ["p1", "p2"] {
        kc(
            &c,
            &[
                "run",
                p,
                "--image=registry.k8s.io/pause:3.10",
                "--restart=Never",
            ],
        )?;
    }
    let err = fails(c.kubectl(&[
        "run",
        "p3",
        "--image=registry.k8s.io/pause:3.10",
        "--restart=Never",
    ])?)?;
    ensure!(
        err.contains(
            "pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "unexpected error: {err}"
    );
    // count/<resource> for another kind
    kc(&c, &["create", "configmap", "one"])?;
    wait_used(&c, "q", "count/configmaps", "2").await?;
    let err = fails(c.kubectl(&["create", "configmap", "two"])?)?;
    ensure!(
        err.contains("configmaps \"two\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2"),
        "unexpected error: {err}"
    );
    // deleting a pod frees its share once the quota controller recounts
    kc(&c, &["delete", "pod", "p1", "--grace-period=0", "--force"])?;
    wait_used(&c, "q", "pods", "1").await?;
    kc(
        &c,
        &[
            "run",
            "p3",
            "--image=registry.k8s.io/pause:3.10",
            "--restart=Never",
        ],
    )?;
    wait_used(&c, "q", "pods", "2").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_quota_and_limit_range() -> Result<()> {
    let c = TestController::start()?;
    kc(
        &c,
        &[
            "create",
            "quota",
            "compute",
            "--hard=requests.cpu=1,limits.memory=1Gi",
        ],
    )?;
    wait_used(&c, "compute", "requests.cpu", "0").await?;
    // no LimitRange yet: a pod that states nothing is refused by the quota
    let err = fails(c.kubectl_with(
        KUBECTL,
        &["apply", "-f", "-"],
        Some(&pod_yaml("bare", "{}")),
    )?)?;
    ensure!(
        err.contains("pods \"bare\" is forbidden: failed quota: compute: must specify"),
        "unexpected error: {err}"
    );

    apply(
        &c,
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 500m, memory: 256Mi}\n    defaultRequest: {cpu: 300m, memory: 128Mi}\n    max: {cpu: \"1\"}\n",
    )?;
    // now the defaults fill the pod in and the quota charges them
    apply(&c, &pod_yaml("bare", "{}"))?;
    let res = kc(
        &c,
        &[
            "get",
            "pod",
            "bare",
            "-o",
            "jsonpath={.spec.containers[0].resources}",
        ],
    )?;
    let res: serde_json::Value = serde_json::from_str(&res)?;
    ensure!(res["requests"]["cpu"] == "300m", "{res}");
    ensure!(res["limits"]["memory"] == "256Mi", "{res}");
    let note = kc(
        &c,
        &[
            "get",
            "pod",
            "bare",
            "-o",
            "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}",
        ],
    )?;
    ensure!(
        note == "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c",
        "annotation: {note}"
    );
    wait_used(&c, "compute", "requests.cpu", "300m").await?;

    // LimitRange max
    let err = fails(c.kubectl_with(
        KUBECTL,
        &["apply", "-f", "-"],
        Some(&pod_yaml("big", "{limits: {cpu: \"2\"}}")),
    )?)?;
    ensure!(
        err.contains(
            "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        ),
        "unexpected error: {err}"
    );
    // quota on requests.cpu: 300m used, 800m more would exceed 1
    let err = fails(c.kubectl_with(
        KUBECTL,
        &["apply", "-f", "-"],
        Some(&pod_yaml(
            "wide",
            "{requests: {cpu: 800m}, limits: {cpu: 800m}}",
        )),
    )?)?;
    ensure!(
        err.contains("exceeded quota: compute, requested: requests.cpu=800m, used: requests.cpu=300m, limited: requests.cpu=1"),
        "unexpected error: {err}"
    );
    apply(
        &c,
        &pod_yaml("fits", "{requests: {cpu: 700m}, limits: {cpu: 700m}}"),
    )?;
    wait_used(&c, "compute", "requests.cpu", "1").await?;
    Ok(())
}
