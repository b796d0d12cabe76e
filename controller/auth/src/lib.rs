//! Bramble's authentication and authorization logic with no I/O: request attributes, RBAC
//! evaluation and aggregation, upstream's default roles, the Node authorizer's rules,
//! service-account JWTs and bootstrap tokens. The API server feeds it objects from the store.

pub mod aggregation;
pub mod attributes;
pub mod bootstrap_token;
pub mod certs;
pub mod defaults;
pub mod encryption;
pub mod error;
pub mod join;
pub mod jwt;
pub mod node;
pub mod pod_security;
pub mod rbac;
pub mod rotation;
pub mod serving_files;
pub mod token_cli;

pub use attributes::{verb_for, Attributes};
pub use error::AuthError;
pub use rbac::{Decision, RbacSource};
