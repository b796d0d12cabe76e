//! Server certificates by SNI: the `spec.tls` entries of the served Ingresses map their hosts
//! (exact or `*.` wildcard) to the certificate of a `kubernetes.io/tls` Secret in the
//! Ingress's namespace. An unknown or missing SNI gets a self-signed default certificate, as
//! ingress-nginx's "Fake Certificate". The table is swapped on every change, so new handshakes
//! see renewed certificates at once.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::error::IngressError;
use crate::routes::normalize_host;

/// The subject of the default certificate.
pub const DEFAULT_CERT_NAME: &str = "Bramble Ingress Controller Default Certificate";

/// A certificate chain and key from PEM (`tls.crt`, `tls.key`), `secret` naming it in errors.
pub fn certified_key(
    secret: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, IngressError> {
    let bad = |reason: String| IngressError::BadSecret {
        secret: secret.to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("tls.crt: {e}")))?;
    if certs.is_empty() {
        return Err(bad("tls.crt holds no certificate".into()));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| bad(format!("tls.key: {e}")))?
        .ok_or_else(|| bad("tls.key holds no private key".into()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad(format!("tls.key: {e}")))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match().map_err(|e| bad(format!("{e}")))?;
    Ok(ck)
}

/// A self-signed certificate for requests without a matching TLS entry.
pub fn default_certificate() -> Result<Arc<CertifiedKey>, IngressError> {
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEFAULT_CERT_NAME);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Bramble");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// Host names to certificates.
#[derive(Debug)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertTable {
    /// Only the default certificate.
    pub fn empty(default: Arc<CertifiedKey>) -> CertTable {
        CertTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        }
    }

    /// The certificate for an SNI name (the default one without a match or without SNI).
    pub fn lookup(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(normalize_host) else {
            return self.default.clone();
        };
        if let Some(c) = self.exact.get(&name) {
            return c.clone();
        }
        name.split_once('.')
            .and_then(|(_, suffix)| self.wildcard.get(suffix))
            .unwrap_or(&self.default)
            .clone()
    }

    /// How many host names have a certificate.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    /// Whether only the default certificate is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parsed Secrets by `namespace/name`, re-parsed only when their resourceVersion changes.
#[derive(Default)]
pub struct CertCache {
    parsed: HashMap<String, (Option<String>, Option<Arc<CertifiedKey>>)>,
}

impl CertCache {
    fn key_of(&mut self, id: &str, secret: &Secret) -> Option<Arc<CertifiedKey>> {
        let rv = secret.metadata.resource_version.clone();
        if let Some((seen, key)) = self.parsed.get(id) {
            if *seen == rv && rv.is_some() {
                return key.clone();
            }
        }
        let data = secret.data.as_ref();
        let field = |k: &str| data.and_then(|d| d.get(k)).map(|b| b.0.as_slice());
        let key = match (field("tls.crt"), field("tls.key")) {
            (Some(c), Some(k)) => match certified_key(id, c, k) {
                Ok(ck) => Some(Arc::new(ck)),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring TLS secret");
                    None
                }
            },
            _ => {
                tracing::warn!(secret = %id, "TLS secret without tls.crt and tls.key");
                None
            }
        };
        self.parsed.insert(id.to_string(), (rv, key.clone()));
        key
    }

    /// The table of `ingresses` (served ones, oldest first: the first to claim a host wins)
    /// over `secrets`. A TLS entry without hosts covers the hosts of its Ingress's rules.
    pub fn table(
        &mut self,
        ingresses: &[Arc<Ingress>],
        secrets: &[Arc<Secret>],
        default: Arc<CertifiedKey>,
    ) -> CertTable {
        let mut t = CertTable::empty(default);
        let mut used = Vec::new();
        for ing in ingresses {
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            let Some(spec) = &ing.spec else { continue };
            for entry in spec.tls.iter().flatten() {
                let Some(name) = entry.secret_name.as_deref().filter(|n| !n.is_empty()) else {
                    continue;
                };
                let id = format!("{ns}/{name}");
                let Some(secret) = secrets.iter().find(|s| {
                    s.metadata.namespace.as_deref() == Some(ns.as_str())
                        && s.metadata.name.as_deref() == Some(name)
                }) else {
                    tracing::debug!(secret = %id, "TLS secret not found");
                    continue;
                };
                let Some(key) = self.key_of(&id, secret) else {
                    continue;
                };
                used.push(id);
                let hosts: Vec<String> = match &entry.hosts {
                    Some(h) if !h.is_empty() => h.clone(),
                    _ => spec
                        .rules
                        .iter()
                        .flatten()
                        .filter_map(|r| r.host.clone())
                        .collect(),
                };
                for host in hosts.iter().map(|h| normalize_host(h)) {
                    let (map, name) = match host.strip_prefix("*.") {
                        Some(suffix) => (&mut t.wildcard, suffix.to_string()),
                        None => (&mut t.exact, host),
                    };
                    map.entry(name).or_insert_with(|| key.clone());
                }
            }
        }
        self.parsed.retain(|id, _| used.contains(id));
        t
    }
}

/// rustls's certificate choice from the current [`CertTable`].
#[derive(Debug)]
pub struct SniResolver {
    certs: watch::Receiver<Arc<CertTable>>,
}

impl SniResolver {
    pub fn new(certs: watch::Receiver<Arc<CertTable>>) -> SniResolver {
        SniResolver { certs }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certs.borrow().lookup(hello.server_name()))
    }
}

/// The HTTPS listener's rustls configuration (HTTP/1.1 by ALPN).
pub fn server_config(resolver: SniResolver) -> Arc<rustls::ServerConfig> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn pem_pair(host: &str) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec![host.to_string()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    fn secret(name: &str, rv: &str, (crt, key): &(String, String)) -> Arc<Secret> {
        let mut s: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d", "resourceVersion": rv},
            "type": "kubernetes.io/tls",
        }))
        .unwrap();
        s.data = Some(
            [
                ("tls.crt".to_string(), ByteString(crt.as_bytes().to_vec())),
                ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
            ]
            .into(),
        );
        Arc::new(s)
    }

    fn ingress(tls: serde_json::Value) -> Arc<Ingress> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "i", "namespace": "d"},
                "spec": {"tls": tls, "rules": [{"host": "rule.example"}]},
            }))
            .unwrap(),
        )
    }

    fn der(k: &CertifiedKey) -> Vec<u8> {
        k.cert[0].to_vec()
    }

    #[test]
    fn sni_picks_the_secret_of_the_host_else_the_default() {
        let default = default_certificate().unwrap();
        let a = pem_pair("a.example");
        let w = pem_pair("*.wild.example");
        let secrets = vec![
            secret("a", "1", &a),
            secret("w", "1", &w),
            secret("r", "1", &a),
        ];
        let ings = vec![ingress(json!([
            {"hosts": ["a.example"], "secretName": "a"},
            {"hosts": ["*.wild.example"], "secretName": "w"},
            {"secretName": "r"},
            {"hosts": ["missing.example"], "secretName": "missing"},
        ]))];
        let mut cache = CertCache::default();
        let t = cache.table(&ings, &secrets, default.clone());
        assert_eq!(t.len(), 3);
        let a_der = der(&certified_key("a", a.0.as_bytes(), a.1.as_bytes()).unwrap());
        assert_eq!(der(&t.lookup(Some("A.example"))), a_der);
        assert_eq!(der(&t.lookup(Some("rule.example"))), a_der);
        assert_ne!(der(&t.lookup(Some("x.wild.example"))), der(&default));
        assert_eq!(der(&t.lookup(Some("x.y.wild.example"))), der(&default));
        assert_eq!(der(&t.lookup(Some("missing.example"))), der(&default));
        assert_eq!(der(&t.lookup(None)), der(&default));
        // A renewed certificate (new resourceVersion) replaces the old one.
        let a2 = pem_pair("a.example");
        let secrets = vec![secret("a", "2", &a2)];
        let t = cache.table(&ings, &secrets, default);
        let a2_der = der(&certified_key("a", a2.0.as_bytes(), a2.1.as_bytes()).unwrap());
        assert_eq!(der(&t.lookup(Some("a.example"))), a2_der);
    }

    #[test]
    fn bad_pem_is_rejected_with_the_secret_name() {
        let (crt, _) = pem_pair("a.example");
        let (_, other_key) = pem_pair("b.example");
        let e = certified_key("d/s", crt.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("d/s"), "{e}");
        let e = certified_key("d/s", b"junk", b"junk").unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
