//! MTU discovery as heaven-rx runs it (behaviour.md §5): a probe every 5 s
//! walking down from the tunnel MTU, stopped by the peer's ack (which the
//! guardian applies to the TUN device), and run again 600 s later or when
//! the peer address changes.

use std::net::SocketAddrV4;

use super::shared::Shared;

/// Seconds between probes.
const PROBE_EVERY: u64 = 5;
/// Seconds before the first probe.
const FIRST_PROBE: u64 = 5;
/// Seconds between discovery runs.
const RERUN: u64 = 600;
/// The smallest size probed.
const MIN_PROBE: u16 = 623;
/// Per-datagram overhead without and with shroud.
const OVERHEAD: u16 = 78;
const SHROUD_OVERHEAD: u16 = 127;

/// One side's discovery state.
#[derive(Debug)]
pub struct Discovery {
    overhead: u16,
    step: u32,
    last: u16,
    next_probe: u64,
    applied: Option<u32>,
    peer: Option<SocketAddrV4>,
}

impl Discovery {
    /// Discovery starting at `now` (monotonic seconds).
    pub fn new(shroud: bool, now: u64) -> Self {
        Discovery {
            overhead: if shroud { SHROUD_OVERHEAD } else { OVERHEAD },
            step: 0,
            last: 0,
            next_probe: now + FIRST_PROBE,
            applied: None,
            peer: None,
        }
    }

    fn reset(&mut self, next: u64) {
        self.step = 0;
        self.last = 0;
        self.next_probe = next;
    }

    /// The size to probe now, if any.
    pub fn tick(&mut self, state: &Shared, now: u64) -> Option<u16> {
        let peer = state.peer();
        if peer != self.peer {
            self.peer = peer;
            self.reset(now);
        }
        let mtu = state.mtu();
        // The guardian counts the acks it applied to the TUN device: a new
        // one ends this run.
        let applied = state.mtu_acks_applied();
        if self
            .applied
            .replace(applied)
            .is_some_and(|seen| seen != applied)
        {
            self.reset(now + RERUN);
            return None;
        }
        if now < self.next_probe {
            return None;
        }
        if self.last == MIN_PROBE {
            self.reset(now + RERUN);
            return None;
        }
        let o = self.overhead;
        let size = match self.step {
            0 => mtu,
            1 => 1500 - o,
            2 => 1422 - o,
            3 => 1280 - o,
            _ => self.last.saturating_sub(32),
        }
        .max(MIN_PROBE);
        self.step += 1;
        self.last = size;
        self.next_probe = now + PROBE_EVERY;
        Some(size)
    }
}
