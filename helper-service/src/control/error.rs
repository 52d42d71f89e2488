//! What can go wrong on the control socket.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// An error of the control socket, its server or its client. Every variant
/// that concerns a socket file names its path.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A STATUS reply that is not exactly 88 bytes.
    #[error("status reply is {len} bytes, expected {}", super::STATUS_LEN)]
    BadReplyLength {
        /// Length received.
        len: usize,
    },
    /// The path does not fit `sun_path` (107 bytes and a NUL on Linux).
    #[error("socket path {path} is too long for a UNIX socket address")]
    PathTooLong {
        /// The path.
        path: PathBuf,
    },
    /// Something other than a socket (a file, a directory, a symlink)
    /// exists where the socket is to be bound; it is left alone.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A file-system or socket call on a path failed.
    #[error("{op} {path}: {error}")]
    Io {
        /// The call that failed (`bind`, `chown`, `chmod`, `unlink`, ...).
        op: &'static str,
        /// The socket path concerned.
        path: PathBuf,
        /// The OS error (part of the message, so not also a `source`).
        error: io::Error,
    },
    /// Sending the STATUS request to the control socket failed (no such
    /// socket, nobody bound to it, no permission).
    #[error("cannot send to control socket {path}: {error}")]
    Send {
        /// The control socket path.
        path: PathBuf,
        /// The OS error (part of the message, so not also a `source`).
        error: io::Error,
    },
    /// Receiving on a socket failed.
    #[error("receive on control socket failed: {0}")]
    Receive(io::Error),
    /// No reply arrived in time.
    #[error("no answer from control socket {path} within {timeout:?}")]
    NoAnswer {
        /// The control socket path.
        path: PathBuf,
        /// How long the client waited.
        timeout: Duration,
    },
}
