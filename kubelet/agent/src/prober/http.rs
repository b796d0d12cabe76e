//! httpGet probes (upstream `pkg/probe/http`): one HTTP/1.1 GET with `Connection: close`
//! over a connection made in the pod's network namespace ([`super::http_wire`]); 200-399
//! succeeds. HTTPS skips certificate verification, as upstream's prober does. Redirects go
//! as upstream's client takes them: one to the same host is followed (at most 10), a 3xx
//! that is not followed (another host, no `Location`) succeeds with a warning.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::HTTPGetAction;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::http_wire;
use super::run::{dial, ProbeTarget};
use super::ProbeResult;

/// `User-Agent` of probe requests (upstream `kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.33";

/// Redirects followed at most (Go's client).
const MAX_REDIRECTS: usize = 10;

/// Runs an httpGet probe against `addr`.
pub async fn probe(h: &HTTPGetAction, addr: SocketAddr, t: &ProbeTarget) -> (ProbeResult, String) {
    let https = h
        .scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let first = url(h, addr, https);
    match tokio::time::timeout(t.timeout, get(h, &first, t)).await {
        Ok(Ok(Outcome::Status(code))) if (200..400).contains(&code) => {
            (ProbeResult::Success, String::new())
        }
        Ok(Ok(Outcome::Status(code))) => (
            ProbeResult::Failure,
            format!("HTTP probe failed with statuscode: {code}"),
        ),
        Ok(Ok(Outcome::Unfollowed(body))) => (
            ProbeResult::Success,
            format!(
                "Probe terminated redirects, Response body: {}",
                String::from_utf8_lossy(&body)
            ),
        ),
        Ok(Err(e)) => (ProbeResult::Failure, e),
        Err(_) => (
            ProbeResult::Failure,
            format!(
                "Get \"{first}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ),
        ),
    }
}

fn url(h: &HTTPGetAction, addr: SocketAddr, https: bool) -> String {
    let path = h.path.as_deref().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    format!("{}://{addr}{path}", if https { "https" } else { "http" })
}

/// How a probe's requests ended.
enum Outcome {
    /// The final status.
    Status(u16),
    /// A redirect the probe does not follow, with its body.
    Unfollowed(Vec<u8>),
}

/// The request's headers (Host first, then User-Agent and Accept unless the probe sets
/// them, then the probe's own), checked as the client would. `host` is the URL's
/// authority; a `Host` header among the probe's replaces it when `custom_host`.
fn headers(
    h: &HTTPGetAction,
    authority: &str,
    custom_host: bool,
) -> Result<Vec<(String, String)>, String> {
    let mut host = authority.to_string();
    let mut user_agent = USER_AGENT.to_string();
    let mut accept = "*/*".to_string();
    let mut extra = Vec::new();
    for hdr in h.http_headers.as_deref().unwrap_or(&[]) {
        http::HeaderName::from_bytes(hdr.name.as_bytes()).map_err(|e| e.to_string())?;
        http::HeaderValue::from_str(&hdr.value).map_err(|e| e.to_string())?;
        match hdr.name.to_ascii_lowercase().as_str() {
            "host" if custom_host => host = hdr.value.clone(),
            "host" => {}
            "user-agent" => user_agent = hdr.value.clone(),
            "accept" => accept = hdr.value.clone(),
            "connection" => {}
            _ => extra.push((hdr.name.clone(), hdr.value.clone())),
        }
    }
    let mut out = vec![
        ("Host".to_string(), host),
        ("User-Agent".to_string(), user_agent),
        ("Accept".to_string(), accept),
    ];
    out.extend(extra);
    Ok(out)
}

/// What one request led to.
enum Step {
    Done(Outcome),
    /// A redirect to follow, and whether its `Location` was absolute.
    Follow(url::Url, bool),
}

/// GETs `first`, following same-host redirects.
async fn get(h: &HTTPGetAction, first: &str, t: &ProbeTarget) -> Result<Outcome, String> {
    let start = url::Url::parse(first).map_err(|e| format!("parse \"{first}\": {e}"))?;
    let mut current = start.clone();
    // The probe's Host header holds while redirects stay relative (Go's client).
    let mut custom_host = true;
    for followed in 0.. {
        let target = current.to_string();
        let fail = |e: &dyn std::fmt::Display| format!("Get \"{target}\": {e}");
        let authority = match (current.host_str(), current.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err(fail(&"no Host in request URL")),
        };
        let addr = socket_addr(&current).map_err(|e| fail(&e))?;
        let hdrs = headers(h, &authority, custom_host).map_err(|e| fail(&e))?;
        let path = match current.query() {
            Some(q) => format!("{}?{q}", current.path()),
            None => current.path().to_string(),
        };
        let req = http_wire::request(&path, &hdrs);
        let mut stream = dial(t, addr)
            .await
            .map_err(|e| fail(&format!("dial tcp {addr}: {e}")))?;
        let step = if current.scheme() == "https" {
            let tls = tokio_rustls::TlsConnector::from(insecure_client_config());
            let host = &hdrs[0].1;
            let name = host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n);
            let name = ServerName::try_from(name.trim_matches(['[', ']']).to_string())
                .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
            let mut stream = tls.connect(name, stream).await.map_err(|e| fail(&e))?;
            round(&mut stream, &req, &current, &start).await
        } else {
            round(&mut stream, &req, &current, &start).await
        }
        .map_err(|e| fail(&e))?;
        match step {
            Step::Done(outcome) => return Ok(outcome),
            Step::Follow(next, _) if followed + 1 >= MAX_REDIRECTS => {
                return Err(format!(
                    "Get \"{next}\": stopped after {MAX_REDIRECTS} redirects"
                ))
            }
            Step::Follow(next, absolute) => {
                custom_host &= !absolute;
                current = next;
            }
        }
    }
    unreachable!("the loop returns")
}

/// One request on `io` (a connection to `current`'s address): the final status, a redirect
/// to the host of `start` to follow, or one not to follow (with its body, the message).
async fn round<S>(
    io: &mut S,
    req: &[u8],
    current: &url::Url,
    start: &url::Url,
) -> Result<Step, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let head = http_wire::exchange(io, req).await?;
    if let (Some(loc), 301 | 302 | 303 | 307 | 308) = (&head.location, head.status) {
        let next = current
            .join(loc)
            .map_err(|e| format!("failed to parse Location header {loc:?}: {e}"))?;
        if next.host_str() == start.host_str() {
            return Ok(Step::Follow(next, url::Url::parse(loc).is_ok()));
        }
    }
    if (300..400).contains(&head.status) {
        return Ok(Step::Done(Outcome::Unfollowed(
            http_wire::body(io, head).await,
        )));
    }
    Ok(Step::Done(Outcome::Status(head.status)))
}

/// The address `u` names: its host (an IP: probe hosts are IPs, and redirects are followed
/// only to the same host) and port (the scheme's default when none).
fn socket_addr(u: &url::Url) -> Result<SocketAddr, String> {
    let ip: IpAddr = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.into(),
        Some(url::Host::Ipv6(ip)) => ip.into(),
        Some(url::Host::Domain(d)) => d
            .parse()
            .map_err(|_| format!("dial tcp: lookup {d}: not an IP address"))?,
        None => return Err("no Host in request URL".into()),
    };
    let port = u
        .port_or_known_default()
        .ok_or_else(|| format!("unsupported protocol scheme {:?}", u.scheme()))?;
    Ok(SocketAddr::new(ip, port))
}

/// TLS without certificate verification (upstream: `InsecureSkipVerify: true`).
fn insecure_client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth();
            Arc::new(cfg)
        })
        .clone()
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
