use serde_json::json;

use super::{info, node, pod, schedule, snapshot};
use crate::preemption::preempt;
use crate::priority::PriorityResolver;

fn prio(name: &str, cpu: &str, p: i32) -> bramble_informer::pod::Pod {
    pod(name, cpu, "", json!({"spec": {"priority": p}}))
}

#[test]
fn evicts_the_fewest_lowest_priority_pods() {
    let snap = snapshot(
        vec![
            node("a", "2", "4Gi", json!({})),
            node("b", "2", "4Gi", json!({})),
        ],
        vec![
            ("a", prio("a-low", "1", 10)),
            ("a", prio("a-mid", "1", 50)),
            ("b", prio("b-high", "1", 500)),
            ("b", prio("b-low", "1", 20)),
        ],
    );
    let high = prio("p", "1", 100);
    let fit = schedule(high.clone(), &snap).unwrap_err();
    let c = preempt(&info(high), false, &snap, &fit).unwrap();
    assert_eq!(c.node, "a");
    let victims: Vec<String> = c.victims.iter().map(|v| v.key()).collect();
    assert_eq!(victims, vec!["default/a-low"]);
}

#[test]
fn reports_why_preemption_cannot_help() {
    let snap = snapshot(
        vec![
            node("a", "2", "4Gi", json!({})),
            node(
                "b",
                "2",
                "4Gi",
                json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
            ),
        ],
        vec![("a", prio("a-high", "2", 1000))],
    );
    let p = prio("p", "1", 100);
    let fit = schedule(p.clone(), &snap).unwrap_err();
    let err = preempt(&info(p.clone()), false, &snap, &fit).unwrap_err();
    assert_eq!(
        format!("{} {err}", fit.message()),
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: }. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );
    let never = preempt(&info(p), true, &snap, &fit).unwrap_err();
    assert_eq!(
        never,
        "preemption: not eligible due to preemptionPolicy=Never."
    );
}

#[test]
fn nominated_pods_reserve_room_for_equal_or_higher_priority() {
    let mut snap = snapshot(vec![node("a", "2", "4Gi", json!({}))], vec![]);
    let mut nominated = prio("n", "2", 100);
    nominated.status = Some(bramble_informer::pod::PodStatus {
        nominated_node_name: Some("a".into()),
        ..Default::default()
    });
    snap.add_nominated("a", info(nominated));
    assert!(schedule(prio("low", "1", 10), &snap).is_err());
    assert!(schedule(prio("higher", "1", 200), &snap).is_ok());
}

#[test]
fn priority_classes_resolve_with_global_default() {
    let classes: Vec<k8s_openapi::api::scheduling::v1::PriorityClass> = vec![
        serde_json::from_value(json!({"metadata": {"name": "high"}, "value": 1000})).unwrap(),
        serde_json::from_value(
            json!({"metadata": {"name": "dflt"}, "value": 7, "globalDefault": true,
            "preemptionPolicy": "Never"}),
        )
        .unwrap(),
    ];
    let r = PriorityResolver::new(classes.iter());
    assert_eq!(
        r.priority(&pod(
            "p",
            "",
            "",
            json!({"spec": {"priorityClassName": "high"}})
        )),
        1000
    );
    assert_eq!(r.priority(&pod("p", "", "", json!({}))), 7);
    assert!(r.never_preempts(&pod("p", "", "", json!({}))));
    assert_eq!(
        r.priority(&pod(
            "p",
            "",
            "",
            json!({"spec": {"priorityClassName": "system-node-critical"}})
        )),
        2_000_001_000
    );
    assert_eq!(
        r.priority(&pod(
            "p",
            "",
            "",
            json!({"spec": {"priority": 3, "priorityClassName": "high"}})
        )),
        3
    );
}
