//! Registry contents against upstream discovery (`kubectl api-resources -o wide`).

use super::*;
use serde_json::json;

#[test]
fn every_feature_map_kind_is_registered() {
    let reg = Registry::builtin();
    let expected = [
        ("v1", "Namespace"),
        ("v1", "Pod"),
        ("v1", "Node"),
        ("v1", "Service"),
        ("v1", "Endpoints"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Event"),
        ("v1", "ServiceAccount"),
        ("v1", "PersistentVolume"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "ResourceQuota"),
        ("v1", "LimitRange"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "ControllerRevision"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("coordination.k8s.io/v1", "Lease"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("networking.k8s.io/v1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("events.k8s.io/v1", "Event"),
    ];
    for (av, kind) in expected {
        let info = reg
            .find_kind(av, kind)
            .unwrap_or_else(|| panic!("{av} {kind} missing"));
        assert_eq!(info.api_version(), av);
        assert_eq!(info.list_kind, format!("{kind}List"));
        assert_eq!(info.singular, kind.to_lowercase());
        assert!(info.decode.is_some());
    }
}

#[test]
fn discovery_data_matches_upstream() {
    let reg = Registry::builtin();
    let pods = reg.find("", "v1", "pods").unwrap();
    assert!(pods.namespaced);
    assert_eq!(pods.short_names, vec!["po"]);
    assert_eq!(pods.categories, vec!["all"]);
    assert_eq!(pods.verbs, VERBS_ALL);
    for sub in [
        "status",
        "binding",
        "eviction",
        "log",
        "exec",
        "attach",
        "portforward",
    ] {
        assert!(pods.has_subresource(sub), "pods/{sub}");
    }
    let ns = reg.find("", "v1", "namespaces").unwrap();
    assert!(!ns.namespaced);
    assert!(!ns.verbs.contains(&"deletecollection".to_string()));
    assert!(ns.has_subresource("finalize") && ns.has_subresource("status"));
    let deploy = reg.find("apps", "v1", "deployments").unwrap();
    assert_eq!(deploy.short_names, vec!["deploy"]);
    assert!(deploy.has_subresource("scale") && deploy.has_subresource("status"));
    assert_eq!(deploy.qualified_resource(), "deployments.apps");
    let crd = reg
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .unwrap();
    assert_eq!(crd.short_names, vec!["crd", "crds"]);
    assert!(!crd.namespaced);
    let csr = reg
        .find_kind("certificates.k8s.io/v1", "CertificateSigningRequest")
        .unwrap();
    assert!(csr.has_subresource("approval"));
    let cs = reg.find("", "v1", "componentstatuses").unwrap();
    assert_eq!(cs.verbs, vec!["get", "list"]);
    for (plural, short) in [
        ("services", "svc"),
        ("configmaps", "cm"),
        ("nodes", "no"),
        ("endpoints", "ep"),
        ("serviceaccounts", "sa"),
        ("persistentvolumes", "pv"),
        ("persistentvolumeclaims", "pvc"),
        ("resourcequotas", "quota"),
        ("limitranges", "limits"),
        ("events", "ev"),
    ] {
        assert_eq!(reg.find("", "v1", plural).unwrap().short_names, vec![short]);
    }
    let all: Vec<String> = reg
        .all()
        .iter()
        .filter(|r| r.categories.contains(&"all".to_string()))
        .map(|r| r.resource.clone())
        .collect();
    // (every served version is in the category, as upstream: autoscaling/v2 and v1)
    assert_eq!(
        all,
        vec![
            "pods",
            "services",
            "daemonsets",
            "deployments",
            "replicasets",
            "statefulsets",
            "horizontalpodautoscalers",
            "horizontalpodautoscalers",
            "cronjobs",
            "jobs"
        ]
    );
}

#[test]
fn resolves_names_like_kubectl() {
    let reg = Registry::builtin();
    let one = |n: &str| {
        let found = reg.by_short_or_plural(n);
        assert!(!found.is_empty(), "{n}");
        found[0].qualified_resource()
    };
    assert_eq!(one("po"), "pods");
    assert_eq!(one("pod"), "pods");
    assert_eq!(one("Pod"), "pods");
    assert_eq!(one("deploy"), "deployments.apps");
    assert_eq!(one("deployments.apps"), "deployments.apps");
    assert_eq!(
        one("crds"),
        "customresourcedefinitions.apiextensions.k8s.io"
    );
    // `ev` is core events first, then events.k8s.io.
    let ev = reg.by_short_or_plural("ev");
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].group, "");
    assert_eq!(ev[1].group, "events.k8s.io");
    assert!(reg.by_short_or_plural("nope").is_empty());
    assert!(reg.by_short_or_plural("pods.apps").is_empty());
}

#[test]
fn group_versions_start_with_core() {
    let reg = Registry::builtin();
    let gvs = reg.group_versions();
    assert_eq!(gvs[0], ("".to_string(), "v1".to_string()));
    assert!(gvs.contains(&("apps".to_string(), "v1".to_string())));
    assert!(gvs.contains(&("autoscaling".to_string(), "v2".to_string())));
    let unique: std::collections::HashSet<_> = gvs.iter().collect();
    assert_eq!(unique.len(), gvs.len());
    assert_eq!(reg.in_group_version("batch", "v1").len(), 2);
}

#[test]
fn inserts_and_removes_custom_resources() {
    let reg = Registry::builtin();
    let before = reg.all().len();
    let info = ResourceInfo {
        group: "example.com".into(),
        version: "v1".into(),
        resource: "widgets".into(),
        singular: "widget".into(),
        kind: "Widget".into(),
        list_kind: "WidgetList".into(),
        namespaced: true,
        short_names: vec!["wd".into()],
        categories: vec!["all".into()],
        verbs: VERBS_ALL.iter().map(|s| s.to_string()).collect(),
        subresources: vec![],
        decode: None,
    };
    reg.insert(info.clone());
    reg.insert(info);
    assert_eq!(reg.all().len(), before + 1);
    assert_eq!(reg.by_short_or_plural("wd")[0].kind, "Widget");
    assert!(reg.find_kind("example.com/v1", "Widget").is_some());
    assert_eq!(reg.group_versions().last().unwrap().0, "example.com");
    assert!(reg.remove("example.com", "v1", "widgets").is_some());
    assert!(reg.remove("example.com", "v1", "widgets").is_none());
    assert_eq!(reg.all().len(), before);
}

#[test]
fn every_builtin_round_trips_a_minimal_object() {
    let reg = Registry::builtin();
    for info in reg.all() {
        let obj =
            json!({"apiVersion": info.api_version(), "kind": info.kind, "metadata": {"name": "x"}});
        let decode = info.decode.unwrap();
        let out = decode(obj).unwrap_or_else(|e| panic!("{}: {e}", info.kind));
        assert_eq!(out["kind"], info.kind.as_str());
        assert_eq!(out["apiVersion"], info.api_version().as_str());
        assert_eq!(out["metadata"]["name"], "x");
    }
}

#[test]
fn split_api_versions() {
    assert_eq!(split_api_version("v1"), ("", "v1"));
    assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
}
