//! NodeRestriction admission: a kubelet may write only its own Node and the pods bound to
//! it, and create only mirror pods for itself. Creates are served here, after the check on
//! the decoded body, through the ordinary create path.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;

use bramble_api::{Reason, Status};
use bramble_auth::node::restrict;
use bramble_auth::Attributes;

use crate::body::{self, Response};
use crate::body_util::{decode_created, with_warnings};
use crate::handlers::{create_object, not_found};
use crate::objects::{decode_stored, meta_str};
use crate::query::Query;
use crate::state::ApiState;

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn forbidden(msg: String) -> Response {
    body::status(&Status::new(Reason::Forbidden, msg))
}

/// Checks a kubelet's request; `Ok` gives the request back for ordinary routing, `Err` is
/// the answer (a denial, or the result of a create served here).
pub async fn admit(
    state: &Arc<ApiState>,
    node: &str,
    attrs: &Attributes,
    req: Request<Incoming>,
) -> Result<Request<Incoming>, Response> {
    let writes = matches!(
        attrs.verb.as_str(),
        "create" | "update" | "patch" | "delete" | "deletecollection"
    );
    if !writes
        || !attrs.api_group.is_empty()
        || !matches!(attrs.resource.as_str(), "nodes" | "pods")
    {
        return Ok(req);
    }
    if attrs.verb == "create" && attrs.subresource.is_empty() && attrs.name.is_empty() {
        return Err(create(state, node, attrs, req).await);
    }
    let object_node = if attrs.resource == "pods" && !attrs.name.is_empty() {
        let key = format!("core/pods/{}/{}", attrs.namespace, attrs.name);
        match state.store.get(&key) {
            Ok(Some(kv)) => decode_stored(&kv.value).ok().and_then(|p| {
                p.pointer("/spec/nodeName")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            }),
            _ => None,
        }
    } else {
        None
    };
    match restrict(node, attrs, &attrs.name, object_node.as_deref(), false) {
        Ok(()) => Ok(req),
        Err(m) => Err(forbidden(m)),
    }
}

async fn create(
    state: &Arc<ApiState>,
    node: &str,
    attrs: &Attributes,
    req: Request<Incoming>,
) -> Response {
    let Some(info) = state.registry.find("", "v1", &attrs.resource) else {
        return body::status(&not_found());
    };
    let dry_run = match Query::parse(req.uri().query()).dry_run() {
        Ok(d) => d,
        Err(s) => return body::status(&s),
    };
    let decoded = match decode_created(req, &info).await {
        Ok(d) => d,
        Err(s) => return body::status(&s),
    };
    let obj = decoded.obj;
    let name = meta_str(&obj, "name").unwrap_or("").to_string();
    let bound = obj.pointer("/spec/nodeName").and_then(|v| v.as_str());
    let mirror = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .is_some();
    if let Err(m) = restrict(node, attrs, &name, bound, mirror) {
        return forbidden(m);
    }
    let ns = (!attrs.namespace.is_empty()).then_some(attrs.namespace.as_str());
    match create_object(state, &info, ns, obj, dry_run).await {
        Ok(stored) => with_warnings(body::raw_json(201, stored), &decoded.warnings),
        Err(s) => body::status(&s),
    }
}
