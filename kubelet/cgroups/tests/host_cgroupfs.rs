//! Integration test against the host's real cgroupfs (`/sys/fs/cgroup`, v1 on the development
//! machine; run as root): create a pod cgroup, set limits, run processes in it, read stats,
//! remove it. A unique top-level name keeps it apart from a running node's `kubepods`.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bramble_cgroups::{manager_for, CgroupManager, CgroupVersion, Resources};

const ROOT: &str = "/sys/fs/cgroup";

struct Cleanup<'a> {
    m: &'a dyn CgroupManager,
    top: PathBuf,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.m.remove(&self.top);
    }
}

fn spawn_in(m: &dyn CgroupManager, cg: &Path, script: &str) -> std::process::Child {
    let mut child = Command::new("busybox")
        .args(["sh", "-c", &format!("read go; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("busybox (apt-get install busybox-static)");
    m.add_pid(cg, child.id()).unwrap();
    // Released only once it is inside the cgroup.
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    child
}

#[test]
fn pod_cgroup_limits_processes_on_the_host() {
    let m = manager_for(ROOT).expect("cgroupfs at /sys/fs/cgroup");
    let m: &dyn CgroupManager = m.as_ref();
    let top = PathBuf::from(format!("bramble-test-{}", std::process::id()));
    let _cleanup = Cleanup {
        m,
        top: top.clone(),
    };
    let pod = top.join("kubepods/burstable/podhosttest");

    m.create(&top.join("kubepods"), &Resources::default())
        .unwrap();
    m.create(
        &top.join("kubepods/burstable"),
        &Resources {
            cpu_shares: Some(512),
            ..Default::default()
        },
    )
    .unwrap();
    let limits = Resources {
        cpu_shares: Some(102),
        cpu_quota: Some(20_000),
        cpu_period: Some(100_000),
        memory_limit: Some(32 << 20),
        pids_limit: Some(64),
        cpuset_cpus: None,
    };
    m.create(&pod, &limits).unwrap();
    assert!(m.exists(&pod));
    if m.version() == CgroupVersion::V1 {
        let q = std::fs::read_to_string(
            Path::new(ROOT)
                .join("cpu")
                .join(&pod)
                .join("cpu.cfs_quota_us"),
        )
        .unwrap();
        assert_eq!(q.trim(), "20000");
        let l = std::fs::read_to_string(
            Path::new(ROOT)
                .join("memory")
                .join(&pod)
                .join("memory.limit_in_bytes"),
        )
        .unwrap();
        assert_eq!(l.trim(), (32u64 << 20).to_string());
    }

    // A busy loop under a 20% quota gets throttled.
    let mut spin = spawn_in(m, &pod, "while :; do :; done");
    std::thread::sleep(Duration::from_millis(700));
    let s = m.stats(&pod).unwrap();
    let pids = m.pids(&pod).unwrap();
    spin.kill().unwrap();
    spin.wait().unwrap();
    assert_eq!(pids, vec![spin.id()]);
    let usage = s.cpu_usage_nanos.unwrap();
    assert!(usage > 10_000_000, "cpu usage {usage}");
    assert!(s.cpu_throttled_periods.unwrap() > 0, "{s:?}");
    assert!(s.cpu_throttled_nanos.unwrap() > 0, "{s:?}");
    // v1 does not move charges with a migrated task: usage may be 0 for a spinning shell.
    assert!(s.memory_usage_bytes.is_some());
    assert!(s.memory_working_set_bytes.unwrap() <= s.memory_usage_bytes.unwrap());
    assert_eq!(s.pids_current, Some(1));
    assert_eq!(s.oom_kills, Some(0));

    // A memory hog in a container cgroup under the pod gets OOM-killed.
    let ctr = pod.join("hog");
    m.create(
        &ctr,
        &Resources {
            memory_limit: Some(32 << 20),
            ..Default::default()
        },
    )
    .unwrap();
    let mut hog = spawn_in(m, &ctr, "a=x; while :; do a=\"$a$a\"; done");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = hog.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "hog not killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(9), "{status:?}");
    let s = m.stats(&ctr).unwrap();
    assert!(s.oom_kills.unwrap() >= 1, "{s:?}");

    m.remove(&top).unwrap();
    assert!(!m.exists(&pod));
    assert!(!m.exists(&top));
}
