//! Cluster PKI for Bramble.
