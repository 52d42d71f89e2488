//! heaven-tx: writes decrypted packets from confess to the TUN device,
//! after checking they belong to the tunnel, and consumes graces
//! (behaviour.md §4.2).

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use anyhow::Result;
use chantry_core::offload::VNET_HDR_LEN;
use chantry_core::offload::gro::Coalescer;
use chantry_core::wire::grace::{self, Grace};
use nix::errno::Errno;

use super::runtime::{self, BATCH};
use super::shared::Shared;
use super::{KIND_GRACE, Role0};
use crate::shm;
use crate::wiring::{Ring, Slot};

/// TCP flows merged at once (a batch rarely holds more).
const GRO_FLOWS: usize = 8;

/// Runs heaven-tx until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let tun = runtime::take(&mut r.fds, Slot::Tun)?;
    let mut input = runtime::consumer(&mut r.fds, Ring::Heaven)?;
    let (wake, state) = r.enter()?;
    let accept = r.settings.accept.clone();
    let mut writer = TunWriter::new(tun, r.settings.tun_offload);
    loop {
        let mut moved = 0;
        while moved < BATCH {
            let Some((meta, len)) = input.pop(writer.room()) else {
                break;
            };
            moved += 1;
            let packet = writer.popped(len);
            if meta.kind == KIND_GRACE {
                handle_grace(&state, packet);
                continue;
            }
            if !allowed(&accept, packet) {
                tracing::debug!(
                    len,
                    "dropped a decrypted packet outside the tunnel networks"
                );
                continue;
            }
            writer.write(len);
        }
        writer.flush();
        if moved > 0 {
            continue;
        }
        shm::sleep(&mut [&mut input], &wake, &[], None)?;
    }
}

/// Writes packets to the TUN device: one by one on a plain device; with
/// offload, behind a virtio-net header and merged per TCP flow until the
/// batch ends.
struct TunWriter {
    tun: OwnedFd,
    /// `VNET_HDR_LEN` bytes of header room (offload only), then the packet.
    frame: Vec<u8>,
    gro: Option<Coalescer>,
}

impl TunWriter {
    fn new(tun: OwnedFd, offload: bool) -> TunWriter {
        let head = if offload { VNET_HDR_LEN } else { 0 };
        TunWriter {
            tun,
            frame: vec![0u8; head + shm::SLOT_DATA],
            gro: offload.then(|| Coalescer::new(GRO_FLOWS)),
        }
    }

    fn head(&self) -> usize {
        if self.gro.is_some() { VNET_HDR_LEN } else { 0 }
    }

    /// Where the next packet is popped to.
    fn room(&mut self) -> &mut [u8] {
        let head = self.head();
        &mut self.frame[head..]
    }

    /// The packet just popped.
    fn popped(&self, len: usize) -> &[u8] {
        let head = self.head();
        &self.frame[head..head + len]
    }

    /// Writes (or holds back, to merge) the packet just popped.
    fn write(&mut self, len: usize) {
        let head = self.head();
        let frame = &mut self.frame[..head + len];
        let tun = &self.tun;
        match self.gro.as_mut() {
            Some(gro) => gro.push(frame, &mut |f| write_frame(tun, f)),
            None => write_frame(tun, frame),
        }
    }

    /// Writes whatever is held back.
    fn flush(&mut self) {
        let tun = &self.tun;
        if let Some(gro) = self.gro.as_mut() {
            gro.flush(&mut |f| write_frame(tun, f));
        }
    }
}

/// One write to the TUN device. A full TUN queue drops, like a full ring;
/// a signal retries.
fn write_frame(tun: &OwnedFd, frame: &[u8]) {
    loop {
        match nix::unistd::write(tun, frame) {
            Err(Errno::EINTR) => continue,
            Err(e) => {
                tracing::debug!(error = %e, len = frame.len(), "TUN write failed");
                return;
            }
            Ok(_) => return,
        }
    }
}

fn handle_grace(state: &Shared, payload: &[u8]) {
    match Grace::parse(payload) {
        Ok(Grace::MtuProbe { size }) if grace::probe_acceptable(size, usize::from(state.mtu())) => {
            state.request_mtu_probe_ack(size);
        }
        Ok(Grace::MtuAck { size }) if grace::ack_acceptable(size) => {
            state.report_mtu_ack(size);
        }
        _ => {}
    }
}

/// An IPv4 packet whose source and destination both lie in an allowed
/// network (the tunnel's own or an `accept` line): a peer cannot inject
/// traffic for other networks through this tunnel.
fn allowed(accept: &[(Ipv4Addr, u8)], packet: &[u8]) -> bool {
    let (Some(src), Some(dst)) = (packet.get(12..16), packet.get(16..20)) else {
        return false;
    };
    if packet.first().map(|b| b >> 4) != Some(4) {
        return false;
    }
    let addr = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let inside = |a: Ipv4Addr| accept.iter().any(|&(net, prefix)| in_net(a, net, prefix));
    inside(addr(src)) || inside(addr(dst))
}

fn in_net(a: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    u32::from(a) & mask == u32::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p
    }

    #[test]
    fn filter_keeps_tunnel_traffic_only() {
        let accept = [(Ipv4Addr::new(10, 0, 0, 0), 30)];
        assert!(allowed(&accept, &packet([10, 0, 0, 1], [10, 0, 0, 2])));
        assert!(allowed(&accept, &packet([192, 168, 1, 1], [10, 0, 0, 2])));
        assert!(!allowed(&accept, &packet([192, 168, 1, 1], [8, 8, 8, 8])));
        assert!(!allowed(&accept, &[0x45, 0, 0]));
        let mut v6 = packet([10, 0, 0, 1], [10, 0, 0, 2]);
        v6[0] = 0x60;
        assert!(!allowed(&accept, &v6));
        assert!(allowed(
            &[(Ipv4Addr::UNSPECIFIED, 0)],
            &packet([1, 2, 3, 4], [5, 6, 7, 8])
        ));
    }
}
