//! control: answers STATUS requests on the control socket the guardian
//! bound (spec/files.md §8) from the shared state. It holds no keys and no
//! ring: the socket and a read of the state page are all it has.

use std::os::unix::net::UnixDatagram;

use anyhow::Result;

use super::Role0;
use super::runtime;
use crate::control;
use crate::wiring::Slot;

/// Runs the control role until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let sock = UnixDatagram::from(runtime::take(&mut r.fds, Slot::Control)?);
    let (_wake, state) = r.enter()?;
    loop {
        if let Err(e) = control::serve_one(&sock, || state.status()) {
            tracing::debug!(error = %e, "control request");
        }
    }
}
