//! Unit tests of the eviction manager's decisions.
use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::eviction::signals::PodUsage;
use crate::eviction::thresholds::{Observation, ThresholdValue};

fn pod(name: &str, uid: &str, mem: Option<&str>) -> Arc<Pod> {
    let resources = mem.map(|m| {
        let q = k8s_openapi::apimachinery::pkg::api::resource::Quantity(m.into());
        let list: BTreeMap<_, _> = [
            ("memory".to_string(), q.clone()),
            (
                "cpu".to_string(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("100m".into()),
            ),
        ]
        .into_iter()
        .collect();
        k8s_openapi::api::core::v1::ResourceRequirements {
            requests: Some(list.clone()),
            limits: Some(list),
            ..Default::default()
        }
    });
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.uid = Some(uid.into());
    p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
        containers: vec![k8s_openapi::api::core::v1::Container {
            name: "main".into(),
            resources,
            ..Default::default()
        }],
        ..Default::default()
    });
    Arc::new(p)
}

fn obs(available: i64, usage: &[(&str, u64)]) -> Observations {
    let mut o = Observations::default();
    o.signals.insert(
        Signal::MemoryAvailable,
        Observation {
            available,
            capacity: 1 << 30,
        },
    );
    for (uid, ws) in usage {
        o.pods.insert(
            uid.to_string(),
            PodUsage {
                memory_working_set: *ws,
                processes: 1,
            },
        );
        o.containers
            .insert((uid.to_string(), "main".to_string()), *ws);
    }
    o
}

fn cfg(transition: Duration) -> EvictionConfig {
    EvictionConfig {
        thresholds: vec![
            Threshold {
                signal: Signal::MemoryAvailable,
                value: ThresholdValue::Quantity(100 << 20),
                grace_period: Duration::ZERO,
                hard: true,
            },
            Threshold {
                signal: Signal::MemoryAvailable,
                value: ThresholdValue::Quantity(200 << 20),
                grace_period: Duration::from_secs(30),
                hard: false,
            },
        ],
        pressure_transition_period: transition,
        ..Default::default()
    }
}

#[test]
fn hard_threshold_evicts_best_effort_first_with_upstream_message() {
    let mut core = EvictionCore::new(cfg(Duration::from_secs(60)));
    let pods = vec![
        ActivePod::new(pod("g", "u-g", Some("64Mi")), vec![]),
        ActivePod::new(pod("be", "u-be", None), vec![]),
    ];
    let o = obs(50 << 20, &[("u-g", 60 << 20), ("u-be", 30 << 20)]);
    let (ready, conds) = core.observe(Instant::now(), &o);
    assert!(conds.contains("MemoryPressure"));
    assert!(ready[0].hard);
    let (victim, e) = core.choose(&ready[0], &o, &pods).unwrap();
    assert_eq!(victim.metadata.name.as_deref(), Some("be"));
    assert_eq!(
        e.message,
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container main was using 30Mi, request is 0, has larger consumption of memory. "
    );
    assert_eq!(e.grace_seconds, 0);
}

#[test]
fn soft_threshold_waits_for_its_grace_period_and_conditions_linger() {
    let mut core = EvictionCore::new(cfg(Duration::from_secs(60)));
    let t0 = Instant::now();
    let o = obs(150 << 20, &[]);
    let (ready, conds) = core.observe(t0, &o);
    assert!(ready.is_empty());
    assert!(conds.contains("MemoryPressure"));
    let (ready, _) = core.observe(t0 + Duration::from_secs(31), &o);
    assert_eq!(ready.len(), 1);
    assert!(!ready[0].hard);
    // Relieved: the condition stays for the transition period, then clears.
    let calm = obs(900 << 20, &[]);
    let (ready, conds) = core.observe(t0 + Duration::from_secs(40), &calm);
    assert!(ready.is_empty());
    assert!(conds.contains("MemoryPressure"));
    let (_, conds) = core.observe(t0 + Duration::from_secs(100), &calm);
    assert!(conds.is_empty());
}

#[test]
fn evicted_status_as_upstream() {
    let mut s = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]});
    let mut e = Eviction {
        message: "low".into(),
        grace_seconds: 0,
        disruption_condition: true,
    };
    let before = s.clone();
    mark_evicted(&mut s, &e, "2026-01-01T00:00:00Z");
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["reason"], "Evicted");
    assert_eq!(s["message"], "low");
    assert_eq!(s["conditions"][1]["type"], "DisruptionTarget");
    // Local storage evictions: no DisruptionTarget condition, as upstream.
    e.disruption_condition = false;
    let mut s = before;
    mark_evicted(&mut s, &e, "2026-01-01T00:00:00Z");
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["reason"], "Evicted");
    assert_eq!(s["conditions"].as_array().unwrap().len(), 1, "{s}");
}
