//! The audit log: the requests that change something (create, update, patch, delete,
//! deletecollection, and the refused attempts) that the audit policy
//! ([`crate::audit_policy`]) logs, as one JSON line each in upstream's `audit.k8s.io/v1`
//! Event shape at level Metadata, stage ResponseComplete, in `<data-dir>/audit/audit.log`.
//!
//! Events go through a channel to one writer task that appends them in batches (up to
//! [`BATCH_MAX`] events, or what arrived within [`BATCH_WAIT`] of the first), one write per
//! batch and no fsync, to keep flash writes low. When the file passes `max_size` it is
//! renamed to `audit-<time>.log` (upstream's lumberjack naming) and the oldest backups beyond
//! `max_backups` are removed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::warn;

use bramble_auth::Attributes;
use bramble_pki::UserInfo;

use crate::audit_policy::{AuditPolicy, Level};

/// Most events written in one batch.
pub const BATCH_MAX: usize = 400;
/// Longest an event waits for its batch.
pub const BATCH_WAIT: Duration = Duration::from_secs(1);
/// Events queued before new ones are dropped (and counted in the log).
const QUEUE: usize = 10_000;

/// Where and how much the audit log keeps.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The directory (`<data-dir>/audit`).
    pub dir: PathBuf,
    /// Rotate when the file passes this many bytes (`--audit-log-maxsize` MB).
    pub max_size: u64,
    /// Rotated files kept (`--audit-log-maxbackup`).
    pub max_backups: usize,
    /// Which requests are logged (`--audit-policy-file`, else [`AuditPolicy::default`]).
    pub policy: AuditPolicy,
}

/// Errors of the audit writer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AuditError + 'a {
    move |source| AuditError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The sending side, kept in the API state.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Value>,
    policy: std::sync::Arc<AuditPolicy>,
}

/// The request facts recorded when a request starts.
pub struct Pending {
    log: AuditLog,
    event: Value,
}

/// The peer address of a connection, put into request extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Whether requests with this verb are audited.
pub fn audited_verb(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// Upstream's sourceIPs: X-Forwarded-For entries, X-Real-Ip, then the peer address.
fn source_ips(headers: &http::HeaderMap, peer: Option<SocketAddr>) -> Vec<String> {
    let mut ips: Vec<String> = Vec::new();
    if let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        ips.extend(
            xff.split(',')
                .map(str::trim)
                .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
                .map(str::to_string),
        );
    }
    if let Some(real) = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
    {
        if !ips.iter().any(|i| i == real) {
            ips.push(real.to_string());
        }
    }
    if let Some(p) = peer {
        let ip = p.ip().to_string();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

impl AuditLog {
    /// Starts the writer task (inside a Tokio runtime).
    pub fn start(cfg: AuditConfig) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(&cfg.dir).map_err(io("create", &cfg.dir))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let policy = std::sync::Arc::new(cfg.policy.clone());
        tokio::spawn(writer(cfg, rx));
        Ok(AuditLog { tx, policy })
    }

    /// The event of a request, if it is audited (a mutating verb the policy logs); finish it
    /// with [`Pending::finish`].
    pub fn begin(
        &self,
        attrs: &Attributes,
        impersonator: Option<&UserInfo>,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Option<Pending> {
        if !audited_verb(&attrs.verb) || self.policy.level(attrs) == Level::None {
            return None;
        }
        let mut object_ref = json!({"resource": attrs.resource, "apiVersion": attrs.api_version});
        for (k, v) in [
            ("namespace", &attrs.namespace),
            ("name", &attrs.name),
            ("apiGroup", &attrs.api_group),
            ("subresource", &attrs.subresource),
        ] {
            if !v.is_empty() || k == "apiGroup" {
                object_ref[k] = json!(v);
            }
        }
        // As upstream: `user` is who sent the request, `impersonatedUser` who it acted as.
        let user = user_json(impersonator.unwrap_or(&attrs.user));
        let mut event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": uuid::Uuid::new_v4().to_string(),
            "stage": "ResponseComplete",
            "requestURI": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
            "verb": attrs.verb,
            "user": user,
            "sourceIPs": source_ips(headers, peer),
            "userAgent": headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            "objectRef": object_ref,
            "requestReceivedTimestamp": timestamp(Utc::now()),
        });
        if impersonator.is_some() {
            event["impersonatedUser"] = user_json(&attrs.user);
        }
        Some(Pending {
            log: self.clone(),
            event,
        })
    }
}

impl Pending {
    /// Records the response code (and the authorization decision) and queues the event.
    pub fn finish(mut self, code: u16) {
        self.event["responseStatus"] = json!({"metadata": {}, "code": code});
        self.event["stageTimestamp"] = json!(timestamp(Utc::now()));
        self.event["annotations"] = json!({
            "authorization.k8s.io/decision": if code == 403 { "forbid" } else { "allow" },
        });
        if self.log.tx.try_send(self.event).is_err() {
            warn!("audit queue full: event dropped");
        }
    }
}

async fn writer(cfg: AuditConfig, mut rx: mpsc::Receiver<Value>) {
    let path = cfg.dir.join("audit.log");
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        buf.clear();
        push_line(&mut buf, &first);
        let mut n = 1;
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        while n < BATCH_MAX {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => {
                    push_line(&mut buf, &ev);
                    n += 1;
                }
                _ => break,
            }
        }
        let (cfg2, path2, bytes) = (cfg.clone(), path.clone(), std::mem::take(&mut buf));
        let result = tokio::task::spawn_blocking(move || append(&cfg2, &path2, &bytes)).await;
        match result {
            Ok(Err(e)) => warn!(error = %e, "writing the audit log"),
            Err(e) => warn!(error = %e, "audit writer task"),
            Ok(Ok(())) => {}
        }
    }
}

fn push_line(buf: &mut Vec<u8>, ev: &Value) {
    if serde_json::to_writer(&mut *buf, ev).is_ok() {
        buf.push(b'\n');
    }
}

/// Appends one batch and rotates when the file grew past the limit.
fn append(cfg: &AuditConfig, path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io("open", path))?;
    f.write_all(bytes).map_err(io("write", path))?;
    let size = f.metadata().map_err(io("stat", path))?.len();
    drop(f);
    if cfg.max_size > 0 && size >= cfg.max_size {
        rotate(cfg, path)?;
    }
    Ok(())
}

fn rotate(cfg: &AuditConfig, path: &Path) -> Result<(), AuditError> {
    let stamp = Utc::now().format("%Y-%m-%dT%H-%M-%S%.3f");
    let rotated = cfg.dir.join(format!("audit-{stamp}.log"));
    std::fs::rename(path, &rotated).map_err(io("rename", path))?;
    let mut backups: Vec<PathBuf> = std::fs::read_dir(&cfg.dir)
        .map_err(io("list", &cfg.dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".log"))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(cfg.max_backups);
    for old in &backups[..excess] {
        std::fs::remove_file(old).map_err(io("remove", old))?;
    }
    Ok(())
}

/// An audit event's `user` / `impersonatedUser`.
fn user_json(u: &UserInfo) -> Value {
    let mut user = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        user["uid"] = json!(u.uid);
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str) -> Attributes {
        let mut a = Attributes::resource(
            bramble_pki::UserInfo {
                name: "alice".into(),
                uid: String::new(),
                groups: vec!["dev".into()],
            },
            verb,
            "",
            "pods",
            "",
            "default",
            "web",
        );
        a.api_version = "v1".into();
        a
    }

    #[tokio::test]
    async fn events_are_batched_as_upstream_json_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuditConfig {
            dir: dir.path().to_path_buf(),
            max_size: 4096,
            max_backups: 2,
            policy: AuditPolicy::default(),
        };
        let log = AuditLog::start(cfg).unwrap();
        let uri: http::Uri = "/api/v1/namespaces/default/pods/web?dryRun=All"
            .parse()
            .unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("user-agent", "kubectl/v1.33".parse().unwrap());
        assert!(log
            .begin(&attrs("get"), None, &uri, &headers, None)
            .is_none());
        let mut event = attrs("create");
        event.resource = "events".into();
        assert!(
            log.begin(&event, None, &uri, &headers, None).is_none(),
            "the default policy drops Events"
        );
        let peer: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        // three batches of ten events, each past the size limit: three rotations, two kept
        for _ in 0..3 {
            for _ in 0..10 {
                log.begin(&attrs("delete"), None, &uri, &headers, Some(peer))
                    .unwrap()
                    .finish(200);
            }
            tokio::time::sleep(BATCH_WAIT * 3).await;
        }
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files.iter().all(|f| f.starts_with("audit-")), "{files:?}");
        let last = std::fs::read_to_string(dir.path().join(&files[1])).unwrap();
        assert_eq!(last.lines().count(), 10, "one batch per file");
        let line = last.lines().next().unwrap();
        let ev: Value = serde_json::from_str(line).unwrap();
        assert_eq!(ev["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(ev["kind"], "Event");
        assert_eq!(ev["level"], "Metadata");
        assert_eq!(ev["stage"], "ResponseComplete");
        assert_eq!(ev["verb"], "delete");
        assert_eq!(ev["user"]["username"], "alice");
        assert_eq!(ev["sourceIPs"], json!(["10.0.0.9"]));
        assert_eq!(ev["userAgent"], "kubectl/v1.33");
        assert_eq!(
            ev["requestURI"],
            "/api/v1/namespaces/default/pods/web?dryRun=All"
        );
        assert_eq!(
            ev["objectRef"],
            json!({"resource": "pods", "namespace": "default", "name": "web",
                   "apiGroup": "", "apiVersion": "v1"})
        );
        assert_eq!(ev["responseStatus"]["code"], 200);
        assert_eq!(ev["auditID"].as_str().unwrap().len(), 36);
        assert!(ev["stageTimestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn an_impersonated_request_names_the_requester_as_user() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuditConfig {
            dir: dir.path().to_path_buf(),
            max_size: 1 << 20,
            max_backups: 1,
            policy: AuditPolicy::default(),
        };
        let log = AuditLog::start(cfg).unwrap();
        let uri: http::Uri = "/api/v1/namespaces/default/pods/web".parse().unwrap();
        let admin = bramble_pki::UserInfo {
            name: "bramble-admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        };
        log.begin(
            &attrs("delete"),
            Some(&admin),
            &uri,
            &http::HeaderMap::new(),
            None,
        )
        .unwrap()
        .finish(200);
        tokio::time::sleep(BATCH_WAIT * 3).await;
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .next()
            .unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        let ev: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(ev["user"]["username"], "bramble-admin");
        assert_eq!(
            ev["impersonatedUser"],
            json!({"username": "alice", "groups": ["dev"]})
        );
    }
}
