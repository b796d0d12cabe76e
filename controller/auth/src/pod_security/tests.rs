use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": spec})).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), v.to_string()))
        .collect()
}

#[test]
fn plain_pod_violates_restricted_in_upstreams_words() {
    let p = pod(json!({"containers": [{"name": "c", "image": "busybox"}]}));
    assert!(check(&p, Level::Baseline).is_empty());
    let policy = NamespacePolicy::from_labels(&labels(&[("enforce", "restricted")]));
    let d = admit(&p, "x", &policy);
    assert_eq!(
        d.forbidden.unwrap(),
        "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": \
         allowPrivilegeEscalation != false (container \"c\" must set \
         securityContext.allowPrivilegeEscalation=false), unrestricted capabilities \
         (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"c\" must set \
         securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must \
         set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    assert!(d.warnings.is_empty());
}

#[test]
fn hardened_pod_passes_restricted() {
    let p = pod(json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "busybox", "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
        "volumes": [{"name": "d", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "s"}}]
    }));
    assert_eq!(check(&p, Level::Restricted), vec![]);
}

#[test]
fn baseline_checks() {
    let p = pod(json!({
        "hostNetwork": true, "hostPID": true,
        "securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1"},
                                        {"name": "kernel.shm_rmid_forced", "value": "1"}],
                            "seccompProfile": {"type": "Unconfined"}},
        "containers": [
            {"name": "a", "image": "i", "securityContext": {"privileged": true,
                "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}, "procMount": "Unmasked",
                "seLinuxOptions": {"type": "spc_t"}},
             "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "b", "image": "i", "securityContext": {"privileged": true}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}]
    }));
    let text: Vec<String> = check(&p, Level::Baseline)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text,
        [
            "non-default capabilities (container \"a\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
            "host namespaces (hostNetwork=true, hostPID=true)",
            "hostPath volumes (volume \"h\")",
            "hostPort (container \"a\" uses hostPort 8080)",
            "privileged (containers \"a\", \"b\" must not set securityContext.privileged=true)",
            "procMount (container \"a\" must not set securityContext.procMount to \"Unmasked\")",
            "seLinuxOptions (container \"a\" set forbidden securityContext.seLinuxOptions: type \"spc_t\")",
            "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")",
            "forbidden sysctls (net.core.somaxconn)",
        ]
    );
    // restricted replaces the hostPath and baseline seccomp checks with its own
    let r: Vec<String> = check(&p, Level::Restricted)
        .iter()
        .map(|v| v.reason.clone())
        .collect();
    assert!(r.contains(&"restricted volume types".to_string()), "{r:?}");
    assert!(!r.contains(&"hostPath volumes".to_string()), "{r:?}");
    assert_eq!(r.iter().filter(|x| *x == "seccompProfile").count(), 1);
}

#[test]
fn restricted_root_and_volumes() {
    let p = pod(json!({
        "securityContext": {"runAsUser": 0, "runAsNonRoot": false,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "i", "securityContext": {
            "allowPrivilegeEscalation": false, "runAsUser": 0,
            "capabilities": {"drop": ["ALL"], "add": ["SYS_TIME"]}}}],
        "volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}},
                    {"name": "g", "gitRepo": {"repository": "r"}}]
    }));
    let text: Vec<String> = check(&p, Level::Restricted)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        text.contains(
            &"runAsUser=0 (pod must not set runAsUser=0; container \"c\" must not set runAsUser=0)"
                .to_string()
        ),
        "{text:?}"
    );
    assert!(
        text.contains(
            &"runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
                .to_string()
        ),
        "{text:?}"
    );
    assert!(text.contains(&"restricted volume types (volumes \"n\", \"g\" use restricted volume types \"nfs\", \"gitRepo\")".to_string()), "{text:?}");
    assert!(text.contains(&"unrestricted capabilities (container \"c\" must not include \"SYS_TIME\" in securityContext.capabilities.add)".to_string()), "{text:?}");
}

#[test]
fn labels_pick_modes_and_versions() {
    let p = NamespacePolicy::from_labels(&labels(&[
        ("enforce", "baseline"),
        ("enforce-version", "v1.30"),
        ("warn", "restricted"),
        ("audit", "bogus"),
    ]));
    assert_eq!(p.enforce.to_string(), "baseline:v1.30");
    assert_eq!(p.warn.to_string(), "restricted:latest");
    assert_eq!(p.audit.level, Level::Restricted);
    let none = NamespacePolicy::from_labels(&BTreeMap::new());
    assert_eq!(none.enforce.level, Level::Privileged);
    let plain = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
    let d = admit(&plain, "x", &p);
    assert!(d.forbidden.is_none());
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].starts_with(
        "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
    ));
}
