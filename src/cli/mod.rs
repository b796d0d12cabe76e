//! Subcommands of the `bramble` binary that live in the root crate.

pub mod controller;
pub mod logging;
