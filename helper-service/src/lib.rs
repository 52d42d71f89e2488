//! chantryd: the guardian and the sandboxed role processes that run one
//! sanctum tunnel (see docs/architecture.md and docs/sandbox.md), and the
//! system service that drives them.
//!
//! The tunnel (guardian, roles, sandbox, shared memory, wiring, the TUN
//! and UDP platform layer) is Linux-only for now: seccomp, landlock and
//! namespaces have no counterpart elsewhere yet. The service compiles for
//! Linux, macOS and Windows (its transport and registration differ per
//! system, see [`service`]).
//!
//! `unsafe` is denied crate-wide and allowed only where a mapping of
//! shared memory, an fd handed over by the guardian, a sandbox syscall,
//! the registration of an owned fd with tokio's reactor (the netlink
//! socket) or a Windows security call needs it, each use with a SAFETY
//! comment.

pub mod cathedral_tool;
pub mod control;
#[cfg(target_os = "linux")]
pub mod feed;
#[cfg(target_os = "linux")]
pub mod guardian;
#[cfg(target_os = "linux")]
pub mod platform;
#[cfg(target_os = "linux")]
pub mod report;
pub mod role;
#[cfg(target_os = "linux")]
pub mod roles;
#[cfg(target_os = "linux")]
pub mod sandbox;
pub mod service;
#[cfg(target_os = "linux")]
pub mod shm;
#[cfg(target_os = "linux")]
pub mod wiring;
