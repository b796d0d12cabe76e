//! Real pods on this host (root, cgroup v1): a pause sandbox and busybox containers through
//! the helper, libcontainer and the shims.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bramble_runtime::{
    ContainerRuntime, ContainerStatusKind, ExecConfig, ExecOutput, RuntimeError,
};
use common::{memory_kib, ns_link, wait_exit, Fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_and_echo_container_share_the_pod_namespaces() {
    let fx = Fixture::new("echo");
    let t0 = Instant::now();
    let rt = fx.client();
    let sb = rt
        .run_pod_sandbox(&fx.sandbox_config("web-0"))
        .await
        .unwrap();
    let sst = rt.sandbox_status(&sb).await.unwrap();
    assert!(sst.ready, "{sst:?}");
    let pause_pid = sst.pid.unwrap();
    assert_eq!(
        sst.netns_path.as_deref(),
        Some(format!("/proc/{pause_pid}/ns/net").as_str())
    );
    // The pause process owns fresh namespaces.
    eprintln!("sandbox took {:?}", t0.elapsed());
    let me = std::process::id() as i32;
    assert_ne!(ns_link(pause_pid, "net"), ns_link(me, "net"));
    assert_ne!(ns_link(pause_pid, "uts"), ns_link(me, "uts"));

    let cfg = fx.container_config(
        "echo",
        "echo $GREETING; echo oops >&2; echo pid=$$; hostname; cat /etc/image-marker; \
         for n in net ipc uts pid mnt; do echo $n=$(readlink /proc/self/ns/$n); done; \
         printf no-newline",
    );
    let log_path = cfg.log_path.clone();
    let id = rt.create_container(&sb, &cfg).await.unwrap();
    let st = rt.container_status(&id).await.unwrap();
    assert_eq!(st.status, ContainerStatusKind::Created);
    assert!(st.pid.is_some());
    eprintln!("sandbox+create took {:?}", t0.elapsed());
    rt.start_container(&id).await.unwrap();
    let done = wait_exit(&rt, &id, Duration::from_secs(20)).await;
    let exit = done.exit.unwrap();
    // One pod's listing: its sandbox and the container in it, nothing of other pods.
    let mut ids: Vec<String> = rt
        .list_pod_containers("uid-web-0")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.meta.id)
        .collect();
    ids.sort();
    let mut want = vec![sb.clone(), id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(rt
        .list_pod_containers("uid-other")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        (exit.exit_code, exit.reason.as_str(), exit.oom_killed),
        (0, "Completed", false)
    );

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<(&str, &str, &str, &str)> = log
        .lines()
        .map(|l| {
            let mut p = l.splitn(4, ' ');
            (
                p.next().unwrap(),
                p.next().unwrap(),
                p.next().unwrap(),
                p.next().unwrap_or(""),
            )
        })
        .collect();
    for (ts, _, _, _) in &lines {
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
            "timestamp {ts}"
        );
    }
    let body: Vec<(&str, &str, &str)> = lines.iter().map(|(_, s, t, c)| (*s, *t, *c)).collect();
    assert!(body.contains(&("stdout", "F", "hello")), "{log}");
    assert!(body.contains(&("stderr", "F", "oops")), "{log}");
    assert!(
        body.contains(&("stdout", "F", "pid=1")),
        "own PID namespace: {log}"
    );
    assert!(
        body.contains(&("stdout", "F", "web-0")),
        "pod hostname: {log}"
    );
    assert!(
        body.contains(&("stdout", "F", "busybox layer")),
        "overlay rootfs: {log}"
    );
    // Joined the pause container's network, IPC and UTS namespaces; own PID and mount ones.
    for ns in ["net", "ipc", "uts"] {
        let want = format!("{ns}={}", ns_link(pause_pid, ns));
        assert!(
            body.contains(&("stdout", "F", want.as_str())),
            "{want} in {log}"
        );
    }
    for ns in ["pid", "mnt"] {
        let other = format!("{ns}={}", ns_link(pause_pid, ns));
        assert!(
            !body.contains(&("stdout", "F", other.as_str())),
            "{other} in {log}"
        );
        assert!(
            body.iter()
                .any(|(_, _, c)| c.starts_with(&format!("{ns}="))),
            "{log}"
        );
    }
    assert!(body.contains(&("stdout", "F", "no-newline")), "{log}");

    // The sandbox keeps running while app containers come and go.
    assert!(rt.sandbox_status(&sb).await.unwrap().ready);
    rt.remove_container(&id).await.unwrap();
    assert!(rt.container_status(&id).await.is_err());
    rt.stop_pod_sandbox(&sb, Duration::from_secs(5))
        .await
        .unwrap();
    let stopped = rt.sandbox_status(&sb).await.unwrap();
    assert!(!stopped.ready);
    // `bramble pause` exits 0 on SIGTERM.
    assert_eq!(stopped.state.exit.unwrap().exit_code, 0);
    rt.remove_pod_sandbox(&sb).await.unwrap();
    assert!(rt.list_containers().await.unwrap().is_empty());
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_oom_kill_are_reported() {
    let fx = Fixture::new("oom");
    let rt = fx.client();
    let sb = rt.run_pod_sandbox(&fx.sandbox_config("oom")).await.unwrap();

    let failing = rt
        .create_container(&sb, &fx.container_config("fail", "exit 3"))
        .await
        .unwrap();
    rt.start_container(&failing).await.unwrap();
    let exit = wait_exit(&rt, &failing, Duration::from_secs(20))
        .await
        .exit
        .unwrap();
    assert_eq!(
        (exit.exit_code, exit.reason.as_str(), exit.oom_killed),
        (3, "Error", false)
    );

    let mut hog_cfg = fx.container_config("hog", "a=x; while :; do a=\"$a$a\"; done");
    hog_cfg.resources.memory_limit = Some(32 << 20);
    let hog = rt.create_container(&sb, &hog_cfg).await.unwrap();
    rt.start_container(&hog).await.unwrap();
    let exit = wait_exit(&rt, &hog, Duration::from_secs(60))
        .await
        .exit
        .unwrap();
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert_eq!(exit.signal, Some(9));
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.reason, "OOMKilled");

    rt.remove_pod_sandbox(&sb).await.unwrap();
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_graceful_stop() {
    let fx = Fixture::new("exec");
    let rt = fx.client();
    let sb = rt
        .run_pod_sandbox(&fx.sandbox_config("exec"))
        .await
        .unwrap();
    let polite = fx.container_config(
        "polite",
        "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.05; done",
    );
    let polite_log = polite.log_path.clone();
    let polite = rt.create_container(&sb, &polite).await.unwrap();
    rt.start_container(&polite).await.unwrap();

    let out = rt
        .exec_sync(
            &polite,
            &ExecConfig {
                command: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo out $X; echo err >&2; exit 4".into(),
                ],
                env: vec!["X=42".into()],
                working_dir: "/tmp".into(),
                tty: false,
            },
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out 42\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.exit_code, 4);
    let pwd = rt
        .exec_sync(
            &polite,
            &ExecConfig {
                command: vec!["pwd".into()],
                working_dir: "/tmp".into(),
                ..Default::default()
            },
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pwd.stdout), "/tmp\n");
    let missing = rt
        .exec_sync(
            &polite,
            &ExecConfig {
                command: vec!["/no/such/binary".into()],
                ..Default::default()
            },
            Duration::from_secs(20),
        )
        .await;
    // Why the exec failed comes back from the process before its execve.
    match missing {
        Err(bramble_runtime::RuntimeError::Exec(m)) => {
            assert!(
                m.contains("/no/such/binary") && m.contains("No such file"),
                "{m}"
            )
        }
        other => panic!("exec of a missing binary: {other:?}"),
    }
    // The exec'd process is in the container: its namespaces, its cgroups, its root.
    let init = rt.container_status(&polite).await.unwrap().pid.unwrap();
    let inside = rt
        .exec_sync(
            &polite,
            &ExecConfig {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "for n in net ipc uts pid mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; \
                     grep memory /proc/self/cgroup | sed s/^/self/; grep memory /proc/1/cgroup | sed s/^/init/; \
                     test -e /etc/image-marker && echo marker"
                        .into(),
                ],
                ..Default::default()
            },
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let inside = String::from_utf8_lossy(&inside.stdout).to_string();
    for n in ["net", "ipc", "uts", "pid", "mnt", "cgroup"] {
        let want = format!("{n}={}", ns_link(init, n));
        assert!(inside.contains(&want), "{want} not in {inside}");
    }
    // Its cgroups are the container's (pid 1 is the container's init in its PID namespace).
    let line = |prefix: &str| {
        inside
            .lines()
            .find_map(|l| {
                l.strip_prefix(prefix)
                    .map(|r| r.split_once(':').map(|x| x.1))
            })
            .flatten()
            .unwrap_or_default()
            .to_string()
    };
    assert!(!line("self").is_empty(), "{inside}");
    assert_eq!(line("self"), line("init"), "{inside}");
    assert!(inside.contains("marker"), "{inside}");

    // Execs at once on the one connection (the client pipelines them; the helper answers
    // a batch together): each gets its own output, errors and exit code, and a status
    // request in between gets its own answer.
    type Exec<'a> = Pin<Box<dyn Future<Output = Result<ExecOutput, RuntimeError>> + Send + 'a>>;
    let execs: Vec<Exec> = (0..24)
        .map(|n| {
            let cfg = ExecConfig {
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo out$N; echo err$N >&2; exit $((N % 7))".into(),
                ],
                env: vec![format!("N={n}")],
                ..Default::default()
            };
            let rt = &rt;
            let polite = polite.clone();
            Box::pin(async move { rt.exec_sync(&polite, &cfg, Duration::from_secs(20)).await })
                as Exec
        })
        .collect();
    let (outs, status) = tokio::join!(join_all(execs), rt.container_status(&polite));
    assert_eq!(status.unwrap().pid, Some(init));
    for (n, out) in outs.into_iter().enumerate() {
        let out = out.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("out{n}\n"));
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("err{n}\n"));
        assert_eq!(out.exit_code, n as i32 % 7);
    }

    // A container that handles SIGTERM stops within the grace period with its own code.
    let t = Instant::now();
    rt.stop_container(&polite, Duration::from_secs(10))
        .await
        .unwrap();
    let polite_elapsed = t.elapsed();
    let exit = rt.container_status(&polite).await.unwrap().exit.unwrap();
    assert_eq!(exit.exit_code, 0);
    assert!(
        polite_elapsed < Duration::from_secs(10),
        "SIGTERM was not delivered"
    );
    assert!(std::fs::read_to_string(&polite_log)
        .unwrap()
        .contains(" stdout F got-term"));

    // One that ignores it (PID 1 without a handler) is SIGKILLed after the grace period.
    let stubborn = fx.container_config("stubborn", "while :; do sleep 0.05; done");
    let stubborn = rt.create_container(&sb, &stubborn).await.unwrap();
    rt.start_container(&stubborn).await.unwrap();
    let grace = Duration::from_millis(800);
    let t = Instant::now();
    rt.stop_container(&stubborn, grace).await.unwrap();
    assert!(t.elapsed() >= grace);
    let exit = rt.container_status(&stubborn).await.unwrap().exit.unwrap();
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert!(!exit.oom_killed);

    rt.remove_pod_sandbox(&sb).await.unwrap();
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_survive_a_kubelet_restart_and_exit_codes_are_recovered() {
    let fx = Fixture::new("restart");
    let rt = fx.client();
    let sb = rt
        .run_pod_sandbox(&fx.sandbox_config("restart"))
        .await
        .unwrap();
    let cfg = fx.container_config(
        "waiter",
        "while [ ! -f /tmp/go ]; do sleep 0.05; done; echo released; exit 7",
    );
    let id = rt.create_container(&sb, &cfg).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let before = rt.container_status(&id).await.unwrap();
    assert_eq!(before.status, ContainerStatusKind::Running);
    let pid = before.pid.unwrap();
    let shim = before.shim_pid.unwrap();

    // The kubelet dies: its helper is SIGKILLed, the connection goes away.
    let helper = rt.helper_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    rt.shutdown().await;
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container died with the helper"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{shim}")).exists(),
        "shim died with the helper"
    );

    // A new kubelet starts a new helper that finds everything.
    let rt = fx.client();
    let all = rt.list_containers().await.unwrap();
    assert_eq!(all.len(), 2);
    let again = rt.container_status(&id).await.unwrap();
    assert_eq!(
        (again.status, again.pid),
        (ContainerStatusKind::Running, Some(pid))
    );
    assert!(rt.sandbox_status(&sb).await.unwrap().ready);

    // Log rotation: the kubelet renames the file and asks for a reopen.
    let rotated = cfg.log_path.with_extension("log.1");
    std::fs::rename(&cfg.log_path, &rotated).unwrap();
    rt.reopen_container_log(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cfg.log_path.exists(), "shim did not reopen its log");

    // Released under the new helper: exit code 7 comes back through exit.json.
    let bundle = fx.helper_cfg.state_root.join("containers").join(&id);
    std::fs::write(bundle.join("rootfs/tmp/go"), "").unwrap();
    let exit = wait_exit(&rt, &id, Duration::from_secs(20))
        .await
        .exit
        .unwrap();
    assert_eq!((exit.exit_code, exit.reason.as_str()), (7, "Error"));
    assert!(std::fs::read_to_string(&cfg.log_path)
        .unwrap()
        .contains(" stdout F released"));

    rt.remove_pod_sandbox(&sb).await.unwrap();
    rt.shutdown().await;
}

/// Not a timed assertion: prints create-to-running latency and memory figures for the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_latency_and_memory() {
    let fx = Fixture::new("measure");
    let rt = fx.client();
    let t = Instant::now();
    let sb = rt
        .run_pod_sandbox(&fx.sandbox_config("measure"))
        .await
        .unwrap();
    let sandbox_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut samples = Vec::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let cfg = fx.container_config(&format!("sleeper{i}"), "while :; do sleep 1; done");
        let t = Instant::now();
        let id = rt.create_container(&sb, &cfg).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let st = rt.container_status(&id).await.unwrap();
        assert_eq!(st.status, ContainerStatusKind::Running);
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        ids.push(id);
    }
    let st = rt.container_status(&ids[0]).await.unwrap();
    let (h_rss, h_pss, h_priv) = memory_kib(rt.helper_pid().unwrap() as i32);
    let (s_rss, s_pss, s_priv) = memory_kib(st.shim_pid.unwrap());
    let pause_pid = rt.sandbox_status(&sb).await.unwrap().pid.unwrap();
    let (p_rss, p_pss, p_priv) = memory_kib(pause_pid);
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!("MEASURE sandbox create+start: {sandbox_ms:.1} ms");
    eprintln!("MEASURE container create->running (5 runs, sorted): {samples:.1?} ms");
    eprintln!("MEASURE helper  VmRSS {h_rss} KiB, Pss {h_pss} KiB, private {h_priv} KiB");
    eprintln!("MEASURE shim    VmRSS {s_rss} KiB, Pss {s_pss} KiB, private {s_priv} KiB");
    eprintln!("MEASURE pause   VmRSS {p_rss} KiB, Pss {p_pss} KiB, private {p_priv} KiB");
    rt.stop_pod_sandbox(&sb, Duration::ZERO).await.unwrap();
    rt.remove_pod_sandbox(&sb).await.unwrap();
    rt.shutdown().await;
}

/// Runs `futs` together on this task; their outputs in order.
async fn join_all<T>(mut futs: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut outs: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, out) in futs.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    *out = Some(v);
                }
            }
        }
        if outs.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outs.into_iter().map(|o| o.expect("ready")).collect()
}
