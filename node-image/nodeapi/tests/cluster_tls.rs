//! The node API over mutual TLS with the cluster CA, on loopback with a real cluster PKI
//! (bramble-pki's CA, admin certificate and a serving certificate for 127.0.0.1): a cluster
//! admin's client certificate manages the node, other cluster users are refused, certificates
//! of another CA fail the handshake, and token clients keep their pinned certificate when the
//! node gets a cluster-signed one.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bramble_node_api::cluster_tls::{cluster_server_config, ClusterFiles};
use bramble_node_api::tls::load_or_create;
use bramble_node_api::ServerSettings;
use bramble_node_api::{spawn, LogEntry, NodeApiError, NodeClient, NodeHandler, PowerRequest};
use bramble_pki::{ClusterPki, PkiOptions};

#[derive(Default)]
struct Fake {
    power: Mutex<Vec<PowerRequest>>,
}

impl NodeHandler for Fake {
    fn status(&self) -> serde_json::Value {
        serde_json::json!({ "hostname": "pi-1" })
    }
    fn logs(&self, _since: u64, _source: Option<&str>) -> Vec<LogEntry> {
        Vec::new()
    }
    fn kubeconfig(&self) -> Option<String> {
        None
    }
    fn power(&self, action: PowerRequest) -> Result<(), String> {
        self.power.lock().unwrap().push(action);
        Ok(())
    }
}

/// What the node knows of its cluster, switched by the test.
#[derive(Debug, Default)]
struct Files {
    ca: Mutex<Option<String>>,
    serving: Mutex<Option<(String, String)>>,
}

impl ClusterFiles for Files {
    fn cluster_ca(&self) -> Option<String> {
        self.ca.lock().unwrap().clone()
    }
    fn serving_pair(&self) -> Option<(String, String)> {
        self.serving.lock().unwrap().clone()
    }
}

fn pki(dir: &Path) -> ClusterPki {
    ClusterPki::load_or_create(dir, &PkiOptions::new("bramble", &[])).unwrap()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

#[test]
fn cluster_admins_manage_the_node_over_mutual_tls_and_other_identities_do_not() {
    let (node_dir, pki_dir, other_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let cluster = pki(pki_dir.path());
    let ca = cluster.ca_cert_pem().to_string();
    let (admin_cert, admin_key) = (cluster.admin_cert_pem(), cluster.admin_key_pem());
    let (node_cert, node_key) = cluster
        .issue_client_cert("system:node:pi-1", &["system:nodes"], YEAR)
        .unwrap();
    let other = pki(other_dir.path());

    let id = load_or_create(node_dir.path(), &["127.0.0.1".into()]).unwrap();
    let fp = id.fingerprint();
    let files = Arc::new(Files::default());
    let handler = Arc::new(Fake::default());
    let addr = spawn(
        "127.0.0.1:0".parse().unwrap(),
        ServerSettings {
            tls: cluster_server_config(&id, files.clone()).unwrap(),
            token: Some("s3cret-token".into()),
        },
        handler.clone(),
    )
    .unwrap()
    .to_string();
    let admin = NodeClient::with_client_cert(&addr, &ca, admin_cert, admin_key).unwrap();
    let token = NodeClient::new(&addr, "s3cret-token", Some(&fp)).unwrap();

    // Before the node knows its cluster: the token works, the admin's certificate cannot
    // (the node's own certificate does not chain to the cluster CA).
    assert_eq!(token.status().unwrap()["hostname"], "pi-1");
    let e = admin.status().unwrap_err().to_string();
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");

    // The node knows its CA and has a serving certificate signed by it.
    *files.ca.lock().unwrap() = Some(ca.clone());
    *files.serving.lock().unwrap() = Some((
        read(pki_dir.path(), bramble_pki::APISERVER_CERT_FILE),
        read(pki_dir.path(), bramble_pki::APISERVER_KEY_FILE),
    ));
    assert_eq!(admin.status().unwrap()["hostname"], "pi-1");
    admin.power(PowerRequest::Reboot).unwrap();
    assert_eq!(*handler.power.lock().unwrap(), [PowerRequest::Reboot]);
    // The token client still sees the certificate it pinned.
    assert_eq!(token.status().unwrap()["hostname"], "pi-1");

    // A cluster user who is not an admin: 403 naming why, nothing done.
    let kubelet = NodeClient::with_client_cert(&addr, &ca, &node_cert, &node_key).unwrap();
    match kubelet.power(PowerRequest::Poweroff) {
        Err(NodeApiError::Status {
            status: 403,
            message,
        }) => assert!(message.contains("system:node:pi-1"), "{message}"),
        other => panic!("{other:?}"),
    }
    // An admin of another cluster: the handshake fails (the node refuses the certificate).
    let stranger =
        NodeClient::with_client_cert(&addr, &ca, other.admin_cert_pem(), other.admin_key_pem())
            .unwrap();
    let e = stranger.power(PowerRequest::Poweroff).unwrap_err();
    assert!(!matches!(e, NodeApiError::Status { .. }), "{e}");
    // A client that trusts another cluster's CA does not accept this node.
    let wrong_ca =
        NodeClient::with_client_cert(&addr, other.ca_cert_pem(), admin_cert, admin_key).unwrap();
    let e = wrong_ca.status().unwrap_err().to_string();
    assert!(e.contains("invalid peer certificate"), "{e}");
    assert_eq!(*handler.power.lock().unwrap(), [PowerRequest::Reboot]);
}

#[test]
fn without_a_token_only_client_certificates_are_let_in() {
    let (node_dir, pki_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cluster = pki(pki_dir.path());
    let id = load_or_create(node_dir.path(), &["127.0.0.1".into()]).unwrap();
    let files = Arc::new(Files {
        ca: Mutex::new(Some(cluster.ca_cert_pem().to_string())),
        serving: Mutex::new(Some((
            read(pki_dir.path(), bramble_pki::APISERVER_CERT_FILE),
            read(pki_dir.path(), bramble_pki::APISERVER_KEY_FILE),
        ))),
    });
    let addr = spawn(
        "127.0.0.1:0".parse().unwrap(),
        ServerSettings {
            tls: cluster_server_config(&id, files).unwrap(),
            token: None,
        },
        Arc::new(Fake::default()),
    )
    .unwrap()
    .to_string();
    let guess = NodeClient::new(&addr, "any-token", Some(&id.fingerprint())).unwrap();
    match guess.status() {
        Err(NodeApiError::Status { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    let admin = NodeClient::with_client_cert(
        &addr,
        cluster.ca_cert_pem(),
        cluster.admin_cert_pem(),
        cluster.admin_key_pem(),
    )
    .unwrap();
    assert_eq!(admin.status().unwrap()["hostname"], "pi-1");
}
