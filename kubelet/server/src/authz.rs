//! Who may use the kubelet's API, as upstream's kubelet decides (`--authorization-mode
//! Webhook`): each request is turned into attributes on the Node (`nodes/proxy`,
//! `nodes/stats`, `nodes/metrics`, `nodes/log`, `nodes/spec`, verb from the method) and the
//! API server is asked with a SubjectAccessReview, whose answers are cached (5 minutes when
//! allowed, 30 seconds when denied: upstream's webhook cache defaults). A static allow list
//! (the controller's kubelet-client user, `system:masters`) answers without a review, so the
//! controller's own log/exec proxying works even while the API is unreachable.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::Method;
use tracing::warn;

use crate::tls::{ClientIdentity, APISERVER_KUBELET_CLIENT};

/// How long an allowed answer is reused.
pub const ALLOWED_TTL: Duration = Duration::from_secs(300);
/// How long a denied answer is reused.
pub const DENIED_TTL: Duration = Duration::from_secs(30);

/// The verb and Node subresource a request needs (upstream `GetRequestAttributes`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestAttributes {
    /// `get`, `create`, `update`, `patch`, `delete`.
    pub verb: String,
    /// `proxy` unless the path is one of the subdivided ones.
    pub subresource: String,
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The attributes of a request for `path` with `method`.
pub fn request_attributes(method: &Method, path: &str) -> RequestAttributes {
    let verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let subresource = if under(path, "/stats") {
        "stats"
    } else if under(path, "/metrics") {
        "metrics"
    } else if under(path, "/logs") {
        "log"
    } else if under(path, "/spec") {
        "spec"
    } else if under(path, "/checkpoint") {
        "checkpoint"
    } else {
        "proxy"
    };
    RequestAttributes {
        verb: verb.into(),
        subresource: subresource.into(),
    }
}

/// Asks the API server whether `id` may do `attrs` on this node (a SubjectAccessReview).
pub trait AccessReviewer: Send + Sync {
    /// `Ok(allowed)`, or why no answer was had (treated as a denial, not cached).
    fn review<'a>(
        &'a self,
        id: &'a ClientIdentity,
        attrs: &'a RequestAttributes,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

type CacheKey = (String, Vec<String>, RequestAttributes);

/// The kubelet API's authorizer: a static allow list, then the reviewer (if any).
#[derive(Clone)]
pub struct ClientAuthorizer {
    /// Users allowed by name without a review.
    pub users: Vec<String>,
    /// Members of these groups are allowed without a review.
    pub groups: Vec<String>,
    reviewer: Option<Arc<dyn AccessReviewer>>,
    cache: Arc<Mutex<HashMap<CacheKey, (bool, Instant)>>>,
}

impl fmt::Debug for ClientAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuthorizer")
            .field("users", &self.users)
            .field("groups", &self.groups)
            .field("reviews", &self.reviewer.is_some())
            .finish()
    }
}

impl Default for ClientAuthorizer {
    /// The static list only: the controller's kubelet-client user and `system:masters`.
    fn default() -> Self {
        ClientAuthorizer {
            users: vec![APISERVER_KUBELET_CLIENT.to_string()],
            groups: vec!["system:masters".to_string()],
            reviewer: None,
            cache: Arc::default(),
        }
    }
}

impl ClientAuthorizer {
    /// The static list, then `reviewer` for everyone else.
    pub fn with_reviewer(reviewer: Arc<dyn AccessReviewer>) -> Self {
        ClientAuthorizer {
            reviewer: Some(reviewer),
            ..ClientAuthorizer::default()
        }
    }

    fn statically_allowed(&self, id: &ClientIdentity) -> bool {
        self.users.contains(&id.user)
            || id.groups.iter().any(|g| self.groups.iter().any(|a| a == g))
    }

    /// Whether `id` may do `attrs`.
    pub async fn authorize(&self, id: &ClientIdentity, attrs: &RequestAttributes) -> bool {
        if self.statically_allowed(id) {
            return true;
        }
        let Some(reviewer) = &self.reviewer else {
            return false;
        };
        let key = (id.user.clone(), id.groups.clone(), attrs.clone());
        let now = Instant::now();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|_, (allowed, at)| {
                now.duration_since(*at) < if *allowed { ALLOWED_TTL } else { DENIED_TTL }
            });
            if let Some((allowed, _)) = cache.get(&key) {
                return *allowed;
            }
        }
        match reviewer.review(id, attrs).await {
            Ok(allowed) => {
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (allowed, now));
                allowed
            }
            Err(e) => {
                warn!(user = %id.user, error = %e, "SubjectAccessReview failed; denying");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn paths_map_to_upstreams_subresources() {
        let sub = |m: Method, p: &str| request_attributes(&m, p);
        assert_eq!(sub(Method::GET, "/stats/summary").subresource, "stats");
        assert_eq!(sub(Method::GET, "/metrics/resource").subresource, "metrics");
        assert_eq!(sub(Method::GET, "/logs/syslog").subresource, "log");
        assert_eq!(sub(Method::GET, "/statsx").subresource, "proxy");
        let exec = sub(Method::POST, "/exec/default/web/c");
        assert_eq!(
            (exec.verb.as_str(), exec.subresource.as_str()),
            ("create", "proxy")
        );
        let logs = sub(Method::GET, "/containerLogs/default/web/c");
        assert_eq!(
            (logs.verb.as_str(), logs.subresource.as_str()),
            ("get", "proxy")
        );
    }

    struct Counting {
        calls: AtomicUsize,
        allow: bool,
    }

    impl AccessReviewer for Counting {
        fn review<'a>(
            &'a self,
            _id: &'a ClientIdentity,
            attrs: &'a RequestAttributes,
        ) -> BoxFuture<'a, Result<bool, String>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let allow = self.allow && attrs.subresource == "stats";
            Box::pin(async move { Ok(allow) })
        }
    }

    #[tokio::test]
    async fn static_users_skip_the_review_and_answers_are_cached() {
        let reviewer = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            allow: true,
        });
        let authz = ClientAuthorizer::with_reviewer(reviewer.clone());
        let controller = ClientIdentity {
            user: APISERVER_KUBELET_CLIENT.into(),
            groups: vec![],
        };
        let exec = request_attributes(&Method::POST, "/exec/a/b/c");
        assert!(authz.authorize(&controller, &exec).await);
        assert_eq!(reviewer.calls.load(Ordering::SeqCst), 0);
        let viewer = ClientIdentity {
            user: "viewer".into(),
            groups: vec!["system:authenticated".into()],
        };
        let stats = request_attributes(&Method::GET, "/stats/summary");
        assert!(authz.authorize(&viewer, &stats).await);
        assert!(authz.authorize(&viewer, &stats).await);
        assert!(!authz.authorize(&viewer, &exec).await);
        assert!(!authz.authorize(&viewer, &exec).await);
        assert_eq!(
            reviewer.calls.load(Ordering::SeqCst),
            2,
            "answers are cached"
        );
        // without a reviewer only the static list passes
        assert!(!ClientAuthorizer::default().authorize(&viewer, &stats).await);
    }
}
