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
    record_update(
        &info,
        &obj,
        &mut edited,
        "kubectl-client-side-apply",
        None,
        NOW,
    );
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

fn entry<'a>(entries: &'a [ManagedEntry], manager: &str, sub: Option<&str>) -> &'a ManagedEntry {
    entries
        .iter()
        .find(|e| e.manager == manager && e.subresource.as_deref() == sub)
        .unwrap_or_else(|| panic!("no entry of {manager} ({sub:?}) in {entries:?}"))
}

#[test]
fn manager_is_the_parameter_else_the_user_agent_prefix() {
    assert_eq!(
        manager_of(Some("kubectl-create"), Some("kubectl/v1.33.0")),
        "kubectl-create"
    );
    assert_eq!(
        manager_of(
            None,
            Some("kube-controller-manager/v1.33.0 (linux/arm64) bramble")
        ),
        "kube-controller-manager"
    );
    assert_eq!(manager_of(Some(""), Some("curl/8.0")), "curl");
    assert_eq!(manager_of(None, Some("Go-http-client")), "Go-http-client");
    assert_eq!(manager_of(None, None), "unknown");
    assert_eq!(manager_of(None, Some("/x")), "unknown");
}

#[test]
fn create_records_every_set_field_but_reset_ones() {
    let info = deployments();
    let mut obj = config(1, "nginx");
    obj["metadata"]["uid"] = json!("u-1");
    obj["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    obj["status"] = json!({"replicas": 0});
    record_create(&info, &mut obj, "kubectl-create", NOW);
    let entries = read_entries(&obj);
    assert_eq!(entries.len(), 1);
    let e = entry(&entries, "kubectl-create", None);
    assert_eq!(e.operation, "Update");
    assert_eq!(e.api_version, "apps/v1");
    let paths = e.fields.leaf_paths();
    assert!(paths.contains(&".spec.replicas".to_string()), "{paths:?}");
    assert!(
        paths.contains(&".spec.strategy.type".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&".metadata.labels.app".to_string()),
        "{paths:?}"
    );
    // status belongs to the status subresource, server-set metadata to nobody
    assert!(paths.iter().all(|p| !p.starts_with(".status")), "{paths:?}");
    assert!(paths.iter().all(|p| !p.contains("uid")), "{paths:?}");

    // entries the client sends are kept
    let mut sent = config(1, "nginx");
    write_entries(&mut sent, &entries[..]);
    sent["metadata"]["managedFields"][0]["manager"] = json!("migrated");
    record_create(&info, &mut sent, "kubectl-create", NOW);
    let kept = read_entries(&sent);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].manager, "migrated");
}

#[test]
fn subresource_writes_record_their_own_entry() {
    let info = deployments();
    let mut obj = config(1, "nginx");
    record_create(&info, &mut obj, "kubectl-create", NOW);

    // scale: the parent's spec.replicas, taken from the creator
    let mut scaled = obj.clone();
    scaled["spec"]["replicas"] = json!(3);
    record_update(&info, &obj, &mut scaled, "hpa", Some("scale"), NOW);
    let entries = read_entries(&scaled);
    let hpa = entry(&entries, "hpa", Some("scale"));
    assert_eq!(hpa.operation, "Update");
    assert_eq!(hpa.fields.leaf_paths(), vec![".spec.replicas"]);
    assert!(!entry(&entries, "kubectl-create", None)
        .fields
        .leaf_paths()
        .contains(&".spec.replicas".to_string()));
    // upstream's order: operation, time, then manager ("hpa" before "kubectl-create")
    assert_eq!(
        scaled["metadata"]["managedFields"][0]["subresource"],
        "scale"
    );

    // status: only status fields, and the same manager's entry is updated in place
    let mut st = scaled.clone();
    st["status"] = json!({"replicas": 3});
    record_update(
        &info,
        &scaled,
        &mut st,
        "kcm",
        Some("status"),
        "2026-01-02T00:00:00Z",
    );
    let mut st2 = st.clone();
    st2["status"]["readyReplicas"] = json!(2);
    // a status write cannot rewrite the entries: the stored ones are carried
    st2["metadata"]["managedFields"] = json!([]);
    record_update(
        &info,
        &st,
        &mut st2,
        "kcm",
        Some("status"),
        "2026-01-03T00:00:00Z",
    );
    let entries = read_entries(&st2);
    assert_eq!(entries.len(), 3, "{entries:?}");
    let kcm = entry(&entries, "kcm", Some("status"));
    assert_eq!(
        kcm.fields.leaf_paths(),
        vec![".status.readyReplicas", ".status.replicas"]
    );
    assert_eq!(kcm.time, "2026-01-03T00:00:00Z");

    // an applier that sets replicas now conflicts with the scaler, naming its subresource
    let err = apply(
        &info,
        Some(&st2),
        &config(5, "nginx"),
        "kubectl",
        false,
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.code(), 409);
    assert!(
        err.message.contains(
            "conflict with \"hpa\" with subresource \"scale\" using apps/v1: .spec.replicas"
        ),
        "{}",
        err.message
    );
    let forced = apply(&info, Some(&st2), &config(5, "nginx"), "kubectl", true, NOW).unwrap();
    assert!(read_entries(&forced).iter().all(|e| e.manager != "hpa"));
}
