//! Timing of the PKI operations that sit on start-up and request paths.
//! Run: `cargo bench -p bramble-pki` (prints median and max per operation; no assertions).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bramble_pki::{
    default_server_sans, identity_from_client_cert, ClusterPki, PkiOptions, TokenAuthenticator,
    UserInfo, DEFAULT_SERVICE_IP,
};

fn measure(name: &str, iterations: usize, mut f: impl FnMut()) {
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{name:<44} median {:>10.1?}  max {:>10.1?}  (n={iterations})",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

fn main() {
    let opts = PkiOptions {
        cluster_name: "bramble".into(),
        server_sans: default_server_sans(Some("pi-1"), DEFAULT_SERVICE_IP, &[]),
    };
    let tmp = tempfile::tempdir().expect("tempdir");

    let mut n = 0;
    measure("load_or_create, first start (CA + 2 leaves)", 20, || {
        n += 1;
        black_box(ClusterPki::load_or_create(&tmp.path().join(n.to_string()), &opts).unwrap());
    });
    let dir = tmp.path().join("1");
    measure("load_or_create, later start (all loaded)", 50, || {
        black_box(ClusterPki::load_or_create(&dir, &opts).unwrap());
    });
    let pki = ClusterPki::load_or_create(&dir, &opts).unwrap();
    measure("issue_client_cert (2 groups)", 100, || {
        black_box(
            pki.issue_client_cert("jane", &["dev", "ops"], Duration::from_secs(3600))
                .unwrap(),
        );
    });
    measure("server_tls_config", 100, || {
        black_box(pki.server_tls_config().unwrap());
    });
    let der: Vec<u8> = rustls_pemfile::certs(&mut pki.admin_cert_pem().as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec();
    measure("identity_from_client_cert", 10_000, || {
        black_box(identity_from_client_cert(black_box(&der)));
    });
    let mut tokens = TokenAuthenticator::new();
    for i in 0..100 {
        tokens.add(
            &format!("token-{i:04}"),
            UserInfo {
                name: format!("u{i}"),
                ..Default::default()
            },
        );
    }
    measure(
        "TokenAuthenticator::authenticate (100 tokens)",
        10_000,
        || {
            black_box(tokens.authenticate(black_box("token-0050")));
        },
    );
    let kubeconfig = tmp.path().join("kubeconfig");
    measure("write_admin_kubeconfig (merge + fsync)", 50, || {
        pki.write_admin_kubeconfig(&kubeconfig, "https://127.0.0.1:6443", "bramble")
            .unwrap();
    });
}
