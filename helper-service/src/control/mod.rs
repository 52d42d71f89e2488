//! The control socket (spec/files.md §8): a UNIX datagram socket on which
//! the `control` role answers the one-byte STATUS request with the
//! tunnel's counters, byte compatible with the reference.
//!
//! * [`status`]: the request byte and the 88-byte reply ([`Status`]).
//! * [`server`]: [`serve_one`], run by the sandboxed control role on the
//!   socket the guardian bound for it.
//! * [`client`]: [`bind_control_socket`] for the guardian and [`query`]
//!   for `chantryctl status`.

#[cfg(unix)]
pub mod client;
mod error;
#[cfg(unix)]
pub mod server;
pub mod status;

#[cfg(unix)]
pub use client::{MAX_SOCKET_PATH, bind_control_socket, query};
pub use error::ControlError;
#[cfg(unix)]
pub use server::{Served, serve_one};
pub use status::{STATUS_LEN, STATUS_REQUEST, SaStats, Status};

/// The reference's default control socket path (`control` keyword absent).
pub const DEFAULT_CONTROL_PATH: &str = "/tmp/sanctum-control";

#[cfg(test)]
mod tests;
