//! Hostile input against a real controller over TLS (curl and raw sockets): forged and
//! malformed credentials, oversized headers and bodies, slow clients, and path traversal
//! in names and subresources. Every case gets upstream's answer (a Status where HTTP gets
//! that far) and changes nothing; the server keeps answering others throughout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::auth::{pki_dir, url};
use common::{ok, TestController};
use serde_json::{json, Value};

struct Http {
    code: u16,
    body: String,
}

fn admin_token(tc: &TestController) -> Result<String> {
    Ok(std::fs::read_to_string(pki_dir(tc).join("admin.token"))?
        .trim()
        .to_string())
}

/// curl against the controller trusting its CA: the status code and body.
fn curl(tc: &TestController, args: &[&str]) -> Result<Http> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(pki_dir(tc).join("ca.crt"))
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code.trim().parse().unwrap_or(0);
    // no answer at all: say what curl saw
    let body = if code == 0 {
        format!("{body}{}", String::from_utf8_lossy(&out.stderr))
    } else {
        body.to_string()
    };
    Ok(Http { code, body })
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// The answer is a Status with `code` and `reason`.
fn status_is(h: &Http, code: u16, reason: &str) -> Result<()> {
    ensure!(h.code == code, "want {code}, got {}: {}", h.code, h.body);
    let v: Value = serde_json::from_str(&h.body).with_context(|| h.body.clone())?;
    ensure!(
        v["kind"] == "Status" && v["code"] == code && v["reason"] == reason,
        "{v}"
    );
    Ok(())
}

fn configmap_exists(tc: &TestController, name: &str) -> Result<bool> {
    let out = tc.kubectl(&["get", "configmap", name, "-n", "default", "-o", "name"])?;
    Ok(out.status.success())
}

fn still_serving(tc: &TestController) -> Result<()> {
    ok(tc.kubectl(&["get", "--raw", "/api/v1/namespaces/default"])?)?;
    Ok(())
}

fn jwt(header: Value, claims: Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature
    )
}

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn create_cm(tc: &TestController, name: &str, headers: &[String]) -> Result<Http> {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    let mut args: Vec<String> = vec!["-X".into(), "POST".into()];
    for h in headers {
        args.extend(["-H".into(), h.clone()]);
    }
    args.extend([
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        body.to_string(),
        format!("{}{CM_PATH}", url(tc)),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(tc, &refs)
}

#[test]
fn forged_and_malformed_credentials_are_refused() -> Result<()> {
    let tc = TestController::start()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = json!({"iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:kube-system:default", "aud": ["https://kubernetes.default.svc.cluster.local"],
        "exp": now + 3600, "iat": now, "nbf": now,
        "kubernetes.io": {"namespace": "kube-system", "serviceaccount": {"name": "default", "uid": "x"}}});
    // a real token with its signature altered
    let real = ok(tc.kubectl(&["create", "token", "default", "-n", "default"])?)?;
    let real = real.trim();
    let (head, sig) = real.rsplit_once('.').unwrap();
    let mut bad_sig = sig.as_bytes().to_vec();
    bad_sig[5] = if bad_sig[5] == b'A' { b'B' } else { b'A' };
    let forged = [
        (
            "alg none",
            jwt(json!({"alg": "none", "typ": "JWT"}), claims.clone(), ""),
        ),
        (
            "alg HS256",
            jwt(
                json!({"alg": "HS256", "typ": "JWT"}),
                claims.clone(),
                "c2lnbmF0dXJl",
            ),
        ),
        (
            "bad signature",
            format!("{head}.{}", String::from_utf8(bad_sig)?),
        ),
        ("not a jwt", "a.b".to_string()),
        (
            "garbage",
            "\u{1}\u{2}%%%".replace(|c: char| c.is_control(), "x"),
        ),
    ];
    for (what, token) in &forged {
        let h = create_cm(&tc, "forged", &[bearer(token)])?;
        status_is(&h, 401, "Unauthorized").with_context(|| what.to_string())?;
        let h = curl(
            &tc,
            &["-H", &bearer(token), &format!("{}{CM_PATH}", url(&tc))],
        )?;
        status_is(&h, 401, "Unauthorized").with_context(|| what.to_string())?;
    }
    // several Authorization headers, and an empty bearer
    let h = create_cm(&tc, "forged", &[bearer(""), bearer("x")])?;
    status_is(&h, 401, "Unauthorized")?;
    ensure!(!configmap_exists(&tc, "forged")?);

    // a client certificate from another CA fails the TLS handshake: no HTTP at all
    let dir = tempfile::tempdir()?;
    let other = tempfile::tempdir()?;
    let other_pki = bramble_pki::ClusterPki::load_or_create(
        other.path(),
        &bramble_pki::PkiOptions::new("other", &[]),
    )?;
    let (cert, key) =
        other_pki.issue_client_cert("mallory", &["system:masters"], Duration::from_secs(600))?;
    let (cert_path, key_path): (PathBuf, PathBuf) =
        (dir.path().join("c.crt"), dir.path().join("c.key"));
    std::fs::write(&cert_path, cert)?;
    std::fs::write(&key_path, key)?;
    let h = curl(
        &tc,
        &[
            "--cert",
            cert_path.to_str().unwrap(),
            "--key",
            key_path.to_str().unwrap(),
            &format!("{}{CM_PATH}", url(&tc)),
        ],
    )?;
    ensure!(
        h.code == 0,
        "foreign client certificate got HTTP {}",
        h.code
    );
    // garbage where a certificate should be: curl cannot even load it
    std::fs::write(
        &cert_path,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )?;
    let h = curl(
        &tc,
        &[
            "--cert",
            cert_path.to_str().unwrap(),
            "--key",
            key_path.to_str().unwrap(),
            &format!("{}{CM_PATH}", url(&tc)),
        ],
    )?;
    ensure!(
        h.code == 0,
        "garbage client certificate got HTTP {}",
        h.code
    );
    still_serving(&tc)
}

#[test]
fn oversized_headers_and_bodies() -> Result<()> {
    let tc = TestController::start()?;
    let token = admin_token(&tc)?;
    let dir = tempfile::tempdir()?;
    // a 4 MiB body (the limit is 3 MiB, as upstream's request size limit)
    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"x": "a".repeat(4 << 20)}});
    let body_path = dir.path().join("big.json");
    std::fs::write(&body_path, big.to_string())?;
    let h = curl(
        &tc,
        &[
            "-X",
            "POST",
            "-H",
            &bearer(&token),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{}", body_path.display()),
            &format!("{}{CM_PATH}", url(&tc)),
        ],
    )?;
    status_is(&h, 413, "RequestEntityTooLarge")?;
    ensure!(!configmap_exists(&tc, "big")?);
    // a 2 MiB header block: 431 Request Header Fields Too Large
    let header_path = dir.path().join("headers");
    std::fs::write(
        &header_path,
        format!("X-Filler: {}\r\n", "b".repeat(2 << 20)),
    )?;
    let h = create_cm(
        &tc,
        "big",
        &[bearer(&token), format!("@{}", header_path.display())],
    )?;
    ensure!(h.code == 431 || h.code == 0, "huge headers got {}", h.code);
    // many headers
    let many: Vec<String> = (0..500).map(|i| format!("X-H{i}: v")).collect();
    let mut headers = vec![bearer(&token)];
    headers.extend(many);
    let h = create_cm(&tc, "big", &headers)?;
    // hyper's HTTP/2 server answers 431 and resets the stream; curl sometimes reports the
    // reset (error 92) before the answer
    ensure!(
        h.code == 431 || (h.code == 0 && h.body.contains("(92)")),
        "500 headers got {}: {}",
        h.code,
        h.body
    );
    ensure!(!configmap_exists(&tc, "big")?);
    still_serving(&tc)
}

#[test]
fn slow_clients_do_not_hold_up_others() -> Result<()> {
    let tc = TestController::start()?;
    // connections that never finish a TLS handshake, and ones that send a byte at a time
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", tc.port)))
        .collect::<Result<_, _>>()?;
    for s in idle.iter_mut().take(10) {
        s.write_all(&[0x16, 0x03])?;
    }
    let start = Instant::now();
    for _ in 0..10 {
        still_serving(&tc)?;
    }
    ensure!(
        start.elapsed() < Duration::from_secs(60),
        "others were held up: {:?}",
        start.elapsed()
    );
    // the server drops connections that do not complete a handshake in time
    let s = &mut idle[15];
    s.set_read_timeout(Some(Duration::from_secs(90)))?;
    let mut buf = [0u8; 16];
    let waited = Instant::now();
    let n = s.read(&mut buf).unwrap_or(0);
    ensure!(
        n == 0 && waited.elapsed() < Duration::from_secs(85),
        "idle connection kept open for {:?}",
        waited.elapsed()
    );
    still_serving(&tc)
}

#[test]
fn path_traversal_in_names_and_subresources() -> Result<()> {
    let tc = TestController::start()?;
    let token = admin_token(&tc)?;
    ok(tc.kubectl(&[
        "create",
        "secret",
        "generic",
        "keep",
        "-n",
        "kube-system",
        "--from-literal=k=v",
    ])?)?;
    let before = ok(tc.kubectl(&["get", "secrets", "-A", "-o", "name"])?)?;
    let base = url(&tc);
    let cases = [
        ("GET", format!("{base}/api/v1/namespaces/default/secrets/..%2Fkube-system%2Fsecrets%2Fkeep")),
        ("DELETE", format!("{base}/api/v1/namespaces/default/secrets/..%2F..%2Fnamespaces%2Fkube-system%2Fsecrets%2Fkeep")),
        ("DELETE", format!("{base}/api/v1/namespaces/default/secrets/%2E%2E")),
        ("GET", format!("{base}/api/v1/namespaces/default/pods/x/..%2F..%2Fsecrets")),
        ("PUT", format!("{base}/api/v1/namespaces/default/configmaps/a%2Fb")),
        ("DELETE", format!("{base}/api/v1/namespaces/%2E%2E/secrets/keep")),
    ];
    for (method, u) in &cases {
        let h = curl(
            &tc,
            &[
                "--path-as-is",
                "-X",
                method,
                "-H",
                &bearer(&token),
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{}",
                u,
            ],
        )?;
        ensure!(
            matches!(h.code, 400 | 404 | 405 | 422),
            "{method} {u}: {} {}",
            h.code,
            h.body
        );
        let v: Value =
            serde_json::from_str(&h.body).with_context(|| format!("{method} {u}: {}", h.body))?;
        ensure!(v["kind"] == "Status", "{method} {u}: {v}");
    }
    // a name with a path in the body is invalid
    let h = create_cm(&tc, "../../kube-system/x", &[bearer(&token)])?;
    status_is(&h, 422, "Invalid")?;
    let after = ok(tc.kubectl(&["get", "secrets", "-A", "-o", "name"])?)?;
    ensure!(before == after, "secrets changed:\n{before}\n---\n{after}");
    ensure!(after.contains("secret/keep"));
    still_serving(&tc)
}
