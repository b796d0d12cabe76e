//! Prober unit tests: thresholds and holds, and the network probes against real loopback
//! servers (hyper HTTP/1, HTTP/2 gRPC, a plain TCP listener).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, HTTPHeader, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::run::{resolve_port, ProbeTarget};
use super::worker::Worker;
use super::*;

fn params(success: u32, failure: u32) -> ProbeParams {
    ProbeParams {
        initial_delay: Duration::ZERO,
        period: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        success_threshold: success,
        failure_threshold: failure,
    }
}

#[test]
fn defaults_are_upstreams() {
    let p = ProbeParams::from_probe(ProbeKind::Liveness, &Probe::default());
    assert_eq!(p, {
        let mut d = params(1, 3);
        d.period = Duration::from_secs(10);
        d
    });
    let probe = Probe {
        success_threshold: Some(3),
        ..Default::default()
    };
    // successThreshold is 1 for liveness and startup whatever the spec says.
    assert_eq!(
        ProbeParams::from_probe(ProbeKind::Startup, &probe).success_threshold,
        1
    );
    assert_eq!(
        ProbeParams::from_probe(ProbeKind::Readiness, &probe).success_threshold,
        3
    );
}

#[test]
fn thresholds_and_hold() {
    let mut w = Worker::new(
        ProbeKind::Readiness,
        Arc::new(Probe::default()),
        params(2, 3),
        "c1".into(),
        1,
    );
    assert_eq!(w.result, ProbeResult::Failure);
    assert!(!w.observe(ProbeResult::Success));
    assert!(w.observe(ProbeResult::Success));
    assert_eq!(w.result, ProbeResult::Success);
    assert!(!w.observe(ProbeResult::Failure));
    assert!(!w.observe(ProbeResult::Unknown));
    assert!(!w.observe(ProbeResult::Failure));
    assert!(w.observe(ProbeResult::Failure));
    assert_eq!(w.result, ProbeResult::Failure);

    let mut l = Worker::new(
        ProbeKind::Liveness,
        Arc::new(Probe::default()),
        params(1, 2),
        "c1".into(),
        1,
    );
    assert_eq!(l.result, ProbeResult::Success);
    assert!(!l.observe(ProbeResult::Failure));
    assert!(!l.observe(ProbeResult::Success));
    assert!(!l.observe(ProbeResult::Failure));
    assert!(l.observe(ProbeResult::Failure));
    assert_eq!(l.result, ProbeResult::Failure);
}

#[test]
fn started_and_ready_follow_the_probes() {
    let spec: Container = serde_json::from_value(json!({
        "name": "c", "startupProbe": {"exec": {"command": ["true"]}},
        "readinessProbe": {"exec": {"command": ["true"]}}
    }))
    .unwrap();
    let mut probes = PodProbes::default();
    assert_eq!(probes.started_ready(&spec, "id1"), (false, false));
    let mut cp = ContainerProbes {
        container_id: "id1".into(),
        startup: Some(ProbeResult::Unknown),
        readiness: Some(ProbeResult::Failure),
        liveness: None,
    };
    probes.0.insert("c".into(), cp.clone());
    assert_eq!(probes.started_ready(&spec, "id1"), (false, false));
    cp.startup = Some(ProbeResult::Success);
    probes.0.insert("c".into(), cp.clone());
    assert_eq!(probes.started_ready(&spec, "id1"), (true, false));
    cp.readiness = Some(ProbeResult::Success);
    probes.0.insert("c".into(), cp);
    assert_eq!(probes.started_ready(&spec, "id1"), (true, true));
    // Results of an older container of the same name do not count.
    assert_eq!(probes.started_ready(&spec, "id2"), (false, false));
    let plain: Container = serde_json::from_value(json!({"name": "p"})).unwrap();
    assert_eq!(probes.started_ready(&plain, "x"), (true, true));
}

#[test]
fn named_ports_resolve() {
    let c: Container = serde_json::from_value(json!({
        "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
    }))
    .unwrap();
    assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
    assert_eq!(
        resolve_port(&IntOrString::String("http".into()), &c),
        Ok(8080)
    );
    assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
    assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
}

fn target() -> ProbeTarget {
    ProbeTarget {
        netns: None,
        pod_ip: "127.0.0.1".parse().unwrap(),
        container: Arc::new(Container::default()),
        container_id: String::new(),
        timeout: Duration::from_secs(2),
    }
}

async fn serve<F, Fut>(h2: bool, f: F) -> SocketAddr
where
    F: Fn(::http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ::http::Response<Full<Bytes>>> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let f = f.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |r| {
                    let f = f.clone();
                    async move { Ok::<_, Infallible>(f(r).await) }
                });
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_get_status_codes_and_headers() {
    let addr = serve(false, |r: ::http::Request<Incoming>| async move {
        let (code, location) = match r.uri().path() {
            "/ok" => (200, None),
            "/moved" => (301, None),
            "/to-ok" => (302, Some("ok")),
            "/to-bad" => (307, Some("/bad?from=to-bad")),
            "/away" => (302, Some("http://192.0.2.1:8080/")),
            "/loop" => (302, Some("/loop")),
            "/hdr"
                if r.headers().get("x-probe").is_some_and(|v| v == "yes")
                    && r.headers().get("host").is_some_and(|v| v == "example.test")
                    && r.headers()
                        .get("user-agent")
                        .is_some_and(|v| v.to_str().unwrap().starts_with("kube-probe/")) =>
            {
                (200, None)
            }
            _ => (500, None),
        };
        let mut resp = ::http::Response::builder().status(code);
        if let Some(l) = location {
            resp = resp.header("location", l);
        }
        resp.body(Full::new(Bytes::from_static(b"x"))).unwrap()
    })
    .await;
    let t = target();
    let get = |path: &str, headers: Vec<HTTPHeader>| HTTPGetAction {
        path: Some(path.into()),
        port: IntOrString::Int(addr.port() as i32),
        http_headers: Some(headers),
        ..Default::default()
    };
    assert_eq!(
        http::probe(&get("/ok", vec![]), addr, &t).await.0,
        ProbeResult::Success
    );
    assert_eq!(
        http::probe(&get("/moved", vec![]), addr, &t).await.0,
        ProbeResult::Success
    );
    let (r, msg) = http::probe(&get("/bad", vec![]), addr, &t).await;
    assert_eq!(r, ProbeResult::Failure);
    assert_eq!(msg, "HTTP probe failed with statuscode: 500");
    // Redirects to the same host are followed; what they lead to decides.
    assert_eq!(
        http::probe(&get("/to-ok", vec![]), addr, &t).await,
        (ProbeResult::Success, String::new())
    );
    assert_eq!(
        http::probe(&get("/to-bad", vec![]), addr, &t).await,
        (
            ProbeResult::Failure,
            "HTTP probe failed with statuscode: 500".to_string()
        )
    );
    // One to another host is not: a success with a warning (upstream's probe.Warning).
    assert_eq!(
        http::probe(&get("/away", vec![]), addr, &t).await,
        (
            ProbeResult::Success,
            "Probe terminated redirects, Response body: x".to_string()
        )
    );
    let (r, msg) = http::probe(&get("/loop", vec![]), addr, &t).await;
    assert_eq!(r, ProbeResult::Failure);
    assert_eq!(
        msg,
        format!("Get \"http://{addr}/loop\": stopped after 10 redirects")
    );
    let hdrs = vec![
        HTTPHeader {
            name: "X-Probe".into(),
            value: "yes".into(),
        },
        HTTPHeader {
            name: "Host".into(),
            value: "example.test".into(),
        },
    ];
    assert_eq!(
        http::probe(&get("/hdr", hdrs), addr, &t).await.0,
        ProbeResult::Success
    );
    // Nothing listens: a failure naming the address.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (r, msg) = http::probe(&get("/ok", vec![]), closed, &t).await;
    assert_eq!(r, ProbeResult::Failure);
    assert!(msg.contains(&closed.to_string()), "{msg}");
}

#[tokio::test]
async fn tcp_socket_connects() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let t = target();
    assert!(run::dial(&t, addr).await.is_ok());
    drop(l);
    assert!(run::dial(&t, addr).await.is_err());
}

#[tokio::test]
async fn grpc_health_check() {
    let addr = serve(true, |r: ::http::Request<Incoming>| async move {
        assert_eq!(r.uri().path(), "/grpc.health.v1.Health/Check");
        assert_eq!(r.headers()["content-type"], "application/grpc");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        // Field 1 of the request is the service name.
        let service = if body.len() > 7 {
            String::from_utf8_lossy(&body[7..]).into_owned()
        } else {
            String::new()
        };
        if service == "missing" {
            return ::http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "5")
                .header("grpc-message", "unknown service")
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
        let status = if service == "down" { 2 } else { 1 };
        // A trailers-less reply is enough for the status header path; the message carries
        // the serving status.
        ::http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "0")
            .body(Full::new(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status])))
            .unwrap()
    })
    .await;
    let t = target();
    assert_eq!(grpc::probe(addr, "", &t).await.0, ProbeResult::Success);
    let (r, msg) = grpc::probe(addr, "down", &t).await;
    assert_eq!(r, ProbeResult::Failure);
    assert_eq!(msg, "service unhealthy (responded with \"NOT_SERVING\")");
    let (r, msg) = grpc::probe(addr, "missing", &t).await;
    assert_eq!(r, ProbeResult::Failure);
    assert!(
        msg.contains("code = NotFound desc = unknown service"),
        "{msg}"
    );
}

#[test]
fn probe_kind_of_container() {
    let c = Container {
        liveness_probe: Some(Probe {
            period_seconds: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(ProbeKind::Liveness.of(&c).is_some());
    assert!(ProbeKind::Readiness.of(&c).is_none());
}

struct NoEvents;

impl ProbeEvents for NoEvents {
    fn unhealthy(&self, _: &PodProbeTarget, _: &str, _: ProbeKind, _: &str) {}
}

#[tokio::test]
async fn a_terminating_pod_keeps_only_readiness_then_nothing() {
    // No probe runs here (an hour of initial delay): the runtime is never called.
    let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let rt = bramble_runtime::RuntimeClient::from_fd(ours.into()).unwrap();
    let m = ProberManager::start(Arc::new(rt), Arc::new(NoEvents));
    let probe = Probe {
        tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
            port: IntOrString::Int(8080),
            ..Default::default()
        }),
        initial_delay_seconds: Some(3600),
        ..Default::default()
    };
    let spec = Container {
        name: "c".into(),
        liveness_probe: Some(probe.clone()),
        readiness_probe: Some(probe.clone()),
        startup_probe: Some(probe),
        ..Default::default()
    };
    m.update_pod(one_container_pod(spec));
    let c = m.results("u1").0.remove("c").unwrap();
    assert!(c.liveness.is_some() && c.readiness.is_some() && c.startup.is_some());
    m.stop_liveness_and_startup("u1");
    let c = m.results("u1").0.remove("c").unwrap();
    assert_eq!((c.liveness, c.startup), (None, None));
    assert_eq!(c.readiness, Some(ProbeResult::Failure));
    m.remove_pod("u1");
    assert!(m.results("u1").0.is_empty());
}

/// Pod `u1` with the one running container `spec` (id `id1`), no network.
fn one_container_pod(spec: Container) -> PodProbeTarget {
    PodProbeTarget {
        pod: Arc::new(Pod::default()),
        uid: "u1".into(),
        netns: None,
        pod_ip: None,
        containers: vec![RunningContainer {
            spec: Arc::new(spec),
            id: "id1".into(),
            started_at: None,
        }],
    }
}

#[test]
fn repeated_probes_fall_on_whole_seconds_of_the_epoch() {
    use super::worker::on_grid;
    use tokio::time::Instant;
    let epoch = Instant::now();
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    // Moved up to the next whole second, kept when already on it.
    assert_eq!(on_grid(epoch, epoch + ms(2300), s(1)), epoch + s(3));
    assert_eq!(on_grid(epoch, epoch + ms(2300), s(10)), epoch + s(3));
    assert_eq!(on_grid(epoch, epoch + s(7), s(1)), epoch + s(7));
    // Periods under a second keep their own times.
    assert_eq!(on_grid(epoch, epoch + ms(2300), ms(500)), epoch + ms(2300));
}

#[tokio::test]
async fn a_lone_probe_keeps_running_every_period() {
    // The only probe of the node: the timer loop must find its next run on the heap after
    // each run, with nothing else waking it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let rt = bramble_runtime::RuntimeClient::from_fd(ours.into()).unwrap();
    let m = ProberManager::start(Arc::new(rt), Arc::new(NoEvents));
    let probe = Probe {
        tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
            port: IntOrString::Int(i32::from(port)),
            ..Default::default()
        }),
        period_seconds: Some(1),
        ..Default::default()
    };
    let spec = Container {
        name: "c".into(),
        readiness_probe: Some(probe),
        ..Default::default()
    };
    m.update_pod(one_container_pod(spec));
    for run in 1..=3 {
        let accepted = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await;
        assert!(accepted.is_ok(), "probe run {run} never came");
    }
    let c = m.results("u1").0.remove("c").unwrap();
    assert_eq!(c.readiness, Some(ProbeResult::Success));
}
