//! Connections: TCP, TLS (rustls), HTTP/1.1 and HTTP/2 (hyper), and request routing.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::{debug, info_span, Instrument};

use bramble_api::openapi::CachedDocument;
use bramble_api::Status;
use bramble_pki::{identity_from_client_cert, UserInfo};

use crate::auth::Authenticator;
use crate::body::{self, Response};
use crate::discovery;
use crate::handlers::{self, Ctx};
use crate::path::{self, Route};
use crate::query::Query;
use crate::state::ApiState;

/// Accepts connections until `shutdown` resolves.
pub async fn serve(
    state: Arc<ApiState>,
    authn: Arc<Authenticator>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let authn = authn.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(t)) => t,
                        Ok(Err(e)) => {
                            debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(|c| identity_from_client_cert(c.as_ref()));
                    serve_connection_from(TokioIo::new(tls), state, authn, identity, Some(peer))
                        .await;
                }
                None => {
                    serve_connection_from(TokioIo::new(tcp), state, authn, None, Some(peer)).await
                }
            }
        });
    }
}

pub(crate) async fn serve_connection<I>(
    io: I,
    state: Arc<ApiState>,
    authn: Arc<Authenticator>,
    identity: Option<UserInfo>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    serve_connection_from(io, state, authn, identity, None).await
}

/// [`serve_connection`] for a peer at `peer` (recorded in request extensions as
/// [`crate::audit::PeerAddr`]).
pub(crate) async fn serve_connection_from<I>(
    io: I,
    state: Arc<ApiState>,
    authn: Arc<Authenticator>,
    identity: Option<UserInfo>,
    peer: Option<std::net::SocketAddr>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let identity = Arc::new(identity);
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let state = state.clone();
        let authn = authn.clone();
        let identity = identity.clone();
        if let Some(p) = peer {
            req.extensions_mut().insert(crate::audit::PeerAddr(p));
        }
        async move { Ok::<_, Infallible>(handle(state, &authn, identity.as_ref().as_ref(), req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Slow clients: a request's headers must arrive within the timeout (upstream's
    // ReadHeaderTimeout); hyper answers 431 to header blocks past its buffer limit.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let _ = builder.serve_connection_with_upgrades(io, svc).await;
}

/// How long a client has to send a request's headers, and to finish the TLS handshake
/// (kube-apiserver's 32 s ReadHeaderTimeout).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(32);

/// Routes one request.
pub async fn handle(
    state: Arc<ApiState>,
    authn: &Authenticator,
    cert_identity: Option<&UserInfo>,
    mut req: Request<Incoming>,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = info_span!("request", %method, %path);
    async move {
        let registry = state.registry.clone();
        let route = path::parse(&path, &|g, v, r| {
            registry.find(g, v, r).map(|i| i.namespaced)
        });
        let public = matches!(route, Route::Health(_));
        let user = match authn.authenticate(cert_identity, req.headers()) {
            Ok(u) => Some(u),
            Err(_) if public => None,
            Err(s) => {
                body::discard(req.into_body()).await;
                return body::status(&s);
            }
        };
        let (user, impersonator) = match user {
            Some(requester) => {
                let authorize = |a: &bramble_auth::Attributes| {
                    if state.settings.always_allow {
                        bramble_auth::Decision::Allow(String::new())
                    } else {
                        crate::authz::authorize(state.store.as_ref(), authn.rbac_cache(), a)
                    }
                };
                match crate::impersonation::apply(requester, req.headers_mut(), authorize) {
                    Ok(i) => (Some(i.user), i.by),
                    Err(s) => {
                        body::discard(req.into_body()).await;
                        return body::status(&s);
                    }
                }
            }
            None => (None, None),
        };
        let audit = match (&user, state.audit.get()) {
            (Some(u), Some(log))
                if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) =>
            {
                let query = Query::parse(req.uri().query());
                let attrs =
                    crate::authz::attributes(u.clone(), method.as_str(), &path, &query, &route);
                let peer = req
                    .extensions()
                    .get::<crate::audit::PeerAddr>()
                    .map(|p| p.0);
                log.begin(
                    &attrs,
                    impersonator.as_ref(),
                    req.uri(),
                    req.headers(),
                    peer,
                )
            }
            _ => None,
        };
        let resp = match crate::authz::filter(&state, authn, user.clone(), &route, req).await {
            Ok(resp) => resp,
            Err(req) => route_request(&state, route, req).await,
        };
        if let Some(a) = audit {
            a.finish(resp.status().as_u16());
        }
        debug!(
            user = user.as_ref().map(|u| u.name.as_str()).unwrap_or("-"),
            code = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "served"
        );
        resp
    }
    .instrument(span)
    .await
}

async fn route_request(state: &Arc<ApiState>, route: Route, req: Request<Incoming>) -> Response {
    let get_only = |resp: Response, method: &Method| {
        if method == Method::GET || method == Method::HEAD {
            resp
        } else {
            body::status(&Status::new(
                bramble_api::Reason::MethodNotAllowed,
                "method not allowed",
            ))
        }
    };
    let method = req.method().clone();
    match route {
        Route::LegacyVersions | Route::GroupList => get_only(
            discovery::root(
                &state.registry,
                route == Route::LegacyVersions,
                req.headers()
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok()),
                &state.api_endpoint().to_string(),
            ),
            &method,
        ),
        Route::Group(g) => match discovery::group(&state.registry, &g) {
            Some(v) => get_only(body::json(200, &v), &method),
            None => body::status(&handlers::not_found()),
        },
        Route::ResourceList { group, version } => {
            match discovery::resource_list(&state.registry, &group, &version) {
                Some(v) => get_only(body::json(200, &v), &method),
                None => body::status(&handlers::not_found()),
            }
        }
        Route::Version => get_only(body::json(200, &discovery::version()), &method),
        Route::Health(which) => health(state, &which, req.uri().query()),
        Route::OpenApiV2 | Route::OpenApiV3Root | Route::OpenApiV3GroupVersion(_) => {
            let builds = state.openapi.builds();
            let resp = match route {
                Route::OpenApiV2 => get_only(openapi_v2(state, &req), &method),
                Route::OpenApiV3GroupVersion(path) => {
                    match state.openapi.group_version(&state.registry, &path) {
                        Some(doc) => get_only(openapi_document(&doc, &req), &method),
                        None => body::status(&handlers::not_found()),
                    }
                }
                _ => get_only(
                    openapi_document(&state.openapi.root(&state.registry), &req),
                    &method,
                ),
            };
            // Generating a document allocates tens of MiB of temporaries.
            if state.openapi.builds() != builds {
                crate::memory::release_freed_soon();
            }
            resp
        }
        Route::NotFound => body::status(&handlers::not_found()),
        Route::Resource(rr) => {
            let Some(info) = state.registry.find(&rr.group, &rr.version, &rr.resource) else {
                return body::status(&handlers::not_found());
            };
            if crate::metrics::is_metrics(&rr) {
                return crate::metrics::serve(state, rr, req).await;
            }
            if crate::streaming::is_streaming(&rr) {
                return crate::streaming::serve(state, rr, req).await;
            }
            let query = Query::parse(req.uri().query());
            let content_type = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let user_agent = req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let output = crate::negotiate::output_for(
                req.headers()
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok()),
            );
            let bytes = match body::read_limited(req.into_body()).await {
                Ok(b) => b,
                Err(s) => return body::status(&s),
            };
            let ctx = Ctx {
                state,
                info,
                route: rr,
                query,
                content_type,
                output,
                user_agent,
            };
            handlers::serve(ctx, &method, bytes).await
        }
    }
}

/// `/healthz`, `/livez`, `/readyz` (and their `?verbose` forms).
fn health(state: &Arc<ApiState>, which: &str, query: Option<&str>) -> Response {
    let base = which.split('/').next().unwrap_or(which);
    let store_ok = state.store.get("core/namespaces/default").is_ok();
    let checks = [("ping", true), ("store", store_ok)];
    let all_ok = checks.iter().all(|(_, ok)| *ok);
    let verbose = Query::parse(query).get("verbose").is_some()
        || query.is_some_and(|q| q.contains("verbose"));
    let code = if all_ok { 200 } else { 500 };
    if !verbose {
        return body::text(code, if all_ok { "ok" } else { "failed" });
    }
    let mut out = String::new();
    for (name, ok) in checks {
        out.push_str(&format!(
            "[{}]{name} {}\n",
            if ok { "+" } else { "-" },
            if ok { "ok" } else { "failed" }
        ));
    }
    out.push_str(&format!(
        "{base} check {}\n",
        if all_ok { "passed" } else { "failed" }
    ));
    body::text(code, out)
}

/// A cached OpenAPI document: its gzip bytes as they are kept when the client accepts gzip (as
/// upstream compresses large responses), else decompressed.
fn openapi_document<B>(doc: &CachedDocument, req: &Request<B>) -> Response {
    let accepts_gzip = req
        .headers()
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.replace(' ', "") == "q=0")
        });
    if !accepts_gzip {
        let bytes = doc.bytes();
        if bytes.len() >= crate::memory::LARGE_RESPONSE_BYTES / 8 {
            // The decompressed copy is freed once sent; give it back then.
            crate::memory::release_freed_soon();
        }
        return body::raw_json(200, bytes);
    }
    let mut resp = body::raw_json(200, bytes::Bytes::from_owner(doc.gzip()));
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_ENCODING,
        http::HeaderValue::from_static("gzip"),
    );
    headers.insert(
        http::header::VARY,
        http::HeaderValue::from_static("Accept-Encoding"),
    );
    resp
}

/// `/openapi/v2` in JSON, or in gnostic protobuf when the client's `Accept` asks for it (as
/// kubectl 1.27 and 1.28 do before they choose server-side field validation).
fn openapi_v2<B>(state: &ApiState, req: &Request<B>) -> Response {
    use bramble_api::openapi::proto_v2::{MEDIA_TYPE, MEDIA_TYPE_DEPRECATED};
    let wants_protobuf = req
        .headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .any(|t| t == MEDIA_TYPE || t == MEDIA_TYPE_DEPRECATED);
    if !wants_protobuf {
        return openapi_document(&state.openapi.v2(&state.registry), req);
    }
    let mut resp = openapi_document(&state.openapi.v2_protobuf(&state.registry), req);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(MEDIA_TYPE),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Read;

    fn request(accept_encoding: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri("/openapi/v3/apis/apps/v1");
        if let Some(v) = accept_encoding {
            b = b.header(http::header::ACCEPT_ENCODING, v);
        }
        b.body(()).unwrap()
    }

    async fn body_of(resp: Response) -> Vec<u8> {
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn openapi_documents_are_gzip_for_clients_that_accept_it() {
        let registry = bramble_api::registry::Registry::builtin();
        let cache = bramble_api::openapi::OpenApiCache::new();
        let doc = cache.group_version(&registry, "apis/apps/v1").unwrap();
        let plain = doc.bytes();
        assert!(serde_json::from_slice::<serde_json::Value>(&plain).is_ok());

        for accept in [None, Some("identity"), Some("gzip;q=0"), Some("br")] {
            let resp = openapi_document(&doc, &request(accept));
            assert!(resp.headers().get(http::header::CONTENT_ENCODING).is_none());
            assert_eq!(body_of(resp).await, plain, "{accept:?}");
        }
        for accept in ["gzip", "deflate, GZIP;q=1.0", "br, gzip"] {
            let resp = openapi_document(&doc, &request(Some(accept)));
            assert_eq!(resp.headers()[http::header::CONTENT_ENCODING], "gzip");
            assert_eq!(resp.headers()[http::header::VARY], "Accept-Encoding");
            let compressed = body_of(resp).await;
            assert!(compressed.len() * 4 < plain.len(), "{accept}: compressed");
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, plain, "{accept}");
        }
    }
}
