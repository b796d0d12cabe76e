//! RBAC with the real kubectl and non-admin identities (client certificates from the
//! cluster CA): upstream's forbidden message, can-i, whoami, grants by Role/RoleBinding and
//! by the aggregated default roles, SubjectAccessReview.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::auth::{cert_kubeconfig, kubectl_as};
use common::{fails, ok, TestController, KUBECTL};

/// Retries `f` for a few seconds (aggregation runs in the background).
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

#[test]
fn forbidden_can_i_whoami_and_grants() -> Result<()> {
    let tc = TestController::start()?;
    let alice = cert_kubeconfig(&tc, "alice", &["dev-team"])?;

    let err = fails(kubectl_as(&alice, &["get", "pods", "-n", "default"])?)?;
    assert!(
        err.contains(r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{err}"
    );
    let out = kubectl_as(&alice, &["auth", "can-i", "list", "pods", "-n", "default"])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");

    let who = ok(kubectl_as(&alice, &["auth", "whoami", "-o", "json"])?)?;
    let who: serde_json::Value = serde_json::from_str(&who)?;
    assert_eq!(who["status"]["userInfo"]["username"], "alice");
    let groups = who["status"]["userInfo"]["groups"].to_string();
    assert!(
        groups.contains("dev-team") && groups.contains("system:authenticated"),
        "{groups}"
    );

    // view in one namespace: read there, 403 elsewhere and on writes
    ok(tc.kubectl(&["create", "namespace", "dev"])?)?;
    ok(tc.kubectl(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "dev",
    ])?)?;
    eventually(|| ok(kubectl_as(&alice, &["get", "pods", "-n", "dev"])?).map(|_| ()))?;
    fails(kubectl_as(&alice, &["get", "pods", "-n", "default"])?)?;
    let err = fails(kubectl_as(
        &alice,
        &["create", "configmap", "c1", "-n", "dev"],
    )?)?;
    assert!(
        err.contains(r#"configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "dev""#),
        "{err}"
    );
    let out = ok(kubectl_as(
        &alice,
        &["auth", "can-i", "list", "deployments.apps", "-n", "dev"],
    )?)?;
    assert_eq!(out.trim(), "yes");
    let list = ok(kubectl_as(
        &alice,
        &["auth", "can-i", "--list", "-n", "dev"],
    )?)?;
    assert!(
        list.contains("pods") && list.contains("deployments.apps"),
        "{list}"
    );
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );

    // a Role granting one more verb, bound to the user's group
    ok(tc.kubectl(&[
        "create",
        "role",
        "cm-writer",
        "--verb=create",
        "--resource=configmaps",
        "-n",
        "dev",
    ])?)?;
    ok(tc.kubectl(&[
        "create",
        "rolebinding",
        "team-cm",
        "--role=cm-writer",
        "--group=dev-team",
        "-n",
        "dev",
    ])?)?;
    ok(kubectl_as(
        &alice,
        &["create", "configmap", "c1", "-n", "dev"],
    )?)?;
    fails(kubectl_as(
        &alice,
        &["delete", "configmap", "c1", "-n", "dev"],
    )?)?;

    // aggregation: a new ClusterRole labelled for `view` widens every view binding
    fails(kubectl_as(&alice, &["get", "secrets", "-n", "dev"])?)?;
    let role = r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "secret-peek", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}"#;
    ok(tc.kubectl_with(KUBECTL, &["create", "-f", "-"], Some(role))?)?;
    eventually(|| ok(kubectl_as(&alice, &["get", "secrets", "-n", "dev"])?).map(|_| ()))?;
    let view = ok(tc.kubectl(&["get", "clusterrole", "view", "-o", "json"])?)?;
    assert!(view.contains("secrets"), "view was not aggregated: {view}");
    // edit and admin aggregate view in turn
    eventually(|| {
        let admin = ok(tc.kubectl(&["get", "clusterrole", "admin", "-o", "json"])?)?;
        if admin.contains("\"secrets\"") && admin.contains("rolebindings") {
            Ok(())
        } else {
            bail!("admin not aggregated yet")
        }
    })?;

    // SubjectAccessReview by the admin about alice
    let sar = r#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "groups": ["dev-team"], "resourceAttributes": {"namespace": "dev", "verb": "create", "resource": "configmaps"}}}"#;
    let out = ok(tc.kubectl_with(
        KUBECTL,
        &["create", "--validate=false", "-o", "json", "-f", "-"],
        Some(sar),
    )?)?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(v["status"]["allowed"], true, "{out}");
    let sar = sar.replace("\"dev\"", "\"default\"");
    let out = ok(tc.kubectl_with(
        KUBECTL,
        &["create", "--validate=false", "-o", "json", "-f", "-"],
        Some(&sar),
    )?)?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(v["status"]["allowed"], false, "{out}");

    // the admin is in system:masters and can still do everything
    ok(tc.kubectl(&["get", "secrets", "-A"])?)?;
    Ok(())
}

#[test]
fn impersonation_needs_the_impersonate_verb_and_then_acts_as_the_user() -> Result<()> {
    let tc = TestController::start()?;
    // The admin may impersonate anyone: whoami, can-i and a refused read act as alice.
    let who = ok(tc.kubectl(&[
        "auth",
        "whoami",
        "--as",
        "alice",
        "--as-group",
        "dev-team",
        "-o",
        "json",
    ])?)?;
    let who: serde_json::Value = serde_json::from_str(&who)?;
    assert_eq!(who["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        serde_json::json!(["dev-team", "system:authenticated"])
    );
    let out = tc.kubectl(&["auth", "can-i", "list", "secrets", "--as", "alice"])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    let err = fails(tc.kubectl(&["get", "pods", "-n", "default", "--as", "alice"])?)?;
    assert!(
        err.contains(r#"pods is forbidden: User "alice" cannot list resource "pods""#),
        "{err}"
    );
    let out = tc.kubectl(&[
        "auth",
        "can-i",
        "list",
        "pods",
        "--as",
        "system:serviceaccount:default:default",
    ])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");

    // A user without the verb is refused, naming what it may not impersonate.
    let alice = cert_kubeconfig(&tc, "alice", &["dev-team"])?;
    let err = fails(kubectl_as(&alice, &["get", "pods", "--as", "bob"])?)?;
    assert!(
        err.contains(r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );
    // A grant for one user name: bob works, carol and an added group do not.
    ok(tc.kubectl(&[
        "create",
        "clusterrole",
        "impersonate-bob",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=bob",
    ])?)?;
    ok(tc.kubectl(&[
        "create",
        "clusterrolebinding",
        "alice-as-bob",
        "--clusterrole=impersonate-bob",
        "--user=alice",
    ])?)?;
    eventually(|| {
        let who = ok(kubectl_as(
            &alice,
            &["auth", "whoami", "--as", "bob", "-o", "json"],
        )?)?;
        let who: serde_json::Value = serde_json::from_str(&who)?;
        if who["status"]["userInfo"]["username"] != "bob" {
            bail!("whoami as bob: {who}");
        }
        Ok(())
    })?;
    fails(kubectl_as(&alice, &["auth", "whoami", "--as", "carol"])?)?;
    let err = fails(kubectl_as(
        &alice,
        &[
            "get",
            "secrets",
            "--as",
            "bob",
            "--as-group",
            "system:masters",
        ],
    )?)?;
    assert!(
        err.contains(r#"groups "system:masters" is forbidden: User "alice" cannot impersonate resource "groups""#),
        "{err}"
    );
    Ok(())
}

#[test]
fn default_roles_exist_and_anonymous_is_refused() -> Result<()> {
    let tc = TestController::start()?;
    let out = ok(tc.kubectl(&["get", "clusterroles", "-o", "name"])?)?;
    for r in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:node",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:node-proxier",
    ] {
        assert!(
            out.contains(&format!("clusterrole.rbac.authorization.k8s.io/{r}\n")),
            "{r} missing: {out}"
        );
    }
    let crb = ok(tc.kubectl(&["get", "clusterrolebinding", "cluster-admin", "-o", "json"])?)?;
    assert!(
        crb.contains("system:masters")
            && crb.contains("rbac.authorization.kubernetes.io/autoupdate")
    );
    // deleted defaults come back at restart
    ok(tc.kubectl(&["delete", "clusterrole", "system:basic-user"])?)?;
    let mut tc = tc;
    tc.restart()?;
    eventually(|| ok(tc.kubectl(&["get", "clusterrole", "system:basic-user"])?).map(|_| ()))?;

    // no credential: health is public, the API is not
    let client = reqwest_like_get(&tc, "/api/v1/namespaces")?;
    assert!(
        client.contains("401") || client.contains("Unauthorized"),
        "{client}"
    );
    Ok(())
}

/// A plain HTTPS GET without credentials through curl (answers "<code> <body>").
fn reqwest_like_get(tc: &TestController, path: &str) -> Result<String> {
    let out = std::process::Command::new("curl")
        .args(["-sk", "-w", " %{http_code}"])
        .arg(format!("https://127.0.0.1:{}{path}", tc.port))
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}
