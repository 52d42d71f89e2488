//! Chantry's mobile engine: app-core's sanctum tunnel behind a uniffi FFI,
//! for the Android (VpnService) and iOS (NEPacketTunnelProvider) hosts.
//!
//! The host gives packets from the OS and datagrams from a UDP socket to an
//! [`Engine`], calls its timer, and gets datagrams, clear packets and
//! events back through the [`EngineHost`] it implements. The Kotlin, Swift
//! and Python bindings are generated from this crate (see
//! scripts/mobile-bindings.sh); the Python ones prove the FFI in tests.
//!
//! One process, two sides (DESIGN.md §5, the in-process form of chantryd's
//! role split): the red side ([`red`]) vets clear packets and holds no key;
//! the black side ([`black`]) holds every key and every piece of protocol
//! state. They share no mutable state and talk only through messages the
//! [`Engine`] carries between them. Key material enters through a
//! [`Profile`] and never leaves: no call returns or prints it.
//!
//! No call panics across the FFI: profile problems are [`ProfileError`]s,
//! dropped packets are [`Verdict`]s, host failures are counted.
#![forbid(unsafe_code)]

mod black;
mod clock;
mod engine;
mod error;
mod profile;
mod red;
mod types;

pub use engine::{Engine, EngineHost};
pub use error::{EngineError, HostError, ProfileError};
pub use profile::{Profile, ProfileKeys};
pub use types::{
    Endpoint, EngineEvent, EngineStats, Ipv4Network, TunnelSettings, TunnelState, Verdict,
};

uniffi::setup_scaffolding!();

/// The crate version and the sanctum protocol it speaks.
#[uniffi::export]
pub fn version() -> String {
    format!("chantry-mobile {} (sanctum 1.x)", env!("CARGO_PKG_VERSION"))
}

/// Locks a mutex, going on with the data if another thread panicked while
/// holding it (every value behind these locks stays consistent between
/// calls).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
