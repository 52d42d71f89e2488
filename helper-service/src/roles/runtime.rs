//! What every role does around its duty: attach the inherited rings and
//! state, read the clock, enter the sandbox.

use std::os::fd::OwnedFd;
use std::time::Duration;

use anyhow::{Context, Result};
use chantry_core::time::{Instant, Now};

use crate::shm::{Consumer, Producer, Waker};
use crate::wiring::{FdMap, Ring, Slot};

/// Packets a role moves from one ring before it wakes the next role and
/// looks at its other inputs: large enough to amortise wakeups, small
/// enough to keep latency and fairness.
pub const BATCH: usize = 64;

/// The host's monotonic clock (CLOCK_MONOTONIC, the clock the reference's
/// control socket reports in) and the wall clock.
pub fn now() -> Now {
    let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Now::new(Instant::from_duration(mono), wall)
}

/// How long until `deadline`, for a poll timeout (at least 1 ms, so a due
/// deadline does not spin).
pub fn until(deadline: Instant, now: Instant) -> Duration {
    deadline.saturating_since(now).max(Duration::from_millis(1))
}

/// Attaches the consuming end of `ring`.
pub fn consumer(fds: &mut FdMap, ring: Ring) -> Result<Consumer> {
    let fd = fds.take(Slot::In(ring))?;
    Consumer::attach(fd).with_context(|| format!("ring {}", ring.as_str()))
}

/// Attaches the producing end of `ring` with its consumer's waker.
pub fn producer(fds: &mut FdMap, ring: Ring) -> Result<Producer> {
    let fd = fds.take(Slot::Out(ring))?;
    let waker = Waker::from_fd(fds.take(Slot::Waker(ring))?);
    Producer::attach(fd, waker).with_context(|| format!("ring {}", ring.as_str()))
}

/// Takes a plain fd (TUN, UDP, control, secret).
pub fn take(fds: &mut FdMap, slot: Slot) -> Result<OwnedFd> {
    Ok(fds.take(slot)?)
}
