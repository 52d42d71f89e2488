//! The role processes of a tunnel (spec/behaviour.md §1.1). The names are
//! the ones of `run ROLE as USER`, so chantryd uses the configuration's own
//! type: `Role::as_str` is the command-line and log name, and
//! `Role::is_crypto` tells which roles run without any network.

pub use chantry_core::config::Role;
