//! The HTTP and HTTPS listeners: one task per connection serving HTTP/1.1 (and h2c prior
//! knowledge on the plain port) through [`Proxy`]. Connections never hold a routing table:
//! each request reads the current one, so reconfiguration leaves open connections alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::error::IngressError;
use crate::proxy::{Inbound, Proxy};

/// Where the ingress listens (`None`: that listener is off).
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Plain HTTP (default `0.0.0.0:80`).
    pub http: Option<SocketAddr>,
    /// HTTPS (default `0.0.0.0:443`).
    pub https: Option<SocketAddr>,
}

impl IngressConfig {
    /// Listeners on all IPv4 addresses at these ports (0 turns a listener off).
    pub fn ports(http: u16, https: u16) -> IngressConfig {
        let on = |p: u16| (p != 0).then(|| SocketAddr::from(([0, 0, 0, 0], p)));
        IngressConfig {
            http: on(http),
            https: on(https),
        }
    }
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig::ports(80, 443)
    }
}

/// Opens a listener, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, IngressError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| IngressError::Bind { addr, source })
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(60));
    b
}

async fn serve_io<I>(io: I, proxy: Arc<Proxy>, inbound: Inbound)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let proxy = proxy.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, inbound).await) }
    });
    if let Err(e) = builder()
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await
    {
        tracing::trace!(peer = %inbound.peer, error = %e, "ingress connection ended");
    }
}

/// The next connection of `listener` (with Nagle off); accept errors (out of descriptors) are
/// logged and retried after a pause.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(e) => {
                tracing::warn!(error = %e, "ingress accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Accepts plain HTTP connections until the task is dropped.
pub async fn serve_http(listener: TcpListener, proxy: Arc<Proxy>) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    loop {
        let (stream, peer) = accept(&listener).await;
        let inbound = Inbound {
            peer,
            port,
            tls: false,
        };
        tokio::spawn(serve_io(stream, proxy.clone(), inbound));
    }
}

/// Accepts HTTPS connections (the certificate chosen by SNI) until the task is dropped.
pub async fn serve_https(listener: TcpListener, acceptor: TlsAcceptor, proxy: Arc<Proxy>) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    loop {
        let (stream, peer) = accept(&listener).await;
        let acceptor = acceptor.clone();
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => {
                    serve_io(
                        tls,
                        proxy,
                        Inbound {
                            peer,
                            port,
                            tls: true,
                        },
                    )
                    .await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}
