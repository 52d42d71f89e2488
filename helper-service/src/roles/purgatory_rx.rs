//! purgatory-rx: receives datagrams on the tunnel's UDP socket, removes
//! the shroud, and sorts them: exchange offers to the keying role, data
//! packets for a live RX SPI to confess, everything else dropped
//! (behaviour.md §1.5). In a cathedral it reads the main socket and the
//! NAT-port socket and hands everything to the cathedral role (§8.1).

use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::Result;
use chantry_core::secret::Key32;
use chantry_core::wire::data::Header;
use chantry_core::wire::offer::{self, Magic, PacketKind};
use chantry_core::wire::shroud;
use nix::errno::Errno;
use nix::sys::socket::{SockaddrIn, recvfrom};

use super::runtime::{self, BATCH};
use super::shared::Shared;
use super::{KIND_TRAFFIC, Role0};
use crate::shm::{self, KeyMsg, Meta, Producer};
use crate::wiring::{Mode, Ring, Slot};

/// Largest datagram accepted (a 1500-byte path MTU minus IP and UDP
/// headers, rounded up generously).
const MAX_DATAGRAM: usize = 1600;

/// Runs purgatory-rx until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let udp: OwnedFd = runtime::take(&mut r.fds, Slot::Udp)?;
    if r.settings.mode == Mode::Cathedral {
        return run_cathedral(r, udp);
    }
    let mut keys = runtime::consumer(&mut r.fds, Ring::KeyPurgatoryRx)?;
    let mut confess = runtime::producer(&mut r.fds, Ring::Confess)?;
    let mut chapel = runtime::producer(&mut r.fds, Ring::Chapel)?;
    let (wake, state) = r.enter()?;
    let mode = r.settings.mode;
    let shrouded = r.settings.shroud;
    // A cathedral client's KATEDRAL packets go to chapel (behaviour.md
    // §1.5) from whichever cathedral it uses now: after a failover (§7.3)
    // that is one from its remembrance list, learnt at run time, so the
    // source is not filtered here; chapel's client drops at once, before
    // any crypto, whatever does not come from its current cathedral (as it
    // does SACRAMNT offers from strangers, which reach chapel too).
    let cathedral_client = r.settings.cathedral_client.is_some();
    let mut shroud_key: Option<Key32> = None;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        while let Some(msg) = keys.pop_key() {
            match msg {
                Ok(KeyMsg::ShroudRx { key }) => shroud_key = Some(key),
                Ok(other) => tracing::warn!(msg = other.name(), "unexpected key message"),
                Err(e) => tracing::warn!(error = %e, "malformed key message"),
            }
        }
        let mut moved = 0;
        let (mut to_confess, mut to_chapel) = (false, false);
        while moved < BATCH {
            let (len, from) = match recvfrom::<SockaddrIn>(udp.as_raw_fd(), &mut buf) {
                Ok((len, Some(from))) => (len, SocketAddrV4::from(from)),
                Ok((_, None)) => continue,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    // ICMP errors surface here (ECONNREFUSED and friends):
                    // they say nothing trustworthy, keep going.
                    tracing::debug!(error = %e, "recvfrom");
                    break;
                }
            };
            moved += 1;
            let packet = match (&shroud_key, shrouded) {
                (_, false) => &mut buf[..len],
                (Some(key), true) => match shroud::unshroud_in_place(key, &mut buf[..len]) {
                    Ok(range) => &mut buf[range],
                    Err(_) => continue,
                },
                // No shroud key yet: nothing can be read.
                (None, true) => continue,
            };
            let meta = Meta {
                addr: Some(from),
                kind: KIND_TRAFFIC,
            };
            match offer::classify(packet) {
                Some(PacketKind::Offer(Magic::Sacrament)) => {
                    to_chapel |= chapel.push(meta, packet).is_ok();
                }
                Some(PacketKind::Offer(Magic::Katedral))
                    if cathedral_client && packet.len() >= offer::OFFER_LEN =>
                {
                    to_chapel |= chapel.push(meta, packet).is_ok();
                }
                Some(PacketKind::Data) if mode != Mode::Pilgrim => {
                    to_confess |= live_spi(&state, packet) && confess.push(meta, packet).is_ok();
                }
                _ => {}
            }
        }
        if to_confess {
            confess.wake();
        }
        if to_chapel {
            chapel.wake();
        }
        if moved == BATCH {
            continue;
        }
        let sock = udp.as_fd();
        shm::sleep(&mut [&mut keys], &wake, &[sock], None)?;
    }
}

/// Smallest datagram passed to a cathedral (behaviour.md §8.1).
const CATHEDRAL_MIN: usize = chantry_core::cathedral::server::MIN_DATAGRAM;

/// Cathedral mode: every datagram of at least 50 bytes from the main
/// socket and, with `cathedral_nat_port`, the NAT socket goes to the
/// cathedral role unmodified, with its source address. Which socket it
/// came in on is not passed on: the cathedral goes by the magic
/// (behaviour.md §8.1).
fn run_cathedral(mut r: Role0, udp: OwnedFd) -> Result<()> {
    let nat = r
        .settings
        .cathedral
        .as_ref()
        .and_then(|c| c.nat_port)
        .map(|_| runtime::take(&mut r.fds, Slot::NatUdp))
        .transpose()?;
    let mut cathedral = runtime::producer(&mut r.fds, Ring::Chapel)?;
    let (wake, _state) = r.enter()?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let sockets: Vec<&OwnedFd> = std::iter::once(&udp).chain(nat.as_ref()).collect();
    loop {
        let mut full = false;
        let mut pushed = false;
        for sock in &sockets {
            let (moved, any) = drain_to_cathedral(sock, &mut buf, &mut cathedral);
            full |= moved == BATCH;
            pushed |= any;
        }
        if pushed {
            cathedral.wake();
        }
        if full {
            continue;
        }
        let fds: Vec<_> = sockets.iter().map(|s| s.as_fd()).collect();
        shm::sleep(&mut [], &wake, &fds, None)?;
    }
}

/// Up to a batch from one socket into the cathedral's ring: (datagrams
/// read, whether any was queued).
fn drain_to_cathedral(sock: &OwnedFd, buf: &mut [u8], ring: &mut Producer) -> (usize, bool) {
    let mut moved = 0;
    let mut pushed = false;
    while moved < BATCH {
        let (len, from) = match recvfrom::<SockaddrIn>(sock.as_raw_fd(), buf) {
            Ok((len, Some(from))) => (len, SocketAddrV4::from(from)),
            Ok((_, None)) => continue,
            Err(Errno::EAGAIN) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "recvfrom");
                break;
            }
        };
        moved += 1;
        if len < CATHEDRAL_MIN {
            continue;
        }
        let meta = Meta {
            addr: Some(from),
            kind: KIND_TRAFFIC,
        };
        pushed |= ring.push(meta, &buf[..len]).is_ok();
    }
    (moved, pushed)
}

/// The pre-filter: only packets for the active or pending RX SPI go on to
/// be decrypted.
fn live_spi(state: &Shared, packet: &[u8]) -> bool {
    let Ok(h) = Header::parse(packet) else {
        return false;
    };
    let (active, pending) = state.rx_spis();
    h.spi != 0 && (h.spi == active || h.spi == pending)
}
