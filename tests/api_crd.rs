//! CustomResourceDefinitions against a real controller with the real kubectl: a CRD's
//! served version is registered (REST, discovery with short names, Established and
//! NamesAccepted conditions), custom objects round-trip, registrations survive a restart,
//! and deleting the CRD unserves the resource and deletes its objects.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use common::{fails, ok, TestController, KUBECTL};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string, default: green}
"#;

const WIDGET: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
"#;

fn wait_for(c: &TestController, args: &[&str], want: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.kubectl(args)?;
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && s.contains(want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{args:?}: wanted {want:?}, got {s} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn crd_lifecycle_with_kubectl() -> Result<()> {
    let mut c = TestController::start()?;
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(CRD))?)?;
    wait_for(
        &c,
        &["get", "crd", "widgets.example.com", "-o",
          "jsonpath={.status.conditions[?(@.type==\"Established\")].status},{.status.conditions[?(@.type==\"NamesAccepted\")].status}"],
        "True,True",
    )?;
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(WIDGET))?)?;
    let size = ok(c.kubectl(&["get", "wd", "w1", "-o", "jsonpath={.spec.size}"])?)?;
    ensure!(size == "3", "{size}");
    let res = ok(c.kubectl(&["api-resources", "--api-group=example.com"])?)?;
    ensure!(
        res.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["widgets", "wd", "example.com/v1", "true", "Widget"]),
        "{res}"
    );
    // schema: unknown fields pruned, wrong types refused with upstream's 422
    let pruned = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: default}\nspec: {size: 1, bogus: x}\n";
    ok(c.kubectl_with(
        KUBECTL,
        &["create", "--validate=false", "-f", "-"],
        Some(pruned),
    )?)?;
    let spec = ok(c.kubectl(&["get", "wd", "w2", "-o", "jsonpath={.spec}"])?)?;
    // structural defaulting fills `color` from the schema's default
    ensure!(spec == "{\"color\":\"green\",\"size\":1}", "{spec}");
    let bad = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w3, namespace: default}\nspec: {size: big}\n";
    let err = fails(c.kubectl_with(
        KUBECTL,
        &["create", "--validate=false", "-f", "-"],
        Some(bad),
    )?)?;
    ensure!(err.contains("The Widget \"w3\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""), "{err}");
    let list = ok(c.kubectl(&["get", "widgets"])?)?;
    let header: Vec<&str> = list
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    ensure!(header == ["NAME", "SIZE"], "printer columns: {list}");
    ensure!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["w1", "3"]),
        "{list}"
    );
    ensure!(list.contains("w1"), "{list}");

    // registrations are rebuilt from the store
    c.restart()?;
    wait_for(
        &c,
        &["get", "widgets.example.com", "w1", "-o", "name"],
        "widget.example.com/w1",
    )?;

    ok(c.kubectl(&["delete", "crd", "widgets.example.com"])?)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.kubectl(&[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets",
        ])?;
        if !out.status.success() {
            break;
        }
        ensure!(Instant::now() < deadline, "still served");
        std::thread::sleep(Duration::from_millis(200));
    }
    // re-creating the CRD shows no leftover objects
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(CRD))?)?;
    wait_for(
        &c,
        &[
            "get",
            "crd",
            "widgets.example.com",
            "-o",
            "jsonpath={.status.conditions[0].status}",
        ],
        "True",
    )?;
    let err = fails(c.kubectl(&["get", "widgets.example.com", "w1"])?)?;
    ensure!(err.contains("not found"), "{err}");
    Ok(())
}
