//! Bramble API server.
