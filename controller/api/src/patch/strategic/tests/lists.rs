//! Lists: merge by key, ordered-set scalars, replaced lists, null deletion.

use super::{check, merge_item, yaml};

#[test]
fn maps_merge_recursively_and_null_deletes_a_key() {
    check(
        "
name: a
simpleMap: {k1: v1, k2: v2}
other: x
",
        "
simpleMap: {k2: null, k3: v3}
other: null
value: new
missing: null
",
        "
name: a
simpleMap: {k1: v1, k3: v3}
value: new
",
    );
}

#[test]
fn nulls_inside_a_new_value_are_dropped() {
    check(
        "name: a",
        "simpleMap: {k1: v1, k2: null}",
        "
name: a
simpleMap: {k1: v1}
",
    );
}

/// Without `$setElementOrder`, elements the object lacks come first (upstream's
/// `mergeSortedSlice` only lets an object element precede a patch element the object also
/// had after it).
#[test]
fn merging_list_adds_new_elements_and_keeps_others() {
    check(
        "
mergingList:
  - name: 1
    value: a
  - name: 2
    value: b
",
        "
mergingList:
  - name: 3
    value: c
",
        "
mergingList:
  - name: 3
    value: c
  - name: 1
    value: a
  - name: 2
    value: b
",
    );
}

#[test]
fn merging_list_merges_element_fields_by_key() {
    check(
        "
mergingList:
  - name: 1
    value: a
    other: keep
  - name: 2
    value: b
",
        "
mergingList:
  - name: 1
    value: changed
    other: null
",
        "
mergingList:
  - name: 1
    value: changed
  - name: 2
    value: b
",
    );
}

#[test]
fn non_merging_list_nested_in_merging_list_is_replaced() {
    check(
        "
mergingList:
  - name: 1
    nonMergingList:
      - name: 1
      - name: 2
        value: 2
  - name: 2
",
        "
mergingList:
  - name: 1
    nonMergingList:
      - name: 1
        value: 1
",
        "
mergingList:
  - name: 1
    nonMergingList:
      - name: 1
        value: 1
  - name: 2
",
    );
}

#[test]
fn merging_list_nested_in_merging_list_merges() {
    check(
        "
mergingList:
  - name: 1
    mergingList:
      - name: 1
      - name: 2
        value: 2
  - name: 2
",
        "
mergingList:
  - name: 1
    mergingList:
      - name: 1
        value: 1
",
        "
mergingList:
  - name: 1
    mergingList:
      - name: 1
        value: 1
      - name: 2
        value: 2
  - name: 2
",
    );
}

#[test]
fn scalar_list_with_merge_strategy_is_an_ordered_set() {
    // Patch items come in patch order; an object-only item goes before a patch item only
    // when the object had both in that order (new items are not in the object, so upstream
    // puts them first). `kubectl` pins the order with `$setElementOrder` (see `order`).
    check(
        "mergingIntList: [1, 2, 3]",
        "mergingIntList: [4, 2, 5]",
        "mergingIntList: [4, 1, 2, 5, 3]",
    );
    check(
        "mergingIntList: [1, 2, 2, 3]",
        "mergingIntList: [1]",
        "mergingIntList: [1, 2, 3]",
    );
}

#[test]
fn scalar_list_without_strategy_is_replaced() {
    check(
        "nonMergingIntList: [1, 2, 3]",
        "nonMergingIntList: [4]",
        "nonMergingIntList: [4]",
    );
}

#[test]
fn delete_from_primitive_list_removes_every_copy() {
    check(
        "mergingIntList: [1, 2, 3, 2]",
        "$deleteFromPrimitiveList/mergingIntList: [2]",
        "mergingIntList: [1, 3]",
    );
}

#[test]
fn delete_from_primitive_list_never_adds() {
    check(
        "mergingIntList: [1, 2]",
        "$deleteFromPrimitiveList/mergingIntList: [3]",
        "mergingIntList: [1, 2]",
    );
    check(
        "mergingIntList: []",
        "$deleteFromPrimitiveList/mergingIntList: [3]",
        "mergingIntList: []",
    );
    check(
        "foo: [bar]",
        "$deleteFromPrimitiveList/mergingIntList: [3]",
        "foo: [bar]",
    );
}

#[test]
fn delete_from_primitive_list_works_without_merge_strategy() {
    check(
        "nonMergingIntList: [1, 2, 3]",
        "$deleteFromPrimitiveList/nonMergingIntList: [2]",
        "nonMergingIntList: [1, 3]",
    );
}

#[test]
fn add_and_delete_in_one_scalar_patch() {
    check(
        "mergingIntList: [1, 2]",
        "
mergingIntList: [3]
$deleteFromPrimitiveList/mergingIntList: [1]
",
        "mergingIntList: [3, 2]",
    );
}

#[test]
fn list_replacing_a_scalar_loses_its_directive_elements() {
    // A value of another type replaces the field, minus `$patch` maps.
    check(
        "mergingList: oops",
        "
mergingList:
  - name: 1
  - name: 2
    $patch: delete
",
        "
mergingList:
  - name: 1
",
    );
}

#[test]
fn empty_lists_merge_to_empty() {
    check("mergingList: []", "mergingList: []", "mergingList: []");
}

#[test]
fn patch_on_missing_object_fields_is_taken_whole() {
    let got = merge_item("{}", "mergingList: [{name: 1, value: a}]").unwrap();
    assert_eq!(got, yaml("mergingList: [{name: 1, value: a}]"));
}
