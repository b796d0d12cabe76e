//! What a request asks to do, as upstream's `authorizer.Attributes`.

use bramble_pki::UserInfo;

/// The attributes an authorizer decides on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or for
    /// non-resource requests the lower-cased HTTP method.
    pub verb: String,
    /// Whether the request addresses an API resource (else a non-resource URL such as `/healthz`).
    pub resource_request: bool,
    /// The request path (meaningful for non-resource requests).
    pub path: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    /// Attributes of a resource request.
    #[allow(clippy::too_many_arguments)]
    pub fn resource(
        user: UserInfo,
        verb: &str,
        api_group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            user,
            verb: verb.to_string(),
            resource_request: true,
            api_group: api_group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            ..Attributes::default()
        }
    }

    /// Attributes of a non-resource request (`/healthz`, `/version`, `/api`...).
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Attributes {
        Attributes {
            user,
            verb: verb.to_string(),
            resource_request: false,
            path: path.to_string(),
            ..Attributes::default()
        }
    }

    /// `pods` or `pods/log`.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// Upstream's forbidden message without the `<resource> is forbidden: ` prefix:
    /// `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`.
    pub fn forbidden_message(&self) -> String {
        let user = &self.user.name;
        if !self.resource_request {
            return format!("User {user:?} cannot {} path {:?}", self.verb, self.path);
        }
        let resource = self.combined_resource();
        if self.namespace.is_empty() {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
                self.verb, self.api_group
            )
        } else {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                self.verb, self.api_group, self.namespace
            )
        }
    }
}

/// The verb upstream's request-info resolver derives from an HTTP method on a resource path:
/// `GET` on an object is `get`, on a collection `list`, with `watch` set `watch`; `POST`
/// `create`; `PUT` `update`; `PATCH` `patch`; `DELETE` on an object `delete`, on a
/// collection `deletecollection`.
pub fn verb_for(method: &str, has_name: bool, watch: bool) -> String {
    match method {
        "GET" | "HEAD" if watch => "watch",
        "GET" | "HEAD" if has_name => "get",
        "GET" | "HEAD" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if has_name => "delete",
        "DELETE" => "deletecollection",
        other => return other.to_ascii_lowercase(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserInfo {
        UserInfo {
            name: "alice".into(),
            ..UserInfo::default()
        }
    }

    #[test]
    fn verbs_as_upstream() {
        assert_eq!(verb_for("GET", true, false), "get");
        assert_eq!(verb_for("GET", false, false), "list");
        assert_eq!(verb_for("GET", false, true), "watch");
        assert_eq!(verb_for("DELETE", false, false), "deletecollection");
        assert_eq!(verb_for("PATCH", true, false), "patch");
    }

    #[test]
    fn forbidden_messages() {
        let a = Attributes::resource(alice(), "list", "", "pods", "", "default", "");
        assert_eq!(
            a.forbidden_message(),
            r#"User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let a = Attributes::resource(alice(), "get", "", "nodes", "status", "", "n");
        assert_eq!(
            a.forbidden_message(),
            r#"User "alice" cannot get resource "nodes/status" in API group "" at the cluster scope"#
        );
        let a = Attributes::non_resource(alice(), "get", "/metrics");
        assert_eq!(
            a.forbidden_message(),
            r#"User "alice" cannot get path "/metrics""#
        );
    }
}
