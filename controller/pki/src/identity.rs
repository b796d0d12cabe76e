//! Who a request is: the user information authenticators produce, and the x509 authenticator.

use x509_parser::prelude::{FromDer, X509Certificate};

/// The group of cluster administrators: upstream's authorizer lets it do everything.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The group every authenticated user is added to (upstream adds it after authentication;
/// the authenticators here return only what the credential itself says).
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";
/// The user name of Bramble's admin credentials (client certificate and token).
pub const ADMIN_USER: &str = "bramble-admin";

/// An authenticated user, as upstream's `user.Info`: name, UID and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (`system:node:pi-1`, `bramble-admin`, ...).
    pub name: String,
    /// A unique, stable identifier; empty when the credential carries none (certificates).
    pub uid: String,
    /// The groups the user belongs to, in credential order.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// Returns the user with `system:authenticated` appended to its groups (once), as
    /// upstream's authentication chain does for every authenticated request.
    pub fn with_authenticated_group(mut self) -> UserInfo {
        if !self.groups.iter().any(|g| g == SYSTEM_AUTHENTICATED) {
            self.groups.push(SYSTEM_AUTHENTICATED.to_string());
        }
        self
    }
}

/// The user a verified client certificate (DER) stands for, like upstream's x509
/// authenticator with its common-name conversion: the subject's common name is the user name
/// and each organization is a group. `None` if the certificate does not parse or has no (or
/// an empty, or a non-string) common name.
///
/// This only parses: the chain must already have been verified against the cluster CA (the
/// TLS client verifier of [`crate::ClusterPki::server_tls_config`] does that).
pub fn identity_from_client_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    // Go's pkix.Name keeps the last CommonName attribute when there are several.
    let name = subject
        .iter_common_name()
        .last()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_identity() {
        assert_eq!(identity_from_client_cert(b"not a certificate"), None);
        assert_eq!(identity_from_client_cert(&[]), None);
    }

    #[test]
    fn authenticated_group_added_once() {
        let u = UserInfo {
            name: "a".into(),
            uid: String::new(),
            groups: vec!["g".into()],
        }
        .with_authenticated_group()
        .with_authenticated_group();
        assert_eq!(u.groups, ["g", SYSTEM_AUTHENTICATED]);
    }
}
