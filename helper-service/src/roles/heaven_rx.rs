//! heaven-rx: reads clear packets from the TUN device and queues them for
//! bless, and makes the graces this side sends (heartbeats, MTU acks and
//! probes; behaviour.md §4.1, §5).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use anyhow::Result;
use chantry_core::offload::{VNET_HDR_LEN, VnetHdr, gso};
use chantry_core::tunnel::{
    FAST_HEARTBEAT_INTERVAL, FAST_HEARTBEAT_WINDOW, HEARTBEAT_INTERVAL, MIN_CLEAR_LEN,
};
use chantry_core::wire::grace::Grace;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::mtu::Discovery;
use super::runtime::{self, BATCH};
use super::shared::Shared;
use super::{KIND_GRACE, KIND_TRAFFIC, Role0};
use crate::shm::{self, Meta, Producer};
use crate::wiring::{Ring, Slot};

/// How often heaven-rx looks at its timers and at requests from heaven-tx
/// when the TUN device is quiet (the reference's loop runs once a second).
const TICK: Duration = Duration::from_secs(1);

/// Runs heaven-rx until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let tun = runtime::take(&mut r.fds, Slot::Tun)?;
    let mut out = runtime::producer(&mut r.fds, Ring::Bless)?;
    let (_wake, state) = r.enter()?;
    let mut reader = TunReader::new(r.settings.tun_offload);
    let mut next_heartbeat: Option<u64> = None;
    let mut mtu = r
        .settings
        .mtu_discovery
        .then(|| Discovery::new(r.settings.shroud, runtime::now().mono.secs()));
    loop {
        let mut moved = 0;
        while moved < BATCH {
            let limit = usize::from(state.mtu()).max(MIN_CLEAR_LEN);
            let mut push = |packet: &[u8]| {
                if packet.len() >= MIN_CLEAR_LEN && packet.len() <= limit {
                    let _ = out.push(meta(KIND_TRAFFIC), packet);
                }
            };
            match reader.read(&tun, &mut push) {
                Ok(n) => moved += n.max(1),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(anyhow::anyhow!("reading the TUN device: {e}")),
            }
        }
        let now = runtime::now().mono.secs();
        graces(&state, &mut out, &mut next_heartbeat, mtu.as_mut(), now);
        if moved > 0 {
            out.wake();
            if moved == BATCH {
                continue;
            }
        }
        let mut fds = [PollFd::new(tun.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(TICK).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(anyhow::anyhow!("poll: {e}")),
        }
    }
}

/// Reads the TUN device, with or without its virtio-net header.
struct TunReader {
    offload: bool,
    /// One read: the virtio-net header and a packet of up to 64 KiB with
    /// offload, one MTU-sized packet without.
    buf: Vec<u8>,
    /// Where a super-packet's segments are cut.
    segment: Vec<u8>,
}

impl TunReader {
    fn new(offload: bool) -> TunReader {
        let read_len = if offload {
            VNET_HDR_LEN + usize::from(u16::MAX)
        } else {
            shm::SLOT_DATA
        };
        TunReader {
            offload,
            buf: vec![0u8; read_len],
            segment: vec![0u8; shm::SLOT_DATA],
        }
    }

    /// Reads once and hands every packet it held to `push`; returns how
    /// many. A super-packet that cannot be cut is dropped and logged.
    fn read(&mut self, tun: &OwnedFd, push: &mut impl FnMut(&[u8])) -> Result<usize, Errno> {
        let n = nix::unistd::read(tun, &mut self.buf)?;
        if !self.offload {
            push(&self.buf[..n]);
            return Ok(1);
        }
        let Ok(hdr) = VnetHdr::parse(&self.buf[..n]) else {
            return Ok(0);
        };
        let packet = &mut self.buf[VNET_HDR_LEN..n];
        match gso::split(&hdr, packet, &mut self.segment, push) {
            Ok(count) => Ok(count),
            Err(e) => {
                tracing::debug!(error = %e, len = n, "dropped a TUN packet that could not be segmented");
                Ok(0)
            }
        }
    }
}

fn meta(kind: u8) -> Meta {
    Meta { addr: None, kind }
}

/// Heartbeats whenever a TX SA exists (fast for a while after each TX key
/// install), MTU acks heaven-tx asked for, and MTU probes.
fn graces(
    state: &Shared,
    out: &mut Producer,
    next_heartbeat: &mut Option<u64>,
    mtu: Option<&mut Discovery>,
    now: u64,
) {
    let mut sent = false;
    let mut send = |g: Grace, out: &mut Producer| {
        let _ = out.push(meta(KIND_GRACE), &g.to_vec());
        sent = true;
    };
    if let Some(size) = state.take_mtu_probe_ack() {
        send(Grace::MtuAck { size }, out);
    }
    let keyed = state.tx_spi() != 0;
    if !keyed {
        *next_heartbeat = None;
    } else {
        let holepunch = state.fast_heartbeats_since();
        let fast = now < holepunch.saturating_add(FAST_HEARTBEAT_WINDOW.as_secs());
        let interval = if fast {
            FAST_HEARTBEAT_INTERVAL
        } else {
            HEARTBEAT_INTERVAL
        }
        .as_secs();
        let due = next_heartbeat.is_none_or(|t| now >= t || (fast && t > now + interval));
        if due {
            send(Grace::Heartbeat, out);
            *next_heartbeat = Some(now + interval);
        }
        if let Some(d) = mtu
            && let Some(size) = d.tick(state, now)
        {
            send(Grace::MtuProbe { size }, out);
        }
    }
    if sent {
        out.wake();
    }
}
