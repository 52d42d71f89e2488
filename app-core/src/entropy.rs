//! Where randomness comes from.
//!
//! The protocol code never calls the operating system itself: it takes an
//! [`Entropy`] so that the daemon can use the OS generator, while tests and
//! the known-answer harness can replay a fixed stream.

use crate::kdf::Kmac256;

/// A source of cryptographically secure random bytes.
pub trait Entropy {
    /// Fills `buf` completely with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// A random `u32` (big-endian interpretation of 4 random bytes).
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }

    /// A random `u64`.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_be_bytes(b)
    }

    /// Uniform value in `[0, bound)` by rejection sampling on a `u32`
    /// (the reference's method, used for shroud padding). `bound` must be > 0.
    fn uniform_u32(&mut self, bound: u32) -> u32 {
        debug_assert!(bound > 0);
        let bound = bound.max(1);
        let limit = u32::MAX - (u32::MAX % bound);
        loop {
            let v = self.next_u32();
            if v < limit {
                return v % bound;
            }
        }
    }
}

/// The operating system's generator (`getrandom(2)` and equivalents).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // A failing OS RNG leaves us unable to do anything safely.
        #[allow(clippy::expect_used)]
        getrandom::fill(buf).expect("the operating system random generator failed");
    }
}

/// A deterministic generator (KMAC256 in counter mode over a seed), for
/// tests, simulations and reproducible demos. Never use it for real keys.
#[derive(Debug, Clone)]
pub struct SeededEntropy {
    seed: [u8; 32],
    counter: u64,
}

impl SeededEntropy {
    /// A stream determined entirely by `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0 }
    }

    /// A stream determined by a small integer, handy in tests.
    pub fn from_u64(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_be_bytes());
        Self::new(s)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(1024) {
            let mut k = Kmac256::new(&self.seed, b"CHANTRY.TEST.DRBG");
            k.update(&self.counter.to_be_bytes());
            k.finalize_into(chunk);
            self.counter += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_uniform_in_range() {
        let mut a = SeededEntropy::from_u64(1);
        let mut b = SeededEntropy::from_u64(1);
        assert_eq!(a.next_u64(), b.next_u64());
        for _ in 0..1000 {
            assert!(a.uniform_u32(7) < 7);
        }
        let mut c = SeededEntropy::from_u64(2);
        assert_ne!(SeededEntropy::from_u64(1).next_u64(), c.next_u64());
    }
}
