//! `$setElementOrder/<field>` and the order of merged lists.

use super::{check, merge_item};

#[test]
fn set_element_order_reorders_without_changing_elements() {
    check(
        "
mergingList:
  - name: 1
    other: a
  - name: 3
    value: 3
  - name: 4
    value: 4
  - name: 2
    value: 2
",
        "
$setElementOrder/mergingList:
  - name: 4
  - name: 2
  - name: 3
  - name: 1
",
        "
mergingList:
  - name: 4
    value: 4
  - name: 2
    value: 2
  - name: 3
    value: 3
  - name: 1
    other: a
",
    );
}

#[test]
fn server_only_elements_stay_after_their_object_predecessor() {
    check(
        "
mergingList:
  - name: 1
    other: a
  - name: 2
  - name: 9
  - name: 3
  - name: 4
",
        "
$setElementOrder/mergingList:
  - name: 2
  - name: 1
  - name: 4
  - name: 3
",
        "
mergingList:
  - name: 2
  - name: 1
    other: a
  - name: 9
  - name: 4
  - name: 3
",
    );
    check(
        "
mergingList: [{name: 1}, {name: 2}, {name: 7}, {name: 9}, {name: 8}, {name: 3}, {name: 4}]
",
        "
$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]
",
        "
mergingList: [{name: 2}, {name: 1}, {name: 7}, {name: 9}, {name: 8}, {name: 4}, {name: 3}]
",
    );
    check(
        "
mergingList: [{name: 1}, {name: 3}, {name: 4}, {name: 2}, {name: 9}]
",
        "
$setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 3}, {name: 1}]
",
        "
mergingList: [{name: 4}, {name: 2}, {name: 3}, {name: 1}, {name: 9}]
",
    );
}

#[test]
fn set_element_order_with_an_added_element() {
    check(
        "
mergingList:
  - name: 1
  - name: 2
    value: 2
",
        "
$setElementOrder/mergingList: [{name: 1}, {name: 3}, {name: 2}]
mergingList:
  - name: 3
    value: 3
",
        "
mergingList:
  - name: 1
  - name: 3
    value: 3
  - name: 2
    value: 2
",
    );
}

#[test]
fn set_element_order_with_a_deleted_element() {
    check(
        "
mergingList:
  - name: 1
  - name: 2
  - name: 3
",
        "
$setElementOrder/mergingList: [{name: 3}, {name: 1}]
mergingList:
  - name: 2
    $patch: delete
",
        "
mergingList:
  - name: 3
  - name: 1
",
    );
}

#[test]
fn set_element_order_on_scalar_lists() {
    // Added item with a server-only item (4) between the kept ones.
    check(
        "mergingIntList: [1, 4, 2]",
        "
$setElementOrder/mergingIntList: [3, 1, 2]
mergingIntList: [3]
",
        "mergingIntList: [3, 1, 4, 2]",
    );
    check(
        "mergingIntList: [1, 2, 4]",
        "
$setElementOrder/mergingIntList: [1, 2, 3]
mergingIntList: [3]
",
        "mergingIntList: [1, 2, 3, 4]",
    );
    // Deletion through the parallel list, reordering through the directive.
    check(
        "mergingIntList: [1, 2, 3]",
        "
$setElementOrder/mergingIntList: [2, 1]
$deleteFromPrimitiveList/mergingIntList: [3]
",
        "mergingIntList: [2, 1]",
    );
}

#[test]
fn set_element_order_may_name_elements_the_list_lacks() {
    check(
        "mergingList: [{name: 1}, {name: 3}]",
        "
$setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}]
mergingList:
  - name: 3
    value: 3
  - name: 1
    value: 1
",
        "
mergingList:
  - name: 3
    value: 3
  - name: 1
    value: 1
",
    );
    check(
        "mergingIntList: [1, 3]",
        "$setElementOrder/mergingIntList: [3, 2, 1]",
        "mergingIntList: [3, 1]",
    );
}

#[test]
fn duplicated_merge_keys_stay_together_in_order() {
    check(
        "
mergingList:
  - name: 1
  - name: 2
    value: dup1
  - name: 3
  - name: 2
    value: dup2
  - name: 4
",
        "
$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]
",
        "
mergingList:
  - name: 2
    value: dup1
  - name: 2
    value: dup2
  - name: 1
  - name: 4
  - name: 3
",
    );
}

#[test]
fn set_element_order_for_a_list_the_object_lacks() {
    check(
        "name: x",
        "
$setElementOrder/mergingList: [{name: 2}, {name: 1}]
mergingList:
  - name: 2
  - name: 1
  - name: 5
    $patch: delete
",
        "
name: x
mergingList:
  - name: 2
  - name: 1
",
    );
}

#[test]
fn patch_order_contradicting_set_element_order_is_rejected() {
    let err = merge_item(
        "mergingList: [{name: 1}, {name: 3}, {name: 2}]",
        "
$setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}]
mergingList:
  - name: 3
    value: 3
  - name: 1
    value: 1
",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match \
         $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n"
    );
    let err = merge_item(
        "mergingIntList: [1, 3, 2]",
        "
$setElementOrder/mergingIntList: [1, 2, 3]
mergingIntList: [3, 1]
",
    )
    .unwrap_err();
    assert!(err.to_string().contains("doesn't match"), "{err}");
}
