//! Blocking until a ring has data, another fd is ready, or a timer is due.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::ShmError;
use super::ring::Consumer;
use super::wake::WakeFd;

/// Most extra fds [`sleep`] reports on.
pub const MAX_EXTRA: usize = 32;

/// What ended a [`sleep`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A ring may hold data (it did before sleeping, the eventfd was
    /// written, or one is non-empty now): pop every ring until empty.
    pub rings: bool,
    /// Bit `i` set: `extra[i]` is readable (or has an error or hangup to
    /// report, which the next read returns).
    pub extra: u32,
    /// The timeout expired with nothing ready.
    pub timed_out: bool,
    /// poll(2) was interrupted by a signal; check signal flags and loop.
    pub interrupted: bool,
}

impl Readiness {
    /// Whether `extra[i]` is ready.
    pub fn extra_ready(&self, i: usize) -> bool {
        i < MAX_EXTRA && self.extra & (1 << i) != 0
    }
}

/// Milliseconds for poll(2), rounded up so a short timer is not turned
/// into a busy loop, capped at `i32::MAX`.
fn poll_timeout(timeout: Option<Duration>) -> PollTimeout {
    match timeout {
        None => PollTimeout::NONE,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// Sleeps until one of `consumers` has data, one of `extra` is readable,
/// or `timeout` passes (`None`: no timeout).
///
/// Announces sleep on every consumer's ring and re-checks each one; if any
/// already holds data, withdraws the announcements and returns at once.
/// Otherwise polls `wake` (the eventfd all these rings' producers write)
/// and `extra`, then drains `wake` and clears the announcements. Returns
/// early, not as an error, when a signal interrupts poll(2).
pub fn sleep(
    consumers: &mut [&mut Consumer],
    wake: &WakeFd,
    extra: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> Result<Readiness, ShmError> {
    sleep_with(consumers, wake, extra, timeout, || {})
}

/// [`sleep`] with a hook run after the announcements and before poll(2),
/// which tests use to push in exactly that window.
pub(super) fn sleep_with(
    consumers: &mut [&mut Consumer],
    wake: &WakeFd,
    extra: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
    between: impl FnOnce(),
) -> Result<Readiness, ShmError> {
    if extra.len() > MAX_EXTRA {
        return Err(ShmError::TooManyFds(extra.len()));
    }
    let mut ready = Readiness::default();
    let mut announced = 0;
    for c in consumers.iter_mut() {
        if !c.prepare_sleep() {
            ready.rings = true;
            break;
        }
        announced += 1;
    }
    if ready.rings {
        for c in consumers.iter_mut().take(announced) {
            c.woke();
        }
        return Ok(ready);
    }
    between();

    let mut fds = Vec::with_capacity(1 + extra.len());
    fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
    fds.extend(extra.iter().map(|&fd| PollFd::new(fd, PollFlags::POLLIN)));
    let result = poll(&mut fds, poll_timeout(timeout));
    for c in consumers.iter_mut() {
        c.woke();
    }
    match result {
        Ok(0) => ready.timed_out = true,
        Ok(_) => {
            let hit = |p: &PollFd<'_>| p.revents().is_some_and(|r| !r.is_empty());
            if hit(&fds[0]) {
                wake.drain();
                ready.rings = true;
            }
            for (i, p) in fds[1..].iter().enumerate() {
                if hit(p) {
                    ready.extra |= 1 << i;
                }
            }
        }
        Err(Errno::EINTR) => ready.interrupted = true,
        Err(e) => return Err(ShmError::Poll(e)),
    }
    if !ready.rings && consumers.iter().any(|c| !c.is_empty()) {
        ready.rings = true;
        ready.timed_out = false;
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_and_cap() {
        assert_eq!(poll_timeout(None), PollTimeout::NONE);
        assert_eq!(poll_timeout(Some(Duration::ZERO)), PollTimeout::ZERO);
        assert_eq!(i32::from(poll_timeout(Some(Duration::from_micros(1)))), 1);
        assert_eq!(
            i32::from(poll_timeout(Some(Duration::from_millis(1500)))),
            1500
        );
        assert_eq!(
            poll_timeout(Some(Duration::from_secs(u64::MAX))),
            PollTimeout::MAX
        );
    }

    #[test]
    fn readiness_bits() {
        let r = Readiness {
            extra: 0b101,
            ..Readiness::default()
        };
        assert!(r.extra_ready(0) && !r.extra_ready(1) && r.extra_ready(2));
        assert!(!r.extra_ready(40));
    }
}
