//! How the control endpoint's connections arrive, and who is on the other
//! end, per system; everything above this works on an `AsyncRead +
//! AsyncWrite` stream and a [`Caller`].
//!
//! * Linux and macOS ([`unix`](self)): a Unix stream socket, 0660 and owned
//!   by the users' group; the caller's uid and gid come from the kernel
//!   (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS) and its groups from
//!   the group database.
//! * Windows: a named pipe under `ProtectedPrefix\Administrators` (only an
//!   elevated process can create it, so nobody can squat the name) with an
//!   explicit DACL ([`acl`]); the caller's user and groups come from its
//!   process token.
//!
//! [`Listener::accept`] yields an [`Accepted`] connection; its
//! [`Accepted::identify`] (blocking: it may read the group database) gives
//! the [`Caller`], [`Accepted::into_stream`] the byte stream. [`connect`]
//! is the blocking client side chantryctl uses.

pub mod acl;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{Accepted, ClientStream, Listener, Stream, bind, connect};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{Accepted, ClientStream, Listener, Stream, bind, connect, protect_dir};

use chantry_core::ipc::Privilege;

/// The endpoint the service listens on unless told otherwise.
#[cfg(target_os = "linux")]
pub const DEFAULT_ENDPOINT: &str = "/run/chantry/chantryd.sock";
/// The endpoint the service listens on unless told otherwise.
#[cfg(target_os = "macos")]
pub const DEFAULT_ENDPOINT: &str = "/var/run/chantry/chantryd.sock";
/// The endpoint the service listens on unless told otherwise.
#[cfg(windows)]
pub const DEFAULT_ENDPOINT: &str = acl::PIPE_NAME;
/// The endpoint the service listens on unless told otherwise.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub const DEFAULT_ENDPOINT: &str = "/var/run/chantry/chantryd.sock";

/// Who is on the other end of a connection, as the system vouches for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The caller's user for logs and events: the uid on Unix, the last
    /// sub-authority (RID) of the user's SID on Windows (what Cygwin shows
    /// as the uid of a local account).
    pub uid: u32,
    /// The caller's process, when the system tells it.
    pub pid: Option<u32>,
    /// What the caller may do.
    pub privilege: Privilege,
}

#[cfg(test)]
mod tests;
