//! Discovery: legacy (`/api`, `/apis`, `/api/v1`, `/apis/<g>[/<v>]`) and aggregated
//! (`Accept: application/json;g=apidiscovery.k8s.io;v=v2|v2beta1;as=APIGroupDiscoveryList`
//! on `/api` and `/apis`), and `/version`.

use http::{header, HeaderValue};
use serde_json::{json, Value};

use bramble_api::discovery::{self, SubresourceInfo};
use bramble_api::registry::Registry;
use bramble_api::ResourceInfo;

use crate::body::{self, Response};

/// `/api`
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
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
    let groups: Vec<Value> = discovery::ordered_groups(registry)
        .iter()
        .map(|(n, v)| group_json(n, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let groups = discovery::ordered_groups(registry);
    let (_, versions) = groups.iter().find(|(g, _)| g == name)?;
    let mut g = group_json(name, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// A subresource's entry in a legacy resource list.
fn subresource_entry(r: &ResourceInfo, sub: &str) -> Value {
    let SubresourceInfo {
        verbs,
        kind,
        group,
        version,
    } = discovery::subresource_info(r, sub);
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

/// The aggregated discovery version `Accept` asks for first (`v2` or `v2beta1`), or `None`
/// for the legacy documents. Protobuf forms are skipped: Bramble answers them in JSON.
pub fn aggregated_version(accept: Option<&str>) -> Option<&'static str> {
    for media in accept?.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let base = parts.next().unwrap_or("");
        let (mut g, mut v, mut as_) = ("", "", "");
        for p in parts {
            match p.split_once('=') {
                Some(("g", x)) => g = x,
                Some(("v", x)) => v = x,
                Some(("as", x)) => as_ = x,
                _ => {}
            }
        }
        if base != "application/json" {
            continue;
        }
        if g == "apidiscovery.k8s.io" && as_ == "APIGroupDiscoveryList" {
            match v {
                "v2" => return Some("v2"),
                "v2beta1" => return Some("v2beta1"),
                _ => continue,
            }
        }
        if g.is_empty() && as_.is_empty() {
            return None;
        }
    }
    None
}

/// `/api` (`legacy`) or `/apis`: aggregated when `Accept` asks for it, else legacy.
/// Responses vary on `Accept`, as upstream's do.
pub fn root(
    registry: &Registry,
    legacy: bool,
    accept: Option<&str>,
    server_address: &str,
) -> Response {
    let mut resp = match aggregated_version(accept) {
        Some(v) => {
            let mut resp = body::json(200, &discovery::aggregated(registry, legacy, v));
            if let Ok(ct) = HeaderValue::from_str(&discovery::aggregated_content_type(v)) {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp
        }
        None if legacy => body::json(200, &api_versions(server_address)),
        None => body::json(200, &group_list(registry)),
    };
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_headers_pick_the_aggregated_version() {
        let new = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(Some(new)), Some("v2"));
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(Some(old)), Some("v2beta1"));
        let proto = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        assert_eq!(aggregated_version(Some(proto)), Some("v2"));
        assert_eq!(aggregated_version(Some("application/json, */*")), None);
        assert_eq!(aggregated_version(None), None);
    }
}
