use super::*;
use http::HeaderValue;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn alice() -> UserInfo {
    UserInfo {
        name: "alice".into(),
        uid: String::new(),
        groups: vec!["devs".into(), SYSTEM_AUTHENTICATED.into()],
    }
}

/// An authorizer allowing exactly the `impersonate` checks whose resource/name is listed.
fn allowing(allowed: &'static [(&'static str, &'static str)]) -> impl Fn(&Attributes) -> Decision {
    move |a: &Attributes| {
        assert_eq!(a.verb, "impersonate");
        assert_eq!(a.user.name, "alice", "checked as the requester");
        if allowed
            .iter()
            .any(|(r, n)| *r == a.combined_resource() && *n == a.name)
        {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

#[test]
fn no_headers_is_the_requester() {
    let got = apply(alice(), &mut HeaderMap::new(), allowing(&[])).unwrap();
    assert_eq!(
        got,
        Impersonated {
            user: alice(),
            by: None
        }
    );
}

#[test]
fn a_user_with_groups_acts_as_them_plus_authenticated_and_the_headers_go() {
    let mut h = headers(&[
        ("Impersonate-User", "system:node:pi-1"),
        ("Impersonate-Group", "system:nodes"),
        ("Impersonate-Uid", "u-1"),
        ("Accept", "application/json"),
    ]);
    let got = apply(
        alice(),
        &mut h,
        allowing(&[
            ("users", "system:node:pi-1"),
            ("groups", "system:nodes"),
            ("uids", "u-1"),
        ]),
    )
    .unwrap();
    assert_eq!(got.by, Some(alice()));
    assert_eq!(got.user.name, "system:node:pi-1");
    assert_eq!(got.user.uid, "u-1");
    assert_eq!(got.user.groups, ["system:nodes", SYSTEM_AUTHENTICATED]);
    assert_eq!(
        h.len(),
        1,
        "only the impersonation headers are removed: {h:?}"
    );
}

#[test]
fn each_part_needs_its_own_grant_and_the_403_names_it_as_upstream() {
    let mut h = headers(&[
        ("Impersonate-User", "bob"),
        ("Impersonate-Group", "system:masters"),
    ]);
    let err = apply(alice(), &mut h, allowing(&[("users", "bob")])).unwrap_err();
    assert_eq!(err.code(), 403);
    assert_eq!(
        err.message,
        r#"groups "system:masters" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" at the cluster scope"#
    );
    assert_eq!(h.len(), 2, "a refused request keeps its headers");
    let err = apply(
        alice(),
        &mut headers(&[("Impersonate-User", "bob")]),
        allowing(&[]),
    )
    .unwrap_err();
    assert!(err
        .message
        .starts_with(r#"users "bob" is forbidden: User "alice" cannot impersonate"#));
}

#[test]
fn a_service_account_is_checked_in_its_namespace_and_gets_its_groups() {
    let r = Request::from_headers(&headers(&[(
        "Impersonate-User",
        "system:serviceaccount:kube-system:builder",
    )]))
    .unwrap()
    .unwrap();
    let checks = r.checks(&alice());
    assert_eq!(
        (
            checks[0].resource.as_str(),
            checks[0].namespace.as_str(),
            checks[0].name.as_str()
        ),
        ("serviceaccounts", "kube-system", "builder")
    );
    assert_eq!(
        r.user().groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            SYSTEM_AUTHENTICATED
        ]
    );
}

#[test]
fn extras_are_unescaped_lowercased_and_checked_as_userextras() {
    let r = Request::from_headers(&headers(&[
        ("Impersonate-User", "bob"),
        ("Impersonate-Extra-Example.com%2fScopes", "view"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(
        r.extras,
        [("example.com/scopes".to_string(), "view".to_string())]
    );
    let checks = r.checks(&alice());
    let extra = &checks[1];
    assert_eq!(
        (
            extra.api_group.as_str(),
            extra.resource.as_str(),
            extra.subresource.as_str()
        ),
        ("authentication.k8s.io", "userextras", "example.com/scopes")
    );
    assert_eq!(extra.name, "view");
    assert_eq!(
        Request::from_headers(&headers(&[
            ("Impersonate-User", "bob"),
            ("Impersonate-Extra-a%zz", "v")
        ]))
        .unwrap_err()
        .code(),
        400
    );
}

#[test]
fn groups_without_a_user_are_refused_and_anonymous_is_unauthenticated() {
    let err = Request::from_headers(&headers(&[("Impersonate-Group", "g")])).unwrap_err();
    assert_eq!(err.code(), 500);
    let r = Request::from_headers(&headers(&[("Impersonate-User", ANONYMOUS_USER)]))
        .unwrap()
        .unwrap();
    assert_eq!(r.user().groups, [UNAUTHENTICATED]);
}
