//! purgatory-tx: sends sealed data packets from bless and offers from the
//! keying role to the current peer, shrouded when configured
//! (behaviour.md §1.5). Nothing is sent while the peer is unknown.

use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::Result;
use chantry_core::entropy::OsEntropy;
use chantry_core::secret::Key32;
use chantry_core::wire::shroud::{self, ShroudHeader};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, SockaddrIn, sendto};

use super::Role0;
use super::runtime::{self, BATCH};
use crate::shm::{self, Consumer, KeyMsg};
use crate::wiring::{Mode, Ring, Slot};

/// Runs purgatory-tx until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let udp: OwnedFd = runtime::take(&mut r.fds, Slot::Udp)?;
    // A cathedral has neither a keying role nor offers of its own: the
    // cathedral role addresses every datagram on the purgatory ring.
    let keying = r.settings.mode != Mode::Cathedral;
    let mut keys = keying
        .then(|| runtime::consumer(&mut r.fds, Ring::KeyPurgatoryTx))
        .transpose()?;
    let mut data = runtime::consumer(&mut r.fds, Ring::Purgatory)?;
    let mut offers = keying
        .then(|| runtime::consumer(&mut r.fds, Ring::Offer))
        .transpose()?;
    let (wake, state) = r.enter()?;
    let shrouded = r.settings.shroud;
    let mut shroud_key: Option<Key32> = None;
    let mut rng = OsEntropy;
    let mut tx = Sender {
        fd: udp,
        buf: vec![0u8; shm::SLOT_DATA + shroud::OVERHEAD + 256],
        pad_target: usize::from(r.settings.tun_mtu),
    };
    loop {
        while let Some(msg) = keys.as_mut().and_then(Consumer::pop_key) {
            match msg {
                Ok(KeyMsg::ShroudTx { key }) => shroud_key = Some(key),
                Ok(other) => tracing::warn!(msg = other.name(), "unexpected key message"),
                Err(e) => tracing::warn!(error = %e, "malformed key message"),
            }
        }
        let peer = state.peer();
        tx.pad_target = usize::from(state.mtu());
        let key = if shrouded { shroud_key.as_ref() } else { None };
        let blocked = shrouded && key.is_none();
        let mut moved = 0;
        if let Some(offers) = offers.as_mut() {
            moved += tx.drain(offers, peer, key, blocked, &mut rng);
        }
        moved += tx.drain(&mut data, peer, key, blocked, &mut rng);
        if moved > 0 {
            continue;
        }
        let mut rings: Vec<&mut Consumer> = vec![&mut data];
        rings.extend(offers.as_mut());
        rings.extend(keys.as_mut());
        shm::sleep(&mut rings, &wake, &[], None)?;
    }
}

/// The socket and a reusable datagram buffer.
struct Sender {
    fd: OwnedFd,
    buf: Vec<u8>,
    pad_target: usize,
}

impl Sender {
    /// Sends up to a batch from `ring`; returns how many were taken.
    fn drain(
        &mut self,
        ring: &mut Consumer,
        peer: Option<SocketAddrV4>,
        key: Option<&Key32>,
        blocked: bool,
        rng: &mut OsEntropy,
    ) -> usize {
        let mut moved = 0;
        while moved < BATCH {
            let Some((meta, len)) = ring.pop(&mut self.buf[shroud::HEADER_LEN..]) else {
                break;
            };
            moved += 1;
            let Some(dst) = meta.addr.or(peer) else {
                continue;
            };
            if blocked || dst.ip().is_unspecified() {
                continue;
            }
            let datagram = match key {
                Some(key) => {
                    let pad = shroud::padding_len(len, self.pad_target, rng);
                    let total = shroud::OVERHEAD + len + pad;
                    let Some(buf) = self.buf.get_mut(..total) else {
                        continue;
                    };
                    let header = ShroudHeader::random(rng);
                    match shroud::shroud_in_place(key, &header, buf, len, pad) {
                        Ok(n) => &self.buf[..n.min(total)],
                        Err(_) => continue,
                    }
                }
                None => &self.buf[shroud::HEADER_LEN..shroud::HEADER_LEN + len],
            };
            let addr = SockaddrIn::from(dst);
            loop {
                match sendto(self.fd.as_raw_fd(), datagram, &addr, MsgFlags::empty()) {
                    Err(Errno::EINTR) => continue,
                    Err(e @ (Errno::EMSGSIZE | Errno::ENOBUFS | Errno::EAGAIN)) => {
                        tracing::debug!(error = %e, len = datagram.len(), "send dropped");
                        break;
                    }
                    _ => break,
                }
            }
        }
        moved
    }
}
