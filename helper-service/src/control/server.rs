//! The answering side, run by the sandboxed `control` role.
//!
//! The guardian binds the socket ([`super::bind_control_socket`]) before
//! the role starts; the role only receives and sends on the descriptor it
//! inherited, so it needs `recvfrom` and `sendto` and no file access at all
//! (the reply goes to a path-bound client socket through the descriptor).

use std::io;
use std::os::unix::net::UnixDatagram;

use super::{ControlError, STATUS_REQUEST, Status};

/// Largest request read in one go. Anything longer than one byte is
/// ignored anyway; a bigger buffer only lets the log tell its real length
/// (up to this size) instead of a truncated one.
const REQUEST_BUF: usize = 64;

/// What one call to [`serve_one`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// A STATUS request was answered with 88 bytes.
    Replied,
    /// A datagram that is not exactly `[0x01]` was dropped. `len` is its
    /// length (at most 64: longer datagrams are truncated on receipt).
    Ignored {
        /// Bytes received.
        len: usize,
    },
    /// A STATUS request came from an unbound socket: there is no address
    /// to reply to.
    NoReplyAddress,
    /// Sending the reply failed (the client went away, or may not be
    /// written to by this user). Not fatal: the reference logs and goes on.
    ReplyFailed(io::ErrorKind),
    /// Nothing to read (non-blocking socket) or the wait was interrupted by
    /// a signal: the caller should check its signals and poll again.
    Idle,
}

/// Reads one datagram from `sock` and, if it is exactly the STATUS request
/// `[0x01]`, sends `snapshot()` encoded ([`Status::encode`]) to the
/// sender's address. `snapshot` is called only for a valid request.
///
/// Blocks if `sock` is blocking; the guardian hands the socket over
/// non-blocking (as the reference does), so the role polls it first and a
/// spurious wakeup returns [`Served::Idle`]. Only a failing receive is an
/// error.
pub fn serve_one(
    sock: &UnixDatagram,
    snapshot: impl FnOnce() -> Status,
) -> Result<Served, ControlError> {
    let mut buf = [0u8; REQUEST_BUF];
    let (len, from) = match sock.recv_from(&mut buf) {
        Ok(r) => r,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            return Ok(Served::Idle);
        }
        Err(e) => return Err(ControlError::Receive(e)),
    };
    if buf.get(..len) != Some(&[STATUS_REQUEST][..]) {
        tracing::debug!(len, "ignoring control request that is not STATUS");
        return Ok(Served::Ignored { len });
    }
    if from.is_unnamed() {
        tracing::debug!("STATUS request from an unbound socket, cannot reply");
        return Ok(Served::NoReplyAddress);
    }
    let reply = snapshot().encode();
    match sock.send_to_addr(&reply, &from) {
        Ok(_) => Ok(Served::Replied),
        Err(e) => {
            tracing::info!(error = %e, peer = ?from, "failed to send status to peer");
            Ok(Served::ReplyFailed(e.kind()))
        }
    }
}
