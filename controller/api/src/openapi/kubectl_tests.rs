//! The documents as the real kubectl reads them: a small HTTP server on loopback serves
//! legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`), `/openapi/v3` and the
//! group-version documents (from [`OpenApiCache`]), and answers creates by echoing the body;
//! every kubectl version installed here then runs `explain` and `create --validate=strict`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};

use super::OpenApiCache;
use crate::registry::Registry;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
}

struct Server {
    registry: Registry,
    cache: OpenApiCache,
    /// Serve v3 documents without the `fieldValidation` parameter (the negative control).
    strip_field_validation: bool,
    seen: Mutex<Vec<Seen>>,
}

fn discovery_group_list(registry: &Registry) -> Value {
    let mut groups: Vec<Value> = Vec::new();
    for (g, v) in registry.group_versions() {
        if g.is_empty() {
            continue;
        }
        let gv = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
        match groups.iter_mut().find(|x| x["name"] == g) {
            Some(group) => group["versions"].as_array_mut().unwrap().push(gv),
            None => groups.push(json!({
                "name": g, "versions": [gv.clone()], "preferredVersion": gv
            })),
        }
    }
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

fn discovery_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = registry
        .in_group_version(group, version)
        .iter()
        .map(|r| {
            json!({
                "name": r.resource, "singularName": r.singular, "namespaced": r.namespaced,
                "kind": r.kind, "verbs": r.verbs, "shortNames": r.short_names,
                "categories": r.categories
            })
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources
    }))
}

fn strip_field_validation(doc: &mut Value) {
    for item in doc["paths"].as_object_mut().unwrap().values_mut() {
        for op in item.as_object_mut().unwrap().values_mut() {
            if let Some(Value::Array(params)) = op.get_mut("parameters") {
                params.retain(|p| p["name"] != "fieldValidation");
            }
        }
    }
}

impl Server {
    /// (status, body) for one request.
    fn answer(&self, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let path = target.split('?').next().unwrap_or_default();
        let json_body = |v: Value| (200, serde_json::to_vec(&v).unwrap());
        let not_found = (
            404,
            serde_json::to_vec(&json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"
            }))
            .unwrap(),
        );
        if method == "POST" {
            // Create: echo the object back.
            return (201, body.to_vec());
        }
        match path {
            "/version" => json_body(json!({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"
            })),
            "/api" => json_body(json!({ "kind": "APIVersions", "versions": ["v1"] })),
            "/apis" => json_body(discovery_group_list(&self.registry)),
            "/openapi/v3" => (200, self.cache.root(&self.registry).bytes()),
            // kubectl asks for v2 in gnostic protobuf only (1.27/1.28 read it; later ones do not).
            "/openapi/v2" => {
                let mut v: Value =
                    serde_json::from_slice(&self.cache.v2(&self.registry).bytes()).unwrap();
                if self.strip_field_validation {
                    strip_field_validation(&mut v);
                }
                (200, super::proto_v2::encode_document(&v))
            }
            _ => {
                if let Some(rest) = path.strip_prefix("/openapi/v3/") {
                    let Some(doc) = self.cache.group_version(&self.registry, rest) else {
                        return not_found;
                    };
                    if !self.strip_field_validation {
                        return (200, doc.bytes());
                    }
                    let mut v: Value = serde_json::from_slice(&doc.bytes()).unwrap();
                    strip_field_validation(&mut v);
                    return json_body(v);
                }
                let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
                let list = match parts.as_slice() {
                    ["api", v] => discovery_resource_list(&self.registry, "", v),
                    ["apis", g, v] => discovery_resource_list(&self.registry, g, v),
                    _ => None,
                };
                list.map(json_body).unwrap_or(not_found)
            }
        }
    }

    fn handle(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        self.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
        });
        let (status, payload) = self.answer(&method, &target, &body);
        let mut out = stream;
        write!(
            out,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        )?;
        out.write_all(&payload)?;
        out.flush()
    }
}

/// Starts a server on an ephemeral loopback port; it lives until the test process ends.
fn start(strip: bool) -> (Arc<Server>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let server = Arc::new(Server {
        registry: Registry::builtin(),
        cache: OpenApiCache::new(),
        strip_field_validation: strip,
        seen: Mutex::new(Vec::new()),
    });
    let s = server.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let s = s.clone();
            thread::spawn(move || {
                let _ = s.handle(stream);
            });
        }
    });
    (server, addr)
}

/// `/usr/bin/kubectl` and every versioned kubectl beside it (`kubectl.1.27` ...).
fn kubectls() -> Vec<PathBuf> {
    let main = PathBuf::from("/usr/bin/kubectl");
    assert!(main.exists(), "kubectl is required at /usr/bin/kubectl");
    let mut out = vec![main.clone()];
    let dir = std::fs::canonicalize(&main)
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kubectl.1."))
        })
        .collect();
    versioned.sort();
    out.extend(versioned);
    out
}

/// Runs kubectl against `addr` with a private cache dir; (exit ok, stdout, stderr).
fn kubectl(bin: &PathBuf, addr: &str, args: &[&str]) -> (bool, String, String) {
    let home = tempdir();
    let out = Command::new(bin)
        .args(["--server", addr, "--cache-dir"])
        .arg(home.join("cache"))
        .args(args)
        .env("HOME", &home)
        .env("KUBECONFIG", home.join("none"))
        .env_remove("KUBECTL_EXPLAIN_OPENAPIV3")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "bramble-openapi-kubectl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// kubectl 1.27 and 1.28 load `/openapi/v2` as protobuf (gnostic `openapi_v2.Document`)
/// for `explain` and `create --validate`, before or besides the v3 documents; only JSON is
/// generated here, so these tests cover kubectl 1.29 and later (and `/usr/bin/kubectl`).
fn reads_v3_only(bin: &std::path::Path) -> bool {
    let name = bin.to_string_lossy();
    !(name.ends_with("kubectl.1.27") || name.ends_with("kubectl.1.28"))
}

#[test]
fn kubectl_explain_walks_the_v3_documents() {
    let (_server, addr) = start(false);
    for bin in kubectls().into_iter().filter(|b| reads_v3_only(b)) {
        let name = bin.display().to_string();
        let (ok, out, err) = kubectl(&bin, &addr, &["explain", "pod.spec.containers"]);
        assert!(ok, "{name}: explain failed: {err}\n{out}");
        assert!(out.contains("KIND:       Pod"), "{name}: {out}");
        assert!(out.contains("VERSION:    v1"), "{name}: {out}");
        assert!(
            out.contains("FIELD: containers <[]Container>"),
            "{name}: {out}"
        );
        assert!(
            out.contains("List of containers belonging to the pod."),
            "{name}: {out}"
        );
        assert!(out.contains("image\t<string>"), "{name}: {out}");
        assert!(out.contains("env\t<[]EnvVar>"), "{name}: {out}");
        assert!(out.contains("ports\t<[]ContainerPort>"), "{name}: {out}");

        let (ok, out, err) = kubectl(&bin, &addr, &["explain", "deploy.spec.strategy"]);
        assert!(ok, "{name}: explain deploy failed: {err}\n{out}");
        assert!(out.contains("GROUP:      apps"), "{name}: {out}");
        assert!(
            out.contains("FIELD: strategy <DeploymentStrategy>"),
            "{name}: {out}"
        );
        assert!(
            out.contains("rollingUpdate\t<RollingUpdateDeployment>"),
            "{name}: {out}"
        );

        let (ok, out, _) = kubectl(&bin, &addr, &["explain", "svc.spec.ports.targetPort"]);
        assert!(
            ok && out.contains("FIELD: targetPort <IntOrString>"),
            "{name}: {out}"
        );

        let (ok, _, err) = kubectl(&bin, &addr, &["explain", "pod.spec.nosuchfield"]);
        assert!(!ok, "{name}: unknown field accepted");
        assert!(
            err.contains("field \"nosuchfield\" does not exist"),
            "{name}: {err}"
        );
    }
}

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},
"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;

/// kubectl sends `fieldValidation=Strict` itself only when the v3 document of the kind lists
/// `fieldValidation` on its PATCH operation; otherwise it falls back to client-side
/// validation against `/openapi/v2`.
#[test]
fn kubectl_uses_server_side_field_validation() {
    let dir = tempdir();
    let file = dir.join("pod.json");
    std::fs::write(&file, POD).unwrap();
    let file = file.to_str().unwrap().to_string();
    let (server, addr) = start(false);
    let (control, control_addr) = start(true);
    for bin in kubectls().into_iter().filter(|b| reads_v3_only(b)) {
        let name = bin.display().to_string();
        server.seen.lock().unwrap().clear();
        let (ok, out, err) = kubectl(&bin, &addr, &["create", "--validate=strict", "-f", &file]);
        assert!(ok, "{name}: create failed: {err}\n{out}");
        let seen = server.seen.lock().unwrap().clone();
        let post = seen
            .iter()
            .find(|s| s.method == "POST")
            .unwrap_or_else(|| panic!("{name}: no POST in {seen:?}"));
        assert!(
            post.target.starts_with("/api/v1/namespaces/default/pods?")
                && post.target.contains("fieldValidation=Strict"),
            "{name}: {post:?}"
        );
        assert!(
            !seen.iter().any(|s| s.target.starts_with("/openapi/v2")),
            "{name}: fell back to v2: {seen:?}"
        );

        // Negative control: without the parameter kubectl does not trust the server.
        control.seen.lock().unwrap().clear();
        let (ok, _, _) = kubectl(
            &bin,
            &control_addr,
            &["create", "--validate=strict", "-f", &file],
        );
        let seen = control.seen.lock().unwrap().clone();
        let validated_on_server = ok
            && seen
                .iter()
                .any(|s| s.method == "POST" && s.target.contains("fieldValidation=Strict"))
            && !seen.iter().any(|s| s.target.starts_with("/openapi/v2"));
        assert!(
            !validated_on_server,
            "{name}: control run was not different: {seen:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// kubectl 1.27 and 1.28 read the protobuf `/openapi/v2` document: when the kind's PATCH
/// operation lists `fieldValidation` they leave validation to the server (this echo server
/// then accepts an unknown field); without it (the control) they validate on the client from
/// the document's definitions and name the unknown field.
#[test]
fn older_kubectl_reads_the_protobuf_v2_document() {
    let dir = tempdir();
    let good = dir.join("pod.json");
    std::fs::write(&good, POD).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, POD.replace("\"image\"", "\"imagez\":\"x\",\"image\"")).unwrap();
    let (good, bad) = (good.to_str().unwrap(), bad.to_str().unwrap());
    let (server, addr) = start(false);
    let (_control, control_addr) = start(true);
    let older: Vec<PathBuf> = kubectls()
        .into_iter()
        .filter(|b| !reads_v3_only(b))
        .collect();
    for bin in older {
        let name = bin.display().to_string();
        server.seen.lock().unwrap().clear();
        let (ok, out, err) = kubectl(&bin, &addr, &["create", "--validate=strict", "-f", good]);
        assert!(ok, "{name}: create failed: {err}\n{out}");
        let seen = server.seen.lock().unwrap().clone();
        assert!(
            seen.iter().any(|s| s.target.starts_with("/openapi/v2")),
            "{name}: did not read v2: {seen:?}"
        );
        assert!(
            seen.iter()
                .any(|s| s.method == "POST" && s.target.contains("fieldValidation=Strict")),
            "{name}: {seen:?}"
        );
        let (ok, _, err) = kubectl(&bin, &addr, &["create", "--validate=strict", "-f", bad]);
        assert!(
            ok,
            "{name}: validated on the client although the server does: {err}"
        );

        let (ok, _, err) = kubectl(
            &bin,
            &control_addr,
            &["create", "--validate=strict", "-f", bad],
        );
        assert!(
            !ok && err.contains("unknown field \"imagez\""),
            "{name}: client-side validation from the v2 definitions did not name the field: {err}"
        );
        let (ok, _, err) = kubectl(
            &bin,
            &control_addr,
            &["create", "--validate=strict", "-f", good],
        );
        assert!(
            ok,
            "{name}: client-side validation refused a valid pod: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
