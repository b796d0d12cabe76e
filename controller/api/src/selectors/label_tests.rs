//! Upstream `labels` selector behaviour: grammar, errors, matching, canonical strings.

use super::*;
use serde_json::json;

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn matches(sel: &str, labels: &[(&str, &str)]) -> bool {
    LabelSelector::parse(sel)
        .unwrap_or_else(|e| panic!("{sel}: {e}"))
        .matches(&set(labels))
}

fn parse_err(sel: &str) -> String {
    match LabelSelector::parse(sel) {
        Ok(s) => panic!("{sel} parsed as {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn matches_like_upstream() {
    assert!(matches("", &[("x", "y")]));
    assert!(matches("x=y", &[("x", "y")]));
    assert!(matches("x==y", &[("x", "y")]));
    assert!(matches("x=y,z=w", &[("x", "y"), ("z", "w")]));
    assert!(matches("x!=y,z!=w", &[("x", "z"), ("z", "a")]));
    assert!(matches("notin=in", &[("notin", "in")]));
    assert!(matches("x", &[("x", "z")]));
    assert!(matches("!x", &[("y", "z")]));
    assert!(matches("x>1", &[("x", "2")]));
    assert!(matches("x<1", &[("x", "0")]));
    assert!(matches("x in (a,b)", &[("x", "b")]));
    assert!(matches("x notin (a,b)", &[("x", "c")]));
    assert!(matches("x notin (a,b)", &[]));
    assert!(matches("x!=a", &[]));
    assert!(matches("x=", &[("x", "")]));
    assert!(matches("x in (,a)", &[("x", "")]));
    assert!(matches(" x = y , z ", &[("x", "y"), ("z", "1")]));

    assert!(!matches("x=z", &[]));
    assert!(!matches("x=y", &[("x", "z")]));
    assert!(!matches("x=y,z=w", &[("x", "w"), ("z", "w")]));
    assert!(!matches("x!=y,z!=w", &[("x", "z"), ("z", "w")]));
    assert!(!matches("x", &[("y", "z")]));
    assert!(!matches("!x", &[("x", "z")]));
    assert!(!matches("x>1", &[("x", "0")]));
    assert!(!matches("x<1", &[("x", "2")]));
    assert!(!matches("x>1", &[("x", "abc")]));
    assert!(!matches("x>1", &[]));
    assert!(!matches("x in (a,b)", &[("x", "c")]));
    assert!(!matches("x in (a,b)", &[]));
    assert!(!matches("x notin (a,b)", &[("x", "a")]));
}

#[test]
fn parse_errors_match_upstream_messages() {
    assert_eq!(
        parse_err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        parse_err("x==a==b"),
        "found '==', expected: ',' or 'end of string'"
    );
    assert_eq!(
        parse_err("!x=a"),
        "found '=', expected: ',' or 'end of string'"
    );
    assert_eq!(
        parse_err("x=a,"),
        "found '', expected: identifier after ','"
    );
    assert_eq!(
        parse_err(",x"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        parse_err("x in (a"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        parse_err("x in a"),
        "unable to parse requirement: found 'a' expected: '('"
    );
    assert_eq!(
        parse_err("x<a"),
        "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert!(parse_err("A_=b").starts_with(
        "unable to parse requirement: <nil>: Invalid value: \"A_\": name part must consist of alphanumeric characters"
    ));
    assert!(parse_err("x=a||y").starts_with(
        "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label must be an empty string"
    ));
    assert_eq!(
        parse_err("x=(a)"),
        "unable to parse requirement: found '(', expected: identifier"
    );
}

#[test]
fn canonical_string_sorts_keys_and_values() {
    let s = LabelSelector::parse("z in (b,a), !y, x>1, a==b, w notin (q), v!=1, u").unwrap();
    assert_eq!(s.to_string(), "a==b,u,v!=1,w notin (q),x>1,!y,z in (a,b)");
    assert_eq!(s.requirements().len(), 7);
    assert!(LabelSelector::parse("").unwrap().is_everything());
}

#[test]
fn converts_metav1_label_selector() {
    let sel = LabelSelector::from_label_selector(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]}
        ]
    }))
    .unwrap();
    assert!(sel.matches(&set(&[("app", "web"), ("tier", "fe"), ("zone", "a")])));
    assert!(!sel.matches(&set(&[("app", "web"), ("tier", "fe")])));
    assert!(!sel.matches(&set(&[
        ("app", "web"),
        ("tier", "fe"),
        ("zone", "a"),
        ("canary", "1")
    ])));
    assert!(!sel.matches(&set(&[
        ("app", "web"),
        ("tier", "fe"),
        ("zone", "a"),
        ("env", "dev")
    ])));

    let nothing = LabelSelector::from_label_selector(&Value::Null).unwrap();
    assert!(nothing.is_nothing());
    assert!(!nothing.matches(&set(&[])));
    let everything = LabelSelector::from_label_selector(&json!({})).unwrap();
    assert!(everything.matches(&set(&[("a", "b")])));

    let bad_op = LabelSelector::from_label_selector(&json!({
        "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
    }))
    .unwrap_err();
    assert_eq!(
        bad_op.to_string(),
        "\"Gt\" is not a valid label selector operator"
    );
    let empty_in = LabelSelector::from_label_selector(&json!({
        "matchExpressions": [{"key": "a", "operator": "In", "values": []}]
    }))
    .unwrap_err();
    assert_eq!(
        empty_in.to_string(),
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
    );
    let exists_with_values = LabelSelector::from_label_selector(&json!({
        "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
    }))
    .unwrap_err();
    assert_eq!(
        exists_with_values.to_string(),
        "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
    );
}

#[test]
fn matches_json_labels_and_objects() {
    let sel = LabelSelector::parse("app=web,tier").unwrap();
    let pod = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
    assert!(sel.matches_object(&pod));
    assert!(!sel.matches_object(&json!({"metadata": {}})));
    assert!(LabelSelector::parse("!app")
        .unwrap()
        .matches_object(&json!({})));
    let from_set = LabelSelector::from_set(&set(&[("app", "web")]));
    assert!(from_set.matches_labels_json(pod["metadata"].get("labels")));
    assert!(LabelSelector::from_set(&BTreeMap::new()).is_everything());
}

#[test]
fn selector_errors_become_bad_request() {
    let status: crate::Status = LabelSelector::parse("a b").unwrap_err().into();
    assert_eq!(status.code(), 400);
    assert_eq!(status.reason, crate::Reason::BadRequest);
}
