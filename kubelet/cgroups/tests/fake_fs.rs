//! Both managers against temp dirs laid out as cgroupfs lays them out (control files that
//! the kernel would create are created by the test).

use std::fs;
use std::path::Path;

use bramble_cgroups::{
    detect, manager_for, CgroupError, CgroupManager, CgroupVersion, Resources, V1Manager, V2Manager,
};

fn put(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn get(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn fake_v1(root: &Path) {
    for c in ["cpu", "cpuacct", "memory", "pids", "cpuset", "freezer"] {
        fs::create_dir_all(root.join(c)).unwrap();
    }
    put(&root.join("cpuset/cpuset.cpus"), "0-1\n");
    put(&root.join("cpuset/cpuset.mems"), "0\n");
}

fn fake_v2(root: &Path) {
    put(
        &root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma\n",
    );
    put(&root.join("cgroup.subtree_control"), "");
}

#[test]
fn detect_tells_versions_apart() {
    let v1 = tempfile::tempdir().unwrap();
    fake_v1(v1.path());
    let v2 = tempfile::tempdir().unwrap();
    fake_v2(v2.path());
    let none = tempfile::tempdir().unwrap();
    assert_eq!(detect(v1.path()).unwrap(), CgroupVersion::V1);
    assert_eq!(detect(v2.path()).unwrap(), CgroupVersion::V2);
    assert!(matches!(
        detect(none.path()),
        Err(CgroupError::UnknownRoot(_))
    ));
    assert_eq!(manager_for(v2.path()).unwrap().version(), CgroupVersion::V2);
}

#[test]
fn v1_create_writes_every_controller_and_copies_cpuset() {
    let root = tempfile::tempdir().unwrap();
    fake_v1(root.path());
    let m = V1Manager::new(root.path());
    let pod = Path::new("kubepods/burstable/pod1234");
    let r = Resources {
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        memory_limit: Some(64 << 20),
        pids_limit: Some(-1),
        cpuset_cpus: None,
    };
    m.create(pod, &r).unwrap();
    let r0 = root.path();
    assert_eq!(
        get(&r0.join("cpu/kubepods/burstable/pod1234/cpu.shares")),
        "512"
    );
    assert_eq!(
        get(&r0.join("cpu/kubepods/burstable/pod1234/cpu.cfs_quota_us")),
        "50000"
    );
    assert_eq!(
        get(&r0.join("cpu/kubepods/burstable/pod1234/cpu.cfs_period_us")),
        "100000"
    );
    assert_eq!(
        get(&r0.join("memory/kubepods/burstable/pod1234/memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        get(&r0.join("pids/kubepods/burstable/pod1234/pids.max")),
        "max"
    );
    for level in [
        "kubepods",
        "kubepods/burstable",
        "kubepods/burstable/pod1234",
    ] {
        assert_eq!(
            get(&r0.join("cpuset").join(level).join("cpuset.cpus")),
            "0-1"
        );
        assert_eq!(get(&r0.join("cpuset").join(level).join("cpuset.mems")), "0");
    }
    assert!(r0.join("freezer/kubepods/burstable/pod1234").is_dir());
    assert!(r0.join("cpuacct/kubepods/burstable/pod1234").is_dir());
    assert!(m.exists(pod));
    assert!(!m.exists(Path::new("kubepods/besteffort")));
}

#[test]
fn v1_update_touches_only_given_settings() {
    let root = tempfile::tempdir().unwrap();
    fake_v1(root.path());
    let m = V1Manager::new(root.path());
    let p = Path::new("kubepods");
    m.create(p, &Resources::default()).unwrap();
    assert!(!root.path().join("cpu/kubepods/cpu.shares").exists());
    m.update(
        p,
        &Resources {
            cpu_quota: Some(-1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        get(&root.path().join("cpu/kubepods/cpu.cfs_quota_us")),
        "-1"
    );
    assert!(!root
        .path()
        .join("memory/kubepods/memory.limit_in_bytes")
        .exists());
}

#[test]
fn v1_stats_read_kernel_files() {
    let root = tempfile::tempdir().unwrap();
    fake_v1(root.path());
    let m = V1Manager::new(root.path());
    let p = Path::new("kubepods/podx");
    m.create(p, &Resources::default()).unwrap();
    let r0 = root.path();
    put(
        &r0.join("cpuacct/kubepods/podx/cpuacct.usage"),
        "123456789\n",
    );
    put(
        &r0.join("cpu/kubepods/podx/cpu.stat"),
        "nr_periods 40\nnr_throttled 7\nthrottled_time 900000\nnr_bursts 0\n",
    );
    put(
        &r0.join("memory/kubepods/podx/memory.usage_in_bytes"),
        "10485760\n",
    );
    put(
        &r0.join("memory/kubepods/podx/memory.stat"),
        "cache 1\ninactive_file 5\ntotal_inactive_file 4194304\n",
    );
    put(
        &r0.join("memory/kubepods/podx/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    put(&r0.join("pids/kubepods/podx/pids.current"), "3\n");
    let s = m.stats(p).unwrap();
    assert_eq!(s.cpu_usage_nanos, Some(123_456_789));
    assert_eq!(s.cpu_periods, Some(40));
    assert_eq!(s.cpu_throttled_periods, Some(7));
    assert_eq!(s.cpu_throttled_nanos, Some(900_000));
    assert_eq!(s.memory_usage_bytes, Some(10 << 20));
    assert_eq!(s.memory_working_set_bytes, Some(6 << 20));
    assert_eq!(s.oom_kills, Some(2));
    assert_eq!(s.pids_current, Some(3));
}

#[test]
fn v1_pids_and_remove() {
    let root = tempfile::tempdir().unwrap();
    // No cpuset: creation writes no files, so `rmdir` works on the plain temp dirs.
    for c in ["cpu", "memory", "pids"] {
        fs::create_dir_all(root.path().join(c)).unwrap();
    }
    let m = V1Manager::new(root.path());
    let p = Path::new("kubepods/besteffort/podq");
    m.create(p, &Resources::default()).unwrap();
    m.create(&p.join("ctr"), &Resources::default()).unwrap();
    put(
        &root
            .path()
            .join("memory/kubepods/besteffort/podq/cgroup.procs"),
        "41\n42\n",
    );
    assert_eq!(m.pids(p).unwrap(), vec![41, 42]);
    assert!(matches!(m.remove(p), Err(CgroupError::Busy { .. })));
    fs::remove_file(
        root.path()
            .join("memory/kubepods/besteffort/podq/cgroup.procs"),
    )
    .unwrap();
    m.remove(p).unwrap();
    for c in ["cpu", "memory", "pids"] {
        assert!(!root.path().join(c).join(p).exists());
        assert!(root.path().join(c).join("kubepods/besteffort").is_dir());
    }
    assert!(matches!(
        m.remove(Path::new("../etc")),
        Err(CgroupError::BadPath(_))
    ));
}

#[test]
fn v2_create_delegates_controllers_and_converts_units() {
    let root = tempfile::tempdir().unwrap();
    fake_v2(root.path());
    let m = V2Manager::new(root.path());
    let pod = Path::new("kubepods/burstable/podabc");
    let r = Resources {
        cpu_shares: Some(1024),
        cpu_quota: Some(25_000),
        cpu_period: Some(100_000),
        memory_limit: Some(32 << 20),
        pids_limit: Some(100),
        cpuset_cpus: None,
    };
    m.create(pod, &r).unwrap();
    let r0 = root.path();
    for dir in ["", "kubepods", "kubepods/burstable"] {
        let sc = get(&r0.join(dir).join("cgroup.subtree_control"));
        for c in ["+cpu", "+cpuset", "+memory", "+pids", "+io", "+hugetlb"] {
            assert!(sc.split_whitespace().any(|w| w == c), "{dir}: {sc}");
        }
        assert!(!sc.contains("rdma"));
    }
    assert!(!r0
        .join("kubepods/burstable/podabc/cgroup.subtree_control")
        .exists());
    let d = r0.join("kubepods/burstable/podabc");
    assert_eq!(get(&d.join("cpu.weight")), "39");
    assert_eq!(get(&d.join("cpu.max")), "25000 100000");
    assert_eq!(get(&d.join("memory.max")), (32u64 << 20).to_string());
    assert_eq!(get(&d.join("pids.max")), "100");
    m.update(
        pod,
        &Resources {
            cpu_quota: Some(-1),
            memory_limit: Some(-1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(get(&d.join("cpu.max")), "max 100000");
    assert_eq!(get(&d.join("memory.max")), "max");
    assert!(m.exists(pod));
}

#[test]
fn v2_skips_parents_that_already_delegate() {
    let root = tempfile::tempdir().unwrap();
    fake_v2(root.path());
    put(
        &root.path().join("cgroup.subtree_control"),
        "cpuset cpu io memory hugetlb pids\n",
    );
    let m = V2Manager::new(root.path());
    m.create(Path::new("kubepods"), &Resources::default())
        .unwrap();
    // Unchanged: nothing was missing, so nothing was written.
    assert_eq!(
        get(&root.path().join("cgroup.subtree_control")),
        "cpuset cpu io memory hugetlb pids\n"
    );
}

#[test]
fn v2_stats_read_kernel_files() {
    let root = tempfile::tempdir().unwrap();
    fake_v2(root.path());
    let m = V2Manager::new(root.path());
    let p = Path::new("kubepods/podz");
    m.create(p, &Resources::default()).unwrap();
    let d = root.path().join("kubepods/podz");
    put(
        &d.join("cpu.stat"),
        "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 800\n",
    );
    put(&d.join("memory.current"), "8388608\n");
    put(
        &d.join("memory.stat"),
        "anon 1\nfile 2\ninactive_file 1048576\nactive_file 3\n",
    );
    put(
        &d.join("memory.events"),
        "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
    );
    put(&d.join("pids.current"), "2\n");
    put(&d.join("cgroup.procs"), "77\n");
    let s = m.stats(p).unwrap();
    assert_eq!(s.cpu_usage_nanos, Some(5_000_000));
    assert_eq!(s.cpu_periods, Some(10));
    assert_eq!(s.cpu_throttled_periods, Some(4));
    assert_eq!(s.cpu_throttled_nanos, Some(800_000));
    assert_eq!(s.memory_usage_bytes, Some(8 << 20));
    assert_eq!(s.memory_working_set_bytes, Some(7 << 20));
    assert_eq!(s.oom_kills, Some(1));
    assert_eq!(s.pids_current, Some(2));
    assert_eq!(m.pids(p).unwrap(), vec![77]);
    assert!(matches!(m.remove(p), Err(CgroupError::Busy { .. })));
}

#[test]
fn v2_add_pid_writes_cgroup_procs() {
    let root = tempfile::tempdir().unwrap();
    fake_v2(root.path());
    let m = V2Manager::new(root.path());
    let p = Path::new("kubepods/besteffort/pod9");
    m.create(p, &Resources::default()).unwrap();
    m.add_pid(p, 4242).unwrap();
    assert_eq!(get(&root.path().join(p).join("cgroup.procs")), "4242");
    let bad = m.stats(Path::new("/abs"));
    assert!(matches!(bad, Err(CgroupError::BadPath(_))));
}
