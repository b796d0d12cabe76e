//! Discovery and OpenAPI: bytes and time per request for what kubectl and client libraries
//! fetch before their first real call, and the RSS serving them adds to an idle controller.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::{ms, percentile, proc_status_kib, start_bramble, HttpClient};

/// (label, path, Accept header)
const DOCUMENTS: &[(&str, &str, &str)] = &[
    ("legacy discovery /api/v1", "/api/v1", "application/json"),
    ("legacy discovery /apis", "/apis", "application/json"),
    (
        "aggregated discovery /apis (apidiscovery v2)",
        "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    ),
    ("OpenAPI v2 (JSON)", "/openapi/v2", "application/json"),
    (
        "OpenAPI v2 (protobuf, kubectl 1.27/1.28)",
        "/openapi/v2",
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    ),
    ("OpenAPI v3 index", "/openapi/v3", "application/json"),
    (
        "OpenAPI v3 api/v1",
        "/openapi/v3/api/v1",
        "application/json",
    ),
    (
        "OpenAPI v3 apis/apps/v1",
        "/openapi/v3/apis/apps/v1",
        "application/json",
    ),
];

const REQUESTS: usize = 30;

/// Appends one row per document and one for the RSS they add.
pub async fn discovery_cost(client: &HttpClient, table: &mut String) {
    let dir = tempfile::tempdir().unwrap();
    let b = start_bramble(dir.path());
    let pid = b.proc.0.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = proc_status_kib(pid, "VmRSS:");
    for (label, path, accept) in DOCUMENTS {
        let mut times = Vec::with_capacity(REQUESTS);
        let mut bytes = 0usize;
        for _ in 0..REQUESTS {
            let req = http::Request::get(format!("{}{path}", b.url))
                .header("authorization", format!("Bearer {}", b.token))
                .header("accept", *accept)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let t = Instant::now();
            let resp = client.request(req).await.expect("discovery request");
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            bytes = resp.into_body().collect().await.unwrap().to_bytes().len();
            times.push(t.elapsed());
        }
        let first = times[0];
        times.sort();
        table.push_str(&format!(
            "| {label}: size, time per request (first / p50) | {:.1} KiB, {} ms / {} ms | |\n",
            bytes as f64 / 1024.0,
            ms(first),
            ms(percentile(&times, 0.5)),
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = proc_status_kib(pid, "VmRSS:");
    table.push_str(&format!(
        "| controller RSS added by serving every document above {REQUESTS} times | {:+.1} MiB ({:.1} -> {:.1} MiB) | |\n",
        (after as f64 - before as f64) / 1024.0,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
    ));
}
