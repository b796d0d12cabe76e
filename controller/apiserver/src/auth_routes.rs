//! The requests the auth modules serve themselves, after authorization: reviews, token
//! requests, CertificateSigningRequest creation and approval, and pod creation (for the
//! ServiceAccount admission).

use std::sync::Arc;

use http::{Method, Request};
use hyper::body::Incoming;
use serde_json::Value;

use bramble_api::Status;
use bramble_auth::Attributes;

use crate::auth::Authenticator;
use crate::body::{self, Response};
use crate::body_util::json_request;
use crate::path::Route;
use crate::reviews;
use crate::state::ApiState;

/// Serves the request if it is one of the auth endpoints, else gives it back.
pub async fn serve(
    state: &Arc<ApiState>,
    authn: &Authenticator,
    attrs: &Attributes,
    route: &Route,
    req: Request<Incoming>,
) -> Result<Response, Request<Incoming>> {
    let Route::Resource(rr) = route else {
        return Err(req);
    };
    let method = req.method().clone();
    let sub = rr.subresource.as_deref().unwrap_or("");
    let named = rr.name.is_some();
    match (method, rr.group.as_str(), rr.resource.as_str(), named, sub) {
        (Method::POST, "authorization.k8s.io", r, false, "") if rr.version == "v1" => {
            let review = match r {
                "selfsubjectaccessreviews" => Review::SelfAccess,
                "subjectaccessreviews" => Review::Access,
                "selfsubjectrulesreviews" => Review::SelfRules,
                _ => return Err(req),
            };
            Ok(respond(json_request(req).await.and_then(
                |b| match review {
                    Review::SelfAccess => {
                        reviews::self_subject_access_review(state, authn, &attrs.user, b)
                    }
                    Review::Access => reviews::subject_access_review(state, authn, b),
                    Review::SelfRules => {
                        reviews::self_subject_rules_review(state, authn, &attrs.user, b)
                    }
                },
            )))
        }
        (
            Method::POST,
            "authentication.k8s.io",
            r @ ("selfsubjectreviews" | "tokenreviews"),
            false,
            "",
        ) if rr.version == "v1" => {
            let self_review = r == "selfsubjectreviews";
            Ok(respond(json_request(req).await.map(|b| {
                if self_review {
                    reviews::self_subject_review(&attrs.user, b)
                } else {
                    reviews::token_review(authn, b)
                }
            })))
        }
        (Method::POST, "", "serviceaccounts", true, "token") => {
            let ns = rr.namespace.as_deref().unwrap_or("");
            let name = rr.name.as_deref().unwrap_or("");
            Ok(respond(json_request(req).await.and_then(|b| {
                crate::sa_tokens::create_token(state, authn, ns, name, b)
            })))
        }
        (Method::POST, "certificates.k8s.io", "certificatesigningrequests", false, "") => {
            Ok(crate::csr::create(state, &attrs.user, req).await)
        }
        (Method::PUT, "certificates.k8s.io", "certificatesigningrequests", true, "approval") => {
            let name = rr.name.as_deref().unwrap_or("");
            Ok(crate::csr::approval(state, name, req).await)
        }
        (Method::POST, "", "pods", false, "") if rr.namespace.is_some() => {
            let ns = rr.namespace.as_deref().unwrap_or("");
            Ok(crate::sa_admission::create_pod(state, ns, req).await)
        }
        (m, g, r, _, _)
            if m != Method::POST
                && crate::auth_setup::REVIEW_RESOURCES
                    .iter()
                    .any(|(rg, rr, _, _)| *rg == g && *rr == r) =>
        {
            Ok(body::status(&Status::new(
                bramble_api::Reason::MethodNotAllowed,
                format!("the server does not allow this method on the requested resource ({m})"),
            )))
        }
        _ => Err(req),
    }
}

enum Review {
    SelfAccess,
    Access,
    SelfRules,
}

fn respond(result: Result<Value, Status>) -> Response {
    match result {
        Ok(v) => body::json(201, &v),
        Err(s) => body::status(&s),
    }
}
