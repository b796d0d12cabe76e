//! Legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/<g>[/<v>]`), `/version` and health.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use bramble_api::registry::Registry;
use bramble_api::ResourceInfo;

/// `/api`
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Versions per non-core group, in registry order.
fn groups(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in registry.all() {
        if r.group.is_empty() {
            continue;
        }
        let versions = groups.entry(r.group.clone()).or_default();
        if !versions.contains(&r.version) {
            versions.push(r.version.clone());
        }
    }
    groups
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0].clone()})
}

/// `/apis`
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = groups(registry)
        .iter()
        .map(|(n, v)| group_json(n, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let groups = groups(registry);
    let versions = groups.get(name)?;
    let mut g = group_json(name, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// Verbs, kind and group of a subresource entry, as upstream discovery lists them.
fn subresource_entry(r: &ResourceInfo, sub: &str) -> Value {
    let (verbs, kind, group, version): (&[&str], &str, Option<&str>, Option<&str>) = match sub {
        "status" => (&["get", "patch", "update"], r.kind.as_str(), None, None),
        "scale" => (
            &["get", "patch", "update"],
            "Scale",
            Some("autoscaling"),
            Some("v1"),
        ),
        "binding" => (&["create"], "Binding", None, None),
        "eviction" => (&["create"], "Eviction", Some("policy"), Some("v1")),
        "log" => (&["get"], "Pod", None, None),
        "exec" | "attach" => (
            &["create", "get"],
            if sub == "exec" {
                "PodExecOptions"
            } else {
                "PodAttachOptions"
            },
            None,
            None,
        ),
        "portforward" => (&["create", "get"], "PodPortForwardOptions", None, None),
        "proxy" => (
            &["create", "delete", "get", "patch", "update"],
            if r.kind == "Node" {
                "NodeProxyOptions"
            } else {
                "ServiceProxyOptions"
            },
            None,
            None,
        ),
        "finalize" => (&["update"], "Namespace", None, None),
        "approval" => (&["get", "patch", "update"], r.kind.as_str(), None, None),
        "ephemeralcontainers" => (&["get", "patch", "update"], "Pod", None, None),
        _ => (&["get"], r.kind.as_str(), None, None),
    };
    let mut e = json!({
        "name": format!("{}/{sub}", r.resource),
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": verbs,
    });
    if let Some(g) = group {
        e["group"] = json!(g);
    }
    if let Some(v) = version {
        e["version"] = json!(v);
    }
    e
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    let mut any = false;
    for r in registry.all() {
        if r.group != group || r.version != version {
            continue;
        }
        any = true;
        let mut e = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        resources.push(e);
        for sub in &r.subresources {
            resources.push(subresource_entry(&r, sub));
        }
    }
    if !any {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// `/version`: the Kubernetes API level Bramble serves, and Bramble's own version.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("v1.33.0+bramble.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("linux/{}", arch()),
    })
}

/// The architecture as Kubernetes names it.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}
