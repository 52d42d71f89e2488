//! The per-tunnel bandwidth cap of relayed data (behaviour.md §8.10): a
//! leaky bucket sized from the receiver's `allow` bandwidth.

use crate::time::Instant;

/// Bytes in a "MiB" of the reference's limit arithmetic.
const MIB: u64 = 1_048_576;

/// A leaky bucket: `limit = (mbit / 8) * 1 MiB` bytes, drained at
/// `limit / 1000` bytes per elapsed millisecond. A packet is dropped while
/// the level is at or over the limit, otherwise its length is added (so one
/// packet may overshoot). A limit of 0 (0..7 Mbit/s) means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    limit: u64,
    level: u64,
    last: Instant,
}

impl Bucket {
    /// A bucket for `mbit` Mbit/s (the `allow` line's last field).
    pub fn new(mbit: u32, now: Instant) -> Self {
        Bucket {
            limit: limit_for(mbit),
            level: 0,
            last: now,
        }
    }

    /// The limit in bytes (0: unlimited).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// A new bandwidth from a reloaded `allow`; the level is kept.
    pub fn set_mbit(&mut self, mbit: u32) {
        self.limit = limit_for(mbit);
    }

    /// May a packet of `len` bytes pass at `now`? If so it is counted.
    pub fn admit(&mut self, now: Instant, len: usize) -> bool {
        if self.limit == 0 {
            return true;
        }
        let ms = now.saturating_since(self.last).as_millis();
        if ms > 0 {
            let ms = u64::try_from(ms).unwrap_or(u64::MAX);
            let drained = (self.limit / 1000).saturating_mul(ms);
            self.level = self.level.saturating_sub(drained);
            self.last = now;
        }
        if self.level >= self.limit {
            return false;
        }
        self.level = self.level.saturating_add(len as u64);
        true
    }
}

/// `(mbit / 8) * 1 MiB`, integer division as in the reference.
fn limit_for(mbit: u32) -> u64 {
    u64::from(mbit / 8) * MIB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_eight_mbit_is_unlimited() {
        for mbit in 0..8 {
            let mut b = Bucket::new(mbit, Instant::ZERO);
            assert_eq!(b.limit(), 0);
            assert!((0..10_000).all(|_| b.admit(Instant::ZERO, 1500)));
        }
        assert_eq!(Bucket::new(8, Instant::ZERO).limit(), MIB);
        assert_eq!(Bucket::new(15, Instant::ZERO).limit(), MIB);
        assert_eq!(Bucket::new(16, Instant::ZERO).limit(), 2 * MIB);
    }

    #[test]
    fn fills_then_drops_then_drains() {
        let t0 = Instant::from_secs(100);
        let mut b = Bucket::new(8, t0);
        // 1 MiB in 1000-byte packets: the 1049th packet brings the level
        // to the limit; the next one is dropped.
        let passed = (0..2000).filter(|_| b.admit(t0, 1000)).count();
        assert_eq!(passed, 1049);
        assert!(!b.admit(t0, 1));
        // 1 ms drains limit/1000 = 1048 bytes: one more packet fits.
        let t1 = t0 + core::time::Duration::from_millis(1);
        assert!(b.admit(t1, 1000));
        assert!(!b.admit(t1, 1000));
        // A full second drains 1,048,000 bytes: 952 are left.
        let t2 = t1 + core::time::Duration::from_secs(1);
        assert_eq!((0..2000).filter(|_| b.admit(t2, 1000)).count(), 1048);
    }

    #[test]
    fn a_reload_changes_the_limit_and_keeps_the_level() {
        let t0 = Instant::ZERO;
        let mut b = Bucket::new(8, t0);
        while b.admit(t0, 1000) {}
        b.set_mbit(16);
        assert!(b.admit(t0, 1000), "room under the doubled limit");
        b.set_mbit(0);
        assert!(b.admit(t0, 1_000_000), "unlimited");
    }
}
