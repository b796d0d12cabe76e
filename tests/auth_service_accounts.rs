//! Service accounts with the real kubectl: the `default` account and CA ConfigMap per
//! namespace, `kubectl create token` (TokenRequest) tokens that authenticate with the
//! account's RBAC rights, bound tokens dying with their pod, the ServiceAccount admission's
//! projected `kube-api-access` volume.

mod common;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::auth::{ca_pem, kubectl_as, token_kubeconfig};
use common::{fails, ok, TestController, KUBECTL};

fn eventually(mut f: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn pod(name: &str, sa: &str, automount: Option<bool>) -> String {
    let auto = automount
        .map(|a| format!(r#", "automountServiceAccountToken": {a}"#))
        .unwrap_or_default();
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}", "namespace": "dev"}},
            "spec": {{"serviceAccountName": "{sa}"{auto},
                      "containers": [{{"name": "c", "image": "busybox"}}],
                      "initContainers": [{{"name": "i", "image": "busybox"}}]}}}}"#
    )
}

#[test]
fn tokens_admission_and_defaults() -> Result<()> {
    let tc = TestController::start()?;
    ok(tc.kubectl(&["create", "namespace", "dev"])?)?;
    eventually(|| ok(tc.kubectl(&["get", "serviceaccount", "default", "-n", "dev"])?).map(|_| ()))?;
    eventually(|| {
        let cm = ok(tc.kubectl(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "dev",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ])?)?;
        anyhow::ensure!(cm.trim() == ca_pem(&tc)?.trim(), "CA ConfigMap differs");
        Ok(())
    })?;

    ok(tc.kubectl(&["create", "serviceaccount", "bot", "-n", "dev"])?)?;
    ok(tc.kubectl(&[
        "create",
        "rolebinding",
        "bot-view",
        "--clusterrole=view",
        "--serviceaccount=dev:bot",
        "-n",
        "dev",
    ])?)?;
    let token = ok(tc.kubectl(&["create", "token", "bot", "-n", "dev"])?)?;
    let bot = token_kubeconfig(&tc, "bot", token.trim())?;
    let who: serde_json::Value =
        serde_json::from_str(&ok(kubectl_as(&bot, &["auth", "whoami", "-o", "json"])?)?)?;
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:serviceaccount:dev:bot"
    );
    let groups = who["status"]["userInfo"]["groups"].to_string();
    assert!(
        groups.contains("\"system:serviceaccounts\"")
            && groups.contains("system:serviceaccounts:dev"),
        "{groups}"
    );
    eventually(|| ok(kubectl_as(&bot, &["get", "pods", "-n", "dev"])?).map(|_| ()))?;
    let err = fails(kubectl_as(&bot, &["get", "pods", "-n", "default"])?)?;
    assert!(
        err.contains(r#"User "system:serviceaccount:dev:bot" cannot list resource "pods""#),
        "{err}"
    );
    let err = fails(tc.kubectl(&["create", "token", "bot", "-n", "dev", "--duration=1m"])?)?;
    assert!(err.contains("10 minutes"), "{err}");

    // a tampered token is refused
    let mut forged = token.trim().to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let forged = token_kubeconfig(&tc, "forged", &forged)?;
    let err = fails(kubectl_as(&forged, &["get", "pods", "-n", "dev"])?)?;
    assert!(err.contains("Unauthorized"), "{err}");

    // admission: the token volume, or none when automount is off; unknown accounts refused
    ok(tc.kubectl_with(
        KUBECTL,
        &["create", "-f", "-"],
        Some(&pod("web", "bot", None)),
    )?)?;
    let web: serde_json::Value = serde_json::from_str(&ok(
        tc.kubectl(&["get", "pod", "web", "-n", "dev", "-o", "json"])?
    )?)?;
    let vol = &web["spec"]["volumes"][0];
    assert!(
        vol["name"]
            .as_str()
            .unwrap()
            .starts_with("kube-api-access-"),
        "{web}"
    );
    let sources = vol["projected"]["sources"].to_string();
    assert!(
        sources.contains("\"expirationSeconds\":3607")
            && sources.contains("kube-root-ca.crt")
            && sources.contains("metadata.namespace"),
        "{sources}"
    );
    for k in ["containers", "initContainers"] {
        let m = &web["spec"][k][0]["volumeMounts"][0];
        assert_eq!(
            m["mountPath"],
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(m["readOnly"], true);
    }
    ok(tc.kubectl_with(
        KUBECTL,
        &["create", "-f", "-"],
        Some(&pod("quiet", "bot", Some(false))),
    )?)?;
    let quiet = ok(tc.kubectl(&["get", "pod", "quiet", "-n", "dev", "-o", "json"])?)?;
    assert!(!quiet.contains("kube-api-access"), "{quiet}");
    let err = fails(tc.kubectl_with(
        KUBECTL,
        &["create", "-f", "-"],
        Some(&pod("ghost", "nope", None)),
    )?)?;
    assert!(
        err.contains("error looking up service account dev/nope"),
        "{err}"
    );
    let plain = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain", "namespace": "dev"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}"#;
    ok(tc.kubectl_with(KUBECTL, &["create", "-f", "-"], Some(plain))?)?;
    let sa = ok(tc.kubectl(&[
        "get",
        "pod",
        "plain",
        "-n",
        "dev",
        "-o",
        "jsonpath={.spec.serviceAccountName}",
    ])?)?;
    assert_eq!(sa, "default");

    // a token bound to a pod dies with the pod
    let bound = ok(tc.kubectl(&[
        "create",
        "token",
        "bot",
        "-n",
        "dev",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "web",
    ])?)?;
    let bound = token_kubeconfig(&tc, "bound", bound.trim())?;
    ok(kubectl_as(&bound, &["get", "pods", "-n", "dev"])?)?;
    ok(tc.kubectl(&[
        "delete",
        "pod",
        "web",
        "-n",
        "dev",
        "--grace-period=0",
        "--force",
    ])?)?;
    eventually(|| fails(kubectl_as(&bound, &["get", "pods", "-n", "dev"])?).map(|_| ()))?;

    // and every token of an account dies with the account
    ok(tc.kubectl(&["delete", "serviceaccount", "bot", "-n", "dev"])?)?;
    let err = fails(kubectl_as(&bot, &["get", "pods", "-n", "dev"])?)?;
    assert!(err.contains("Unauthorized"), "{err}");
    Ok(())
}
