use std::collections::HashSet;
use std::time::Instant;

use serde_json::{json, Value};

use super::*;
use crate::registry::Registry;
use crate::resources::ResourceInfo;

fn core_v1() -> Value {
    v3_group_version(&Registry::builtin(), "api/v1").expect("api/v1 document")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.pointer(&format!("/components/schemas/{}", name.replace('/', "~1")))
        .unwrap_or_else(|| panic!("no schema {name}"))
}

/// Every `$ref` string anywhere in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                match (k.as_str(), c) {
                    ("$ref", _) => out.push(c.as_str().expect("string ref").to_string()),
                    ("properties", Value::Object(props)) => {
                        props.values().for_each(|p| refs(p, out))
                    }
                    _ => refs(c, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

/// kubectl's `supportsQueryParamV3` (cli-runtime `query_param_verifier_v3.go`): the first
/// PATCH operation tagged with the GVK must list the parameter among its own parameters.
fn supports_query_param_v3(doc: &Value, gvk: (&str, &str, &str), param: &str) -> bool {
    let want = json!({ "group": gvk.0, "version": gvk.1, "kind": gvk.2 });
    for item in doc["paths"].as_object().expect("paths").values() {
        let Some(op) = item.get("patch") else {
            continue;
        };
        if op.get("x-kubernetes-group-version-kind") != Some(&want) {
            continue;
        }
        return op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == param));
    }
    false
}

#[test]
fn pod_schema_is_named_and_tagged_like_upstream() {
    let doc = core_v1();
    assert_eq!(doc["openapi"], "3.0.0");
    let pod = schema(&doc, "io.k8s.api.core.v1.Pod");
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{ "group": "", "kind": "Pod", "version": "v1" }])
    );
    assert!(
        pod.get("required").is_none(),
        "upstream does not require metadata: {:?}",
        pod.get("required")
    );
    assert_eq!(
        pod["properties"]["spec"]["allOf"],
        json!([{ "$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec" }])
    );
    assert!(pod["properties"]["spec"]["description"]
        .as_str()
        .unwrap()
        .starts_with("Specification of the desired behavior of the pod."));
    let list = schema(&doc, "io.k8s.api.core.v1.PodList");
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        json!([{ "group": "", "kind": "PodList", "version": "v1" }])
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Pod"
    );
    schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions");
    schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.Status");
    // Subresource bodies of core kinds.
    let binding = schema(&doc, "io.k8s.api.core.v1.Binding");
    assert_eq!(
        binding["x-kubernetes-group-version-kind"][0]["kind"],
        "Binding"
    );
    schema(&doc, "io.k8s.api.policy.v1.Eviction");
}

#[test]
fn strategic_merge_tags_follow_the_patch_table() {
    let doc = core_v1();
    let spec = &schema(&doc, "io.k8s.api.core.v1.PodSpec")["properties"];
    assert_eq!(spec["containers"]["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(spec["containers"]["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(
        spec["volumes"]["x-kubernetes-patch-strategy"],
        "merge,retainKeys"
    );
    assert!(spec["tolerations"]
        .get("x-kubernetes-patch-strategy")
        .is_none());
    let container = &schema(&doc, "io.k8s.api.core.v1.Container")["properties"];
    assert_eq!(container["env"]["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(
        container["ports"]["x-kubernetes-patch-merge-key"],
        "containerPort"
    );
    let meta = &schema(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"];
    assert_eq!(meta["finalizers"]["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(
        meta["ownerReferences"]["x-kubernetes-patch-merge-key"],
        "uid"
    );

    let apps = v3_group_version(&Registry::builtin(), "apis/apps/v1").unwrap();
    let strategy = &schema(&apps, "io.k8s.api.apps.v1.DeploymentSpec")["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    // The template's pod spec is the shared PodSpec definition, tagged once.
    let spec = &schema(&apps, "io.k8s.api.core.v1.PodSpec")["properties"];
    assert_eq!(spec["containers"]["x-kubernetes-patch-merge-key"], "name");
}

#[test]
fn every_ref_resolves_and_v3_refs_have_no_siblings() {
    let registry = Registry::builtin();
    for (g, v) in registry.group_versions() {
        let path = group_version_path(&g, &v);
        let doc = v3_group_version(&registry, &path).unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in &all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{path}: foreign ref {r}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{path}: dangling ref {r}"
            );
        }
        let text = serde_json::to_string(&doc).unwrap();
        assert!(!text.contains("#/definitions/"), "{path}");
        fn no_siblings(v: &Value, path: &str) {
            match v {
                Value::Object(o) => {
                    assert!(
                        !(o.contains_key("$ref") && o.len() > 1),
                        "{path}: $ref with siblings: {v}"
                    );
                    for (k, c) in o {
                        match (k.as_str(), c) {
                            ("properties", Value::Object(props)) => {
                                props.values().for_each(|p| no_siblings(p, path))
                            }
                            _ => no_siblings(c, path),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|c| no_siblings(c, path)),
                _ => {}
            }
        }
        for def in doc["components"]["schemas"].as_object().unwrap().values() {
            no_siblings(def, &path);
        }
    }
}

#[test]
fn operations_carry_actions_gvk_and_write_parameters() {
    let doc = core_v1();
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(patch["operationId"], "patchCoreV1NamespacedPod");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({ "group": "", "kind": "Pod", "version": "v1" })
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["dryRun", "fieldManager", "fieldValidation", "force"] {
        assert!(names.contains(&p), "{p} missing from {names:?}");
    }
    let body = patch["requestBody"]["content"].as_object().unwrap();
    assert!(body.contains_key("application/strategic-merge-patch+json"));
    assert!(body.contains_key("application/apply-patch+yaml"));
    assert_eq!(item["get"]["x-kubernetes-action"], "get");
    assert_eq!(item["put"]["x-kubernetes-action"], "put");
    assert_eq!(item["delete"]["x-kubernetes-action"], "delete");
    let path_params: Vec<&str> = item["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(path_params, ["name", "namespace", "pretty"]);

    let collection = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(collection["get"]["x-kubernetes-action"], "list");
    assert_eq!(collection["post"]["x-kubernetes-action"], "post");
    assert_eq!(
        collection["delete"]["x-kubernetes-action"],
        "deletecollection"
    );
    assert_eq!(
        doc["paths"]["/api/v1/watch/namespaces/{namespace}/pods"]["get"]["x-kubernetes-action"],
        "watchlist"
    );
    assert_eq!(
        doc["paths"]["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    // Namespaces have no deletecollection upstream.
    assert!(doc["paths"]["/api/v1/namespaces"].get("delete").is_none());
    // Cluster-scoped paths have no namespace segment.
    assert!(doc["paths"].get("/api/v1/nodes/{name}/status").is_some());
    let eviction = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"];
    assert_eq!(
        eviction["x-kubernetes-group-version-kind"],
        json!({ "group": "policy", "kind": "Eviction", "version": "v1" })
    );
    let log = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"];
    assert_eq!(log["operationId"], "readCoreV1NamespacedPodLog");

    // Every write operation of every document lists the server-side write parameters.
    let registry = Registry::builtin();
    for (g, v) in registry.group_versions() {
        let doc = v3_group_version(&registry, &group_version_path(&g, &v)).unwrap();
        let mut ids = HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                assert!(ids.insert(op["operationId"].clone()), "duplicate id {path}");
                assert!(op.get("x-kubernetes-action").is_some(), "{path} {method}");
                if ["put", "patch"].contains(&method.as_str())
                    || (method == "post" && !path.ends_with("}"))
                {
                    let names: Vec<&Value> = op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| &p["name"])
                        .collect();
                    for p in ["dryRun", "fieldManager", "fieldValidation"] {
                        assert!(names.contains(&&json!(p)), "{path} {method} lacks {p}");
                    }
                }
            }
        }
    }
}

#[test]
fn kubectl_finds_field_validation_for_every_kind() {
    let registry = Registry::builtin();
    for info in registry.all() {
        if !info.verbs.iter().any(|v| v == "patch") {
            continue;
        }
        let doc =
            v3_group_version(&registry, &group_version_path(&info.group, &info.version)).unwrap();
        assert!(
            supports_query_param_v3(
                &doc,
                (&info.group, &info.version, &info.kind),
                "fieldValidation"
            ),
            "{}/{} {}",
            info.group,
            info.version,
            info.kind
        );
    }
    // And not for a kind the document does not serve.
    assert!(!supports_query_param_v3(
        &core_v1(),
        ("apps", "v1", "Deployment"),
        "fieldValidation"
    ));
}

#[test]
fn root_lists_every_group_version_with_the_document_hash() {
    let registry = Registry::builtin();
    let root = v3_root(&registry);
    let paths = root["paths"].as_object().unwrap();
    assert_eq!(paths.len(), registry.group_versions().len());
    assert!(paths.contains_key("api/v1"));
    assert!(paths.contains_key("apis/apps/v1"));
    assert!(paths.contains_key("apis/rbac.authorization.k8s.io/v1"));
    let url = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
    let bytes = serde_json::to_vec(&v3_group_version(&registry, "apis/apps/v1").unwrap()).unwrap();
    let hash = document_hash(&bytes);
    assert_eq!(hash.len(), 128);
    assert!(hash
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    assert_eq!(url, format!("/openapi/v3/apis/apps/v1?hash={hash}"));
    // The URL as served (leading slash, query string) resolves to the same document.
    assert_eq!(
        v3_group_version(&registry, &url["/openapi/v3/".len()..]),
        v3_group_version(&registry, "apis/apps/v1")
    );
    assert!(v3_group_version(&registry, "apis/nope/v1").is_none());
    assert!(v3_group_version(&registry, "apis/apps").is_none());
    assert!(v3_group_version(&registry, "version").is_none());
}

fn widget() -> ResourceInfo {
    ResourceInfo {
        group: "stable.example.com".into(),
        version: "v1".into(),
        resource: "widgets".into(),
        singular: "widget".into(),
        kind: "Widget".into(),
        list_kind: "WidgetList".into(),
        namespaced: true,
        short_names: vec!["wd".into()],
        categories: vec![],
        verbs: crate::registry::VERBS_ALL
            .iter()
            .map(|v| v.to_string())
            .collect(),
        subresources: vec!["status".into()],
        decode: None,
    }
}

#[test]
fn custom_resources_get_a_document_without_strategic_merge() {
    let registry = Registry::builtin();
    registry.insert(widget());
    let doc = v3_group_version(&registry, "apis/stable.example.com/v1").unwrap();
    let w = schema(&doc, "com.example.stable.v1.Widget");
    assert_eq!(w["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(w["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
    let patch =
        &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert_eq!(
        patch["operationId"],
        "patchStableExampleComV1NamespacedWidget"
    );
    let body = patch["requestBody"]["content"].as_object().unwrap();
    assert!(!body.contains_key("application/strategic-merge-patch+json"));
    assert!(supports_query_param_v3(
        &doc,
        ("stable.example.com", "v1", "Widget"),
        "fieldValidation"
    ));
    assert!(v3_root(&registry)["paths"]
        .get("apis/stable.example.com/v1")
        .is_some());
}

#[test]
fn v2_is_swagger_with_definitions_and_patch_parameters() {
    let registry = Registry::builtin();
    let doc = v2(&registry);
    assert_eq!(doc["swagger"], "2.0");
    let defs = doc["definitions"].as_object().unwrap();
    assert!(defs.contains_key("io.k8s.api.apps.v1.Deployment"));
    assert!(defs.contains_key("io.k8s.api.core.v1.Pod"));
    // v2 keeps `$ref` with its description side by side, as upstream's v2 does.
    let spec = &defs["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(spec["$ref"], "#/definitions/io.k8s.api.core.v1.PodSpec");
    assert!(spec.get("description").is_some());
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r.strip_prefix("#/definitions/").expect("v2 ref");
        assert!(defs.contains_key(name), "dangling {r}");
    }
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    let params = patch["parameters"].as_array().unwrap();
    assert_eq!(params[0]["in"], "body");
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["type"] == "string"));
    assert!(patch["consumes"]
        .as_array()
        .unwrap()
        .contains(&json!("application/strategic-merge-patch+json")));
}

#[test]
fn cache_serves_the_generated_bytes_and_follows_registry_changes() {
    let registry = Registry::builtin();
    let cache = OpenApiCache::new();
    let doc = cache
        .group_version(&registry, "/apis/apps/v1?hash=x")
        .unwrap();
    let direct = serde_json::to_vec(&v3_group_version(&registry, "apis/apps/v1").unwrap()).unwrap();
    assert_eq!(doc.bytes(), direct);
    assert_eq!(doc.hash, document_hash(&direct));
    assert_eq!(cache.builds(), 1);
    let again = cache.group_version(&registry, "apis/apps/v1").unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&doc.gzip(), &again.gzip()),
        "served from cache"
    );
    assert_eq!(cache.builds(), 1, "a cached document is not built again");
    let root: Value = serde_json::from_slice(&cache.root(&registry).bytes()).unwrap();
    assert_eq!(root, v3_root(&registry));
    assert!(cache
        .group_version(&registry, "apis/stable.example.com/v1")
        .is_none());
    registry.insert(widget());
    assert!(cache
        .group_version(&registry, "apis/stable.example.com/v1")
        .is_some());
    let root: Value = serde_json::from_slice(&cache.root(&registry).bytes()).unwrap();
    assert!(root["paths"].get("apis/stable.example.com/v1").is_some());
    let v2: Value = serde_json::from_slice(&cache.v2(&registry).bytes()).unwrap();
    assert!(v2["definitions"]
        .get("com.example.stable.v1.Widget")
        .is_some());
}

/// Figures: bytes and generation time per document (`cargo test -p bramble-api
/// openapi::tests::figures -- --nocapture`).
#[test]
fn figures() {
    let registry = Registry::builtin();
    let mut total = 0usize;
    for (g, v) in registry.group_versions() {
        let path = group_version_path(&g, &v);
        let start = Instant::now();
        let doc = v3_group_version(&registry, &path).unwrap();
        let bytes = serde_json::to_vec(&doc).unwrap();
        let elapsed = start.elapsed();
        total += bytes.len();
        println!(
            "openapi v3 {path}: {} bytes, {} schemas, {} paths, {:.1} ms",
            bytes.len(),
            doc["components"]["schemas"].as_object().unwrap().len(),
            doc["paths"].as_object().unwrap().len(),
            elapsed.as_secs_f64() * 1000.0
        );
    }
    let start = Instant::now();
    let root = serde_json::to_vec(&v3_root(&registry)).unwrap();
    println!(
        "openapi v3 root: {} bytes, {:.1} ms (generates every document)",
        root.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    let start = Instant::now();
    let v2 = serde_json::to_vec(&v2(&registry)).unwrap();
    println!(
        "openapi v2: {} bytes, {:.1} ms",
        v2.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    println!("openapi v3 all group-versions: {total} bytes");
    assert!(total > 0 && !v2.is_empty());
}
