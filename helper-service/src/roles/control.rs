//! control: answers STATUS requests on the control socket the guardian
//! bound (spec/files.md §8) from the shared state. It holds no keys and no
//! ring: the socket and a read of the state page are all it has.

use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;

use anyhow::Result;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::Role0;
use super::runtime;
use crate::control::{self, Served};
use crate::wiring::Slot;

/// Runs the control role until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let sock = UnixDatagram::from(runtime::take(&mut r.fds, Slot::Control)?);
    let (_wake, state) = r.enter()?;
    loop {
        // The socket is non-blocking: sleep in poll until a request comes,
        // so an idle tunnel costs nothing here.
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(anyhow::anyhow!("poll: {e}")),
        }
        // Answer everything queued, then sleep again.
        loop {
            match control::serve_one(&sock, || state.status()) {
                Ok(Served::Idle) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "control request");
                    break;
                }
            }
        }
    }
}
