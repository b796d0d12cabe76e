//! Parsing request paths into what they address.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`
    LegacyVersions,
    /// `/apis`
    GroupList,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    /// A resource, a collection of it, or a subresource of one object.
    Resource(ResourceRoute),
    Version,
    Health(String),
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3GroupVersion(String),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRoute {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Reached through the legacy `/watch/` path prefix.
    pub legacy_watch: bool,
}

/// Parses a URL path (without the query).
///
/// `is_namespaced` answers whether `<group>/<version>/<resource>` is a namespaced resource;
/// it disambiguates `/api/v1/namespaces/<ns>/<resource>` from `/api/v1/namespaces/<name>/<sub>`.
pub fn parse(path: &str, is_namespaced: &dyn Fn(&str, &str, &str) -> Option<bool>) -> Route {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    match segs.as_slice() {
        [] | [""] => Route::NotFound,
        ["version"] => Route::Version,
        [h @ ("healthz" | "livez" | "readyz"), rest @ ..] => {
            let mut s = h.to_string();
            for r in rest {
                s.push('/');
                s.push_str(r);
            }
            Route::Health(s)
        }
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3GroupVersion(rest.join("/")),
        ["api"] => Route::LegacyVersions,
        ["api", v] => Route::ResourceList {
            group: String::new(),
            version: v.to_string(),
        },
        ["api", v, rest @ ..] => resource_route("", v, rest, is_namespaced),
        ["apis"] => Route::GroupList,
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::ResourceList {
            group: g.to_string(),
            version: v.to_string(),
        },
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest, is_namespaced),
        _ => Route::NotFound,
    }
}

fn resource_route(
    group: &str,
    version: &str,
    rest: &[&str],
    is_namespaced: &dyn Fn(&str, &str, &str) -> Option<bool>,
) -> Route {
    let (legacy_watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let mk = |resource: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourceRoute {
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
            legacy_watch,
        })
    };
    let namespaced = |r: &str| is_namespaced(group, version, r) == Some(true);
    match rest {
        [r] => mk(r, None, None, None),
        ["namespaces", ns, r] if namespaced(r) => mk(r, Some(ns), None, None),
        ["namespaces", ns, r, name] if namespaced(r) => mk(r, Some(ns), Some(name), None),
        ["namespaces", ns, r, name, sub] if namespaced(r) => mk(r, Some(ns), Some(name), Some(sub)),
        [r, name] => mk(r, None, Some(name), None),
        [r, name, sub] => mk(r, None, Some(name), Some(sub)),
        // `nodes/<name>/proxy/<path...>`: the path on the kubelet is read from the request.
        ["nodes", name, "proxy", _, ..] if group.is_empty() => {
            mk("nodes", None, Some(name), Some("proxy"))
        }
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(_: &str, _: &str, r: &str) -> Option<bool> {
        Some(matches!(r, "pods" | "configmaps" | "deployments"))
    }

    fn res(r: Route) -> ResourceRoute {
        match r {
            Route::Resource(rr) => rr,
            other => panic!("not a resource route: {other:?}"),
        }
    }

    #[test]
    fn namespaced_paths() {
        let r = res(parse("/api/v1/namespaces/default/pods/web/log", &ns));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("log"));
        let r = res(parse("/apis/apps/v1/namespaces/x/deployments", &ns));
        assert_eq!((r.group.as_str(), r.name), ("apps", None));
    }

    #[test]
    fn namespace_objects_and_their_subresources() {
        let r = res(parse("/api/v1/namespaces/kube-system", &ns));
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.name.as_deref(), Some("kube-system"));
        let r = res(parse("/api/v1/namespaces/kube-system/finalize", &ns));
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        let r = res(parse("/api/v1/pods", &ns));
        assert_eq!((r.resource.as_str(), r.namespace), ("pods", None));
    }

    #[test]
    fn legacy_watch_and_discovery() {
        let r = res(parse("/api/v1/watch/namespaces/default/pods", &ns));
        assert!(r.legacy_watch);
        assert_eq!(
            parse("/apis/apps/v1", &ns),
            Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(parse("/api", &ns), Route::LegacyVersions);
        assert_eq!(
            parse("/livez/ping", &ns),
            Route::Health("livez/ping".into())
        );
        assert_eq!(parse("/nope", &ns), Route::NotFound);
    }
}
