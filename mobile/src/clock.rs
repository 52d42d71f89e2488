//! The engine's clocks: the system's, or one moved by hand (tests and
//! simulations).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chantry_core::time::{Instant, Now};

use crate::lock;

/// Where the monotonic clock starts: one second after its origin, so no
/// moment of a running engine is the origin itself.
const START: Duration = Duration::from_secs(1);

/// A source of [`Now`].
#[derive(Debug)]
pub(crate) enum Clock {
    /// `std::time::Instant` since the engine was made, and the system's
    /// wall clock.
    System {
        /// When the engine was made.
        origin: std::time::Instant,
    },
    /// Moves only when told to.
    Manual(Mutex<Now>),
}

impl Clock {
    /// The system clock.
    pub(crate) fn system() -> Self {
        Clock::System {
            origin: std::time::Instant::now(),
        }
    }

    /// A clock that stands at `wall` UNIX seconds until moved.
    pub(crate) fn manual(wall: u64) -> Self {
        Clock::Manual(Mutex::new(Now::new(Instant::from_duration(START), wall)))
    }

    /// Both clocks now.
    pub(crate) fn now(&self) -> Now {
        match self {
            Clock::System { origin } => {
                let wall = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Now::new(Instant::from_duration(START + origin.elapsed()), wall)
            }
            Clock::Manual(now) => *lock(now),
        }
    }

    /// Moves a manual clock on; `false` for the system clock.
    pub(crate) fn advance(&self, by: Duration) -> bool {
        match self {
            Clock::System { .. } => false,
            Clock::Manual(now) => {
                let mut n = lock(now);
                *n = n.advance(by);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_767_225_600);
        let a = c.now();
        assert_eq!(a, c.now());
        assert!(c.advance(Duration::from_millis(2500)));
        let b = c.now();
        assert_eq!(b.mono.saturating_since(a.mono), Duration::from_millis(2500));
        assert_eq!(b.wall, a.wall + 2);
        assert!(!Clock::system().advance(Duration::from_secs(1)));
    }

    #[test]
    fn system_clock_is_monotonic_and_past_the_origin() {
        let c = Clock::system();
        let a = c.now();
        let b = c.now();
        assert!(a.mono >= Instant::from_secs(1) && b.mono >= a.mono);
        assert!(a.wall > 1_600_000_000);
    }
}
