//! The kubeconfig of the kubelet that runs beside the controller (a board with role `both`):
//! a client certificate from the cluster CA for `system:node:<name>` in `system:nodes`, so
//! the Node authorizer and NodeRestriction fence it like any joined kubelet, as k3s's server
//! writes its agent's `kubelet.kubeconfig` and kubeadm writes `/etc/kubernetes/kubelet.conf`.

use std::path::Path;

use crate::cluster::Provenance;
use crate::inspect::{self, LeafRequirements, Renewal};
use crate::issue::{CaSigner, LEAF_VALIDITY};
use crate::kubeconfig::{self, KubeconfigEntry, KubeconfigUser};
use crate::PkiError;

/// The group of node identities.
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of a node's user name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The context (and cluster and user) name in a node kubeconfig: `default`, as in the
/// kubeconfig a kubelet writes when it joins, which its certificate rotation rewrites.
pub const NODE_KUBECONFIG_CONTEXT: &str = "default";
/// A node certificate in the last 20% of its lifetime is issued again.
const NODE_RENEWAL: Renewal = Renewal::LastFraction(0.2);

/// The user name of node `node_name` (`system:node:<name>`).
pub fn node_user_name(node_name: &str) -> String {
    format!("{NODE_USER_PREFIX}{node_name}")
}

/// Makes the kubeconfig at `path` hold a usable client certificate for node `node_name`
/// and `server_url` trusting `ca_pem`. The certificate already there is kept when it is
/// signed by the CA, matches its key, is for exactly that user and group and is not in the
/// last 20% of its lifetime (the kubelet may have rotated it since); otherwise a new one,
/// valid [`LEAF_VALIDITY`], is issued. The file is rewritten (replaced, mode 0600) only when
/// something in it changes.
#[tracing::instrument(skip_all, fields(path = %path.display(), node = node_name))]
pub(crate) fn ensure_node_kubeconfig(
    path: &Path,
    server_url: &str,
    node_name: &str,
    ca_pem: &str,
    signer: &CaSigner,
) -> Result<Provenance, PkiError> {
    let user = node_user_name(node_name);
    let ca_der = inspect::pem_certs(ca_pem, Path::new("cluster CA"))?.remove(0);
    let existing = match kubeconfig::read_kubeconfig_entry(path, NODE_KUBECONFIG_CONTEXT) {
        Ok(entry) => entry,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable node kubeconfig; writing it again");
            None
        }
    };
    let kept = existing.as_ref().and_then(|entry| match &entry.user {
        KubeconfigUser::ClientCert { cert_pem, key_pem } => {
            let req = LeafRequirements {
                ca_der: &ca_der,
                sans: &[],
                common_name: Some(&user),
                organizations: &[NODES_GROUP],
                renewal: NODE_RENEWAL,
            };
            match inspect::leaf_reissue_reason(cert_pem, key_pem, &req) {
                None => Some(entry.user.clone()),
                Some(reason) => {
                    tracing::info!(%reason, "issuing a new node client certificate");
                    None
                }
            }
        }
        KubeconfigUser::Token(_) => None,
    });
    let (credential, provenance) = match kept {
        Some(credential) => (credential, Provenance::Loaded),
        None => {
            let issued = signer.issue_client(&user, &[NODES_GROUP], LEAF_VALIDITY)?;
            let provenance = if existing.is_some() {
                Provenance::Reissued
            } else {
                Provenance::Created
            };
            let credential = KubeconfigUser::ClientCert {
                cert_pem: issued.cert_pem,
                key_pem: issued.key_pem,
            };
            (credential, provenance)
        }
    };
    let wanted = KubeconfigEntry {
        server: server_url.to_string(),
        ca_pem: ca_pem.to_string(),
        user: credential,
    };
    if existing.as_ref() != Some(&wanted) {
        kubeconfig::replace_kubeconfig(
            path,
            &wanted.server,
            &wanted.ca_pem,
            wanted.user,
            NODE_KUBECONFIG_CONTEXT,
        )?;
        tracing::info!(?provenance, user, "wrote node kubeconfig");
    }
    Ok(provenance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::new_ca;

    fn cert_of(path: &Path) -> String {
        match kubeconfig::read_kubeconfig_entry(path, NODE_KUBECONFIG_CONTEXT)
            .unwrap()
            .unwrap()
            .user
        {
            KubeconfigUser::ClientCert { cert_pem, .. } => cert_pem,
            KubeconfigUser::Token(_) => panic!("token"),
        }
    }

    fn identity(cert_pem: &str) -> crate::UserInfo {
        let der = inspect::pem_certs(cert_pem, Path::new("c"))
            .unwrap()
            .remove(0);
        crate::identity_from_client_cert(&der).unwrap()
    }

    #[test]
    fn written_once_kept_then_reissued_for_another_node_or_near_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.kubeconfig");
        let (ca, signer) = new_ca("t").unwrap();
        let server = "https://127.0.0.1:6443";

        let p = ensure_node_kubeconfig(&path, server, "pi-1", &ca.cert_pem, &signer).unwrap();
        assert_eq!(p, Provenance::Created);
        let first = cert_of(&path);
        let user = identity(&first);
        assert_eq!(user.name, "system:node:pi-1");
        assert_eq!(user.groups, ["system:nodes"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // a second start keeps the file untouched
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let p = ensure_node_kubeconfig(&path, server, "pi-1", &ca.cert_pem, &signer).unwrap();
        assert_eq!(p, Provenance::Loaded);
        assert_eq!(cert_of(&path), first);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );

        // a new server address keeps the certificate, rewrites the cluster
        let p = ensure_node_kubeconfig(
            &path,
            "https://10.0.0.5:6443",
            "pi-1",
            &ca.cert_pem,
            &signer,
        )
        .unwrap();
        assert_eq!(p, Provenance::Loaded);
        assert_eq!(cert_of(&path), first);
        let entry = kubeconfig::read_kubeconfig_entry(&path, NODE_KUBECONFIG_CONTEXT)
            .unwrap()
            .unwrap();
        assert_eq!(entry.server, "https://10.0.0.5:6443");

        // another node name: a new certificate for that node
        let p = ensure_node_kubeconfig(&path, server, "pi-2", &ca.cert_pem, &signer).unwrap();
        assert_eq!(p, Provenance::Reissued);
        assert_eq!(identity(&cert_of(&path)).name, "system:node:pi-2");

        // a certificate in the last 20% of its life (100 s left of 3700 s): reissued
        let near = signer
            .issue_client(
                "system:node:pi-2",
                &[NODES_GROUP],
                std::time::Duration::from_secs(100),
            )
            .unwrap();
        kubeconfig::replace_kubeconfig(
            &path,
            server,
            &ca.cert_pem,
            KubeconfigUser::ClientCert {
                cert_pem: near.cert_pem.clone(),
                key_pem: near.key_pem,
            },
            NODE_KUBECONFIG_CONTEXT,
        )
        .unwrap();
        let p = ensure_node_kubeconfig(&path, server, "pi-2", &ca.cert_pem, &signer).unwrap();
        assert_eq!(p, Provenance::Reissued);
        let renewed = cert_of(&path);
        assert_ne!(renewed, near.cert_pem);
        let (nb, na) = crate::validity_unix(&renewed).unwrap();
        assert!(na - nb > LEAF_VALIDITY.as_secs() as i64);
    }

    #[test]
    fn extra_groups_and_other_cas_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.kubeconfig");
        let (ca, signer) = new_ca("t").unwrap();
        let server = "https://127.0.0.1:6443";
        for (signer_of, groups) in [
            (&signer, &["system:nodes", "system:masters"][..]),
            (&new_ca("other").unwrap().1, &["system:nodes"][..]),
        ] {
            let c = signer_of
                .issue_client("system:node:pi-1", groups, LEAF_VALIDITY)
                .unwrap();
            kubeconfig::replace_kubeconfig(
                &path,
                server,
                &ca.cert_pem,
                KubeconfigUser::ClientCert {
                    cert_pem: c.cert_pem.clone(),
                    key_pem: c.key_pem,
                },
                NODE_KUBECONFIG_CONTEXT,
            )
            .unwrap();
            let p = ensure_node_kubeconfig(&path, server, "pi-1", &ca.cert_pem, &signer).unwrap();
            assert_eq!(p, Provenance::Reissued, "{groups:?}");
            assert_eq!(identity(&cert_of(&path)).groups, ["system:nodes"]);
        }
        // garbage in the file: written again
        std::fs::write(&path, "{{{ not yaml").unwrap();
        let p = ensure_node_kubeconfig(&path, server, "pi-1", &ca.cert_pem, &signer).unwrap();
        assert_eq!(p, Provenance::Created);
        assert_eq!(identity(&cert_of(&path)).name, "system:node:pi-1");
    }
}
