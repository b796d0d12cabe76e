//! Backend Services resolved to the addresses requests go to: the ready endpoints of the
//! Service port an Ingress backend names (by number or by name), read from the Service's
//! EndpointSlices, with a round-robin cursor.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressBackend;

/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Where one Ingress backend sends requests.
#[derive(Debug)]
pub struct Backend {
    /// `namespace/service:port`, for logs.
    pub name: String,
    /// Ready endpoint addresses (empty: the backend answers 503).
    pub addrs: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Backend {
    /// A backend over fixed addresses.
    pub fn new(name: impl Into<String>, addrs: Vec<SocketAddr>) -> Backend {
        Backend {
            name: name.into(),
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// The next address, round-robin; `None` without ready endpoints.
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[i % self.addrs.len()])
    }
}

/// Services and EndpointSlices to resolve backends against.
pub struct Cluster<'a> {
    pub services: &'a [Arc<Service>],
    pub slices: &'a [Arc<EndpointSlice>],
}

impl Cluster<'_> {
    /// The backend of `backend` in namespace `ns`: no addresses when the Service, its port
    /// or ready endpoints are missing (a resource backend has none either).
    pub fn resolve(&self, ns: &str, backend: &IngressBackend) -> Arc<Backend> {
        let Some(sb) = &backend.service else {
            return Arc::new(Backend::new(format!("{ns}/<resource backend>"), Vec::new()));
        };
        let port = sb.port.as_ref();
        let label = match port {
            Some(p) => match (&p.name, p.number) {
                (Some(n), _) if !n.is_empty() => n.clone(),
                (_, Some(n)) => n.to_string(),
                _ => String::new(),
            },
            None => String::new(),
        };
        let name = format!("{ns}/{}:{label}", sb.name);
        let svc = self.services.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && s.metadata.name.as_deref() == Some(&sb.name)
        });
        let Some(spec) = svc.and_then(|s| s.spec.as_ref()) else {
            return Arc::new(Backend::new(name, Vec::new()));
        };
        let service_port = spec.ports.iter().flatten().find(|sp| {
            let proto_tcp = sp.protocol.as_deref().unwrap_or("TCP") == "TCP";
            proto_tcp
                && match port {
                    Some(p) => match (&p.name, p.number) {
                        (Some(n), _) if !n.is_empty() => sp.name.as_deref() == Some(n),
                        (_, Some(num)) => sp.port == num,
                        _ => false,
                    },
                    None => false,
                }
        });
        let Some(service_port) = service_port else {
            return Arc::new(Backend::new(name, Vec::new()));
        };
        let port_name = service_port.name.clone().unwrap_or_default();
        let mut addrs = Vec::new();
        for slice in self.slices.iter().filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .is_some_and(|n| *n == sb.name)
        }) {
            let Some(target) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| {
                    p.name.clone().unwrap_or_default() == port_name
                        && p.protocol.as_deref().unwrap_or("TCP") == "TCP"
                })
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for ep in &slice.endpoints {
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for a in &ep.addresses {
                    if let Ok(ip) = a.parse::<IpAddr>() {
                        addrs.push(SocketAddr::new(ip, target));
                    }
                }
            }
        }
        addrs.sort();
        addrs.dedup();
        Arc::new(Backend::new(name, addrs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster_objects() -> (Vec<Arc<Service>>, Vec<Arc<EndpointSlice>>) {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "d"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                               {"name": "admin", "port": 81, "targetPort": 9090}]},
        }))
        .unwrap();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-x", "namespace": "d", "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "admin", "port": 9090}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"], "conditions": {"ready": false}},
                {"addresses": ["10.42.0.7"]},
            ],
        }))
        .unwrap();
        (vec![Arc::new(svc)], vec![Arc::new(slice)])
    }

    fn backend(v: serde_json::Value) -> IngressBackend {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ports_by_number_and_name_ready_endpoints_round_robin() {
        let (services, slices) = cluster_objects();
        let c = Cluster {
            services: &services,
            slices: &slices,
        };
        let by_number = c.resolve(
            "d",
            &backend(json!({"service": {"name": "web", "port": {"number": 80}}})),
        );
        let addrs: Vec<String> = by_number.addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["10.42.0.5:8080", "10.42.0.7:8080"]);
        let first = by_number.pick().unwrap();
        let second = by_number.pick().unwrap();
        assert_ne!(first, second);
        assert_eq!(by_number.pick().unwrap(), first);
        let by_name = c.resolve(
            "d",
            &backend(json!({"service": {"name": "web", "port": {"name": "admin"}}})),
        );
        assert_eq!(by_name.addrs[0].port(), 9090);
        // Unknown port, Service or namespace: no endpoints (503).
        for b in [
            json!({"service": {"name": "web", "port": {"number": 82}}}),
            json!({"service": {"name": "nope", "port": {"number": 80}}}),
        ] {
            assert!(c.resolve("d", &backend(b)).pick().is_none());
        }
        assert!(c
            .resolve(
                "other",
                &backend(json!({"service": {"name": "web", "port": {"number": 80}}}))
            )
            .pick()
            .is_none());
    }
}
