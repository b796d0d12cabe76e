use std::collections::{BTreeMap, HashMap};

use k8s_openapi::ByteString;
use serde_json::json;

use super::*;

/// ConfigMaps and Secrets held in memory (the API server in the integration tests).
#[derive(Default)]
struct Objects {
    config_maps: HashMap<String, ConfigMap>,
    secrets: HashMap<String, Secret>,
}

impl EnvObjects for Objects {
    fn config_map<'a>(
        &'a self,
        _ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, String>> {
        Box::pin(async move { Ok(self.config_maps.get(name).cloned()) })
    }

    fn secret<'a>(
        &'a self,
        _ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        Box::pin(async move { Ok(self.secrets.get(name).cloned()) })
    }
}

fn objects() -> Objects {
    let mut o = Objects::default();
    o.config_maps.insert(
        "cfg".into(),
        ConfigMap {
            data: Some(BTreeMap::from([
                ("mode".to_string(), "fast".to_string()),
                ("LEVEL".to_string(), "3".to_string()),
                ("1bad".to_string(), "x".to_string()),
            ])),
            ..Default::default()
        },
    );
    o.secrets.insert(
        "creds".into(),
        Secret {
            data: Some(BTreeMap::from([(
                "password".to_string(),
                ByteString(b"s3cret".to_vec()),
            )])),
            ..Default::default()
        },
    );
    o
}

fn pod(env: serde_json::Value, env_from: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1",
                     "labels": {"app": "shop"}, "annotations": {"team": "core"}},
        "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [{
            "name": "c", "image": "i", "env": env, "envFrom": env_from,
            "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}
        }]}
    }))
    .unwrap()
}

const NODE: EnvNode = EnvNode {
    host_ip: IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 5)),
    allocatable_milli_cpu: 4000,
    allocatable_memory: 1 << 30,
};

async fn resolve(p: &Pod) -> Result<Vec<(String, String)>, String> {
    let input = EnvInput {
        pod: p,
        container: &p.spec.as_ref().unwrap().containers[0],
        pod_ips: &["10.42.0.7".parse().unwrap()],
        node: &NODE,
    };
    container_env(&input, &objects(), &EventRecorder::discard("n1")).await
}

fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
    env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn every_source_resolves() {
    let p = pod(
        json!([
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
            {"name": "CPU_LIM", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": true}}},
            {"name": "URL", "value": "http://$(POD).$(NS):$(CFG_LEVEL)/$$(POD)/$(UNSET)"}
        ]),
        json!([{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
               {"secretRef": {"name": "missing", "optional": true}}]),
    );
    let env = resolve(&p).await.unwrap();
    assert_eq!(get(&env, "POD"), Some("web"));
    assert_eq!(get(&env, "NS"), Some("ns"));
    assert_eq!(get(&env, "APP"), Some("shop"));
    assert_eq!(get(&env, "TEAM"), Some("core"));
    assert_eq!(get(&env, "SA"), Some("sa"));
    assert_eq!(get(&env, "IP"), Some("10.42.0.7"));
    assert_eq!(get(&env, "HOST"), Some("10.0.0.5"));
    assert_eq!(get(&env, "MEM_MI"), Some("64"));
    assert_eq!(get(&env, "CPU_REQ"), Some("250"));
    // No cpu limit: the node's allocatable, in whole cores rounded up.
    assert_eq!(get(&env, "CPU_LIM"), Some("4"));
    assert_eq!(get(&env, "MODE"), Some("fast"));
    assert_eq!(get(&env, "PW"), Some("s3cret"));
    assert_eq!(get(&env, "OPT"), None);
    assert_eq!(get(&env, "CFG_mode"), Some("fast"));
    assert_eq!(get(&env, "CFG_1bad"), Some("x"));
    assert_eq!(get(&env, "URL"), Some("http://web.ns:3/$(POD)/$(UNSET)"));
    // envFrom comes first, env after it.
    let pos = |k: &str| env.iter().position(|(n, _)| n == k).unwrap();
    assert!(pos("CFG_LEVEL") < pos("POD"));
}

#[tokio::test]
async fn invalid_envfrom_keys_are_skipped() {
    let p = pod(json!([]), json!([{"configMapRef": {"name": "cfg"}}]));
    let env = resolve(&p).await.unwrap();
    assert_eq!(get(&env, "mode"), Some("fast"));
    assert_eq!(get(&env, "1bad"), None);
}

#[tokio::test]
async fn missing_objects_and_keys_are_upstreams_errors() {
    let cases = [
        (
            json!([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}]),
            json!([]),
            "configmap \"x\" not found",
        ),
        (
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]),
            json!([]),
            "secret \"x\" not found",
        ),
        (
            json!([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]),
            json!([]),
            "couldn't find key k in ConfigMap ns/cfg",
        ),
        (
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]),
            json!([]),
            "couldn't find key k in Secret ns/creds",
        ),
        (
            json!([]),
            json!([{"secretRef": {"name": "gone"}}]),
            "secret \"gone\" not found",
        ),
        (
            json!([]),
            json!([{"configMapRef": {"name": "gone"}}]),
            "configmap \"gone\" not found",
        ),
    ];
    for (env, from, msg) in cases {
        assert_eq!(resolve(&pod(env, from)).await.unwrap_err(), msg);
    }
    // Optional keys are skipped.
    let p = pod(
        json!([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": true}}}]),
        json!([]),
    );
    assert!(get(&resolve(&p).await.unwrap(), "A").is_none());
}

#[test]
fn command_expansion() {
    let env = vec![("A".to_string(), "1".to_string())];
    let items = vec!["$(A)".to_string(), "$$(A)".to_string(), "$(B)".to_string()];
    assert_eq!(expand_command(Some(&items), &env), ["1", "$(A)", "$(B)"]);
}
