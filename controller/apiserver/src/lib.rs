//! Bramble's Kubernetes API server: REST and watch over the [`bramble_store::Store`] seam,
//! served by hyper over rustls, with Kubernetes' authentication, admission and errors.

// `Status` (136 bytes) is the error every handler returns, on paths that end the request;
// boxing it everywhere would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod admission_limitrange;
pub mod admission_pod_security;
pub mod admission_quota;
pub mod admission_storageclass;
pub mod audit;
pub mod audit_policy;
pub mod auth;
pub mod auth_routes;
pub mod auth_setup;
pub mod authz;
pub mod body;
pub mod body_util;
pub mod bootstrap;
pub mod controller;
pub mod converting_store;
pub mod crds;
pub mod csr;
pub mod discovery;
pub mod encrypted_store;
pub mod errors;
pub mod filter;
pub mod handlers;
pub mod impersonation;
pub mod inprocess;
pub mod leader_election;
pub mod memory;
pub mod metrics;
pub mod namespaces;
pub mod negotiate;
pub mod node_restriction;
pub mod objects;
pub mod path;
pub mod query;
pub mod quota_controller;
pub mod rbac_bootstrap;
pub mod reviews;
pub mod sa_admission;
pub mod sa_controller;
pub mod sa_tokens;
pub mod server;
pub mod state;
pub mod streaming;
pub mod watch;

pub use controller::{Controller, ControllerConfig};
pub use errors::ServerError;
pub use state::{ApiSettings, ApiState};
