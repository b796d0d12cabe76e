//! Server-side apply of lists keyed by compound `x-kubernetes-list-map-keys`: a Service with
//! 53/UDP and 53/TCP and a Deployment whose container exposes one port on both protocols
//! re-apply with the real kubectl without a change, managedFields name the elements by port
//! and protocol; Bramble's own DNS publisher re-applies its kube-dns Service, and another
//! manager's different value for one protocol of the port is a conflict naming that element.
//! Custom objects (which the strategic merge behind apply used to refuse with 415) apply too.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use bramble_dns::publish::{self, MANAGER as DNS_MANAGER};
use common::{fails, ok, TestController, KUBECTL};
use serde_json::Value;

/// A Service in the kube-dns shape: one port on UDP and TCP.
fn dns_like(udp_target: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: resolver
spec:
  ports:
  - {{name: dns, port: 53, protocol: UDP, targetPort: {udp_target}}}
  - {{name: dns-tcp, port: 53, protocol: TCP, targetPort: 5353}}
"#
    )
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: resolver}
spec:
  selector: {matchLabels: {app: resolver}}
  template:
    metadata: {labels: {app: resolver}}
    spec:
      containers:
      - name: c
        image: resolver
        ports:
        - {name: dns, containerPort: 8053, protocol: UDP}
        - {name: dns-tcp, containerPort: 8053}
"#;

fn get_json(c: &TestController, args: &[&str]) -> Result<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    Ok(serde_json::from_str(&ok(c.kubectl(&all)?)?)?)
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")
}

/// One controller for both parts: every controller's DNS server binds 127.0.0.1:53, so only
/// one per test process publishes kube-dns.
#[test]
fn compound_list_map_keys_reapply_and_conflict_per_protocol() -> Result<()> {
    let c = TestController::start()?;
    kubectl_reapplies_one_port_on_two_protocols(&c)?;
    dns_publisher_reapplies_and_other_managers_conflict_per_protocol(&c)?;
    custom_objects_reapply(&c)
}

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              tags: {type: array, items: {type: string}}
"#;

/// Custom objects take server-side apply too (their lists are atomic here: the CRD's own
/// list types are not consulted).
fn custom_objects_reapply(c: &TestController) -> Result<()> {
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(CRD))?)?;
    let gadget = |size: u32, tags: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: g}}\n\
             spec: {{size: {size}, tags: [{tags}]}}\n"
        )
    };
    let apply = |yaml: &str, manager: &str| {
        let fm = format!("--field-manager={manager}");
        c.kubectl_with(
            KUBECTL,
            &["apply", "--server-side", &fm, "-f", "-"],
            Some(yaml),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = apply(&gadget(1, "a, b"), "alice")?;
        if out.status.success() {
            break;
        }
        // the CRD is being established
        ensure!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let first = get_json(c, &["gadget", "g"])?;
    ok(apply(&gadget(1, "a, b"), "alice")?)?;
    ensure!(
        get_json(c, &["gadget", "g"])? == first,
        "a re-apply changed it"
    );
    let alice = entry(&first, "alice").ok_or_else(|| anyhow!("{first}"))?;
    ensure!(
        alice["fieldsV1"]["f:spec"]["f:tags"] == serde_json::json!({}),
        "{alice}"
    );
    let err = fails(apply(&gadget(2, "a"), "bob")?)?;
    ensure!(
        err.contains(
            "Apply failed with 2 conflicts: conflicts with \"alice\" using example.com/v1:"
        ) && err.contains("- .spec.size")
            && err.contains("- .spec.tags"),
        "{err}"
    );
    Ok(())
}

fn kubectl_reapplies_one_port_on_two_protocols(c: &TestController) -> Result<()> {
    let apply = |yaml: &str| {
        c.kubectl_with(
            KUBECTL,
            &["apply", "--server-side", "--field-manager=alice", "-f", "-"],
            Some(yaml),
        )
    };
    for (yaml, what, args) in [
        (dns_like(5353), "service/resolver", ["svc", "resolver"]),
        (
            DEPLOYMENT.to_string(),
            "deployment.apps/resolver",
            ["deploy", "resolver"],
        ),
    ] {
        let out = ok(apply(&yaml)?)?;
        ensure!(out.contains(&format!("{what} serverside-applied")), "{out}");
        let first = get_json(c, &args)?;
        // the second apply of the same manifest used to fail with 422 Duplicate value
        let out = ok(apply(&yaml)?)?;
        ensure!(out.contains(&format!("{what} serverside-applied")), "{out}");
        let second = get_json(c, &args)?;
        ensure!(second == first, "a re-apply changed it:\n{first}\n{second}");
    }
    let svc = get_json(c, &["svc", "resolver"])?;
    let ports = &svc["spec"]["ports"];
    ensure!(
        ports.as_array().map(Vec::len) == Some(2)
            && ports[0]["protocol"] == "UDP"
            && ports[1]["protocol"] == "TCP",
        "{ports}"
    );
    let alice = entry(&svc, "alice").ok_or_else(|| anyhow!("{svc}"))?;
    let fields = &alice["fieldsV1"]["f:spec"]["f:ports"];
    for key in [
        r#"k:{"port":53,"protocol":"UDP"}"#,
        r#"k:{"port":53,"protocol":"TCP"}"#,
    ] {
        ensure!(fields[key]["f:targetPort"].is_object(), "{key} in {fields}");
    }
    let deploy = get_json(c, &["deploy", "resolver"])?;
    let alice = entry(&deploy, "alice").ok_or_else(|| anyhow!("{deploy}"))?;
    // a LabelSelector is one field (`+structType=atomic`)
    let selector = &alice["fieldsV1"]["f:spec"]["f:selector"];
    ensure!(selector == &serde_json::json!({}), "{alice}");
    let ports = &alice["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"c"}"#]
        ["f:ports"];
    // the omitted protocol is the default TCP in the key, and not owned
    let tcp = &ports[r#"k:{"containerPort":8053,"protocol":"TCP"}"#];
    ensure!(
        tcp["f:name"].is_object() && tcp.get("f:protocol").is_none(),
        "{ports}"
    );
    ensure!(
        ports[r#"k:{"containerPort":8053,"protocol":"UDP"}"#]["f:protocol"].is_object(),
        "{ports}"
    );
    Ok(())
}

fn dns_publisher_reapplies_and_other_managers_conflict_per_protocol(
    c: &TestController,
) -> Result<()> {
    // the controller's DNS publisher applies kube-dns at start (in a test controller it keeps
    // re-applying it every 2 s: the EndpointSlice it publishes next names a loopback address,
    // which validation refuses)
    let deadline = Instant::now() + Duration::from_secs(60);
    let svc = loop {
        if let Ok(svc) = get_json(c, &["-n", "kube-system", "svc", "kube-dns"]) {
            if entry(&svc, DNS_MANAGER).is_some() {
                break svc;
            }
        }
        ensure!(Instant::now() < deadline, "no kube-dns:\n{}", c.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let cluster_ip = svc["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    let port = u16::try_from(svc["spec"]["ports"][0]["targetPort"].as_u64().unwrap_or(0))?;
    // the address only goes into the EndpointSlice (TEST-NET-1, never contacted)
    let server: IpAddr = "192.0.2.10".parse()?;
    let publish = || -> Result<Value> {
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let client = c.client().await?;
            publish::kube_dns(&client, cluster_ip, server, port).await?;
            anyhow::Ok(())
        })?;
        get_json(c, &["-n", "kube-system", "svc", "kube-dns"])
    };
    // the publisher's re-apply (as at every restart) succeeds and changes nothing
    let again = publish()?;
    ensure!(
        again == svc,
        "re-publishing changed kube-dns:\n{svc}\n{again}"
    );
    ensure!(publish()? == svc, "a third publish changed kube-dns");

    let apply = |yaml: &str, extra: &[&str]| {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        c.kubectl_with(KUBECTL, &args, Some(yaml))
    };
    let bob = "apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns, namespace: kube-system}\n\
               spec:\n  ports:\n  - {port: 53, protocol: UDP, targetPort: 5300}\n";
    let err = fails(apply(bob, &["--field-manager=bob"])?)?;
    ensure!(
        err.contains(&format!(
            "Apply failed with 1 conflict: conflict with \"{DNS_MANAGER}\" using v1: \
             .spec.ports[port=53,protocol=\"UDP\"].targetPort"
        )),
        "{err}"
    );
    ok(apply(bob, &["--field-manager=bob", "--force-conflicts"])?)?;
    // the publisher forces its ports back (the controller's own retry loop may be first)
    let back = publish()?;
    ensure!(back["spec"]["ports"] == svc["spec"]["ports"], "{back}");
    let bob_entry = entry(&back, "bob").ok_or_else(|| anyhow!("{back}"))?;
    let udp = &bob_entry["fieldsV1"]["f:spec"]["f:ports"][r#"k:{"port":53,"protocol":"UDP"}"#];
    ensure!(
        udp["f:port"].is_object() && udp.get("f:targetPort").is_none(),
        "bob keeps the key fields only: {bob_entry}"
    );
    Ok(())
}
