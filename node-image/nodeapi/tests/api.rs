//! The node API over real TLS on loopback: the client pins the node certificate, the token is
//! enforced, status/logs/power reach the handler.

use std::sync::{Arc, Mutex};

use bramble_node_api::tls::{load_or_create, server_config};
use bramble_node_api::{
    spawn, LogEntry, NodeApiError, NodeClient, NodeHandler, PowerRequest, ServerSettings,
};

#[derive(Default)]
struct Fake {
    power: Mutex<Vec<PowerRequest>>,
}

impl NodeHandler for Fake {
    fn status(&self) -> serde_json::Value {
        serde_json::json!({ "hostname": "pi-1", "uptime_seconds": 3.5 })
    }
    fn logs(&self, since: u64, source: Option<&str>) -> Vec<LogEntry> {
        (1..=5)
            .filter(|s| *s > since)
            .map(|seq| LogEntry {
                seq,
                time_ms: 1000 * seq,
                source: if seq % 2 == 0 { "kubelet" } else { "init" }.into(),
                text: format!("line {seq}"),
            })
            .filter(|l| source.is_none_or(|s| s == l.source))
            .collect()
    }
    fn kubeconfig(&self) -> Option<String> {
        Some("apiVersion: v1\nkind: Config\n".into())
    }
    fn power(&self, action: PowerRequest) -> Result<(), String> {
        self.power.lock().unwrap().push(action);
        Ok(())
    }
}

#[test]
fn status_logs_and_power_over_tls_with_token_and_pinned_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let id = load_or_create(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let fp = id.fingerprint();
    // Loaded again from disk: the same certificate.
    assert_eq!(load_or_create(dir.path(), &[]).unwrap().fingerprint(), fp);
    let handler = Arc::new(Fake::default());
    let addr = spawn(
        "127.0.0.1:0".parse().unwrap(),
        ServerSettings {
            tls: server_config(&id).unwrap(),
            token: Some("s3cret-token".into()),
        },
        handler.clone(),
    )
    .unwrap();
    let a = addr.to_string();

    let c = NodeClient::new(&a, "s3cret-token", Some(&fp)).unwrap();
    assert_eq!(c.status().unwrap()["hostname"], "pi-1");
    let logs = c.logs(2, None).unwrap();
    assert_eq!(logs.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 4, 5]);
    let k = c.logs(0, Some("kubelet")).unwrap();
    assert_eq!(
        k.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        ["line 2", "line 4"]
    );
    assert!(c.kubeconfig().unwrap().contains("kind: Config"));
    c.power(PowerRequest::Reboot).unwrap();
    c.power(PowerRequest::Poweroff).unwrap();
    assert_eq!(
        *handler.power.lock().unwrap(),
        [PowerRequest::Reboot, PowerRequest::Poweroff]
    );

    // Wrong token: 401 and nothing done.
    let bad = NodeClient::new(&a, "wrong-token!", Some(&fp)).unwrap();
    match bad.power(PowerRequest::Reboot) {
        Err(NodeApiError::Status { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(handler.power.lock().unwrap().len(), 2);

    // Another certificate pinned: the handshake fails before any request is sent.
    let other = "00".repeat(32);
    let e = NodeClient::new(&a, "s3cret-token", Some(&other))
        .unwrap()
        .power(PowerRequest::Reboot)
        .unwrap_err();
    assert!(e.to_string().contains("fingerprint"), "{e}");
    assert_eq!(handler.power.lock().unwrap().len(), 2);
}
