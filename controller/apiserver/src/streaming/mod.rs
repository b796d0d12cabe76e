//! Streaming subresources proxied to the kubelet of the pod's node, as upstream's API
//! server does: `pods/log` (plain text, `follow`), `pods/exec`, `pods/attach`,
//! `pods/portforward` and `nodes/proxy/<path>` (HTTP upgrades: WebSocket or SPDY, relayed byte for byte once the
//! kubelet has switched protocols).
//!
//! The pod and container are checked here with upstream's messages (pod not found 404,
//! `pod X does not have a host assigned` 400, `container X is not valid for pod Y` 400,
//! `a container name must be specified ...` 400); the kubelet is reached at the Node's
//! `InternalIP` and `status.daemonEndpoints.kubeletEndpoint.Port` with the controller's
//! kubelet client certificate ([`kubelet_tls`]).

pub mod kubelet_tls;
mod proxy;

pub(crate) use proxy::dial;

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use serde_json::Value;

use bramble_api::Status;

use crate::body::{self, Response};
use crate::objects::decode_stored;
use crate::path::ResourceRoute;
use crate::query::Query;
use crate::state::ApiState;

/// Whether the route is a streaming subresource served here.
pub fn is_streaming(rr: &ResourceRoute) -> bool {
    let node_proxy = rr.resource == "nodes" && rr.subresource.as_deref() == Some("proxy");
    rr.group.is_empty() && rr.name.is_some() && node_proxy
        || rr.group.is_empty()
            && rr.resource == "pods"
            && rr.namespace.is_some()
            && rr.name.is_some()
            && matches!(
                rr.subresource.as_deref(),
                Some("log" | "exec" | "attach" | "portforward")
            )
}

/// Serves a streaming subresource request.
pub async fn serve(state: &Arc<ApiState>, rr: ResourceRoute, req: Request<Incoming>) -> Response {
    match prepare(state, &rr, &req) {
        Ok(target) => proxy::forward(state, target, req).await,
        Err(s) => body::status(&s),
    }
}

/// Where a request goes on which kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletTarget {
    /// `host:port` of the kubelet.
    pub addr: String,
    /// Path and query on the kubelet.
    pub path_and_query: String,
}

fn get_object(
    state: &ApiState,
    resource: &str,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, Status> {
    let info = state
        .registry
        .find("", "v1", resource)
        .ok_or_else(|| Status::internal(format!("no {resource} resource")))?;
    let key = info.store_key(ns, name);
    match state.store.get(&key) {
        Ok(Some(kv)) => decode_stored(&kv.value),
        Ok(None) => Err(Status::not_found(resource, "", name)),
        Err(e) => Err(Status::internal(e.to_string())),
    }
}

fn container_names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request addresses, as upstream's `validateContainer`/default container
/// logic picks it.
pub fn pick_container(pod: &Value, asked: Option<&str>) -> Result<String, Status> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers = container_names(pod, "containers");
    let init = container_names(pod, "initContainers");
    let ephemeral = container_names(pod, "ephemeralContainers");
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(Status::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => {
            if containers.len() == 1 {
                return Ok(containers[0].clone());
            }
            if let Some(d) = pod["metadata"]["annotations"]
                ["kubectl.kubernetes.io/default-container"]
                .as_str()
                .filter(|d| containers.iter().any(|c| c == d))
            {
                return Ok(d.to_string());
            }
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(Status::bad_request(msg))
        }
    }
}

/// `host:port` of node `node_name`'s kubelet (its InternalIP and kubelet endpoint port).
pub(crate) fn kubelet_addr(state: &ApiState, node_name: &str) -> Result<String, Status> {
    let node = get_object(state, "nodes", None, node_name)?;
    let addresses = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pick = |t: &str| {
        addresses
            .iter()
            .find(|a| a["type"] == t)
            .and_then(|a| a["address"].as_str())
            .map(str::to_string)
    };
    let host = pick("InternalIP")
        .or_else(|| pick("ExternalIP"))
        .or_else(|| pick("Hostname"))
        .ok_or_else(|| Status::internal("no preferred addresses found; known addresses: []"))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0)
        .unwrap_or(10250);
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Every value of a repeated query parameter (`command`, `ports`), in order.
fn all_values(req: &Request<Incoming>, key: &str) -> Vec<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn prepare(
    state: &ApiState,
    rr: &ResourceRoute,
    req: &Request<Incoming>,
) -> Result<KubeletTarget, Status> {
    if rr.resource == "nodes" {
        return node_proxy(state, rr, req);
    }
    let ns = rr.namespace.as_deref().unwrap_or_default();
    let name = rr.name.as_deref().unwrap_or_default();
    let sub = rr.subresource.as_deref().unwrap_or_default();
    let query = Query::parse(req.uri().query());
    let pod = get_object(state, "pods", Some(ns), name)?;
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let mut params: Vec<(String, String)> = Vec::new();
    let path = match sub {
        "portforward" => {
            for p in all_values(req, "ports") {
                params.push(("port".into(), p));
            }
            format!("/portForward/{ns}/{name}")
        }
        _ => {
            let container = pick_container(&pod, query.get("container"))?;
            if sub == "log" {
                for k in [
                    "follow",
                    "previous",
                    "timestamps",
                    "sinceSeconds",
                    "sinceTime",
                    "tailLines",
                    "limitBytes",
                ] {
                    if let Some(v) = query.get(k) {
                        params.push((k.to_string(), v.to_string()));
                    }
                }
                format!("/containerLogs/{ns}/{name}/{container}")
            } else {
                for (ours, theirs) in [
                    ("stdin", "input"),
                    ("stdout", "output"),
                    ("stderr", "error"),
                    ("tty", "tty"),
                ] {
                    if query.flag(ours) {
                        params.push((theirs.to_string(), "1".to_string()));
                    }
                }
                if sub == "exec" {
                    for c in all_values(req, "command") {
                        params.push(("command".into(), c));
                    }
                }
                let which = if sub == "exec" { "exec" } else { "attach" };
                format!("/{which}/{ns}/{name}/{container}")
            }
        }
    };
    if node.is_empty() {
        return Err(Status::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let addr = kubelet_addr(state, node)?;
    let path_and_query = if params.is_empty() {
        path
    } else {
        format!("{path}?{}", encode(&params))
    };
    Ok(KubeletTarget {
        addr,
        path_and_query,
    })
}

/// `nodes/<name>/proxy/<path>`: `<path>` and the query on that node's kubelet.
fn node_proxy(
    state: &ApiState,
    rr: &ResourceRoute,
    req: &Request<Incoming>,
) -> Result<KubeletTarget, Status> {
    let name = rr.name.as_deref().unwrap_or_default();
    let prefix = format!("/api/{}/nodes/{name}/proxy", rr.version);
    let rest = req
        .uri()
        .path()
        .strip_prefix(&prefix)
        .filter(|r| !r.is_empty())
        .unwrap_or("/");
    let addr = kubelet_addr(state, name)?;
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    Ok(KubeletTarget {
        addr,
        path_and_query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_and_named_containers_as_upstream() {
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pick_container(&one, None).unwrap(), "a");
        let e = pick_container(&one, Some("zz")).unwrap_err();
        assert_eq!(e.message, "container zz is not valid for pod p");
        assert_eq!(e.code(), 400);
        let two = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}]}});
        assert_eq!(
            pick_container(&two, None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(pick_container(&two, Some("i")).unwrap(), "i");
        let mut dflt = two.clone();
        dflt["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/default-container": "b"});
        assert_eq!(pick_container(&dflt, None).unwrap(), "b");
    }
}
