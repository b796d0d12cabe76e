//! Cluster PKI for Bramble: the cluster CA, the API server's serving certificate, client
//! certificates (admin, kubelets, users), bearer tokens and kubeconfig files.
//!
//! At first start [`ClusterPki::load_or_create`] creates, in the controller's data directory
//! (e.g. `<data>/pki/`), an ECDSA P-256 CA valid 10 years, a serving certificate and an admin
//! client certificate (`CN=bramble-admin, O=system:masters`) valid 1 year, and a random admin
//! token; later starts load them and reissue the leaves when needed. Authentication follows
//! upstream: a verified client certificate's CN is the user and its O's the groups
//! ([`identity_from_client_cert`]); bearer tokens map to users ([`TokenAuthenticator`]).

mod cluster;
mod csr;
mod error;
mod files;
mod identity;
mod inspect;
mod issue;
mod kubeconfig;
mod node_kubeconfig;
mod options;
mod subject;
mod tls;
mod token;

pub use cluster::{
    ClusterPki, Provenance, ADMIN_CERT_FILE, ADMIN_KEY_FILE, ADMIN_TOKEN_FILE, APISERVER_CERT_FILE,
    APISERVER_KEY_FILE, CA_CERT_FILE, CA_KEY_FILE,
};
pub use csr::{
    ca_cert_hash, csr_sans, csr_subject, issue_client_with_ca, new_client_csr, new_serving_csr,
    sign_client_csr_with_ca, sign_serving_csr_with_ca, CsrSans, CsrSubject,
};
pub use error::PkiError;
pub use identity::{
    identity_from_client_cert, UserInfo, ADMIN_USER, SYSTEM_AUTHENTICATED, SYSTEM_MASTERS,
};
pub use inspect::{not_after_unix, validity_unix, Renewal, RENEW_BEFORE};
pub use issue::{APISERVER_CN, CA_VALIDITY, LEAF_VALIDITY};
pub use kubeconfig::{
    read_current_kubeconfig_entry, read_kubeconfig_entry, replace_kubeconfig, write_kubeconfig,
    KubeconfigEntry, KubeconfigUser,
};
pub use node_kubeconfig::{node_user_name, NODES_GROUP, NODE_KUBECONFIG_CONTEXT, NODE_USER_PREFIX};
pub use options::{
    default_server_sans, local_hostname, PkiOptions, DEFAULT_SERVICE_IP, KUBERNETES_SERVICE_NAMES,
};
pub use tls::{client_config, crypto_provider, root_store, server_config, ALPN_PROTOCOLS};
pub use token::{admin_user, generate_token, TokenAuthenticator};
