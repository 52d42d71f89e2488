//! Key material: fixed-size byte arrays that zeroize on drop and redact
//! themselves in `Debug`/`Display`.

use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::entropy::Entropy;

/// `N` bytes of secret key material.
///
/// The bytes are wiped when the value is dropped. `Debug` and `Display`
/// print only the length, never the bytes, so a secret that ends up in a
/// log line or a panic message leaks nothing. Comparison is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret<const N: usize>([u8; N]);

/// The 32-byte keys used everywhere in sanctum.
pub type Key32 = Secret<32>;

impl<const N: usize> Secret<N> {
    /// Takes ownership of `bytes`. The caller's copy (if any) is the caller's
    /// to wipe.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Copies `bytes` into a new secret; `None` if the length is not `N`.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; N] = bytes.try_into().ok()?;
        Some(Self(arr))
    }

    /// All-zero secret (for slots that are filled in later).
    pub fn zero() -> Self {
        Self([0u8; N])
    }

    /// Fresh random secret.
    pub fn random(rng: &mut dyn Entropy) -> Self {
        let mut s = Self::zero();
        rng.fill(&mut s.0);
        s
    }

    /// The raw bytes. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// Mutable access to the raw bytes, for in-place derivation.
    pub fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }

    /// True if every byte is zero (an empty slot, or a failed X25519).
    pub fn is_zero(&self) -> bool {
        self.0.ct_eq(&[0u8; N]).into()
    }
}

impl<const N: usize> PartialEq for Secret<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> Eq for Secret<N> {}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(redacted)")
    }
}

impl<const N: usize> fmt::Display for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {N}-byte secret>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_bytes() {
        let s = Secret::new([0xabu8; 32]);
        let d = format!("{s:?} {s}");
        assert!(!d.to_lowercase().contains("ab"), "{d}");
        assert!(d.contains("redacted"));
    }

    #[test]
    fn equality_and_zero() {
        assert!(Secret::<4>::zero().is_zero());
        assert_ne!(Secret::new([1u8, 2, 3, 4]), Secret::new([1u8, 2, 3, 5]));
        assert_eq!(
            Secret::<3>::from_slice(&[1, 2, 3]),
            Some(Secret::new([1, 2, 3]))
        );
        assert!(Secret::<3>::from_slice(&[1, 2]).is_none());
    }

    #[test]
    fn zeroize_wipes() {
        let mut s = Secret::new([7u8; 16]);
        s.zeroize();
        assert!(s.is_zero());
    }
}
