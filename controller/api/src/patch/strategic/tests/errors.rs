//! Failures: upstream's messages and the Status codes its PATCH handler answers with.

use super::{apply_kind, builtin, merge_item, yaml};
use crate::patch::strategic::{apply, PatchError};
use crate::patch::{
    supported_patch_types, unsupported_patch_type, BUILTIN_PATCH_TYPES,
    CUSTOM_RESOURCE_PATCH_TYPES, STRATEGIC_MERGE_PATCH,
};
use crate::status::Reason;

#[test]
fn missing_merge_key_reads_like_upstream() {
    let err = merge_item(
        "mergingList: [{name: 1, value: a}]",
        "mergingList: [{value: b}]",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: map[value:b] does not contain declared merge key: name"
    );

    // The issue users hit: a volume without its name, through a DaemonSet.
    let status = apply_kind(
        "apps",
        "DaemonSet",
        "spec: {template: {spec: {volumes: [{name: v, emptyDir: {}}]}}}",
        "spec: {template: {spec: {volumes: [{hostPath: {path: /var/lib/kubelet/pods}}]}}}",
    )
    .unwrap_err();
    assert_eq!(
        status.message,
        "map: map[hostPath:map[path:/var/lib/kubelet/pods]] does not contain declared merge key: name"
    );
    // Upstream answers with a plain error: code 500.
    assert_eq!(status.code(), 500);
}

#[test]
fn delete_directive_without_merge_key_is_rejected() {
    let err = merge_item(
        "mergingList: [{name: 1}]",
        "mergingList: [{$patch: delete}]",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: map[$patch:delete] does not contain declared merge key: name"
    );
}

#[test]
fn custom_resources_get_upstreams_415() {
    let mut info = builtin("example.com", "Widget");
    info.decode = None;
    let status = apply(&info, &yaml("spec: {a: 1}"), &yaml("spec: {a: 2}")).unwrap_err();
    assert_eq!(status.reason, Reason::UnsupportedMediaType);
    assert_eq!(status.code(), 415);
    assert_eq!(
        status.message,
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
    assert_eq!(supported_patch_types(&info), CUSTOM_RESOURCE_PATCH_TYPES);
    assert!(supported_patch_types(&builtin("", "Pod")).contains(&STRATEGIC_MERGE_PATCH));
    assert_eq!(
        unsupported_patch_type(&BUILTIN_PATCH_TYPES).message,
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, \
         application/strategic-merge-patch+json, application/apply-patch+yaml"
    );
}

#[test]
fn a_patch_that_is_not_an_object_is_a_bad_request() {
    let info = builtin("", "ConfigMap");
    let original = yaml("data: {a: b}");
    for (patch, kind) in [
        ("[1]", "array"),
        ("\"x\"", "string"),
        ("3", "number"),
        ("true", "bool"),
    ] {
        let patch: serde_json::Value = serde_json::from_str(patch).unwrap();
        let status = apply(&info, &original, &patch).unwrap_err();
        assert_eq!(status.reason, Reason::BadRequest);
        assert_eq!(
            status.message,
            format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            )
        );
    }
    // `null` decodes to an empty patch.
    assert_eq!(
        apply(&info, &original, &serde_json::Value::Null).unwrap(),
        original
    );
}

#[test]
fn malformed_directive_keys_are_bad_requests() {
    let err = merge_item("mergingIntList: [1]", "$deleteFromPrimitiveList: [1]").unwrap_err();
    assert_eq!(err, PatchError::BadPatchFormatForPrimitiveList);
    assert_eq!(err.to_status().code(), 400);
    let err = merge_item("mergingList: [{name: 1}]", "$setElementOrder: [{name: 1}]").unwrap_err();
    assert_eq!(err, PatchError::BadPatchFormatForSetElementOrderList);
    assert_eq!(
        err.to_status().message,
        "invalid patch format of setElementOrder list"
    );
    let err = merge_item(
        "mergingList: [{name: 1}]",
        "$setElementOrder/mergingList: oops",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected a []interface {}, but received a string"
    );
}

#[test]
fn lists_of_lists_are_unprocessable() {
    let err = merge_item("mergingIntList: [[1]]", "mergingIntList: [[2]]").unwrap_err();
    assert_eq!(err, PatchError::NoListOfLists);
    let status = err.to_status();
    assert_eq!(status.code(), 422);
    assert_eq!(status.reason, Reason::Invalid);
    assert_eq!(
        status.message,
        "the server rejected our request due to an error in our request"
    );
}

#[test]
fn mixed_element_types_are_rejected() {
    let err = merge_item("mergingList: [{name: 1}]", "mergingList: [x]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "list element types are not identical: [[map[name:1]] [x]]"
    );
    let err = merge_item("mergingIntList: [1]", "mergingIntList: [1.5]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "list element types are not identical: [[1] [1.5]]"
    );
}

#[test]
fn inputs_are_not_modified() {
    let info = builtin("", "Pod");
    let original = yaml("spec: {containers: [{name: a, image: a}]}");
    let patch = yaml("spec: {containers: [{name: a, $patch: delete}]}");
    let (o, p) = (original.clone(), patch.clone());
    let got = apply(&info, &original, &patch).unwrap();
    assert_eq!(got, yaml("spec: {containers: []}"));
    assert_eq!((original, patch), (o, p));
}
