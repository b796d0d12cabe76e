//! Upstream field selector grammar, supported labels per resource, and matching.

use super::*;
use crate::registry::Registry;
use serde_json::json;

fn info(group: &str, resource: &str) -> std::sync::Arc<ResourceInfo> {
    Registry::builtin()
        .all()
        .into_iter()
        .find(|r| r.group == group && r.resource == resource)
        .unwrap()
}

#[test]
fn parses_terms_like_upstream() {
    let s = FieldSelector::parse("b==2,a=1,c!=3").unwrap();
    let terms: Vec<(&str, &str, bool)> = s
        .requirements()
        .iter()
        .map(|r| (r.field.as_str(), r.value.as_str(), r.not_equal))
        .collect();
    // Upstream sorts the terms.
    assert_eq!(
        terms,
        vec![("a", "1", false), ("b", "2", false), ("c", "3", true)]
    );
    assert_eq!(s.to_string(), "a=1,b=2,c!=3");
    assert!(FieldSelector::parse("").unwrap().is_everything());
    assert!(FieldSelector::parse(",").unwrap().is_everything());
    let esc = FieldSelector::parse(r"a=x\,y\=z\\").unwrap();
    assert_eq!(esc.requirements()[0].value, r"x,y=z\");
    assert_eq!(esc.to_string(), r"a=x\,y\=z\\");
    assert_eq!(
        FieldSelector::parse("a=").unwrap().requirements()[0].value,
        ""
    );
}

#[test]
fn parse_errors_match_upstream_messages() {
    assert_eq!(
        FieldSelector::parse("a").unwrap_err().to_string(),
        "invalid selector: 'a'; can't understand 'a'"
    );
    assert_eq!(
        FieldSelector::parse("x=1,b").unwrap_err().to_string(),
        "invalid selector: 'x=1,b'; can't understand 'b'"
    );
    assert_eq!(
        FieldSelector::parse("a=b=c").unwrap_err().to_string(),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        FieldSelector::parse(r"a=\x").unwrap_err().to_string(),
        r"invalid field selector: invalid escape sequence: \x"
    );
    assert_eq!(
        FieldSelector::parse(r"a=b\").unwrap_err().to_string(),
        r"invalid field selector: invalid escape sequence: \"
    );
}

#[test]
fn unsupported_labels_are_rejected_per_resource() {
    let pods = info("", "pods");
    for ok in [
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ] {
        FieldSelector::parse_for(&pods, &format!("{ok}=x")).unwrap();
    }
    let err = FieldSelector::parse_for(&pods, "spec.foo=x").unwrap_err();
    assert_eq!(err.to_string(), "field label not supported: spec.foo");
    let status: crate::Status = err.into();
    assert_eq!(status.code(), 400);
    // Legacy `spec.host` is renamed.
    let host = FieldSelector::parse_for(&pods, "spec.host=n1").unwrap();
    assert_eq!(host.requirements()[0].field, "spec.nodeName");

    let cms = info("", "configmaps");
    assert!(FieldSelector::parse_for(&cms, "status.phase=Running").is_err());
    assert_eq!(
        supported_field_labels(&cms),
        vec!["metadata.name", "metadata.namespace"]
    );
    assert!(supported_field_labels(&info("", "events")).contains(&"involvedObject.uid"));
    assert!(supported_field_labels(&info("", "secrets")).contains(&"type"));
    assert!(supported_field_labels(&info("", "nodes")).contains(&"spec.unschedulable"));
    assert!(supported_field_labels(&info("", "namespaces")).contains(&"status.phase"));
    assert!(supported_field_labels(&info("apps", "replicasets")).contains(&"status.replicas"));
    assert!(supported_field_labels(&info("batch", "jobs")).contains(&"status.successful"));
    assert!(
        supported_field_labels(&info("certificates.k8s.io", "certificatesigningrequests"))
            .contains(&"spec.signerName")
    );
}

#[test]
fn matches_object_fields_with_zero_values() {
    let pods = info("", "pods");
    let pod = json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIP": "10.0.0.5"}
    });
    let m = |s: &str| FieldSelector::parse_for(&pods, s).unwrap().matches(&pod);
    assert!(m("spec.nodeName=n1"));
    assert!(m("spec.nodeName==n1,metadata.namespace=default"));
    assert!(!m("spec.nodeName=n2"));
    assert!(m("spec.nodeName!=n2"));
    assert!(m("status.phase!=Succeeded,status.phase!=Failed"));
    assert!(m("spec.hostNetwork=false"));
    assert!(m("status.nominatedNodeName="));
    assert!(!m("status.nominatedNodeName!="));
    assert!(m("spec.host=n1"));
    let unscheduled = json!({"metadata": {"name": "q"}, "spec": {}});
    assert!(FieldSelector::parse_for(&pods, "spec.nodeName=")
        .unwrap()
        .matches(&unscheduled));
    let sel = FieldSelector::parse_for(&pods, "spec.nodeName=n1,status.phase!=Failed").unwrap();
    assert_eq!(sel.requires_exact_match("spec.nodeName"), Some("n1"));
    assert_eq!(sel.requires_exact_match("status.phase"), None);

    let nodes = info("", "nodes");
    let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
    assert!(FieldSelector::parse_for(&nodes, "spec.unschedulable=true")
        .unwrap()
        .matches(&node));
    assert!(FieldSelector::parse_for(&nodes, "spec.unschedulable=false")
        .unwrap()
        .matches(&json!({"spec": {}})));

    let jobs = info("batch", "jobs");
    assert!(FieldSelector::parse_for(&jobs, "status.successful=0")
        .unwrap()
        .matches(&json!({})));
    assert!(FieldSelector::parse_for(&jobs, "status.successful=2")
        .unwrap()
        .matches(&json!({"status": {"succeeded": 2}})));

    let events = info("", "events");
    let ev = json!({"involvedObject": {"kind": "Pod", "name": "p"}, "reportingComponent": "kubelet",
        "source": {}, "type": "Warning"});
    let em = |s: &str| FieldSelector::parse_for(&events, s).unwrap().matches(&ev);
    assert!(em("involvedObject.kind=Pod,involvedObject.name=p"));
    assert!(em("source=kubelet"));
    assert!(em("type=Warning"));
    let ev2 = json!({"source": {"component": "scheduler"}});
    assert!(FieldSelector::parse_for(&events, "source=scheduler")
        .unwrap()
        .matches(&ev2));
}

#[test]
fn custom_resolvers_serve_crd_selectable_fields() {
    let resolve = |label: &str| match label {
        "metadata.name" | "metadata.namespace" => {
            Some((label.to_string(), FieldSource::from_json_path(label)))
        }
        "spec.color" => Some((
            label.to_string(),
            FieldSource::from_json_path(".spec.color"),
        )),
        _ => None,
    };
    let sel = FieldSelector::parse_with("spec.color=blue", resolve).unwrap();
    assert!(sel.matches(&json!({"spec": {"color": "blue"}})));
    assert!(!sel.matches(&json!({"spec": {"color": "red"}})));
    assert_eq!(
        FieldSelector::parse_with("spec.size=1", resolve)
            .unwrap_err()
            .to_string(),
        "field label not supported: spec.size"
    );
}
