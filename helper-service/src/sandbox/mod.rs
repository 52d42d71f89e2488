//! The per-role sandbox.
