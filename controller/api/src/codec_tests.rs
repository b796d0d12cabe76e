//! Body parsing, decoding errors as upstream words them, conversions, list encoding.

use super::*;
use serde_json::json;
use std::sync::Arc;

fn info(api_version: &str, kind: &str) -> Arc<ResourceInfo> {
    builtins().find_kind(api_version, kind).unwrap()
}

#[test]
fn parses_json_yaml_and_patch_media_types() {
    let j = br#"{"a": 1}"#;
    assert_eq!(parse_body(j, None).unwrap(), json!({"a": 1}));
    assert_eq!(
        parse_body(j, Some("application/json; charset=utf-8")).unwrap(),
        json!({"a": 1})
    );
    assert_eq!(
        parse_body(j, Some("Application/JSON")).unwrap(),
        json!({"a": 1})
    );
    assert_eq!(
        parse_body(j, Some("application/merge-patch+json")).unwrap(),
        json!({"a": 1})
    );
    assert_eq!(
        parse_body(j, Some("application/strategic-merge-patch+json")).unwrap(),
        json!({"a": 1})
    );
    assert_eq!(
        parse_body(
            br#"[{"op":"remove","path":"/a"}]"#,
            Some("application/json-patch+json")
        )
        .unwrap(),
        json!([{"op": "remove", "path": "/a"}])
    );
    let y =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  n: \"1\"\n  b: true\n";
    assert_eq!(
        parse_body(y, Some("application/yaml")).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"n": "1", "b": true}})
    );
    assert_eq!(
        parse_body(b"a: 1\n---\nb: 2\n", Some("application/apply-patch+yaml")).unwrap(),
        json!({"a": 1})
    );
    let (pt, v) = parse_patch(
        b"spec:\n  replicas: 3\n",
        Some("application/apply-patch+yaml"),
    )
    .unwrap();
    assert_eq!(pt, PatchType::Apply);
    assert_eq!(v, json!({"spec": {"replicas": 3}}));
    assert_eq!(
        parse_patch(br#"{}"#, Some("application/merge-patch+json"))
            .unwrap()
            .0,
        PatchType::Merge
    );
}

#[test]
fn rejects_unsupported_media_types_with_415() {
    let e = parse_body(b"{}", Some("text/plain")).unwrap_err();
    assert_eq!(e.code(), 415);
    assert_eq!(e.reason, Reason::UnsupportedMediaType);
    assert!(e.message.starts_with("the body of the request was in an unknown format - accepted media types include: application/json"));
    let e = parse_patch(b"{}", Some("application/json")).unwrap_err();
    assert_eq!(
        e.message,
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
    );
    let cm = info("v1", "ConfigMap");
    assert_eq!(
        decode_body(&cm, b"{}", Some("application/merge-patch+json"))
            .unwrap_err()
            .code(),
        415
    );
}

#[test]
fn malformed_bodies_are_400_with_parser_messages() {
    let e = parse_body(b"{\"a\": ", None).unwrap_err();
    assert_eq!(e.code(), 400);
    assert_eq!(
        e.message,
        "couldn't get version/kind; json parse error: unexpected end of JSON input ({\"a\": )"
    );
    let e = parse_body(b"xyz", None).unwrap_err();
    assert!(
        e.message
            .starts_with("couldn't get version/kind; json parse error: expected value"),
        "{}",
        e.message
    );
    let e = parse_body(b"a: b: c\n", Some("application/yaml")).unwrap_err();
    assert_eq!(e.code(), 400);
    assert!(
        e.message
            .starts_with("error converting YAML to JSON: yaml: "),
        "{}",
        e.message
    );
    let pod = info("v1", "Pod");
    let e = decode_body(&pod, b"{oops", None).unwrap_err();
    assert!(e.message.starts_with("the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error:"));
}

#[test]
fn fills_missing_type_meta_like_upstream_defaulting() {
    let cm = info("v1", "ConfigMap");
    let out = decode_object(&cm, json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).unwrap();
    assert_eq!(out["kind"], "ConfigMap");
    assert_eq!(out["apiVersion"], "v1");
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["kind", "apiVersion", "metadata", "data"]);
    let deploy = info("apps/v1", "Deployment");
    let out = decode_object(
        &deploy,
        json!({"apiVersion": "apps/", "metadata": {"name": "d"}}),
    )
    .unwrap();
    assert_eq!(out["apiVersion"], "apps/v1");
}

#[test]
fn mismatched_type_meta_gets_upstream_messages() {
    let pod = info("v1", "Pod");
    let e = decode_object(&pod, json!({"apiVersion": "v1", "kind": "Service"})).unwrap_err();
    assert_eq!(e.code(), 400);
    assert_eq!(
        e.message,
        "Service in version \"v1\" cannot be handled as a Pod: converting (v1.Service) to (core.Pod): unknown conversion"
    );
    let e = decode_object(&pod, json!({"apiVersion": "v1", "kind": "Foo"})).unwrap_err();
    assert_eq!(
        e.message,
        "Foo in version \"v1\" cannot be handled as a Pod: no kind \"Foo\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
    );
    let e = decode_object(&pod, json!({"apiVersion": "apps/v1", "kind": "Pod"})).unwrap_err();
    assert_eq!(
        e.message,
        "Pod in version \"v1\" cannot be handled as a Pod: no kind \"Pod\" is registered for version \"apps/v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
    );
    let hpa = info("autoscaling/v2", "HorizontalPodAutoscaler");
    let e = decode_object(
        &hpa,
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler"}),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "the API version in the data (autoscaling/v1) does not match the expected API version (autoscaling/v2)"
    );
    let e = decode_object(&pod, json!([1])).unwrap_err();
    assert!(e.message.starts_with("the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: json: cannot unmarshal array"));
    let e = decode_object(&pod, json!({"kind": 5})).unwrap_err();
    assert_eq!(e.code(), 400);
    let e = decode_object(&pod, json!({"apiVersion": "a/b/c"})).unwrap_err();
    assert!(e.message.ends_with("unexpected GroupVersion string: a/b/c"));
}

#[test]
fn type_errors_are_400_naming_the_field() {
    let deploy = info("apps/v1", "Deployment");
    let e = decode_object(
        &deploy,
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": "3"}}),
    )
    .unwrap_err();
    assert_eq!(e.code(), 400);
    assert_eq!(
        e.message,
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field Deployment.spec.replicas of type int32"
    );
    let pod = info("v1", "Pod");
    let e = decode_object(&pod, json!({"metadata": []})).unwrap_err();
    assert_eq!(
        e.message,
        "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal array into Go struct field Pod.metadata of type v1.ObjectMeta"
    );
}

#[test]
fn round_trip_keeps_objects_and_drops_unknown_fields() {
    let pod = info("v1", "Pod");
    let body = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "bogus": true}]}});
    let out = decode_object(&pod, body).unwrap();
    assert_eq!(
        out,
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    );
}

#[test]
fn quantities_are_canonicalized_and_checked() {
    let pod = info("v1", "Pod");
    let body = json!({"metadata": {"name": "p", "labels": {"limits": "x"}},
        "spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": 1, "memory": "1.5Gi"}}}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1000Mi"}}]}});
    let out = decode_object(&pod, body).unwrap();
    let res = &out["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
    assert_eq!(res["limits"], json!({"cpu": "1", "memory": "1536Mi"}));
    assert_eq!(out["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1000Mi");
    assert_eq!(out["metadata"]["labels"]["limits"], "x");
    let bad = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
        "resources": {"limits": {"cpu": "one"}}}]}});
    let e = decode_object(&pod, bad).unwrap_err();
    assert_eq!(
        e.message,
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    let node = info("v1", "Node");
    let out = decode_object(
        &node,
        json!({"status": {"capacity": {"cpu": "4", "memory": "8192Mi", "pods": "110"}}}),
    )
    .unwrap();
    assert_eq!(
        out["status"]["capacity"],
        json!({"cpu": "4", "memory": "8Gi", "pods": "110"})
    );
    let deploy = info("apps/v1", "Deployment");
    let out = decode_object(
        &deploy,
        json!({"spec": {"selector": {}, "template": {"spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "0.5Gi"}}}]}}}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "512Mi"
    );
}

#[test]
fn limit_range_items_are_not_taken_for_quantities() {
    // `spec.limits` is an array of items whose `type` is no quantity
    let lr = info("v1", "LimitRange");
    let out = decode_object(
        &lr,
        json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "0.3", "memory": "128Mi"},
            "max": {"cpu": "1000m"}, "maxLimitRequestRatio": {"cpu": 2}}]}}),
    )
    .unwrap();
    let item = &out["spec"]["limits"][0];
    assert_eq!(item["type"], "Container");
    assert_eq!(item["defaultRequest"]["cpu"], "300m");
    assert_eq!(item["max"]["cpu"], "1");
    assert_eq!(item["maxLimitRequestRatio"]["cpu"], "2");
    let bad = json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container",
        "max": {"cpu": "lots"}}]}});
    let e = decode_object(&lr, bad).unwrap_err();
    assert!(e.message.contains("quantities must match"), "{}", e.message);
}

#[test]
fn secret_string_data_merges_into_data() {
    let secret = info("v1", "Secret");
    let out = decode_object(
        &secret,
        json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="},
        "stringData": {"b": "hello", "c": "x"}}),
    )
    .unwrap();
    assert!(out.get("stringData").is_none());
    assert_eq!(
        out["data"],
        json!({"a": "eA==", "b": "aGVsbG8=", "c": "eA=="})
    );
    let e = decode_object(&secret, json!({"data": {"a": "!!!"}})).unwrap_err();
    assert_eq!(e.code(), 400);
}

#[test]
fn pod_service_account_alias_is_kept_in_sync() {
    let pod = info("v1", "Pod");
    let out = decode_object(
        &pod,
        json!({"spec": {"serviceAccount": "old", "containers": []}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["serviceAccountName"], "old");
    assert_eq!(out["spec"]["serviceAccount"], "old");
    let out = decode_object(
        &pod,
        json!({"spec": {"serviceAccountName": "new", "containers": []}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["serviceAccount"], "new");
}

#[test]
fn custom_resources_pass_through_with_type_meta_checks() {
    let widget = ResourceInfo {
        group: "example.com".into(),
        version: "v1".into(),
        resource: "widgets".into(),
        singular: "widget".into(),
        kind: "Widget".into(),
        list_kind: "WidgetList".into(),
        namespaced: true,
        short_names: vec![],
        categories: vec![],
        verbs: vec![],
        subresources: vec![],
        decode: None,
    };
    let out = decode_object(&widget, json!({"spec": {"anything": [1, 2]}})).unwrap();
    assert_eq!(
        out,
        json!({"kind": "Widget", "apiVersion": "example.com/v1", "spec": {"anything": [1, 2]}})
    );
    let e = decode_object(
        &widget,
        json!({"apiVersion": "example.com/v2", "kind": "Widget"}),
    )
    .unwrap_err();
    assert_eq!(e.message, "the API version in the data (example.com/v2) does not match the expected API version (example.com/v1)");
    let e = decode_object(
        &widget,
        json!({"apiVersion": "example.com/v1", "kind": "Gadget"}),
    )
    .unwrap_err();
    assert_eq!(e.code(), 400);
}

#[test]
fn encodes_lists_from_raw_items() {
    let pod = info("v1", "Pod");
    let items: Vec<Vec<u8>> = vec![
        br#"{"kind":"Pod","metadata":{"name":"a"}}"#.to_vec(),
        br#"{"kind":"Pod","metadata":{"name":"b"}}"#.to_vec(),
    ];
    let out = encode_list(
        &pod,
        items.iter().map(Vec::as_slice),
        "42",
        Some("tok\"en"),
        Some(7),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "42", "continue": "tok\"en", "remainingItemCount": 7},
            "items": [{"kind": "Pod", "metadata": {"name": "a"}}, {"kind": "Pod", "metadata": {"name": "b"}}]})
    );
    let empty = encode_list(
        &info("apps/v1", "Deployment"),
        std::iter::empty(),
        "1",
        None,
        None,
    );
    assert_eq!(
        String::from_utf8(empty).unwrap(),
        r#"{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"1"},"items":[]}"#
    );
}
