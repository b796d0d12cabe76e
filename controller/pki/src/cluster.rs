//! The cluster's PKI directory: created at first start, loaded (and leaves renewed) later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::files::{self, PRIVATE_MODE, PUBLIC_MODE};
use crate::identity::{ADMIN_USER, SYSTEM_MASTERS};
use crate::inspect::{self, LeafRequirements, Renewal, RENEW_BEFORE};
use crate::issue::{self, CaSigner, CertAndKey, LEAF_VALIDITY};
use crate::kubeconfig::{self, KubeconfigUser};
use crate::options::{normalize_sans, PkiOptions, San};
use crate::token::{self, admin_user, TokenAuthenticator};
use crate::{tls, PkiError};

/// CA certificate file name.
pub const CA_CERT_FILE: &str = "ca.crt";
/// CA private key file name.
pub const CA_KEY_FILE: &str = "ca.key";
/// API server serving certificate file name.
pub const APISERVER_CERT_FILE: &str = "apiserver.crt";
/// API server serving key file name.
pub const APISERVER_KEY_FILE: &str = "apiserver.key";
/// Admin client certificate file name.
pub const ADMIN_CERT_FILE: &str = "admin.crt";
/// Admin client key file name.
pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Admin bearer token file name.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// What [`ClusterPki::load_or_create`] did with each credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Read from disk and still usable.
    Loaded,
    /// Did not exist: created.
    Created,
    /// Existed but was unusable (missing name, close to expiry, other CA...): issued again.
    Reissued,
}

/// The cluster CA and the credentials Bramble's controller needs, persisted in one directory.
pub struct ClusterPki {
    dir: PathBuf,
    ca_pem: String,
    signer: CaSigner,
    serving: CertAndKey,
    admin: CertAndKey,
    admin_token: String,
    serving_provenance: Provenance,
    ca_provenance: Provenance,
}

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPki")
            .field("dir", &self.dir)
            .field("ca", &self.ca_provenance)
            .field("serving", &self.serving_provenance)
            .finish_non_exhaustive()
    }
}

impl ClusterPki {
    /// Loads the PKI in `dir`, creating what is missing. On first start this creates the CA
    /// (10 years), the serving certificate for `opts.server_sans` and the admin client
    /// certificate (1 year each), and a random admin token. Later the CA is kept; the
    /// serving and admin certificates are reissued from it when they lack a requested name,
    /// expire within 30 days, do not chain to the CA or do not match their key. Keys and the
    /// token are written with mode 0600, certificates 0644, the directory 0700 if created.
    ///
    /// If only one of `ca.crt` and `ca.key` exists, this fails with
    /// [`PkiError::Incomplete`] rather than replace a CA that credentials may chain to.
    #[tracing::instrument(skip_all, fields(dir = %dir.display()))]
    pub fn load_or_create(dir: &Path, opts: &PkiOptions) -> Result<ClusterPki, PkiError> {
        files::ensure_dir(dir, 0o700)?;
        let san_strings = normalize_sans(&opts.server_sans);
        let sans = san_strings
            .iter()
            .map(|s| San::parse(s))
            .collect::<Result<Vec<_>, _>>()?;

        let (ca, signer, ca_provenance) = load_or_create_ca(dir, &opts.cluster_name)?;
        let ca_der = inspect::pem_certs(&ca.cert_pem, &dir.join(CA_CERT_FILE))?.remove(0);

        let (serving, serving_provenance) = load_or_issue_leaf(
            dir,
            APISERVER_CERT_FILE,
            APISERVER_KEY_FILE,
            &LeafRequirements {
                ca_der: &ca_der,
                sans: &sans,
                common_name: None,
                organizations: &[],
                renewal: Renewal::Before(RENEW_BEFORE),
            },
            || signer.issue_serving(&san_strings),
        )?;
        let (admin, _) = load_or_issue_leaf(
            dir,
            ADMIN_CERT_FILE,
            ADMIN_KEY_FILE,
            &LeafRequirements {
                ca_der: &ca_der,
                sans: &[],
                common_name: Some(ADMIN_USER),
                organizations: &[SYSTEM_MASTERS],
                renewal: Renewal::Before(RENEW_BEFORE),
            },
            || signer.issue_client(ADMIN_USER, &[SYSTEM_MASTERS], LEAF_VALIDITY),
        )?;
        let admin_token = token::load_or_create_token(&dir.join(ADMIN_TOKEN_FILE))?;

        Ok(ClusterPki {
            dir: dir.to_path_buf(),
            ca_pem: ca.cert_pem,
            signer,
            serving,
            admin,
            admin_token,
            serving_provenance,
            ca_provenance,
        })
    }

    /// The PKI directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster CA certificate, PEM (what clients trust; `certificate-authority-data`).
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The API server's serving certificate, PEM.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving.cert_pem
    }

    /// The admin client certificate (CN=bramble-admin, O=system:masters), PEM.
    pub fn admin_cert_pem(&self) -> &str {
        &self.admin.cert_pem
    }

    /// The admin client key, PKCS#8 PEM.
    pub fn admin_key_pem(&self) -> &str {
        &self.admin.key_pem
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Whether the CA was loaded or created by this start.
    pub fn ca_provenance(&self) -> Provenance {
        self.ca_provenance
    }

    /// Whether the serving certificate was loaded, created or reissued by this start.
    pub fn serving_provenance(&self) -> Provenance {
        self.serving_provenance
    }

    /// A token authenticator that knows the admin token (as `bramble-admin` in
    /// `system:masters`); more tokens can be added to it.
    pub fn token_authenticator(&self) -> TokenAuthenticator {
        let mut auth = TokenAuthenticator::new();
        auth.add(&self.admin_token, admin_user());
        auth
    }

    /// The API server's TLS configuration: the serving certificate, ALPN `h2` and
    /// `http/1.1`, and optional client certificates verified against the cluster CA. Uses
    /// the ring provider explicitly.
    pub fn server_tls_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        tls::server_config(&self.ca_pem, &self.serving.cert_pem, &self.serving.key_pem)
    }

    /// Issues a client certificate signed by the cluster CA with common name `cn` (the user
    /// name) and one organization per entry of `orgs` (the groups), valid for `validity`.
    /// Returns `(cert_pem, key_pem)`; nothing is written to disk.
    pub fn issue_client_cert(
        &self,
        cn: &str,
        orgs: &[&str],
        validity: Duration,
    ) -> Result<(String, String), PkiError> {
        let issued = self.signer.issue_client(cn, orgs, validity)?;
        Ok((issued.cert_pem, issued.key_pem))
    }

    /// Signs the client certificate a PKCS#8 CSR (PEM) asks for with the cluster CA, valid
    /// `validity`; the CSR's self-signature is checked first.
    pub fn sign_client_csr(&self, csr_pem: &str, validity: Duration) -> Result<String, PkiError> {
        self.signer.sign_client_csr(csr_pem, validity)
    }

    /// kubeadm's hash of the cluster CA's public key (`sha256:<hex>`).
    pub fn ca_cert_hash(&self) -> Result<String, PkiError> {
        crate::csr::ca_cert_hash(&self.ca_pem)
    }

    /// Makes the kubeconfig at `path` carry a client certificate for the kubelet of node
    /// `node_name` on this machine (`system:node:<name>` in `system:nodes`) and `server_url`;
    /// a usable certificate already there is kept, one in the last 20% of its lifetime, for
    /// another node or from another CA is replaced. Returns what happened to the certificate.
    pub fn write_node_kubeconfig(
        &self,
        path: &Path,
        server_url: &str,
        node_name: &str,
    ) -> Result<Provenance, PkiError> {
        crate::node_kubeconfig::ensure_node_kubeconfig(
            path,
            server_url,
            node_name,
            &self.ca_pem,
            &self.signer,
        )
    }

    /// Writes (merging) a kubeconfig at `path` for the admin client certificate, with
    /// cluster, user and context all named `context_name`, and makes it current.
    pub fn write_admin_kubeconfig(
        &self,
        path: &Path,
        server_url: &str,
        context_name: &str,
    ) -> Result<(), PkiError> {
        kubeconfig::write_kubeconfig(
            path,
            server_url,
            &self.ca_pem,
            KubeconfigUser::ClientCert {
                cert_pem: self.admin.cert_pem.clone(),
                key_pem: self.admin.key_pem.clone(),
            },
            context_name,
        )
    }
}

fn load_or_create_ca(
    dir: &Path,
    cluster_name: &str,
) -> Result<(CertAndKey, CaSigner, Provenance), PkiError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    match (
        files::read_optional(&cert_path)?,
        files::read_optional(&key_path)?,
    ) {
        (Some(cert_pem), Some(key_pem)) => {
            let signer = CaSigner::from_pem(&cert_pem, &key_pem)
                .map_err(|e| PkiError::parse(&cert_path, format!("unusable CA: {e}")))?;
            tracing::debug!("loaded cluster CA");
            Ok((CertAndKey { cert_pem, key_pem }, signer, Provenance::Loaded))
        }
        (None, None) => {
            let (ca, signer) = issue::new_ca(cluster_name)?;
            // Key first: a crash in between leaves an incomplete PKI, never a CA
            // certificate whose key is lost.
            files::write_atomic(&key_path, ca.key_pem.as_bytes(), PRIVATE_MODE)?;
            files::write_atomic(&cert_path, ca.cert_pem.as_bytes(), PUBLIC_MODE)?;
            tracing::info!(cert = %cert_path.display(), "created cluster CA");
            Ok((ca, signer, Provenance::Created))
        }
        (Some(_), None) => Err(PkiError::Incomplete {
            dir: dir.to_path_buf(),
            present: CA_CERT_FILE,
            missing: CA_KEY_FILE,
        }),
        (None, Some(_)) => Err(PkiError::Incomplete {
            dir: dir.to_path_buf(),
            present: CA_KEY_FILE,
            missing: CA_CERT_FILE,
        }),
    }
}

fn load_or_issue_leaf(
    dir: &Path,
    cert_file: &str,
    key_file: &str,
    req: &LeafRequirements<'_>,
    issue: impl FnOnce() -> Result<CertAndKey, PkiError>,
) -> Result<(CertAndKey, Provenance), PkiError> {
    let cert_path = dir.join(cert_file);
    let key_path = dir.join(key_file);
    let existing = (
        files::read_optional(&cert_path)?,
        files::read_optional(&key_path)?,
    );
    let provenance = match existing {
        (Some(cert_pem), Some(key_pem)) => {
            match inspect::leaf_reissue_reason(&cert_pem, &key_pem, req) {
                None => return Ok((CertAndKey { cert_pem, key_pem }, Provenance::Loaded)),
                Some(reason) => {
                    tracing::info!(cert = %cert_path.display(), %reason, "reissuing certificate");
                    Provenance::Reissued
                }
            }
        }
        _ => Provenance::Created,
    };
    let issued = issue()?;
    files::write_atomic(&key_path, issued.key_pem.as_bytes(), PRIVATE_MODE)?;
    files::write_atomic(&cert_path, issued.cert_pem.as_bytes(), PUBLIC_MODE)?;
    if provenance == Provenance::Created {
        tracing::info!(cert = %cert_path.display(), "issued certificate");
    }
    Ok((issued, provenance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ClusterPki>();
        assert_send_sync::<TokenAuthenticator>();
    }
}
