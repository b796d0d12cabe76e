//! The built-in Ingress controller end to end: a real controller and a kubelet with CNI pod
//! networking in a test network namespace (tests/common/netns.rs), two Services over busybox
//! httpd pods serving different content, and an Ingress of the default `bramble` class.
//! Checked from the test with curl against the node's IP: Host-header and path routing
//! (Prefix element-wise, Exact), 404 without a rule, 503 without endpoints, the
//! X-Forwarded-* headers the backend sees, TLS by SNI with the Secret's certificate and the
//! default certificate for another name, a live change of the Ingress (and of its Secret)
//! taking effect with an already open connection still answered, and `kubectl get ingress`
//! showing the node's address.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::kubelet::{create_pod, tail};
use common::netns::{poll, sh, TestNet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(180);

/// A pod running busybox httpd on 8080 over `files` (`path`, contents) under /www.
fn httpd_pod(name: &str, node: &str, image: &str, files: &[(&str, &str)]) -> Value {
    let mut script = String::from("mkdir -p /www/cgi-bin");
    for (path, body) in files {
        let dir = Path::new(path).parent().unwrap().display().to_string();
        script.push_str(&format!(
            " && mkdir -p /www{dir} && echo '{body}' > /www{path}"
        ));
    }
    script.push_str(
        " && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nenv\\n' > /www/cgi-bin/env \
         && chmod +x /www/cgi-bin/env && exec httpd -f -p 8080 -h /www",
    );
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{
            "name": "httpd", "image": image, "command": ["sh", "-c", script],
            "ports": [{"containerPort": 8080, "name": "http"}]}]},
    })
}

fn apply(ctrl: &TestController, manifest: &Value) -> Result<()> {
    ok(ctrl.kubectl_with(
        common::KUBECTL,
        &["apply", "-f", "-"],
        Some(&manifest.to_string()),
    )?)?;
    Ok(())
}

fn path(p: &str, kind: &str, svc: &str, port: Value) -> Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": port}}})
}

/// curl through the ingress at `ip`: (status, body, stderr) of `scheme://host/path`.
fn curl(
    ip: &str,
    scheme: &str,
    host: &str,
    path: &str,
    extra: &[&str],
) -> Result<(u16, String, String)> {
    let port = if scheme == "https" { 443 } else { 80 };
    let out = Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
        ])
        .args(["--resolve", &format!("{host}:{port}:{ip}")])
        .args(extra)
        .arg(format!("{scheme}://{host}{path}"))
        .output()
        .context("running curl")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("curl {scheme}://{host}{path}: {stderr}");
    }
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    Ok((code.trim().parse()?, body.to_string(), stderr))
}

/// Polls until `host`+`path` over HTTP answers `status` with a body containing `want`.
fn expect(ip: &str, host: &str, p: &str, status: u16, want: &str) -> Result<()> {
    poll(
        LONG,
        &format!("http://{host}{p} -> {status} {want:?}"),
        || {
            let (code, body, _) = curl(ip, "http", host, p, &[])?;
            if code == status && body.contains(want) {
                Ok(Some(()))
            } else {
                bail!("got {code} {body:?}")
            }
        },
    )
}

/// One request on an open HTTP/1.1 connection; the response's status and body.
fn request_on(conn: &mut BufReader<TcpStream>, host: &str, p: &str) -> Result<(u16, String)> {
    write!(conn.get_mut(), "GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("status line {line:?}"))?
        .parse()?;
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut h = String::new();
        conn.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>()?);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16)?;
            let mut chunk = vec![0; n + 2];
            conn.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let mut chunk = vec![0; length.context("response without length")?];
        conn.read_exact(&mut chunk)?;
        body = chunk;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn self_signed(dir: &Path, name: &str, host: &str) -> Result<(String, String)> {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    sh(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={host}/O={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{host}"),
            "-keyout",
            &key.display().to_string(),
            "-out",
            &crt.display().to_string(),
        ],
    )?;
    Ok((crt.display().to_string(), key.display().to_string()))
}

#[test]
fn ingress_routes_hosts_and_paths_terminates_tls_and_follows_changes() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "ingress", &[])?;
    let mut net = TestNet::new(1)?;
    let gw = net.gateway.clone();
    let ctrl = TestController::start_with(&["--advertise-address", &gw, "--tls-san", &gw])?;
    net.expose_controller(&ctrl)?;
    net.forward(reg.port)?;
    let image = image.replace("127.0.0.1", &gw);
    // TLS termination by the built-in ingress is the administrator's opt-in: nodes read TLS
    // Secrets only once the role the controller creates is bound to them.
    ok(ctrl.kubectl(&[
        "create",
        "clusterrolebinding",
        "bramble-ingress-tls",
        "--clusterrole=system:bramble-ingress-tls",
        "--group=system:nodes",
    ])?)?;
    // The kubelet (and so its ingress) with a node's credentials: it reads Ingresses through the
    // RBAC the controller creates for the system:nodes group.
    let node_kubeconfig = common::auth::cert_kubeconfig(
        &ctrl,
        &format!("system:node:{}", net.node_name(0)),
        &["system:nodes"],
    )?;
    let kubeconfig = net.host_kubeconfig(&ctrl, &node_kubeconfig)?;
    let k = net.start_kubelet_with(
        &kubeconfig,
        0,
        &["--insecure-registry", &format!("{gw}:{}", reg.port)],
    )?;
    let node = net.node_name(0);
    let ip = net.hosts[0].ip.clone();
    let result = (|| -> Result<()> {
        // The default class exists.
        let class = ok(ctrl.kubectl(&["get", "ingressclass", "bramble", "-o", "json"])?)?;
        let class: Value = serde_json::from_str(&class)?;
        assert_eq!(class["spec"]["controller"], "bramble.dev/ingress");
        assert_eq!(
            class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
            "true"
        );

        create_pod(
            &ctrl,
            &httpd_pod(
                "app-a",
                &node,
                &image,
                &[
                    ("/index.html", "this is app-a"),
                    ("/exact", "app-a exact"),
                    ("/api/index.html", "app-a api"),
                ],
            ),
        )?;
        create_pod(
            &ctrl,
            &httpd_pod(
                "app-b",
                &node,
                &image,
                &[
                    ("/index.html", "this is app-b"),
                    ("/api/index.html", "app-b api"),
                    ("/live/index.html", "app-b live"),
                ],
            ),
        )?;
        for (name, port) in [
            ("app-a", json!({"port": 80, "targetPort": 8080})),
            (
                "app-b",
                json!({"name": "web", "port": 8000, "targetPort": "http"}),
            ),
            ("empty", json!({"port": 80, "targetPort": 8080})),
        ] {
            apply(
                &ctrl,
                &json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"selector": {"app": name}, "ports": [port]},
                }),
            )?;
        }
        let work = tempfile::tempdir()?;
        let (crt, key) = self_signed(work.path(), "first", "a.example.test")?;
        ok(ctrl.kubectl(&[
            "create", "secret", "tls", "a-tls", "--cert", &crt, "--key", &key,
        ])?)?;
        // No ingressClassName: the default class serves it.
        let ingress = |live: bool| {
            let mut a_paths = vec![path("/", "Prefix", "app-a", json!({"number": 80}))];
            if live {
                a_paths.push(path("/live", "Prefix", "app-b", json!({"name": "web"})));
            }
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "tls": [{"hosts": ["a.example.test"], "secretName": "a-tls"}],
                    "rules": [
                        {"host": "a.example.test", "http": {"paths": a_paths}},
                        {"host": "b.example.test", "http": {"paths": [
                            path("/api", "Prefix", "app-b", json!({"name": "web"})),
                            path("/exact", "Exact", "app-a", json!({"number": 80})),
                            path("/none", "Prefix", "empty", json!({"number": 80})),
                        ]}},
                    ],
                },
            })
        };
        apply(&ctrl, &ingress(false))?;

        // Host routing.
        expect(&ip, "a.example.test", "/", 200, "this is app-a")?;
        expect(&ip, "b.example.test", "/api/", 200, "app-b api")?;
        // Paths: element-wise Prefix, Exact, and a host without a matching path.
        expect(&ip, "b.example.test", "/exact", 200, "app-a exact")?;
        let (code, _, _) = curl(&ip, "http", "b.example.test", "/exact/", &[])?;
        assert_eq!(code, 404, "Exact /exact must not match /exact/");
        let (code, _, _) = curl(&ip, "http", "b.example.test", "/apix", &[])?;
        assert_eq!(code, 404, "Prefix /api must not match /apix");
        // Unknown host: no rule and no default backend.
        let (code, _, _) = curl(&ip, "http", "c.example.test", "/", &[])?;
        assert_eq!(code, 404);
        // A Service without endpoints.
        let (code, _, _) = curl(&ip, "http", "b.example.test", "/none", &[])?;
        assert_eq!(code, 503);

        // TLS: the Secret's certificate for its host (verified against it), the backend sees
        // the forwarded headers.
        let (code, body, _) = curl(
            &ip,
            "https",
            "a.example.test",
            "/cgi-bin/env",
            &["--cacert", &crt],
        )?;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("HTTP_X_FORWARDED_PROTO=https"), "{body}");
        assert!(
            body.contains("HTTP_X_FORWARDED_HOST=a.example.test"),
            "{body}"
        );
        assert!(body.contains("HTTP_X_FORWARDED_FOR=172.31."), "{body}");
        // Another name gets the default certificate.
        let (_, _, verbose) = curl(&ip, "https", "b.example.test", "/api/", &["-k", "-v"])?;
        assert!(
            verbose.contains("Bramble Ingress Controller Default Certificate"),
            "{verbose}"
        );

        // An open connection, then a live change of the Ingress.
        let mut conn = BufReader::new(TcpStream::connect((ip.as_str(), 80))?);
        conn.get_ref()
            .set_read_timeout(Some(Duration::from_secs(20)))?;
        let (code, body) = request_on(&mut conn, "a.example.test", "/live/")?;
        assert_eq!(code, 404, "app-a has no /live: {body}");
        apply(&ctrl, &ingress(true))?;
        expect(&ip, "a.example.test", "/live/", 200, "app-b live")?;
        let (code, body) = request_on(&mut conn, "a.example.test", "/live/")?;
        assert_eq!(
            (code, body.trim()),
            (200, "app-b live"),
            "on the connection opened before"
        );

        // A renewed certificate in the Secret is served without a restart.
        let (crt2, key2) = self_signed(work.path(), "second", "a.example.test")?;
        let secret = ok(ctrl.kubectl(&[
            "create",
            "secret",
            "tls",
            "a-tls",
            "--cert",
            &crt2,
            "--key",
            &key2,
            "--dry-run=client",
            "-o",
            "json",
        ])?)?;
        ok(ctrl.kubectl_with(common::KUBECTL, &["apply", "-f", "-"], Some(&secret))?)?;
        poll(LONG, "the renewed certificate", || {
            let (code, _, _) = curl(&ip, "https", "a.example.test", "/", &["--cacert", &crt2])?;
            Ok((code == 200).then_some(()))
        })?;

        // Status: the node's address, shown by kubectl.
        poll(LONG, "kubectl get ingress with the node address", || {
            let out = ok(ctrl.kubectl(&["get", "ingress", "web"])?)?;
            Ok(out.contains(&ip).then_some(out))
        })?;
        let out = ok(ctrl.kubectl(&["get", "ingress", "web", "-o", "json"])?)?;
        let v: Value = serde_json::from_str(&out)?;
        assert_eq!(v["status"]["loadBalancer"]["ingress"], json!([{"ip": ip}]));
        Ok(())
    })();
    result.with_context(|| format!("kubelet log:\n{}", tail(&k.log(), 60)))
}
