//! `kubectl logs`, `exec` (with and without `-it`), `attach` and `port-forward` with the real
//! kubectl, through a real `bramble controller` process, to the kubelet streaming server
//! (`bramble-kubelet-server`) over the real runtime: a pause sandbox and busybox containers
//! run by libcontainer. The streaming server runs in this test process with a
//! `PodContainers` over the containers the test created; the Node object points the
//! controller at it, and the hop is TLS with the controller's kubelet client certificate.

mod common;
mod streaming_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bramble_cgroups::{manager_for, Resources};
use bramble_kubelet_server::{ClientAuthorizer, ContainerTarget};
use bramble_runtime::{
    ContainerConfig, ContainerRuntime, HelperConfig, RuntimeClient, SandboxConfig,
};
use common::{bramble_bin, TestController, KUBECTL, KUBECTL_OLD};
use streaming_support::{
    exec_with_stdin, in_terminal, kubectl_in, port_forward_get, text, wait_exited, Cleanup,
    TestPods, CGROUP_ROOT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_streams_through_the_controller_to_the_kubelet() -> Result<()> {
    let ctrl = TestController::start()?;
    let dir = tempfile::Builder::new()
        .prefix("bramble-stream-")
        .tempdir()?;
    let layer = dir.path().join("layer");
    common::registry::busybox_rootfs(&layer)?;

    // A real pod: pause sandbox + containers, a previous (exited) instance of `main`.
    let cgroups = manager_for(CGROUP_ROOT)?;
    let cgroup_top = PathBuf::from(format!("bramble-stream-{}", std::process::id()));
    let pod_cgroup = cgroup_top.join("podweb");
    cgroups.create(&pod_cgroup, &Resources::default())?;
    let helper_cfg = HelperConfig {
        state_root: dir.path().join("state"),
        cgroup_root: PathBuf::from(CGROUP_ROOT),
        pause_binary: PathBuf::from(bramble_bin()),
    };
    let _cleanup = Cleanup {
        state_root: helper_cfg.state_root.clone(),
        cgroup_top: cgroup_top.clone(),
        cgroups: manager_for(CGROUP_ROOT)?,
    };
    let rt = Arc::new(RuntimeClient::spawn_helper(
        Path::new(bramble_bin()),
        &helper_cfg,
    )?);
    let sandbox = rt
        .run_pod_sandbox(&SandboxConfig {
            pod_uid: "uid-web".into(),
            pod_name: "web".into(),
            pod_namespace: "default".into(),
            hostname: "web".into(),
            cgroup_parent: pod_cgroup.clone(),
            host_network: false,
            resolv_conf: None,
        })
        .await?;
    let netns = PathBuf::from(
        rt.sandbox_status(&sandbox)
            .await?
            .netns_path
            .context("sandbox netns")?,
    );
    let logs = dir.path().join("logs");
    let config = |name: &str, attempt: u32, script: &str| ContainerConfig {
        name: name.to_string(),
        image_layers: vec![layer.clone()],
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        log_path: logs.join(name).join(format!("{attempt}.log")),
        ..Default::default()
    };
    let run = |cfg: ContainerConfig| {
        let rt = rt.clone();
        let sandbox = sandbox.clone();
        async move {
            let id = rt.create_container(&sandbox, &cfg).await?;
            rt.start_container(&id).await?;
            anyhow::Ok(ContainerTarget {
                name: cfg.name.clone(),
                container_id: id,
                log_path: cfg.log_path.clone(),
            })
        }
    };
    let previous = run(config("main", 0, "echo from the previous run; exit 1")).await?;
    wait_exited(&rt, &previous.container_id).await?;
    let main = run(config(
        "main",
        1,
        "for i in 1 2 3 4 5; do echo hello $i; done; echo oops >&2; i=0; \
         while true; do i=$((i+1)); echo tick $i; sleep 0.3; done",
    ))
    .await?;
    let side = run(config(
        "side",
        0,
        "mkdir -p /tmp/www && echo pong from the pod > /tmp/www/index.html && \
         echo side up && exec httpd -f -p 8080 -h /tmp/www",
    ))
    .await?;
    let pods = Arc::new(TestPods {
        uid: "uid-web".into(),
        netns,
        containers: vec![
            ("main".into(), main.clone(), Some(previous.clone())),
            ("side".into(), side.clone(), None),
        ],
    });

    // The kubelet streaming server, trusting the controller's CA for client certificates.
    let ca = std::fs::read_to_string(ctrl.data_dir().join("controller/pki/ca.crt"))?;
    // A serving certificate from the cluster CA, as the kubelet gets one through a
    // kubernetes.io/kubelet-serving CSR: the controller verifies the kubelet's certificate.
    let ca_key = std::fs::read_to_string(ctrl.data_dir().join("controller/pki/ca.key"))?;
    let (csr, key) = bramble_pki::new_serving_csr(
        "system:node:stream-node",
        &["system:nodes"],
        &[],
        &["127.0.0.1".parse()?],
    )?;
    let cert = bramble_pki::sign_serving_csr_with_ca(
        &ca,
        &ca_key,
        &csr,
        std::time::Duration::from_secs(3600),
    )?;
    let tls = bramble_kubelet_server::server_config(&ca, &cert, &key)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let kubelet_port = listener.local_addr()?.port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bramble_kubelet_server::serve(
        listener,
        tls,
        pods,
        rt.clone(),
        ClientAuthorizer::default(),
        async {
            let _ = stop_rx.await;
        },
    ));

    // Node and pods in the API.
    let kc = ctrl.kubeconfig.clone();
    let node = serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "stream-node"},
    });
    let apply = |v: serde_json::Value| {
        let kc = kc.clone();
        async move {
            let f = tempfile::NamedTempFile::new()?;
            std::fs::write(f.path(), serde_json::to_vec(&v)?)?;
            let out = kubectl_in(
                KUBECTL,
                &kc,
                &["create", "-f", f.path().to_str().context("path")?],
            )
            .await?;
            if !out.status.success() {
                bail!("create failed: {}", text(&out));
            }
            anyhow::Ok(())
        }
    };
    apply(node).await?;
    let status = serde_json::json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
    }})
    .to_string();
    let out = kubectl_in(
        KUBECTL,
        &kc,
        &[
            "patch",
            "node",
            "stream-node",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out));
    let busybox = |name: &str| serde_json::json!({"name": name, "image": "busybox"});
    apply(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "stream-node",
                 "containers": [busybox("main"), busybox("side")]},
    }))
    .await?;
    // What the kubelet would report (kubectl port-forward insists on a Running pod).
    let out = kubectl_in(
        KUBECTL,
        &kc,
        &[
            "patch",
            "pod",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running"}}"#,
        ],
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out));
    apply(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pending", "namespace": "default"},
        "spec": {"containers": [busybox("main")]},
    }))
    .await?;
    let k = |args: &'static [&'static str]| kubectl_in(KUBECTL, &kc, args);

    // --- logs ---
    let out = k(&["logs", "web", "-c", "main", "--tail=-1"]).await?;
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        // stdout and stderr are separate pipes: their relative order is the shim's.
        all.starts_with("hello 1\nhello 2\nhello 3\nhello 4\nhello 5\n")
            && all.contains("\noops\n")
            && all.contains("\ntick 1\n"),
        "{all}"
    );
    let out = k(&["logs", "web", "-c", "main", "--tail=2"]).await?;
    let tail = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(tail.lines().count(), 2, "{}", text(&out));
    assert!(tail.lines().all(|l| l.starts_with("tick ")), "{tail}");
    let out = k(&["logs", "web", "-c", "main", "--previous"]).await?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from the previous run\n",
        "{}",
        text(&out)
    );
    let out = k(&["logs", "web", "-c", "side", "--previous"]).await?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("previous terminated container \"side\" in pod \"web\" not found"),
        "{}",
        text(&out)
    );
    let out = k(&["logs", "web", "-c", "side", "--timestamps"]).await?;
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let (ts, rest) = line.split_once(' ').context("timestamped line")?;
    assert!(
        ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z') && rest == "side up\n",
        "{line}"
    );
    let out = k(&["logs", "web", "-c", "main", "--since=1h", "--limit-bytes=8"]).await?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello 1\n",
        "{}",
        text(&out)
    );
    // -f: new lines keep coming while the container runs.
    let follow = tokio::task::spawn_blocking({
        let kc = kc.clone();
        move || -> Result<Vec<String>> {
            let mut child = Command::new(KUBECTL)
                .arg("--kubeconfig")
                .arg(&kc)
                .args(["logs", "-f", "web", "-c", "main", "--tail=1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let mut stdout = std::io::BufReader::new(child.stdout.take().context("stdout")?);
            let mut lines = Vec::new();
            while lines.len() < 4 {
                let mut l = String::new();
                if std::io::BufRead::read_line(&mut stdout, &mut l)? == 0 {
                    break;
                }
                lines.push(l.trim_end().to_string());
            }
            let _ = child.kill();
            let _ = child.wait();
            Ok(lines)
        }
    });
    let lines = tokio::time::timeout(Duration::from_secs(30), follow).await???;
    let ticks: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert_eq!(ticks.len(), 4, "{lines:?}");
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{lines:?}");

    // nodes/proxy reaches the kubelet's own paths.
    let out = k(&[
        "get",
        "--raw",
        "/api/v1/nodes/stream-node/proxy/containerLogs/default/web/side?tailLines=1",
    ])
    .await?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "side up\n",
        "{}",
        text(&out)
    );
    let out = k(&["get", "--raw", "/api/v1/nodes/stream-node/proxy/healthz"]).await?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        text(&out)
    );

    // --- errors, as upstream words them ---
    let out = k(&["logs", "nopod"]).await?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pods \"nopod\" not found"),
        "{}",
        text(&out)
    );
    let out = k(&["logs", "web", "-c", "nope"]).await?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container nope is not valid for pod web"),
        "{}",
        text(&out)
    );
    let out = k(&["logs", "pending"]).await?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pod pending does not have a host assigned"),
        "{}",
        text(&out)
    );

    // --- exec ---
    let out = k(&["exec", "web", "-c", "main", "--", "echo", "hi"]).await?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi\n",
        "{}",
        text(&out)
    );
    let out = k(&[
        "exec",
        "web",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ])
    .await?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("err\n") && err.contains("command terminated with exit code 3"),
        "{err}"
    );
    // stdin to end of file (v5 CLOSE) through `cat`.
    let piped = exec_with_stdin(KUBECTL, kc.clone());
    let out = tokio::time::timeout(Duration::from_secs(30), piped).await???;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line one\nline two\ndone\n",
        "{}",
        text(&out)
    );
    // kubectl 1.29 speaks SPDY/3.1 (v4.channel.k8s.io) for exec.
    let out = kubectl_in(
        KUBECTL_OLD,
        &kc,
        &[
            "exec",
            "web",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "echo spdy; echo e >&2; exit 4",
        ],
    )
    .await?;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "spdy\n",
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("e\n"),
        "{}",
        text(&out)
    );
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        exec_with_stdin(KUBECTL_OLD, kc.clone()),
    )
    .await???;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line one\nline two\ndone\n",
        "{}",
        text(&out)
    );
    // exec -it through a real pseudo-terminal: a tty in the container, the terminal size
    // sent on the resize channel, an interactive shell reading our keystrokes.
    let shown = in_terminal(
        format!(
            "stty rows 31 cols 101; {KUBECTL} --kubeconfig {} exec -it web -c main -- sh",
            kc.display()
        ),
        "[ -t 0 ] && [ -t 1 ] && echo stdio-is-a-terminal; stty size; echo $((6*7))\nexit\n",
        Duration::from_secs(2),
    )
    .await?;
    assert!(shown.contains("\nstdio-is-a-terminal"), "{shown}");
    assert!(shown.contains("31 101"), "{shown}");
    assert!(shown.contains("42"), "{shown}");

    // --- attach: the running container's output from now on ---
    let attached = tokio::task::spawn_blocking({
        let kc = kc.clone();
        move || -> Result<Vec<String>> {
            let mut child = Command::new(KUBECTL)
                .arg("--kubeconfig")
                .arg(&kc)
                .args(["attach", "web", "-c", "main"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let mut stdout = std::io::BufReader::new(child.stdout.take().context("stdout")?);
            let mut lines = Vec::new();
            while lines.len() < 2 {
                let mut l = String::new();
                if std::io::BufRead::read_line(&mut stdout, &mut l)? == 0 {
                    break;
                }
                lines.push(l.trim_end().to_string());
            }
            let _ = child.kill();
            let _ = child.wait();
            Ok(lines)
        }
    });
    let lines = tokio::time::timeout(Duration::from_secs(30), attached).await???;
    let ticks: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert_eq!(ticks.len(), 2, "{lines:?}");
    assert!(ticks[0] > 5, "attach replays only new output: {lines:?}");

    // --- port-forward: WebSocket tunnel (1.32) and plain SPDY (1.29) ---
    for bin in [KUBECTL, KUBECTL_OLD] {
        let answer = port_forward_get(bin, kc.clone()).await?;
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains("pong from the pod"),
            "{bin}: {answer}"
        );
    }

    let _ = stop_tx.send(());
    rt.remove_pod_sandbox(&sandbox).await?;
    Ok(())
}
