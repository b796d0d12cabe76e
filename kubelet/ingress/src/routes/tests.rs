//! Host and path matching cases of the Ingress documentation ("Examples" table of path
//! types, hostname wildcards) and of the ingress conformance features.

use super::*;
use serde_json::{json, Value};

fn path(p: &str, kind: &str, svc: &str) -> Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
}

fn ingress(name: &str, created: &str, spec: Value) -> Arc<Ingress> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn table(ingresses: Vec<Arc<Ingress>>) -> RouteTable {
    let mut ingresses = ingresses;
    by_age(&mut ingresses);
    RouteTable::build(
        &ingresses,
        &Cluster {
            services: &[],
            slices: &[],
        },
    )
}

fn one(paths: Vec<Value>) -> RouteTable {
    table(vec![ingress(
        "i",
        "2026-01-01T00:00:00Z",
        json!({"rules": [{"http": {"paths": paths}}]}),
    )])
}

/// The service a request goes to (`-` for 404).
fn svc(t: &RouteTable, host: &str, p: &str) -> String {
    t.route(host, p)
        .map(|b| {
            b.name
                .trim_start_matches("d/")
                .trim_end_matches(":80")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// Path rules `(pathType, path)`, a request path, and whether it matches.
type Case = (&'static [(&'static str, &'static str)], &'static str, bool);

#[test]
fn documentation_path_type_examples() {
    // (rules, request path, match?) from the "Examples" table of the Ingress concept page.
    let cases: &[Case] = &[
        (&[("Prefix", "/")], "/", true),
        (&[("Prefix", "/")], "/anything/here", true),
        (&[("Exact", "/foo")], "/foo", true),
        (&[("Exact", "/foo")], "/bar", false),
        (&[("Exact", "/foo")], "/foo/", false),
        (&[("Exact", "/foo/")], "/foo", false),
        (&[("Prefix", "/foo")], "/foo", true),
        (&[("Prefix", "/foo")], "/foo/", true),
        (&[("Prefix", "/foo/")], "/foo", true),
        (&[("Prefix", "/foo/")], "/foo/", true),
        (&[("Prefix", "/aaa/bb")], "/aaa/bbb", false),
        (&[("Prefix", "/aaa/bbb")], "/aaa/bbb", true),
        (&[("Prefix", "/aaa/bbb/")], "/aaa/bbb", true),
        (&[("Prefix", "/aaa/bbb")], "/aaa/bbb/", true),
        (&[("Prefix", "/aaa/bbb")], "/aaa/bbb/ccc", true),
        (&[("Prefix", "/aaa/bbb")], "/aaa/bbbxyz", false),
        (&[("Prefix", "/"), ("Prefix", "/aaa")], "/aaa/ccc", true),
        (&[("Prefix", "/aaa"), ("Prefix", "/")], "/aaa/ccc", true),
        (&[("Prefix", "/aaa")], "/ccc", false),
        (&[("ImplementationSpecific", "/foo")], "/foo/bar", true),
        (&[("ImplementationSpecific", "/foo")], "/foobar", false),
    ];
    for (rules, request, matches) in cases {
        let paths = rules
            .iter()
            .enumerate()
            .map(|(i, (kind, p))| path(p, kind, &format!("s{i}")))
            .collect();
        let t = one(paths);
        assert_eq!(
            t.route("any.host", request).is_some(),
            *matches,
            "{rules:?} {request}"
        );
    }
}

#[test]
fn longest_match_wins_and_exact_beats_prefix() {
    let t = one(vec![
        path("/", "Prefix", "root"),
        path("/aaa", "Prefix", "aaa"),
        path("/aaa/bbb", "Prefix", "bbb"),
        path("/foo", "Prefix", "foo-prefix"),
        path("/foo", "Exact", "foo-exact"),
    ]);
    assert_eq!(svc(&t, "h", "/aaa/ccc"), "aaa");
    assert_eq!(svc(&t, "h", "/aaa/bbb/x"), "bbb");
    assert_eq!(svc(&t, "h", "/aaa/bbbx"), "aaa");
    assert_eq!(svc(&t, "h", "/ccc"), "root");
    assert_eq!(svc(&t, "h", "/foo"), "foo-exact");
    assert_eq!(svc(&t, "h", "/foo/"), "foo-prefix");
    assert_eq!(svc(&t, "h", "/foo/x"), "foo-prefix");
    assert_eq!(svc(&t, "h", ""), "root");
}

#[test]
fn hosts_exact_wildcard_and_catch_all() {
    let t = table(vec![ingress(
        "i",
        "2026-01-01T00:00:00Z",
        json!({"rules": [
            {"host": "foo.bar.com", "http": {"paths": [path("/", "Prefix", "exact")]}},
            {"host": "*.bar.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
            {"host": "only.example", "http": {"paths": [path("/api", "Prefix", "api")]}},
            {"http": {"paths": [path("/", "Prefix", "any")]}},
        ]}),
    )]);
    assert_eq!(svc(&t, "foo.bar.com", "/"), "exact");
    assert_eq!(svc(&t, "FOO.bar.com:8080", "/x"), "exact");
    assert_eq!(svc(&t, "foo.bar.com.", "/x"), "exact");
    assert_eq!(svc(&t, "baz.bar.com", "/"), "wild");
    // A wildcard covers exactly one label.
    assert_eq!(svc(&t, "bar.com", "/"), "any");
    assert_eq!(svc(&t, "a.baz.bar.com", "/"), "any");
    assert_eq!(svc(&t, "10.0.0.1:80", "/"), "any");
    assert_eq!(svc(&t, "[::1]:80", "/"), "any");
    // The host is evaluated first: its paths only, no fall back to host-less rules.
    assert_eq!(svc(&t, "only.example", "/api/v1"), "api");
    assert_eq!(svc(&t, "only.example", "/other"), "-");
}

#[test]
fn default_backend_of_the_oldest_ingress_and_404_without_one() {
    let rules =
        json!({"rules": [{"host": "a.example", "http": {"paths": [path("/", "Prefix", "a")]}}]});
    let t = table(vec![rules_ingress("r", rules.clone())]);
    assert_eq!(svc(&t, "b.example", "/"), "-");
    let t = table(vec![
        rules_ingress("r", rules),
        ingress(
            "new",
            "2026-03-01T00:00:00Z",
            json!({"defaultBackend": {"service": {"name": "newer", "port": {"number": 80}}}}),
        ),
        ingress(
            "old",
            "2026-02-01T00:00:00Z",
            json!({"defaultBackend": {"service": {"name": "older", "port": {"number": 80}}}}),
        ),
    ]);
    assert_eq!(svc(&t, "b.example", "/"), "older");
    assert_eq!(svc(&t, "a.example", "/x"), "a");
}

fn rules_ingress(name: &str, spec: Value) -> Arc<Ingress> {
    ingress(name, "2026-01-01T00:00:00Z", spec)
}

#[test]
fn rules_of_several_ingresses_merge_and_the_oldest_wins_a_tie() {
    let t = table(vec![
        ingress(
            "b",
            "2026-02-01T00:00:00Z",
            json!({"rules": [{"host": "h", "http": {"paths": [
            path("/", "Prefix", "b-root"), path("/b", "Prefix", "b")]}}]}),
        ),
        ingress(
            "a",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"host": "h", "http": {"paths": [
            path("/", "Prefix", "a-root"), path("/a", "Prefix", "a")]}}]}),
        ),
    ]);
    assert_eq!(svc(&t, "h", "/a/1"), "a");
    assert_eq!(svc(&t, "h", "/b/1"), "b");
    assert_eq!(svc(&t, "h", "/c"), "a-root");
    assert_eq!(t.hosts(), 1);
}

#[test]
fn host_normalization() {
    assert_eq!(normalize_host("Example.COM:443"), "example.com");
    assert_eq!(normalize_host("[fe80::1]:8080"), "fe80::1");
    assert_eq!(normalize_host("host."), "host");
}
