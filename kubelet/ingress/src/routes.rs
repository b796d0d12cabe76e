//! The routing table: the rules of every served Ingress merged into host groups, and the
//! match of a request's host and path against them, as the Ingress API specifies.
//!
//! - Hosts: the exact host (case-insensitive, port stripped) first, else a `*.suffix`
//!   wildcard, which matches exactly one DNS label (`*.foo.com` matches `bar.foo.com`, not
//!   `foo.com` nor `baz.bar.foo.com`), else the rules without a host. The request is routed
//!   within the first group that exists for it (a host is evaluated before its paths).
//! - Paths: `Exact` matches the path as is; `Prefix` (and `ImplementationSpecific`, treated
//!   as Prefix) matches element-wise on `/`-separated elements, ignoring a trailing slash
//!   (`/foo` matches `/foo`, `/foo/` and `/foo/bar`, not `/foobar`). The longest match wins;
//!   at equal length Exact beats Prefix; at a full tie the oldest Ingress's rule wins.
//! - Nothing matches: the oldest served Ingress's `spec.defaultBackend`, else 404.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;

use crate::backends::{Backend, Cluster};

/// How a path rule compares paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Exact,
    Prefix,
}

#[derive(Debug)]
struct PathRule {
    kind: PathKind,
    path: String,
    elements: Vec<String>,
    backend: Arc<Backend>,
}

impl PathRule {
    /// `(elements, exact)` when this rule matches `path` (higher is a better match).
    fn score(&self, path: &str, elements: &[&str]) -> Option<(usize, bool)> {
        match self.kind {
            PathKind::Exact => (self.path == path).then_some((self.elements.len(), true)),
            PathKind::Prefix => (elements.len() >= self.elements.len()
                && self.elements.iter().zip(elements).all(|(a, b)| a == b))
            .then_some((self.elements.len(), false)),
        }
    }
}

/// Every served Ingress's rules, ready to route requests.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, Vec<PathRule>>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<String, Vec<PathRule>>,
    any: Option<Vec<PathRule>>,
    default_backend: Option<Arc<Backend>>,
}

fn elements(path: &str) -> Vec<&str> {
    path.split('/').filter(|e| !e.is_empty()).collect()
}

/// The host of a `Host` header or URI authority: lowercase, without port or trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// Ingresses in precedence order: oldest first, then by namespace and name.
pub fn by_age(ingresses: &mut [Arc<Ingress>]) {
    ingresses.sort_by(|a, b| {
        let key = |i: &Ingress| {
            (
                i.metadata.creation_timestamp.as_ref().map(|t| t.0),
                i.metadata.namespace.clone(),
                i.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

impl RouteTable {
    /// The table of `ingresses` (the served ones, in [`by_age`] order) with backends
    /// resolved against `cluster`.
    pub fn build(ingresses: &[Arc<Ingress>], cluster: &Cluster<'_>) -> RouteTable {
        let mut t = RouteTable::default();
        for ing in ingresses {
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            let Some(spec) = &ing.spec else { continue };
            if t.default_backend.is_none() {
                if let Some(b) = &spec.default_backend {
                    t.default_backend = Some(cluster.resolve(&ns, b));
                }
            }
            for rule in spec.rules.iter().flatten() {
                let host = rule.host.as_deref().map(normalize_host).unwrap_or_default();
                let group = if host.is_empty() {
                    t.any.get_or_insert_with(Vec::new)
                } else if let Some(suffix) = host.strip_prefix("*.") {
                    t.wildcard.entry(suffix.to_string()).or_default()
                } else {
                    t.exact.entry(host).or_default()
                };
                for p in rule.http.iter().flat_map(|h| h.paths.iter()) {
                    let path = p
                        .path
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or("/".into());
                    let kind = if p.path_type == "Exact" {
                        PathKind::Exact
                    } else {
                        PathKind::Prefix
                    };
                    group.push(PathRule {
                        kind,
                        elements: elements(&path).into_iter().map(String::from).collect(),
                        path,
                        backend: cluster.resolve(&ns, &p.backend),
                    });
                }
            }
        }
        t
    }

    fn group(&self, host: &str) -> Option<&[PathRule]> {
        if let Some(g) = self.exact.get(host) {
            return Some(g);
        }
        if let Some((_, suffix)) = host.split_once('.') {
            if let Some(g) = self.wildcard.get(suffix) {
                return Some(g);
            }
        }
        self.any.as_deref()
    }

    /// The backend for a request to `host` (a `Host` header value) and `path` (without the
    /// query); `None` means 404.
    pub fn route(&self, host: &str, path: &str) -> Option<Arc<Backend>> {
        let host = normalize_host(host);
        let path = if path.is_empty() { "/" } else { path };
        let request_elements = elements(path);
        let mut best: Option<((usize, bool), &PathRule)> = None;
        for rule in self.group(&host).unwrap_or_default() {
            if let Some(score) = rule.score(path, &request_elements) {
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, rule));
                }
            }
        }
        best.map(|(_, r)| r.backend.clone())
            .or_else(|| self.default_backend.clone())
    }

    /// How many host groups (exact, wildcard and the host-less one) the table has.
    pub fn hosts(&self) -> usize {
        self.exact.len() + self.wildcard.len() + usize::from(self.any.is_some())
    }
}

#[cfg(test)]
mod tests;
