//! The shroud envelope (wire.md §2): traffic-analysis masking of every
//! datagram on a hop. Not a confidentiality or authentication layer.
//!
//! Layout: `id[16] || seed_id[16] || seed_data[16] || (inner || 0xFF || zeros) XOR mask`,
//! the mask being KMAC256 over the 48-byte header with the exact body length.

use core::ops::Range;

use crate::entropy::Entropy;
use crate::kdf;
use crate::secret::Key32;
use crate::time::Instant;

/// Length of the plaintext shroud header.
pub const HEADER_LEN: usize = 48;
/// Bytes a shroud adds before random padding (header and the 0xFF trailer).
pub const OVERHEAD: usize = HEADER_LEN + 1;
/// Smallest sanctum packet that survives unshrouding (a data packet's 50).
pub const MIN_INNER: usize = 50;
/// How often a client picks a new identity seed (seconds).
pub const IDENTITY_ROTATION_SECS: u64 = 300;

/// Why a datagram could not be unshrouded (it is dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShroudError {
    /// The datagram is not longer than 49 bytes.
    #[error("shrouded datagram too short: {0} bytes")]
    TooShort(usize),
    /// The body was all zero bytes.
    #[error("shrouded body is empty after stripping padding")]
    Empty,
    /// What remains is shorter than the smallest sanctum packet.
    #[error("unshrouded packet too short: {0} bytes")]
    InnerTooShort(usize),
    /// The caller's buffer cannot hold the shrouded datagram.
    #[error("buffer of {have} bytes cannot hold {need}")]
    NoRoom {
        /// Needed length.
        need: usize,
        /// Buffer length.
        have: usize,
    },
}

/// The 48-byte plaintext header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShroudHeader {
    /// Sender identity (client -> cathedral) or random.
    pub id: [u8; 16],
    /// Seed of `id` (client -> cathedral) or random.
    pub seed_id: [u8; 16],
    /// Fresh random per datagram.
    pub seed_data: [u8; 16],
}

impl ShroudHeader {
    /// All three fields random (peer hops, cathedral replies, federation).
    pub fn random(rng: &mut dyn Entropy) -> Self {
        let mut b = [0u8; HEADER_LEN];
        rng.fill(&mut b);
        Self::from_bytes(&b)
    }

    /// A header carrying a client's identity, with fresh `seed_data`.
    pub fn with_identity(identity: &ShroudIdentity, rng: &mut dyn Entropy) -> Self {
        let mut seed_data = [0u8; 16];
        rng.fill(&mut seed_data);
        ShroudHeader {
            id: identity.id,
            seed_id: identity.seed,
            seed_data,
        }
    }

    /// From the first 48 bytes.
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Self {
        let mut h = ShroudHeader {
            id: [0; 16],
            seed_id: [0; 16],
            seed_data: [0; 16],
        };
        h.id.copy_from_slice(&b[0..16]);
        h.seed_id.copy_from_slice(&b[16..32]);
        h.seed_data.copy_from_slice(&b[32..48]);
        h
    }

    /// Parses the header of a datagram, if it is long enough.
    pub fn parse(datagram: &[u8]) -> Option<Self> {
        let b: &[u8; HEADER_LEN] = datagram.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Self::from_bytes(b))
    }

    /// The 48 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..16].copy_from_slice(&self.id);
        b[16..32].copy_from_slice(&self.seed_id);
        b[32..48].copy_from_slice(&self.seed_data);
        b
    }
}

/// The number of zero pad bytes for an inner packet of `inner_len` under a
/// padding target `mtu` (wire.md §2.1): uniform in `[0, mtu - n)` where
/// `n = 48 + inner_len + 1`, or 0 if `n >= mtu`.
pub fn padding_len(inner_len: usize, mtu: usize, rng: &mut dyn Entropy) -> usize {
    let n = OVERHEAD + inner_len;
    if n >= mtu {
        return 0;
    }
    let span = u32::try_from(mtu - n).unwrap_or(u32::MAX);
    rng.uniform_u32(span) as usize
}

/// Shrouds in place. `buf[48..48 + inner_len]` holds the inner packet; the
/// header is written in front of it, then the 0xFF trailer and `pad` zero
/// bytes after it, and the body is masked. Returns the datagram length.
pub fn shroud_in_place(
    key: &Key32,
    header: &ShroudHeader,
    buf: &mut [u8],
    inner_len: usize,
    pad: usize,
) -> Result<usize, ShroudError> {
    let body_len = inner_len + 1 + pad;
    let total = HEADER_LEN + body_len;
    if buf.len() < total {
        return Err(ShroudError::NoRoom {
            need: total,
            have: buf.len(),
        });
    }
    let hb = header.to_bytes();
    buf[..HEADER_LEN].copy_from_slice(&hb);
    let body = &mut buf[HEADER_LEN..total];
    body[inner_len] = 0xFF;
    body[inner_len + 1..].fill(0);
    kdf::shroud_mask_xor(key, &hb, body);
    Ok(total)
}

/// Shrouds `inner` into a new datagram with a random padding length for `mtu`.
pub fn shroud(
    key: &Key32,
    header: &ShroudHeader,
    inner: &[u8],
    mtu: usize,
    rng: &mut dyn Entropy,
) -> Vec<u8> {
    let pad = padding_len(inner.len(), mtu, rng);
    let mut buf = vec![0u8; OVERHEAD + inner.len() + pad];
    buf[HEADER_LEN..HEADER_LEN + inner.len()].copy_from_slice(inner);
    // The buffer was sized for exactly this datagram.
    let _ = shroud_in_place(key, header, &mut buf, inner.len(), pad);
    buf
}

/// Unmasks a shrouded datagram in place and returns the range of the inner
/// sanctum packet (wire.md §2.3, including its quirks: a body without
/// trailing zeros keeps its last byte unless that byte is 0xFF).
pub fn unshroud_in_place(key: &Key32, datagram: &mut [u8]) -> Result<Range<usize>, ShroudError> {
    if datagram.len() <= OVERHEAD {
        return Err(ShroudError::TooShort(datagram.len()));
    }
    let (hdr, body) = datagram.split_at_mut(HEADER_LEN);
    let mut hb = [0u8; HEADER_LEN];
    hb.copy_from_slice(hdr);
    kdf::shroud_mask_xor(key, &hb, body);
    let steps = body.iter().rev().take_while(|&&b| b == 0).count();
    let mut len = body.len() - steps;
    if len == 0 {
        return Err(ShroudError::Empty);
    }
    let last = body[len - 1];
    if steps > 0 && last != 0xFF {
        len = body.len();
    } else if steps > 0 || last == 0xFF {
        len -= 1;
    }
    if len < MIN_INNER {
        return Err(ShroudError::InnerTooShort(len));
    }
    Ok(HEADER_LEN..HEADER_LEN + len)
}

/// A client's rolling shroud identity toward its cathedral (crypto.md §13).
#[derive(Clone, Debug)]
pub struct ShroudIdentity {
    base: [u8; 16],
    seed: [u8; 16],
    id: [u8; 16],
    rotated_at: Option<Instant>,
}

impl ShroudIdentity {
    /// The identity of (flocks, cathedral id), with a first random seed.
    pub fn new(flock_src: u64, flock_dst: u64, cathedral_id: u32, rng: &mut dyn Entropy) -> Self {
        let base = kdf::shroud_base_identity(flock_src, flock_dst, cathedral_id);
        let mut s = ShroudIdentity {
            base,
            seed: [0; 16],
            id: [0; 16],
            rotated_at: None,
        };
        s.reseed(rng);
        s
    }

    fn reseed(&mut self, rng: &mut dyn Entropy) {
        rng.fill(&mut self.seed);
        self.id = kdf::shroud_identity(&self.base, &self.seed);
    }

    /// Picks a new seed if none was picked yet or 300 s have passed.
    pub fn maybe_rotate(&mut self, now: Instant, rng: &mut dyn Entropy) {
        let due = match self.rotated_at {
            None => true,
            Some(t) => now.saturating_since(t).as_secs() >= IDENTITY_ROTATION_SECS,
        };
        if due {
            self.reseed(rng);
            self.rotated_at = Some(now);
        }
    }

    /// The per-device base identity.
    pub fn base(&self) -> &[u8; 16] {
        &self.base
    }

    /// Current identity.
    pub fn id(&self) -> &[u8; 16] {
        &self.id
    }

    /// Current seed.
    pub fn seed(&self) -> &[u8; 16] {
        &self.seed
    }

    /// Does `(id, seed)` from a datagram belong to this base identity?
    /// (The cathedral's lookup.)
    pub fn matches(base: &[u8; 16], id: &[u8; 16], seed: &[u8; 16]) -> bool {
        use subtle::ConstantTimeEq;
        kdf::shroud_identity(base, seed).ct_eq(id).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn spec_datagram_vector() {
        // crypto.md §17 "shroud datagram".
        let key = Key32::new(core::array::from_fn(|i| 0x55 + i as u8));
        let base = kdf::shroud_base_identity(0x1122334455667701, 0x1122334455667702, 0x0badf00d);
        let seed_id: [u8; 16] = core::array::from_fn(|i| 0xe0 + i as u8);
        let header = ShroudHeader {
            id: kdf::shroud_identity(&base, &seed_id),
            seed_id,
            seed_data: core::array::from_fn(|i| 0xd0 + i as u8),
        };
        let inner: Vec<u8> = (0x10..0x4c).collect();
        let mut buf = vec![0u8; 48 + 61];
        buf[48..48 + 60].copy_from_slice(&inner);
        let n = shroud_in_place(&key, &header, &mut buf, inner.len(), 0).unwrap();
        assert_eq!(n, 109);
        let want = "64edffab10a6fcc7bdf25b6c43082f32e0e1e2e3e4e5e6e7e8e9eaebecedeeef\
                    d0d1d2d3d4d5d6d7d8d9dadbdcdddedfcc65034175efffe99d25814664a43112\
                    1a9ca928c357600b21ba58df202472b4f127d86ea5a53f47006ebd530e3a2ab0\
                    2fbe2bb9fe091f6533399c9ecc";
        let got: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want.replace(' ', ""));
        let r = unshroud_in_place(&key, &mut buf).unwrap();
        assert_eq!(&buf[r], inner.as_slice());
    }

    #[test]
    fn roundtrip_with_padding_and_garbage() {
        let key = Key32::new([3; 32]);
        let mut rng = SeededEntropy::from_u64(9);
        for len in [50usize, 51, 100, 623, 1400] {
            let inner: Vec<u8> = (0..len).map(|i| (i % 251) as u8 | 1).collect();
            let h = ShroudHeader::random(&mut rng);
            let mut d = shroud(&key, &h, &inner, 1500, &mut rng);
            assert!(d.len() <= 1500.max(OVERHEAD + len));
            let r = unshroud_in_place(&key, &mut d).unwrap();
            assert_eq!(&d[r], inner.as_slice());
        }
        let mut short = [0u8; 49];
        assert_eq!(
            unshroud_in_place(&key, &mut short),
            Err(ShroudError::TooShort(49))
        );
        let mut garbage = vec![0xAB; 300];
        let _ = unshroud_in_place(&key, &mut garbage);
    }

    #[test]
    fn identity_rotation() {
        let mut rng = SeededEntropy::from_u64(1);
        let mut id = ShroudIdentity::new(0xcafeba01, 0xcafeba02, 7, &mut rng);
        id.maybe_rotate(Instant::from_secs(10), &mut rng);
        let first = *id.id();
        assert!(ShroudIdentity::matches(id.base(), id.id(), id.seed()));
        id.maybe_rotate(Instant::from_secs(309), &mut rng);
        assert_eq!(id.id(), &first);
        id.maybe_rotate(Instant::from_secs(310), &mut rng);
        assert_ne!(id.id(), &first);
    }
}
