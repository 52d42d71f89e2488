//! The operating system side the guardian sets up before any role starts:
//! the TUN device with its address, MTU and routes, and the UDP socket.
//! Linux is built and tested here; other systems come with their own
//! modules behind cfg.

#[cfg(target_os = "linux")]
mod linux;
pub mod udp;

#[cfg(target_os = "linux")]
pub use linux::{Tun, TunSpec};
