//! AES-256-GCM with 12-byte nonces and detached 16-byte tags, the only AEAD
//! of the default sanctum build (data packets, offers, ambry wraps).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use crate::secret::Key32;

/// Length of the GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of the GCM nonce.
pub const NONCE_LEN: usize = 12;

/// Authentication failed: wrong key, or the bytes were altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct OpenError;

/// An expanded AES-256-GCM key. The round keys are wiped on drop by the
/// cipher crate.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl core::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Cipher(redacted)")
    }
}

impl Cipher {
    /// Expands `key`.
    pub fn new(key: &Key32) -> Self {
        Cipher(Aes256Gcm::new(key.expose().into()))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
            // Only fails for plaintexts over 2^36 bytes, which no caller builds.
            .unwrap_or_else(|_| unreachable!("AES-GCM plaintext too long"));
        tag.into()
    }

    /// Checks `tag` and decrypts `buf` in place. On failure `buf` is left
    /// unchanged (still ciphertext).
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenError> {
        self.0
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
            .map_err(|_| OpenError)
    }
}

/// The fixed offer / ambry nonce: 11 zero bytes then 0x01.
pub const FIXED_NONCE: [u8; NONCE_LEN] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_tamper() {
        let c = Cipher::new(&Key32::new([9u8; 32]));
        let mut buf = *b"hello sanctum";
        let tag = c.seal(&FIXED_NONCE, b"aad", &mut buf);
        assert_ne!(&buf, b"hello sanctum");
        let ct = buf;
        c.open(&FIXED_NONCE, b"aad", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"hello sanctum");
        let mut bad = ct;
        bad[0] ^= 1;
        assert_eq!(c.open(&FIXED_NONCE, b"aad", &mut bad, &tag), Err(OpenError));
        assert_eq!(bad[1..], ct[1..]);
        let mut ct2 = ct;
        assert!(c.open(&FIXED_NONCE, b"aaX", &mut ct2, &tag).is_err());
    }
}
