//! eventfd wakeups: one [`WakeFd`] per consuming process, one [`Waker`]
//! (a duplicate of that eventfd) per ring that feeds it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::ShmError;

/// The consumer's eventfd (non-blocking, close-on-exec). It polls this fd
/// while asleep; producers write to their [`Waker`] duplicates of it.
#[derive(Debug)]
pub struct WakeFd(OwnedFd);

impl WakeFd {
    /// A new eventfd with a zero counter.
    pub fn new() -> Result<Self, ShmError> {
        EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map(|e| Self(e.into()))
            .map_err(ShmError::EventFd)
    }

    /// Wraps an inherited eventfd. It must be non-blocking, or
    /// [`drain`](Self::drain) blocks when the counter is zero.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// The fd to poll for readability.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Resets the counter to zero (reads it once; a zero counter is not an
    /// error).
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        match nix::unistd::read(&self.0, &mut buf) {
            Ok(_) | Err(Errno::EAGAIN) => {}
            Err(e) => tracing::warn!(error = %e, "draining wake eventfd failed"),
        }
    }

    /// A producer's handle on this eventfd (a close-on-exec duplicate).
    pub fn waker(&self) -> Result<Waker, ShmError> {
        self.0.try_clone().map(Waker).map_err(ShmError::Dup)
    }
}

/// A producer's handle on a consumer's eventfd.
#[derive(Debug)]
pub struct Waker(OwnedFd);

impl Waker {
    /// Wraps an inherited eventfd.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Adds one to the consumer's eventfd counter, making it readable.
    /// `EAGAIN` (counter about to overflow, so already readable) is
    /// ignored.
    pub fn wake(&self) {
        match nix::unistd::write(&self.0, &1u64.to_ne_bytes()) {
            Ok(_) | Err(Errno::EAGAIN) => {}
            Err(e) => tracing::warn!(error = %e, "writing wake eventfd failed"),
        }
    }

    /// The underlying fd, to pass on to a child process.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    fn readable(fd: BorrowedFd<'_>) -> bool {
        let mut p = [PollFd::new(fd, PollFlags::POLLIN)];
        poll(&mut p, PollTimeout::ZERO).expect("poll") == 1
    }

    #[test]
    fn wake_makes_readable_and_drain_clears() {
        let w = WakeFd::new().expect("eventfd");
        assert!(!readable(w.as_fd()));
        w.drain(); // empty drain does not block or fail
        let k = w.waker().expect("dup");
        k.wake();
        k.wake();
        assert!(readable(w.as_fd()));
        w.drain();
        assert!(!readable(w.as_fd()));
    }
}
