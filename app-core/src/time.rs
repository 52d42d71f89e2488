//! Time as the caller gives it.
//!
//! sanctum uses two clocks: a monotonic one for SA ages, pulses and
//! liveness, and the wall clock (UNIX seconds) for offer timestamps.
//! The core never reads either; every call that needs time takes a [`Now`].

use core::time::Duration;

/// A point on the caller's monotonic clock, as time since an arbitrary
/// origin chosen by the caller (process start, a test's zero, ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The origin of the caller's clock.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// `d` after the origin.
    pub const fn from_duration(d: Duration) -> Self {
        Instant(d)
    }

    /// Whole seconds after the origin.
    pub const fn from_secs(s: u64) -> Self {
        Instant(Duration::from_secs(s))
    }

    /// Milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    /// Time since the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Whole seconds since the origin (the reference's "now").
    pub const fn secs(self) -> u64 {
        self.0.as_secs()
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

impl core::ops::AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        self.0 = self.0.saturating_add(d);
    }
}

/// Both clocks at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub mono: Instant,
    /// Wall clock, UNIX seconds.
    pub wall: u64,
}

impl Now {
    /// Both clocks given explicitly.
    pub const fn new(mono: Instant, wall: u64) -> Self {
        Now { mono, wall }
    }

    /// The same moment `d` later on both clocks.
    pub fn advance(self, d: Duration) -> Self {
        // Whole seconds of wall clock; sub-second drift is irrelevant to the
        // ±10 s offer window.
        let before = self.mono.since_origin().as_secs();
        let mono = self.mono + d;
        let after = mono.since_origin().as_secs();
        Now {
            mono,
            wall: self.wall + (after - before),
        }
    }
}
