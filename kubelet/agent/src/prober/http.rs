//! httpGet probes (upstream `pkg/probe/http`): one HTTP/1.1 GET over a connection made in
//! the pod's network namespace; 200-399 succeeds. HTTPS skips certificate verification, as
//! upstream's prober does. Redirects are not followed: a 3xx is already a success.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::HTTPGetAction;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::run::{dial, ProbeTarget};
use super::ProbeResult;

/// `User-Agent` of probe requests (upstream `kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.33";

/// Runs an httpGet probe against `addr`.
pub async fn probe(h: &HTTPGetAction, addr: SocketAddr, t: &ProbeTarget) -> (ProbeResult, String) {
    let https = h
        .scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    match tokio::time::timeout(t.timeout, get(h, addr, https, t)).await {
        Ok(Ok(code)) if (200..400).contains(&code) => (ProbeResult::Success, String::new()),
        Ok(Ok(code)) => (
            ProbeResult::Failure,
            format!("HTTP probe failed with statuscode: {code}"),
        ),
        Ok(Err(e)) => (ProbeResult::Failure, e),
        Err(_) => (
            ProbeResult::Failure,
            format!(
                "Get \"{}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                url(h, addr, https)
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

async fn get(
    h: &HTTPGetAction,
    addr: SocketAddr,
    https: bool,
    t: &ProbeTarget,
) -> Result<u16, String> {
    let target = url(h, addr, https);
    let fail = |e: &dyn std::fmt::Display| format!("Get \"{target}\": {e}");
    let stream = dial(t, addr)
        .await
        .map_err(|e| fail(&format!("dial tcp {addr}: {e}")))?;
    let uri: http::Uri = target.parse().map_err(|e| fail(&e))?;
    let mut req = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut host = addr.to_string();
    let mut user_agent = USER_AGENT.to_string();
    let mut accept = "*/*".to_string();
    let mut extra = Vec::new();
    for hdr in h.http_headers.as_deref().unwrap_or(&[]) {
        match hdr.name.to_ascii_lowercase().as_str() {
            "host" => host = hdr.value.clone(),
            "user-agent" => user_agent = hdr.value.clone(),
            "accept" => accept = hdr.value.clone(),
            _ => extra.push((hdr.name.clone(), hdr.value.clone())),
        }
    }
    req = req
        .header(http::header::HOST, &host)
        .header(http::header::USER_AGENT, user_agent)
        .header(http::header::ACCEPT, accept)
        .header(http::header::CONNECTION, "close");
    for (k, v) in extra {
        req = req.header(k, v);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| fail(&e))?;
    let code = if https {
        let tls = tokio_rustls::TlsConnector::from(insecure_client_config());
        let name = ServerName::try_from(host.split(':').next().unwrap_or_default().to_string())
            .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
        let stream = tls.connect(name, stream).await.map_err(|e| fail(&e))?;
        send(TokioIo::new(stream), req)
            .await
            .map_err(|e| fail(&e))?
    } else {
        send(TokioIo::new(stream), req)
            .await
            .map_err(|e| fail(&e))?
    };
    Ok(code)
}

async fn send<I>(io: I, req: http::Request<Empty<Bytes>>) -> Result<u16, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let conn = tokio::spawn(conn);
    let resp = sender.send_request(req).await?;
    conn.abort();
    Ok(resp.status().as_u16())
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
