//! Discovery documents built from the [`Registry`]: the group order upstream's aggregator
//! serves (`/apis` lists groups by priority), the verbs and kinds of subresources, and the
//! aggregated discovery document (`apidiscovery.k8s.io` `APIGroupDiscoveryList`, v2 and
//! v2beta1) that kubectl 1.27+ asks `/api` and `/apis` for.

use serde_json::{json, Value};

use crate::registry::Registry;
use crate::resources::ResourceInfo;

/// Upstream's `GroupPriorityMinimum` of the built-in groups (kube-aggregator
/// `apiVersionPriorities`); a group not listed (custom resources) has 1000.
const GROUP_PRIORITIES: &[(&str, u32)] = &[
    ("apps", 17800),
    ("events.k8s.io", 17750),
    ("authentication.k8s.io", 17700),
    ("authorization.k8s.io", 17600),
    ("autoscaling", 17500),
    ("batch", 17400),
    ("certificates.k8s.io", 17300),
    ("networking.k8s.io", 17200),
    ("policy", 17100),
    ("rbac.authorization.k8s.io", 17000),
    ("storage.k8s.io", 16800),
    ("admissionregistration.k8s.io", 16700),
    ("scheduling.k8s.io", 16600),
    ("coordination.k8s.io", 16500),
    ("apiextensions.k8s.io", 16400),
    ("node.k8s.io", 16300),
    ("discovery.k8s.io", 16200),
    ("flowcontrol.apiserver.k8s.io", 16100),
    ("resource.k8s.io", 15900),
];

/// Priority of a group for ordering `/apis`.
pub fn group_priority(group: &str) -> u32 {
    GROUP_PRIORITIES
        .iter()
        .find(|(g, _)| *g == group)
        .map_or(1000, |(_, p)| *p)
}

/// Non-core groups with their versions (registry order within a group), ordered as
/// upstream's `/apis`: priority descending, then name.
pub fn ordered_groups(registry: &Registry) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in registry.all() {
        if r.group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version.clone());
                }
            }
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    groups.sort_by(|(a, _), (b, _)| {
        group_priority(b)
            .cmp(&group_priority(a))
            .then_with(|| a.cmp(b))
    });
    groups
}

/// What discovery says about one subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubresourceInfo {
    pub verbs: &'static [&'static str],
    pub kind: String,
    /// Group and version of the response kind when it is not the parent's (`Scale` is
    /// `autoscaling/v1`, `Eviction` is `policy/v1`).
    pub group: Option<&'static str>,
    pub version: Option<&'static str>,
}

/// Verbs and kind of subresource `sub` of `r`, as upstream's discovery lists them.
pub fn subresource_info(r: &ResourceInfo, sub: &str) -> SubresourceInfo {
    let own = r.kind.clone();
    let (verbs, kind, group, version): (&'static [&'static str], String, _, _) = match sub {
        "status" | "approval" => (&["get", "patch", "update"], own, None, None),
        "scale" => (
            &["get", "patch", "update"],
            "Scale".into(),
            Some("autoscaling"),
            Some("v1"),
        ),
        "binding" => (&["create"], "Binding".into(), None, None),
        "eviction" => (&["create"], "Eviction".into(), Some("policy"), Some("v1")),
        "log" => (&["get"], "Pod".into(), None, None),
        "exec" => (&["create", "get"], "PodExecOptions".into(), None, None),
        "attach" => (&["create", "get"], "PodAttachOptions".into(), None, None),
        "portforward" => (
            &["create", "get"],
            "PodPortForwardOptions".into(),
            None,
            None,
        ),
        "proxy" => (
            &["create", "delete", "get", "patch", "update"],
            if r.kind == "Node" {
                "NodeProxyOptions".into()
            } else {
                "ServiceProxyOptions".into()
            },
            None,
            None,
        ),
        "finalize" => (&["update"], "Namespace".into(), None, None),
        "ephemeralcontainers" | "resize" => (&["get", "patch", "update"], "Pod".into(), None, None),
        "token" => (
            &["create"],
            "TokenRequest".into(),
            Some("authentication.k8s.io"),
            Some("v1"),
        ),
        _ => (&["get"], own, None, None),
    };
    SubresourceInfo {
        verbs,
        kind,
        group,
        version,
    }
}

/// The media type parameters of an aggregated discovery response for `version`
/// (`v2` or `v2beta1`).
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

fn resource_discovery(r: &ResourceInfo) -> Value {
    let mut e = json!({
        "resource": r.resource,
        "responseKind": {"group": "", "version": "", "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|sub| {
                let info = subresource_info(r, sub);
                json!({
                    "subresource": sub,
                    "responseKind": {
                        "group": info.group.unwrap_or(""),
                        "version": info.version.unwrap_or(""),
                        "kind": info.kind,
                    },
                    "verbs": info.verbs,
                })
            })
            .collect();
        e["subresources"] = Value::Array(subs);
    }
    e
}

fn version_discovery(registry: &Registry, group: &str, version: &str) -> Value {
    let mut resources: Vec<Value> = registry
        .all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| resource_discovery(r))
        .collect();
    // upstream lists a version's resources by name
    resources.sort_by(|a, b| {
        a["resource"]
            .as_str()
            .unwrap_or("")
            .cmp(b["resource"].as_str().unwrap_or(""))
    });
    json!({"version": version, "resources": resources, "freshness": "Current"})
}

/// The aggregated discovery document of `/api` (`legacy`) or `/apis`, in
/// `apidiscovery.k8s.io/<api_version>`.
pub fn aggregated(registry: &Registry, legacy: bool, api_version: &str) -> Value {
    let items: Vec<Value> = if legacy {
        vec![json!({
            "metadata": {"creationTimestamp": null},
            "versions": [version_discovery(registry, "", "v1")],
        })]
    } else {
        ordered_groups(registry)
            .into_iter()
            .map(|(group, versions)| {
                let vs: Vec<Value> = versions
                    .iter()
                    .map(|v| version_discovery(registry, &group, v))
                    .collect();
                json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": vs})
            })
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{api_version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_upstream_priority() {
        let reg = Registry::builtin();
        let names: Vec<String> = ordered_groups(&reg).into_iter().map(|(g, _)| g).collect();
        let pos = |g: &str| names.iter().position(|n| n == g).unwrap();
        assert_eq!(names[0], "apps");
        assert!(pos("events.k8s.io") < pos("autoscaling"));
        assert!(pos("batch") < pos("policy"));
        assert!(pos("scheduling.k8s.io") < pos("apiextensions.k8s.io"));
        assert!(pos("coordination.k8s.io") < pos("discovery.k8s.io"));
    }

    #[test]
    fn aggregated_document_has_upstream_shape() {
        let reg = Registry::builtin();
        let doc = aggregated(&reg, false, "v2");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let apps = &doc["items"][0];
        assert_eq!(apps["metadata"]["name"], "apps");
        let v1 = &apps["versions"][0];
        assert_eq!(v1["freshness"], "Current");
        let deploy = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["responseKind"]["kind"], "Deployment");
        assert_eq!(deploy["scope"], "Namespaced");
        assert_eq!(deploy["singularResource"], "deployment");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        let scale = deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert_eq!(scale["verbs"], json!(["get", "patch", "update"]));

        let core = aggregated(&reg, true, "v2beta1");
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        let resources = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = resources
            .iter()
            .map(|r| r["resource"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let pods = resources.iter().find(|r| r["resource"] == "pods").unwrap();
        let eviction = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "eviction")
            .unwrap();
        assert_eq!(eviction["responseKind"]["group"], "policy");
        assert_eq!(eviction["verbs"], json!(["create"]));
    }
}
