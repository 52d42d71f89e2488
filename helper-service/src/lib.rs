//! chantryd: the guardian and the sandboxed role processes that run one
//! sanctum tunnel (see docs/architecture.md and docs/sandbox.md).
//!
//! `unsafe` is denied crate-wide and allowed only in the modules that map
//! shared memory and set up the sandbox, each use with a SAFETY comment.

pub mod role;
pub mod shm;
pub mod sandbox;
pub mod control;
