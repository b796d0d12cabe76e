//! The data plane over real sockets on loopback: a backend speaking HTTP/1.1 (echoing the
//! request head it received, or switching protocols and echoing bytes), the ingress's HTTP
//! listener in front of it, and raw client connections.

use std::net::SocketAddr;
use std::sync::Arc;

use bramble_ingress::backends::Cluster;
use bramble_ingress::proxy::Proxy;
use bramble_ingress::routes::RouteTable;
use bramble_ingress::server;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A backend answering each request with its head as the body, tagged with `name`; a
/// request with `Upgrade: echo` gets 101 and then its bytes echoed.
async fn backend(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    if head.to_ascii_lowercase().contains("upgrade: echo") {
                        s.get_mut()
                            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
                            .await
                            .unwrap();
                        let (mut r, mut w) = s.into_inner().into_split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        return;
                    }
                    let body = format!("{name}\n{head}");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nKeep-Alive: timeout=5\r\nx-secret-hop: 1\r\nConnection: x-secret-hop\r\n\r\n{body}",
                        body.len()
                    );
                    s.get_mut().write_all(resp.as_bytes()).await.unwrap();
                }
            });
        }
    });
    addr
}

/// A table routing `host` to a Service `svc` whose one ready endpoint is `addr`.
fn table(host: &str, svc: &str, addr: SocketAddr) -> RouteTable {
    let ing: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "i", "namespace": "d"},
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": svc, "port": {"number": 80}}}}]}}]},
    }))
    .unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": svc, "namespace": "d"},
        "spec": {"ports": [{"port": 80, "targetPort": addr.port()}]},
    }))
    .unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{svc}-1"), "namespace": "d", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"port": addr.port(), "protocol": "TCP"}],
        "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}],
    }))
    .unwrap();
    RouteTable::build(
        &[Arc::new(ing)],
        &Cluster {
            services: &[Arc::new(service)],
            slices: &[Arc::new(slice)],
        },
    )
}

async fn ingress(routes: watch::Receiver<Arc<RouteTable>>) -> SocketAddr {
    let l = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server::serve_http(l, Arc::new(Proxy::new(routes))));
    addr
}

/// Sends one request head on `conn`; returns the status, the response head and the body.
async fn request(conn: &mut BufReader<TcpStream>, head: &str) -> (u16, String, String) {
    conn.get_mut().write_all(head.as_bytes()).await.unwrap();
    let mut resp_head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        resp_head.push_str(&line);
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.unwrap();
    let status = resp_head
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (status, resp_head, String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn forwards_headers_swaps_tables_under_open_connections_and_upgrades() {
    let (a, b) = (backend("backend-a").await, backend("backend-b").await);
    let (tx, rx) = watch::channel(Arc::new(table("app.test", "a", a)));
    let addr = ingress(rx).await;
    let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());

    let (status, head, body) = request(
        &mut conn,
        "GET /x?q=1 HTTP/1.1\r\nHost: App.test:80\r\nX-Forwarded-For: 192.0.2.7\r\nConnection: x-drop-me\r\nx-drop-me: 1\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{head}{body}");
    let lower = body.to_ascii_lowercase();
    assert!(body.starts_with("backend-a\nGET /x?q=1 HTTP/1.1"), "{body}");
    assert!(lower.contains("host: app.test:80"), "{body}");
    assert!(
        lower.contains("x-forwarded-for: 192.0.2.7, 127.0.0.1"),
        "{body}"
    );
    assert!(lower.contains("x-forwarded-proto: http\r\n"), "{body}");
    assert!(lower.contains("x-forwarded-host: app.test:80"), "{body}");
    assert!(
        lower.contains(&format!("x-forwarded-port: {}", addr.port())),
        "{body}"
    );
    assert!(lower.contains("x-real-ip: 127.0.0.1"), "{body}");
    assert!(
        !lower.contains("x-drop-me"),
        "hop-by-hop header forwarded: {body}"
    );
    let head = head.to_ascii_lowercase();
    assert!(
        !head.contains("x-secret-hop") && !head.contains("keep-alive"),
        "{head}"
    );

    // Unknown host: 404 on the same connection.
    let (status, _, _) = request(&mut conn, "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n").await;
    assert_eq!(status, 404);

    // A new table: the open connection's next request goes by it.
    tx.send_replace(Arc::new(table("app.test", "b", b)));
    let (status, _, body) = request(&mut conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("backend-b\n"), "{body}");

    // An endpoint that refuses: 502.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    tx.send_replace(Arc::new(table("app.test", "c", closed)));
    let (status, _, _) = request(&mut conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    assert_eq!(status, 502);

    // A connection upgrade is spliced through.
    tx.send_replace(Arc::new(table("app.test", "a", a)));
    let mut ws = BufReader::new(TcpStream::connect(addr).await.unwrap());
    ws.get_mut()
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut status_line = String::new();
    ws.read_line(&mut status_line).await.unwrap();
    assert!(status_line.starts_with("HTTP/1.1 101"), "{status_line}");
    loop {
        let mut line = String::new();
        ws.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
    }
    ws.get_mut()
        .write_all(b"ping over the upgrade")
        .await
        .unwrap();
    let mut echoed = [0u8; 21];
    ws.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping over the upgrade");
}
