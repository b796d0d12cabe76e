//! Pod Security Admission through the real kubectl, beyond a pod's create: warnings for
//! workload templates, updates of pods (only those that can change what the policy sees),
//! server-side apply, and the warnings listing existing pods when a namespace's enforce
//! level is tightened.

mod common;

use std::process::Output;

use anyhow::{ensure, Result};

use common::{ok, TestController, KUBECTL};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

const PRIVILEGED_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: priv, namespace: team}
spec:
  containers:
  - name: c
    image: busybox
    securityContext: {privileged: true}
";

const PRIVILEGED_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: tools, namespace: team}
spec:
  selector: {matchLabels: {app: tools}}
  template:
    metadata: {labels: {app: tools}}
    spec:
      containers:
      - name: c
        image: busybox
        securityContext: {privileged: true}
";

#[test]
fn updates_templates_apply_and_namespace_labels() -> Result<()> {
    let tc = TestController::start()?;
    ok(tc.kubectl(&["create", "namespace", "team"])?)?;
    ok(tc.kubectl(&[
        "label",
        "namespace",
        "team",
        "pod-security.kubernetes.io/warn=restricted",
    ])?)?;

    // warn mode: the pod is created, with upstream's warning
    let out = tc.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(PRIVILEGED_POD))?;
    ensure!(out.status.success(), "{}", stderr(&out));
    ensure!(
        stderr(&out).contains("Warning: would violate PodSecurity \"restricted:latest\": ")
            && stderr(&out).contains(
                "privileged (container \"c\" must not set securityContext.privileged=true)"
            ),
        "{}",
        stderr(&out)
    );

    // tightening enforce names the pods that would now be refused
    let out = tc.kubectl(&[
        "label",
        "namespace",
        "team",
        "pod-security.kubernetes.io/enforce=baseline",
    ])?;
    ensure!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    ensure!(
        err.contains("Warning: existing pods in namespace \"team\" violate the new PodSecurity enforce level \"baseline:latest\"")
            && err.contains("Warning: priv: privileged"),
        "{err}"
    );
    // relaxing it warns about nothing
    let out = tc.kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        "team",
        "pod-security.kubernetes.io/enforce=privileged",
    ])?;
    ensure!(
        out.status.success() && !stderr(&out).contains("Warning"),
        "{}",
        stderr(&out)
    );
    ok(tc.kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        "team",
        "pod-security.kubernetes.io/enforce=baseline",
    ])?)?;

    // an update that cannot change what the policy sees is allowed on a violating pod
    let out = tc.kubectl(&["label", "pod", "priv", "-n", "team", "tier=debug"])?;
    ensure!(out.status.success(), "{}", stderr(&out));
    // one that can (a new image) is evaluated and refused
    let out = tc.kubectl(&["set", "image", "pod/priv", "-n", "team", "c=busybox:1.36"])?;
    ensure!(
        !out.status.success(),
        "image change of a violating pod was allowed"
    );
    ensure!(
        stderr(&out).contains("is forbidden: violates PodSecurity \"baseline:latest\": privileged"),
        "{}",
        stderr(&out)
    );

    // server-side apply creating a pod is enforced like a plain create
    let ssa = PRIVILEGED_POD.replace("name: priv", "name: priv2");
    let out = tc.kubectl_with(KUBECTL, &["apply", "--server-side", "-f", "-"], Some(&ssa))?;
    ensure!(
        !out.status.success(),
        "server-side apply created a refused pod"
    );
    ensure!(
        stderr(&out).contains("violates PodSecurity \"baseline:latest\": privileged"),
        "{}",
        stderr(&out)
    );
    ensure!(!tc
        .kubectl(&["get", "pod", "priv2", "-n", "team"])?
        .status
        .success());

    // workload templates only warn (enforcement comes when the controller makes the pods)
    let out = tc.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(PRIVILEGED_DEPLOYMENT))?;
    ensure!(out.status.success(), "{}", stderr(&out));
    ensure!(
        stderr(&out).contains("Warning: would violate PodSecurity \"restricted:latest\": ")
            && stderr(&out).contains("privileged (container"),
        "{}",
        stderr(&out)
    );
    Ok(())
}
