//! User impersonation (`kubectl --as USER --as-group GROUP`), as upstream's
//! `WithImpersonation` filter: the `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`
//! and `Impersonate-Extra-<key>` headers of an authenticated request name who the request
//! should act as. The requester needs the `impersonate` verb on each part (`users`, `groups`
//! or `serviceaccounts` in the core group, `uids` and `userextras/<key>` in
//! `authentication.k8s.io`); then the request is authorized, admitted and audited as the
//! impersonated user, and the headers are removed.
//!
//! User extras are authorized but not carried further: Bramble's `UserInfo` has no extras.

use bramble_api::{Reason, Status};
use bramble_auth::{Attributes, Decision};
use bramble_pki::{UserInfo, SYSTEM_AUTHENTICATED};
use http::HeaderMap;

use crate::authz::ANONYMOUS_USER;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// What the headers ask to act as.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    /// `(key, value)`: the key unescaped from the header name and lower-cased.
    pub extras: Vec<(String, String)>,
}

impl Request {
    /// The impersonation the headers request, `None` when they request none.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Request>, Status> {
        let text = |v: &http::HeaderValue| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| Status::bad_request("impersonation headers must be valid ASCII text"))
        };
        let mut r = Request::default();
        for (name, value) in headers {
            let name = name.as_str();
            if name == USER {
                r.user = Some(text(value)?);
            } else if name == GROUP {
                r.groups.push(text(value)?);
            } else if name == UID {
                r.uid = Some(text(value)?);
            } else if let Some(key) = name.strip_prefix(EXTRA_PREFIX) {
                r.extras
                    .push((unescape(key)?.to_ascii_lowercase(), text(value)?));
            }
        }
        if r.user.is_none() {
            if r.groups.is_empty() && r.uid.is_none() && r.extras.is_empty() {
                return Ok(None);
            }
            // Upstream answers this with an internal error.
            return Err(Status::new(
                Reason::InternalError,
                "Internal error occurred: requested impersonation of groups, a uid or extras \
                 without impersonating a user",
            ));
        }
        Ok(Some(r))
    }

    /// The `impersonate` checks the requester must pass, one per impersonated part.
    pub fn checks(&self, requester: &UserInfo) -> Vec<Attributes> {
        let check = |group: &str, resource: &str, sub: &str, ns: &str, name: &str| {
            Attributes::resource(
                requester.clone(),
                "impersonate",
                group,
                resource,
                sub,
                ns,
                name,
            )
        };
        let mut out = Vec::new();
        if let Some(user) = &self.user {
            out.push(match service_account(user) {
                Some((ns, name)) => check("", "serviceaccounts", "", ns, name),
                None => check("", "users", "", "", user),
            });
        }
        out.extend(self.groups.iter().map(|g| check("", "groups", "", "", g)));
        if let Some(uid) = &self.uid {
            out.push(check(AUTHENTICATION_GROUP, "uids", "", "", uid));
        }
        for (key, value) in &self.extras {
            out.push(check(AUTHENTICATION_GROUP, "userextras", key, "", value));
        }
        out
    }

    /// The user the request then acts as: the named user with the named groups (a service
    /// account without named groups gets its `system:serviceaccounts` groups), plus
    /// `system:authenticated`, or `system:unauthenticated` for the anonymous user.
    pub fn user(&self) -> UserInfo {
        let name = self.user.clone().unwrap_or_default();
        let mut groups = self.groups.clone();
        if groups.is_empty() {
            if let Some((ns, _)) = service_account(&name) {
                groups = vec![
                    "system:serviceaccounts".to_string(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        }
        let implied = if name == ANONYMOUS_USER {
            UNAUTHENTICATED
        } else {
            SYSTEM_AUTHENTICATED
        };
        if !groups.iter().any(|g| g == implied) {
            groups.push(implied.to_string());
        }
        UserInfo {
            name,
            uid: self.uid.clone().unwrap_or_default(),
            groups,
        }
    }
}

/// `(namespace, name)` of a `system:serviceaccount:NS:NAME` user name.
fn service_account(user: &str) -> Option<(&str, &str)> {
    let (ns, name) = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// An `Impersonate-Extra-` key with its `%XX` escapes decoded (header names cannot hold
/// every character an extra's key may).
fn unescape(key: &str) -> Result<String, Status> {
    let bad = || Status::bad_request(format!("invalid escape in impersonation extra key {key:?}"));
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = key.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Applies the impersonation `headers` request for `requester`, checking each part with
/// `authorize`: the user the request acts as (the requester when nothing is requested), or
/// upstream's 403 naming the first part the requester may not impersonate. The headers are
/// removed.
pub fn apply(
    requester: UserInfo,
    headers: &mut HeaderMap,
    authorize: impl Fn(&Attributes) -> Decision,
) -> Result<Impersonated, Status> {
    let request = Request::from_headers(headers)?;
    let Some(request) = request else {
        return Ok(Impersonated {
            user: requester,
            by: None,
        });
    };
    for check in request.checks(&requester) {
        let decision = authorize(&check);
        if !decision.allowed() {
            return Err(crate::authz::forbidden(&check, decision.reason()));
        }
    }
    let names: Vec<_> = headers
        .keys()
        .filter(|n| {
            let n = n.as_str();
            n == USER || n == GROUP || n == UID || n.starts_with(EXTRA_PREFIX)
        })
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
    Ok(Impersonated {
        user: request.user(),
        by: Some(requester),
    })
}

/// Who a request acts as, and who asked for that when it is an impersonation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonated {
    pub user: UserInfo,
    pub by: Option<UserInfo>,
}

#[cfg(test)]
#[path = "impersonation_tests.rs"]
mod tests;
