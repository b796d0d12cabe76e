//! Bramble's built-in Ingress controller (the `bramble` IngressClass).
//!
//! Two halves:
//! - the data plane, in every kubelet ([`spawn`]): watches Ingresses, IngressClasses,
//!   Services, EndpointSlices and TLS Secrets, builds a routing table ([`routes`]) and a
//!   certificate table ([`tls`]) on every change and swaps them in atomically; an HTTP and an
//!   HTTPS listener ([`server`]) route each request by host and path and proxy it to a ready
//!   endpoint of the backend Service ([`proxy`]), as every node answers (like k3s's service
//!   load balancer);
//! - the controller side, in `bramble controller` ([`controller::spawn`]): creates the default
//!   `bramble` IngressClass and the RBAC the kubelets need, and writes
//!   `status.loadBalancer.ingress` of the Ingresses it serves with the Ready nodes' IPs.

pub mod backends;
pub mod class;
pub mod controller;
pub mod error;
pub mod proxy;
pub mod routes;
pub mod server;
pub mod sync;
pub mod tls;

pub use error::IngressError;
pub use server::IngressConfig;
pub use sync::spawn;
