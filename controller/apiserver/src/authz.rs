//! Authorization of every request: attributes from the path, then the Node authorizer and
//! RBAC (roles and bindings read from the store, parsed once per store revision), then
//! NodeRestriction admission for kubelets. Denials are upstream's 403 Forbidden.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::Request;
use hyper::body::Incoming;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;

use bramble_api::{Reason, Status};
use bramble_auth::node::{self, NodeGraph, PodRefs};
use bramble_auth::{rbac, verb_for, Attributes, Decision, RbacSource};
use bramble_pki::UserInfo;
use bramble_store::{ListOptions, Revision, Store};

use crate::body::{self, Response};
use crate::path::Route;
use crate::query::Query;
use crate::state::ApiState;

/// The name of unauthenticated callers, as upstream's anonymous authenticator.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of unauthenticated callers.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";

/// The anonymous user.
pub fn anonymous() -> UserInfo {
    UserInfo {
        name: ANONYMOUS_USER.into(),
        uid: String::new(),
        groups: vec![UNAUTHENTICATED_GROUP.into()],
    }
}

/// Roles and bindings parsed from the store, reused while the store's revision is unchanged.
#[derive(Default)]
pub struct RbacSnapshot {
    revision: Revision,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    role_bindings: HashMap<String, Vec<RoleBinding>>,
    cluster_roles: HashMap<String, ClusterRole>,
    roles: HashMap<(String, String), Role>,
}

impl RbacSource for RbacSnapshot {
    fn cluster_role_bindings(&self) -> Vec<ClusterRoleBinding> {
        self.cluster_role_bindings.clone()
    }
    fn role_bindings(&self, namespace: &str) -> Vec<RoleBinding> {
        self.role_bindings
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }
    fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
        self.cluster_roles.get(name).cloned()
    }
    fn role(&self, namespace: &str, name: &str) -> Option<Role> {
        self.roles
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

fn list_typed<T: DeserializeOwned>(store: &dyn Store, prefix: &str) -> Vec<T> {
    store
        .list(prefix, ListOptions::default())
        .map(|r| {
            r.items
                .iter()
                .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
                .collect()
        })
        .unwrap_or_default()
}

const RBAC: &str = "rbac.authorization.k8s.io";

impl RbacSnapshot {
    /// Reads every role and binding.
    pub fn load(store: &dyn Store) -> RbacSnapshot {
        let revision = store.current_revision();
        let crbs: Vec<ClusterRoleBinding> =
            list_typed(store, &format!("{RBAC}/clusterrolebindings/"));
        let rbs: Vec<RoleBinding> = list_typed(store, &format!("{RBAC}/rolebindings/"));
        let crs: Vec<ClusterRole> = list_typed(store, &format!("{RBAC}/clusterroles/"));
        let roles: Vec<Role> = list_typed(store, &format!("{RBAC}/roles/"));
        let mut snap = RbacSnapshot {
            revision,
            cluster_role_bindings: crbs,
            ..RbacSnapshot::default()
        };
        for rb in rbs {
            let ns = rb.metadata.namespace.clone().unwrap_or_default();
            snap.role_bindings.entry(ns).or_default().push(rb);
        }
        for cr in crs {
            snap.cluster_roles
                .insert(cr.metadata.name.clone().unwrap_or_default(), cr);
        }
        for r in roles {
            let key = (
                r.metadata.namespace.clone().unwrap_or_default(),
                r.metadata.name.clone().unwrap_or_default(),
            );
            snap.roles.insert(key, r);
        }
        snap
    }
}

/// Caches the RBAC snapshot per store revision.
#[derive(Default)]
pub struct RbacCache {
    current: Mutex<Option<Arc<RbacSnapshot>>>,
}

impl RbacCache {
    /// The snapshot for the store's current revision.
    pub fn get(&self, store: &dyn Store) -> Arc<RbacSnapshot> {
        let rev = store.current_revision();
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(s) if s.revision == rev => s.clone(),
            _ => {
                let s = Arc::new(RbacSnapshot::load(store));
                *guard = Some(s.clone());
                s
            }
        }
    }
}

/// Pods bound to a node, read from the store.
pub struct StoreNodeGraph<'a>(pub &'a dyn Store);

impl NodeGraph for StoreNodeGraph<'_> {
    fn pods_on_node(&self, node: &str) -> Vec<PodRefs> {
        list_typed::<Pod>(self.0, "core/pods/")
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .map(node::pod_refs)
            .collect()
    }
}

/// The Node authorizer, then RBAC (upstream's default `--authorization-mode=Node,RBAC`).
pub fn authorize(store: &dyn Store, cache: &RbacCache, attrs: &Attributes) -> Decision {
    let node = node::authorize(&StoreNodeGraph(store), attrs);
    if matches!(node, Decision::Allow(_) | Decision::Deny(_)) {
        return node;
    }
    match rbac::authorize(cache.get(store).as_ref(), attrs) {
        Decision::NoOpinion(r) if r.is_empty() => Decision::NoOpinion(node.reason().to_string()),
        other => other,
    }
}

/// The attributes of a request, as upstream's request-info resolver computes them.
pub fn attributes(
    user: UserInfo,
    method: &str,
    path: &str,
    query: &Query,
    route: &Route,
) -> Attributes {
    let Route::Resource(rr) = route else {
        let verb = if method == "HEAD" {
            "get".into()
        } else {
            method.to_ascii_lowercase()
        };
        return Attributes::non_resource(user, &verb, path);
    };
    let watch = rr.legacy_watch || query.flag("watch");
    let verb = verb_for(method, rr.name.is_some(), watch);
    let mut name = rr.name.clone().unwrap_or_default();
    if name.is_empty() && matches!(verb.as_str(), "list" | "watch") {
        // a list or watch of one object by field selector is authorized as that object
        if let Some(fs) = query.get("fieldSelector") {
            if let Some(n) = fs
                .strip_prefix("metadata.name=")
                .filter(|n| !n.contains(','))
            {
                name = n.to_string();
            }
        }
    }
    let mut namespace = rr.namespace.clone().unwrap_or_default();
    if rr.group.is_empty() && rr.resource == "namespaces" && !name.is_empty() {
        namespace = name.clone();
    }
    let mut a = Attributes::resource(
        user,
        &verb,
        &rr.group,
        &rr.resource,
        rr.subresource.as_deref().unwrap_or(""),
        &namespace,
        &name,
    );
    a.api_version = rr.version.clone();
    a.path = path.to_string();
    a
}

/// Upstream's 403: `pods is forbidden: User "alice" cannot list resource "pods" in API
/// group "" in the namespace "default"`, with the authorizer's reason appended.
pub fn forbidden(attrs: &Attributes, reason: &str) -> Status {
    let mut msg = attrs.forbidden_message();
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    if !attrs.resource_request {
        return Status::new(Reason::Forbidden, format!("forbidden: {msg}"));
    }
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    let message = if attrs.name.is_empty() {
        format!("{qualified} is forbidden: {msg}")
    } else {
        format!("{qualified} {:?} is forbidden: {msg}", attrs.name)
    };
    let mut s = Status::new(Reason::Forbidden, message);
    if !attrs.name.is_empty() {
        s.name = Some(attrs.name.clone());
    }
    s.group = Some(attrs.api_group.clone());
    s.kind = Some(attrs.resource.clone());
    s
}

/// The authorization step of [`crate::server::handle`]: answers the request itself when it
/// is denied or is one the auth modules serve (reviews, token requests, CSRs, kubelet writes
/// that need their body checked), else hands it back for ordinary routing.
pub async fn filter(
    state: &Arc<ApiState>,
    authn: &crate::auth::Authenticator,
    user: Option<UserInfo>,
    route: &Route,
    req: Request<Incoming>,
) -> Result<Response, Request<Incoming>> {
    let Some(user) = user else {
        return Err(req);
    };
    if matches!(route, Route::Health(_)) {
        return Err(req);
    }
    let query = Query::parse(req.uri().query());
    let attrs = attributes(user, req.method().as_str(), req.uri().path(), &query, route);
    let decision = if state.settings.always_allow {
        Decision::Allow(String::new())
    } else {
        authorize(state.store.as_ref(), authn.rbac_cache(), &attrs)
    };
    if !decision.allowed() {
        body::discard(req.into_body()).await;
        if attrs.user.name == ANONYMOUS_USER {
            return Ok(body::status(&crate::auth::unauthorized()));
        }
        tracing::debug!(user = %attrs.user.name, verb = %attrs.verb, resource = %attrs.resource, "forbidden");
        return Ok(body::status(&forbidden(&attrs, decision.reason())));
    }
    let req = match node::node_name(&attrs.user) {
        Some(node) => {
            let node = node.to_string();
            match crate::node_restriction::admit(state, &node, &attrs, req).await {
                Ok(req) => req,
                Err(resp) => return Ok(resp),
            }
        }
        None => req,
    };
    crate::auth_routes::serve(state, authn, &attrs, route, req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::ResourceRoute;

    fn route(ns: Option<&str>, resource: &str, name: Option<&str>) -> Route {
        Route::Resource(ResourceRoute {
            group: String::new(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            subresource: None,
            legacy_watch: false,
        })
    }

    #[test]
    fn attributes_from_paths() {
        let u = UserInfo::default();
        let q = Query::parse(Some("watch=1&fieldSelector=metadata.name%3Dtls"));
        let a = attributes(
            u.clone(),
            "GET",
            "/api/v1/namespaces/d/secrets",
            &q,
            &route(Some("d"), "secrets", None),
        );
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("watch", "tls", "d")
        );
        let a = attributes(
            u.clone(),
            "GET",
            "/api/v1/namespaces/d",
            &Query::default(),
            &route(None, "namespaces", Some("d")),
        );
        assert_eq!(a.namespace, "d");
        let a = attributes(u, "GET", "/version", &Query::default(), &Route::Version);
        assert!(!a.resource_request);
        assert_eq!(a.verb, "get");
    }

    #[test]
    fn forbidden_status_as_upstream() {
        let alice = UserInfo {
            name: "alice".into(),
            ..UserInfo::default()
        };
        let a = Attributes::resource(alice.clone(), "list", "", "pods", "", "default", "");
        let s = forbidden(&a, "");
        assert_eq!(s.code(), 403);
        assert_eq!(
            s.message,
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let a = Attributes::resource(alice, "get", "apps", "deployments", "", "x", "web");
        assert_eq!(
            forbidden(&a, "").message,
            r#"deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "x""#
        );
    }
}
