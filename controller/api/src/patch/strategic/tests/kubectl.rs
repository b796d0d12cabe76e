//! Patches captured from the real `kubectl` (v1.32.4) talking to a recording server that
//! served the `CURRENT` Deployment below (its env var `S` added on the server, between the
//! manifest's `A` and `B`), applied as the API server would.
//!
//! `kubectl label` and `kubectl annotate` send JSON merge patches, not strategic ones, so they
//! are not here.

use serde_json::{json, Value};

use super::builtin;
use crate::patch::strategic::apply;

const CURRENT: &str = r#"{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {
    "name": "web",
    "namespace": "default",
    "annotations": {
      "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"image\":\"nginx:1.26\",\"name\":\"web\",\"ports\":[{\"containerPort\":80}]}]}}}}\n"
    },
    "uid": "u-1",
    "resourceVersion": "5",
    "generation": 1
  },
  "spec": {
    "replicas": 2,
    "selector": {
      "matchLabels": {
        "app": "web"
      }
    },
    "template": {
      "metadata": {
        "labels": {
          "app": "web"
        }
      },
      "spec": {
        "containers": [
          {
            "name": "web",
            "image": "nginx:1.26",
            "env": [
              {
                "name": "A",
                "value": "1"
              },
              {
                "name": "S",
                "value": "server"
              },
              {
                "name": "B",
                "value": "2"
              }
            ],
            "ports": [
              {
                "containerPort": 80,
                "protocol": "TCP"
              }
            ],
            "imagePullPolicy": "IfNotPresent"
          }
        ]
      }
    }
  }
}"#;

/// `kubectl apply -f` of the manifest with the image changed to nginx:1.27 and env `B`
/// removed (the first apply had A and B).
const APPLY_IMAGE_AND_ENV: &str = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{},\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"env\":[{\"name\":\"A\",\"value\":\"1\"}],\"image\":\"nginx:1.27\",\"name\":\"web\",\"ports\":[{\"containerPort\":80}]}]}}}}\n"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"$patch":"delete","name":"B"}],"image":"nginx:1.27","name":"web"}]}}}}"#;

/// `kubectl apply -f` adding a `log` sidecar before `web`, replacing env `B` by `C`, adding
/// tolerations and a finalizer.
const APPLY_SIDECAR: &str = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{},\"finalizers\":[\"example.com/keep\"],\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"args\":[\"tail\",\"-f\",\"/dev/null\"],\"image\":\"busybox\",\"name\":\"log\"},{\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"C\",\"value\":\"3\"}],\"image\":\"nginx:1.26\",\"name\":\"web\",\"ports\":[{\"containerPort\":80}]}],\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\"}]}}}}\n"},"finalizers":["example.com/keep"]},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"log"},{"name":"web"}],"containers":[{"args":["tail","-f","/dev/null"],"image":"busybox","name":"log"},{"$setElementOrder/env":[{"name":"A"},{"name":"C"}],"env":[{"name":"C","value":"3"},{"$patch":"delete","name":"B"}],"name":"web"}],"tolerations":[{"key":"k","operator":"Exists"}]}}}}"#;

/// `kubectl edit` changing the image to nginx:1.29.
const EDIT_IMAGE: &str = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":\"2\"}],\"image\":\"nginx:1.29\",\"name\":\"web\",\"ports\":[{\"containerPort\":80}]}]}}}}\n"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"image":"nginx:1.29","name":"web"}]}}}}"#;

/// `kubectl set image deployment/web web=nginx:1.28`.
const SET_IMAGE: &str = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"image":"nginx:1.28","name":"web"}]}}}}"#;

/// `kubectl set env deployment/web D=4`.
const SET_ENV_ADD: &str = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"$setElementOrder/env":[{"name":"A"},{"name":"S"},{"name":"B"},{"name":"D"}],"env":[{"name":"D","value":"4"}],"name":"web"}]}}}}"#;

/// `kubectl set env deployment/web A-`.
const SET_ENV_REMOVE: &str = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"$setElementOrder/env":[{"name":"S"},{"name":"B"}],"env":[{"$patch":"delete","name":"A"}],"name":"web"}]}}}}"#;

/// `kubectl rollout restart deployment/web`.
const ROLLOUT_RESTART: &str = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-23T09:18:17Z"}}}}}"#;

/// Applies a captured patch to `CURRENT`; checks that everything outside `spec.template` and
/// the annotations is untouched.
fn apply_captured(patch: &str) -> Value {
    let current: Value = serde_json::from_str(CURRENT).unwrap();
    let patch: Value = serde_json::from_str(patch).unwrap();
    let got = apply(&builtin("apps", "Deployment"), &current, &patch).unwrap();
    assert_eq!(got["metadata"]["uid"], "u-1");
    assert_eq!(got["spec"]["replicas"], 2);
    assert_eq!(got["spec"]["selector"], current["spec"]["selector"]);
    got
}

fn container<'a>(got: &'a Value, name: &str) -> &'a Value {
    got["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name}"))
}

fn env_names(c: &Value) -> Vec<&str> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

fn last_applied(v: &Value) -> &Value {
    &v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
}

#[test]
fn second_apply_changes_the_image_and_removes_an_env_var() {
    let got = apply_captured(APPLY_IMAGE_AND_ENV);
    let web = container(&got, "web");
    assert_eq!(web["image"], "nginx:1.27");
    // B is gone; the server-added S stays.
    assert_eq!(
        web["env"],
        json!([{"name": "A", "value": "1"}, {"name": "S", "value": "server"}])
    );
    // Fields only the server set survive.
    assert_eq!(
        web["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(web["imagePullPolicy"], "IfNotPresent");
    let patch: Value = serde_json::from_str(APPLY_IMAGE_AND_ENV).unwrap();
    assert_eq!(last_applied(&got), last_applied(&patch));
    // No directive is left in the object.
    assert!(!got.to_string().contains("$setElementOrder"));
    assert!(!got.to_string().contains("$patch"));
}

#[test]
fn apply_adding_a_sidecar_and_replacing_an_env_var() {
    let got = apply_captured(APPLY_SIDECAR);
    let names: Vec<&str> = got["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["log", "web"]);
    assert_eq!(
        container(&got, "log"),
        &json!({"args": ["tail", "-f", "/dev/null"], "image": "busybox", "name": "log"})
    );
    let web = container(&got, "web");
    // C takes B's place in the manifest's order; S stays between A and C.
    assert_eq!(env_names(web), ["A", "S", "C"]);
    assert_eq!(web["image"], "nginx:1.26");
    assert_eq!(
        got["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "k", "operator": "Exists"}])
    );
    assert_eq!(got["metadata"]["finalizers"], json!(["example.com/keep"]));
}

#[test]
fn edit_and_set_image_change_only_the_image() {
    for (patch, image) in [(EDIT_IMAGE, "nginx:1.29"), (SET_IMAGE, "nginx:1.28")] {
        let got = apply_captured(patch);
        let web = container(&got, "web");
        assert_eq!(web["image"], image);
        assert_eq!(env_names(web), ["A", "S", "B"]);
        assert_eq!(
            web["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
    }
}

#[test]
fn set_env_adds_and_removes_in_the_requested_order() {
    let got = apply_captured(SET_ENV_ADD);
    assert_eq!(env_names(container(&got, "web")), ["A", "S", "B", "D"]);
    assert_eq!(
        container(&got, "web")["env"][3],
        json!({"name": "D", "value": "4"})
    );
    let got = apply_captured(SET_ENV_REMOVE);
    assert_eq!(env_names(container(&got, "web")), ["S", "B"]);
}

#[test]
fn rollout_restart_annotates_the_template() {
    let got = apply_captured(ROLLOUT_RESTART);
    assert_eq!(
        got["spec"]["template"]["metadata"],
        json!({
            "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-23T09:18:17Z"}
        })
    );
    assert_eq!(env_names(container(&got, "web")), ["A", "S", "B"]);
}
