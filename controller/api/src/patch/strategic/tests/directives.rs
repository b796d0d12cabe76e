//! `$patch`, `$retainKeys` and the `replace` field strategy.

use super::{check, merge_item};
use crate::patch::strategic::PatchError;

#[test]
fn patch_delete_removes_the_element_with_that_key() {
    check(
        "
mergingList:
  - name: 1
  - name: 2
    value: b
",
        "
mergingList:
  - name: 1
    $patch: delete
",
        "
mergingList:
  - name: 2
    value: b
",
    );
}

#[test]
fn patch_delete_of_a_missing_element_is_a_no_op() {
    check(
        "mergingList: [{name: 1}]",
        "mergingList: [{name: 9, $patch: delete}]",
        "mergingList: [{name: 1}]",
    );
}

#[test]
fn add_and_delete_elements_in_one_patch() {
    check(
        "
mergingList:
  - name: 1
  - name: 2
",
        "
mergingList:
  - name: 3
  - name: 1
    $patch: delete
",
        "
mergingList:
  - name: 3
  - name: 2
",
    );
}

#[test]
fn patch_replace_in_a_list_makes_the_patch_the_list() {
    check(
        "
mergingList:
  - name: 1
    value: a
  - name: 2
",
        "
mergingList:
  - name: 3
  - $patch: replace
",
        "
mergingList:
  - name: 3
",
    );
}

#[test]
fn patch_replace_in_a_map_replaces_the_map() {
    check(
        "
simpleMap: {a: '1', b: '2'}
name: x
",
        "
simpleMap:
  c: '3'
  $patch: replace
",
        "
simpleMap: {c: '3'}
name: x
",
    );
}

#[test]
fn patch_replace_at_the_top_replaces_everything() {
    check(
        "
name: x
value: y
",
        "
$patch: replace
name: z
",
        "name: z",
    );
}

#[test]
fn patch_delete_in_a_map_empties_it() {
    check(
        "
simpleMap: {a: '1'}
name: x
",
        "simpleMap: {$patch: delete}",
        "
simpleMap: {}
name: x
",
    );
    // On a field the object does not have, the directive map adds nothing.
    check("name: x", "simpleMap: {$patch: delete}", "name: x");
}

#[test]
fn patch_merge_in_a_map_is_rejected_like_upstream() {
    let err = merge_item("simpleMap: {a: '1'}", "simpleMap: {$patch: merge, b: '2'}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown patch type: merge in map: map[$patch:merge b:2]"
    );
}

#[test]
fn patch_merge_in_a_list_is_rejected_like_upstream() {
    let err = merge_item(
        "mergingList: [{name: 1}]",
        "mergingList: [{name: 2}, {$patch: merge}]",
    )
    .unwrap_err();
    assert_eq!(err, PatchError::MergeDirectiveInList);
    assert_eq!(
        err.to_string(),
        "merging lists cannot yet be specified in the patch"
    );
}

#[test]
fn unknown_directive_in_a_list_element_is_rejected() {
    let err = merge_item(
        "mergingList: [{name: 1}]",
        "mergingList: [{name: 1, $patch: frobnicate}]",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown patch type: frobnicate in map: map[$patch:frobnicate name:1]"
    );
}

#[test]
fn replace_strategy_replaces_maps_whole() {
    check(
        "replacingItem: {a: 1, b: {c: 2}}",
        "replacingItem: {b: {d: 3}}",
        "replacingItem: {b: {d: 3}}",
    );
}

#[test]
fn retain_keys_clears_fields_not_listed() {
    // The defaulted field `other` goes, `name` stays, `value` changes.
    check(
        "
retainKeysMap:
  name: foo
  value: bar
  other: defaulted
",
        "
retainKeysMap:
  $retainKeys: [name, value]
  value: baz
",
        "
retainKeysMap:
  name: foo
  value: baz
",
    );
}

#[test]
fn retain_keys_lets_nulls_and_parallel_lists_through() {
    check(
        "
retainKeysMap:
  name: foo
  mergingIntList: [1, 2]
  other: x
",
        "
retainKeysMap:
  $retainKeys: [mergingIntList]
  name: null
  $deleteFromPrimitiveList/mergingIntList: [1]
",
        "
retainKeysMap:
  mergingIntList: [2]
",
    );
}

#[test]
fn retain_keys_in_merging_list_elements() {
    check(
        "
retainKeysMergingList:
  - name: 1
    value: a
    other: b
  - name: 2
    other: c
",
        "
retainKeysMergingList:
  - name: 1
    $retainKeys: [name, value]
    value: z
",
        "
retainKeysMergingList:
  - name: 1
    value: z
  - name: 2
    other: c
",
    );
}

#[test]
fn retain_keys_rejects_a_patch_field_it_does_not_list() {
    let err = merge_item(
        "retainKeysMap: {name: foo}",
        "retainKeysMap: {$retainKeys: [name], value: x}",
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BadPatchFormatForRetainKeys);
    let status = err.to_status();
    assert_eq!(status.code(), 400);
    assert_eq!(status.message, "invalid patch format of retainKeys");
}

#[test]
fn retain_keys_must_be_a_list() {
    let err = merge_item("retainKeysMap: {}", "retainKeysMap: {$retainKeys: name}").unwrap_err();
    assert_eq!(err, PatchError::BadPatchFormatForRetainKeys);
}
