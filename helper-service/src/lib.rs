//! chantryd: the guardian and the sandboxed role processes that run one
//! sanctum tunnel (see docs/architecture.md and docs/sandbox.md).
//!
//! `unsafe` is denied crate-wide and allowed only where a mapping of
//! shared memory, an fd handed over by the guardian, a sandbox syscall or
//! the registration of an owned fd with tokio's reactor needs it, each use
//! with a SAFETY comment.

pub mod control;
pub mod guardian;
pub mod platform;
pub mod role;
pub mod roles;
pub mod sandbox;
pub mod service;
pub mod shm;
pub mod wiring;
