//! QoS class, pod/QoS-parent cgroup settings and `oom_score_adj`, checked against upstream's
//! documented behaviour.

use std::path::PathBuf;

use bramble_cgroups::qos::{
    container_cgroup_resources, kubepods_resources, oom_score_adj, pod_cgroup_path,
    qos_parent_resources,
};
use bramble_cgroups::{ContainerResources, PodResources, QosClass, Resources};

const MI: u64 = 1 << 20;

fn ctr(cpu_req: u64, cpu_lim: u64, mem_req: u64, mem_lim: u64) -> ContainerResources {
    ContainerResources {
        cpu_request_milli: cpu_req,
        cpu_limit_milli: cpu_lim,
        memory_request: mem_req,
        memory_limit: mem_lim,
    }
}

fn pod(cs: Vec<ContainerResources>) -> PodResources {
    PodResources {
        init_containers: vec![],
        containers: cs,
    }
}

#[test]
fn qos_classes() {
    assert_eq!(pod(vec![ctr(0, 0, 0, 0)]).qos_class(), QosClass::BestEffort);
    assert_eq!(
        pod(vec![ctr(500, 500, 64 * MI, 64 * MI), ctr(100, 100, MI, MI)]).qos_class(),
        QosClass::Guaranteed
    );
    // One container without limits spoils Guaranteed.
    assert_eq!(
        pod(vec![ctr(500, 500, 64 * MI, 64 * MI), ctr(0, 0, 0, 0)]).qos_class(),
        QosClass::Burstable
    );
    assert_eq!(
        pod(vec![ctr(100, 0, 0, 0)]).qos_class(),
        QosClass::Burstable
    );
    assert_eq!(
        pod(vec![ctr(100, 200, MI, MI)]).qos_class(),
        QosClass::Burstable
    );
    // Limits only (requests not defaulted): not Guaranteed.
    assert_eq!(
        pod(vec![ctr(0, 200, 0, MI)]).qos_class(),
        QosClass::Burstable
    );
    assert_eq!(QosClass::BestEffort.as_str(), "BestEffort");
}

#[test]
fn cgroup_paths() {
    assert_eq!(
        pod_cgroup_path(QosClass::Guaranteed, "u1"),
        PathBuf::from("kubepods/podu1")
    );
    assert_eq!(
        pod_cgroup_path(QosClass::Burstable, "u1"),
        PathBuf::from("kubepods/burstable/podu1")
    );
    assert_eq!(
        pod_cgroup_path(QosClass::BestEffort, "u1"),
        PathBuf::from("kubepods/besteffort/podu1")
    );
}

#[test]
fn pod_cgroup_settings() {
    let g = pod(vec![ctr(250, 250, 32 * MI, 32 * MI)]);
    assert_eq!(
        g.pod_cgroup_resources(Some(1024)),
        Resources {
            cpu_shares: Some(256),
            cpu_quota: Some(25_000),
            cpu_period: Some(100_000),
            memory_limit: Some((32 * MI) as i64),
            pids_limit: Some(1024),
            cpuset_cpus: None,
        }
    );
    // Burstable with one container lacking limits: shares only.
    let b = pod(vec![ctr(100, 200, MI, 2 * MI), ctr(300, 0, 0, 0)]);
    assert_eq!(
        b.pod_cgroup_resources(None),
        Resources {
            cpu_shares: Some(409),
            ..Default::default()
        }
    );
    let be = pod(vec![ctr(0, 0, 0, 0)]);
    assert_eq!(
        be.pod_cgroup_resources(Some(-1)),
        Resources {
            cpu_shares: Some(2),
            ..Default::default()
        }
    );
    // Init containers: the larger of the app sum and the biggest init container.
    let with_init = PodResources {
        init_containers: vec![ctr(2000, 0, 0, 0)],
        containers: vec![ctr(100, 0, 0, 0), ctr(100, 0, 0, 0)],
    };
    assert_eq!(with_init.effective_requests(), (2000, 0));
    assert_eq!(with_init.pod_cgroup_resources(None).cpu_shares, Some(2048));
}

#[test]
fn container_settings() {
    let r = container_cgroup_resources(&ctr(100, 500, MI, 32 * MI), QosClass::Burstable);
    assert_eq!(r.cpu_shares, Some(102));
    assert_eq!(r.cpu_quota, Some(50_000));
    assert_eq!(r.memory_limit, Some((32 * MI) as i64));
    let be = container_cgroup_resources(&ctr(0, 0, 0, 0), QosClass::BestEffort);
    assert_eq!(
        be,
        Resources {
            cpu_shares: Some(2),
            ..Default::default()
        }
    );
}

#[test]
fn qos_parents_sum_burstable_requests() {
    let pods = vec![
        pod(vec![ctr(100, 0, 0, 0)]),
        pod(vec![ctr(400, 0, MI, 0)]),
        pod(vec![ctr(1000, 1000, MI, MI)]), // Guaranteed: not counted
        pod(vec![ctr(0, 0, 0, 0)]),
    ];
    let (burstable, besteffort) = qos_parent_resources(&pods);
    assert_eq!(burstable.cpu_shares, Some(512));
    assert_eq!(besteffort.cpu_shares, Some(2));
    let (empty, _) = qos_parent_resources(&[]);
    assert_eq!(empty.cpu_shares, Some(2));
    let kp = kubepods_resources(2000, 1 << 30);
    assert_eq!(kp.cpu_shares, Some(2048));
    assert_eq!(kp.memory_limit, Some(1 << 30));
}

#[test]
fn oom_score_adj_per_qos() {
    let cap = 4096 * MI;
    assert_eq!(oom_score_adj(QosClass::Guaranteed, 0, cap), -997);
    assert_eq!(oom_score_adj(QosClass::BestEffort, 0, cap), 1000);
    assert_eq!(oom_score_adj(QosClass::Burstable, 1024 * MI, cap), 750);
    assert_eq!(oom_score_adj(QosClass::Burstable, 2048 * MI, cap), 500);
    // Tiny request: would be 1000, kept below BestEffort.
    assert_eq!(oom_score_adj(QosClass::Burstable, 0, cap), 999);
    // Request at or above capacity: kept above Guaranteed.
    assert_eq!(oom_score_adj(QosClass::Burstable, cap, cap), 3);
    assert_eq!(oom_score_adj(QosClass::Burstable, 2 * cap, cap), 3);
}
