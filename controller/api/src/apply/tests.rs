use serde_json::json;

use super::*;
use crate::registry::Registry;

fn deployments() -> std::sync::Arc<ResourceInfo> {
    Registry::builtin()
        .find("apps", "v1", "deployments")
        .unwrap()
}

fn config(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

const NOW: &str = "2026-01-01T00:00:00Z";

#[test]
fn create_then_conflict_then_force() {
    let info = deployments();
    let obj = apply(&info, None, &config(2, "nginx"), "alice", false, NOW).unwrap();
    let mf = &obj["metadata"]["managedFields"][0];
    assert_eq!(mf["manager"], "alice");
    assert_eq!(mf["operation"], "Apply");
    assert_eq!(mf["apiVersion"], "apps/v1");
    assert_eq!(mf["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

    // same values from another manager: shared ownership, no conflict
    let shared = apply(&info, Some(&obj), &config(2, "nginx"), "bob", false, NOW).unwrap();
    assert_eq!(
        shared["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let err = apply(&info, Some(&obj), &config(3, "nginx"), "bob", false, NOW).unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\" using apps/v1: .spec.replicas"
    );
    assert_eq!(err.causes[0].field, ".spec.replicas");
    assert_eq!(err.causes[0].reason, "FieldManagerConflict");

    let err = apply(&info, Some(&obj), &config(3, "redis"), "bob", false, NOW).unwrap_err();
    assert!(
        err.message.starts_with(
            "Apply failed with 2 conflicts: conflicts with \"alice\" using apps/v1:\n- "
        ),
        "{}",
        err.message
    );

    let forced = apply(&info, Some(&obj), &config(3, "nginx"), "bob", true, NOW).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let alice = read_entries(&forced)
        .into_iter()
        .find(|e| e.manager == "alice")
        .unwrap();
    assert!(alice
        .fields
        .children
        .get(&crate::managed_fields::PathElement::Field("spec".into()))
        .is_some_and(|s| !s
            .children
            .contains_key(&crate::managed_fields::PathElement::Field(
                "replicas".into()
            ))));
}

#[test]
fn fields_no_longer_applied_are_removed_unless_shared() {
    let info = deployments();
    let mut c = config(2, "nginx");
    c["metadata"]["labels"]["tier"] = json!("fe");
    let obj = apply(&info, None, &c, "alice", false, NOW).unwrap();
    assert_eq!(obj["metadata"]["labels"]["tier"], "fe");
    let obj2 = apply(&info, Some(&obj), &config(2, "nginx"), "alice", false, NOW).unwrap();
    assert!(obj2["metadata"]["labels"].get("tier").is_none(), "{obj2}");

    // a field bob also applies stays when alice drops it
    let shared = apply(&info, Some(&obj), &c, "bob", false, NOW).unwrap();
    let obj3 = apply(
        &info,
        Some(&shared),
        &config(2, "nginx"),
        "alice",
        false,
        NOW,
    )
    .unwrap();
    assert_eq!(obj3["metadata"]["labels"]["tier"], "fe");
}

#[test]
fn lists_merge_by_key_and_manager_is_required() {
    let info = deployments();
    let obj = apply(&info, None, &config(1, "nginx"), "alice", false, NOW).unwrap();
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}});
    let both = apply(&info, Some(&obj), &sidecar, "bob", false, NOW).unwrap();
    let mut names: Vec<&str> = both["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["c", "side"]);
    assert_eq!(
        apply(&info, None, &sidecar, "", false, NOW)
            .unwrap_err()
            .code(),
        400
    );
}

#[test]
fn updates_take_changed_fields_and_conflict_with_apply() {
    let info = deployments();
    let obj = apply(&info, None, &config(2, "nginx"), "alice", false, NOW).unwrap();
    let mut edited = obj.clone();
    edited["spec"]["replicas"] = json!(4);
    record_update(&info, &obj, &mut edited, "kubectl-client-side-apply", NOW);
    let entries = read_entries(&edited);
    let csa = entries
        .iter()
        .find(|e| e.manager == "kubectl-client-side-apply")
        .unwrap();
    assert_eq!(csa.operation, "Update");
    assert_eq!(csa.fields.leaf_paths(), vec![".spec.replicas"]);
    let err = apply(&info, Some(&edited), &config(3, "nginx"), "bob", false, NOW).unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    // alice no longer owns replicas, so re-applying her old value conflicts too
    assert_eq!(
        apply(
            &info,
            Some(&edited),
            &config(2, "nginx"),
            "alice",
            false,
            NOW
        )
        .unwrap_err()
        .code(),
        409
    );
}
