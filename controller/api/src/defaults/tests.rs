//! Defaults compared with what upstream stores for the same minimal manifests.

use serde_json::{json, Value};

use super::apply;
use crate::resources::ResourceInfo;

fn identity(v: Value) -> Result<Value, String> {
    Ok(v)
}

fn info(group: &str, kind: &str) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        // HorizontalPodAutoscalers are defaulted as autoscaling/v2 (v1 converts to it)
        version: if group == "autoscaling" { "v2" } else { "v1" }.into(),
        resource: format!("{}s", kind.to_lowercase()),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced: true,
        short_names: vec![],
        categories: vec![],
        verbs: vec![],
        subresources: vec![],
        decode: Some(identity),
    }
}

fn defaulted(group: &str, kind: &str, mut v: Value) -> Value {
    apply(&info(group, kind), &mut v);
    v
}

#[test]
fn pod_defaults_match_upstream() {
    let p = defaulted(
        "",
        "Pod",
        json!({"spec": {"containers": [
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
         "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}},
         "livenessProbe": {"httpGet": {"port": 80}}},
        {"name": "b", "image": "nginx:1.27"}]}}),
    );
    let s = &p["spec"];
    assert_eq!(s["restartPolicy"], "Always");
    assert_eq!(s["dnsPolicy"], "ClusterFirst");
    assert_eq!(s["terminationGracePeriodSeconds"], 30);
    assert_eq!(s["schedulerName"], "default-scheduler");
    assert_eq!(s["securityContext"], json!({}));
    assert_eq!(s["enableServiceLinks"], true);
    let a = &s["containers"][0];
    assert_eq!(a["imagePullPolicy"], "Always");
    assert_eq!(a["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(a["terminationMessagePolicy"], "File");
    assert_eq!(a["ports"][0]["protocol"], "TCP");
    assert_eq!(
        a["resources"]["requests"],
        json!({"cpu": "100m", "memory": "64Mi"})
    );
    assert_eq!(
        a["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(s["containers"][1]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(s["containers"][1]["resources"], json!({}));
    assert!(s.get("priority").is_none());
    assert!(s.get("tolerations").is_none());
}

#[test]
fn templates_get_pod_spec_defaults_but_not_pod_only_ones() {
    let d = defaulted(
        "apps",
        "Deployment",
        json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "nginx", "resources": {"limits": {"cpu": "1"}}}]}}}}),
    );
    let s = &d["spec"];
    assert_eq!(s["replicas"], 1);
    assert_eq!(
        s["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(s["revisionHistoryLimit"], 10);
    assert_eq!(s["progressDeadlineSeconds"], 600);
    let ps = &s["template"]["spec"];
    assert_eq!(ps["restartPolicy"], "Always");
    assert_eq!(ps["containers"][0]["imagePullPolicy"], "Always");
    assert!(ps.get("enableServiceLinks").is_none());
    assert!(ps["containers"][0]["resources"].get("requests").is_none());
}

#[test]
fn recreate_strategy_gets_no_rolling_update() {
    let d = defaulted(
        "apps",
        "Deployment",
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn service_defaults() {
    let s = defaulted(
        "",
        "Service",
        json!({"spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}),
    );
    assert_eq!(
        s["spec"],
        json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "x"},
        "sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]})
    );
    let np = defaulted(
        "",
        "Service",
        json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]}}),
    );
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
    let lb = defaulted(
        "",
        "Service",
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP"}}),
    );
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
    let en = defaulted(
        "",
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "a.b"}}),
    );
    assert!(en["spec"].get("ipFamilyPolicy").is_none());
    assert!(en["spec"].get("internalTrafficPolicy").is_none());
}

#[test]
fn workload_defaults() {
    let ds = defaulted("apps", "DaemonSet", json!({}));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    let ss = defaulted(
        "apps",
        "StatefulSet",
        json!({"spec": {"volumeClaimTemplates": [{"spec": {}}]}}),
    );
    assert_eq!(ss["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        ss["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        ss["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(ss["spec"]["replicas"], 1);
    assert_eq!(
        ss["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    let rs = defaulted("apps", "ReplicaSet", json!({}));
    assert_eq!(rs["spec"]["replicas"], 1);
}

#[test]
fn job_and_cronjob_defaults() {
    let j = defaulted(
        "batch",
        "Job",
        json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}}),
    );
    let s = &j["spec"];
    assert_eq!(
        (s["parallelism"].clone(), s["completions"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(s["backoffLimit"], 6);
    assert_eq!(s["completionMode"], "NonIndexed");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
    assert!(s.get("manualSelector").is_none());
    assert_eq!(s["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(j["metadata"]["labels"], json!({"a": "b"}));
    let only_par = defaulted("batch", "Job", json!({"spec": {"parallelism": 3}}));
    assert!(only_par["spec"].get("completions").is_none());
    let cj = defaulted(
        "batch",
        "CronJob",
        json!({"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": {}}}}}}),
    );
    let s = &cj["spec"];
    assert_eq!(s["concurrencyPolicy"], "Allow");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["successfulJobsHistoryLimit"], 3);
    assert_eq!(s["failedJobsHistoryLimit"], 1);
    assert_eq!(s["jobTemplate"]["spec"]["backoffLimit"], 6);
    assert_eq!(
        s["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
}

#[test]
fn core_object_defaults() {
    let ns = defaulted("", "Namespace", json!({"metadata": {"name": "a"}}));
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(defaulted("", "Secret", json!({}))["type"], "Opaque");
    let pvc = defaulted("", "PersistentVolumeClaim", json!({"spec": {}}));
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    let pv = defaulted("", "PersistentVolume", json!({"spec": {}}));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    let ep = defaulted(
        "",
        "Endpoints",
        json!({"subsets": [{"ports": [{"port": 80}]}]}),
    );
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    let lr = defaulted(
        "",
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}}),
    );
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "2", "memory": "1Mi"})
    );
}

#[test]
fn other_group_defaults() {
    let h = defaulted(
        "autoscaling",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
    );
    assert_eq!(h["spec"]["minReplicas"], 1);
    assert_eq!(
        h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
    assert_eq!(
        h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );
    assert_eq!(
        h["spec"]["behavior"]["scaleUp"]["policies"][0],
        json!({"type": "Pods", "value": 4, "periodSeconds": 15})
    );
    assert_eq!(
        defaulted("scheduling.k8s.io", "PriorityClass", json!({"value": 1}))["preemptionPolicy"],
        "PreemptLowerPriority"
    );
    let sc = defaulted(
        "storage.k8s.io",
        "StorageClass",
        json!({"provisioner": "x"}),
    );
    assert_eq!(
        (sc["reclaimPolicy"].clone(), sc["volumeBindingMode"].clone()),
        (json!("Delete"), json!("Immediate"))
    );
    let rb = defaulted(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        json!({"roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}]}),
    );
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][1]["apiGroup"], "");
    let crd = defaulted(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        json!({"spec": {"names": {"kind": "Widget", "plural": "widgets"}}}),
    );
    assert_eq!(crd["spec"]["names"]["singular"], "widget");
    assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    let ic = defaulted(
        "networking.k8s.io",
        "IngressClass",
        json!({"spec": {"controller": "a.io/b", "parameters": {"kind": "K", "name": "n"}}}),
    );
    assert_eq!(ic["spec"]["parameters"]["scope"], "Cluster");
}

#[test]
fn volumes_and_host_network() {
    let p = defaulted(
        "",
        "Pod",
        json!({"spec": {"hostNetwork": true,
        "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 8080}]}],
        "volumes": [{"name": "e"}, {"name": "s", "secret": {"secretName": "s"}}, {"name": "c", "configMap": {"name": "c"}},
                    {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}}),
    );
    let s = &p["spec"];
    assert_eq!(s["containers"][0]["ports"][0]["hostPort"], 8080);
    assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(s["volumes"][1]["secret"]["defaultMode"], 420);
    assert_eq!(s["volumes"][2]["configMap"]["defaultMode"], 420);
    assert_eq!(s["volumes"][3]["projected"]["defaultMode"], 420);
    assert_eq!(
        s["volumes"][3]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
}

#[test]
fn defaulting_is_idempotent_and_custom_resources_untouched() {
    let once = defaulted(
        "apps",
        "Deployment",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}),
    );
    let twice = defaulted("apps", "Deployment", once.clone());
    assert_eq!(once, twice);
    let w = json!({"spec": {"x": 1}});
    assert_eq!(defaulted("example.com", "Widget", w.clone()), w);
}
