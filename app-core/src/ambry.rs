//! Ambry bundles: shared secrets wrapped per device under KEKs, as the
//! reference `ambry` tool writes them and cathedrals hand them out
//! (files.md §5, crypto.md §12).
//!
//! Everything here is bytes in, bytes out; writing the tool's directory
//! layout is the caller's business.

use crate::aead::{Cipher, FIXED_NONCE, TAG_LEN};
use crate::entropy::Entropy;
use crate::kdf::{self, FLOCK_DOMAIN_MASK};
use crate::secret::Key32;
use crate::wire::offer::AmbryBody;

/// Length of the bundle header.
pub const HEAD_LEN: usize = 70;
/// Length of one bundle entry.
pub const ENTRY_LEN: usize = 58;
/// Length of the wrap AAD.
pub const AAD_LEN: usize = 88;
/// The epoch of `expires` (days since this UNIX time).
pub const AGE_EPOCH: u64 = 1_697_855_580;
/// Entries of a same-flock bundle (32385 pairs, two entries each).
pub const SAME_FLOCK_ENTRIES: usize = 64_770;
/// Entries of a cross-flock bundle (65025 pairs, two entries each).
pub const XFLOCK_ENTRIES: usize = 130_050;
/// Largest `days` the reference tool computes without overflow.
pub const MAX_DAYS: u32 = 24_855;

/// Why a bundle or an ambry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmbryError {
    /// Shorter than a header.
    #[error("bundle too short: {0} bytes")]
    TooShort(usize),
    /// The body is not a whole number of entries.
    #[error("bundle body of {0} bytes is not a whole number of {ENTRY_LEN}-byte entries")]
    Ragged(usize),
    /// Not the exact size a cathedral loads.
    #[error(
        "bundle has {0} entries, expected {SAME_FLOCK_ENTRIES} (same flock) or {XFLOCK_ENTRIES} (xflock)"
    )]
    WrongSize(usize),
    /// An entry names a flock that is not one of the pair.
    #[error("entry {index} is for flock {flock:#x}, not one of the bundle's pair")]
    ForeignFlock {
        /// Entry index.
        index: usize,
        /// Its flock.
        flock: u64,
    },
    /// The AMBRY offer is for another tunnel.
    #[error("ambry for tunnel {got:#06x}, ours is {ours:#06x}")]
    WrongTunnel {
        /// Tunnel in the offer.
        got: u16,
        /// Our tunnel id.
        ours: u16,
    },
    /// The AMBRY offer carries the generation we already run.
    #[error("ambry generation {0:#010x} is already installed")]
    SameGeneration(u32),
    /// The wrap did not authenticate under our KEK.
    #[error("ambry failed authentication")]
    Auth,
    /// The bundle's expiry has passed.
    #[error("ambry expired {expired_at} (now {now})")]
    Expired {
        /// UNIX time of expiry.
        expired_at: u64,
        /// Wall clock.
        now: u64,
    },
    /// More days than the reference tool can represent.
    #[error("bundle validity of {0} days is over the maximum {MAX_DAYS}")]
    TooManyDays(u32),
    /// A flock id of zero cannot own a bundle.
    #[error("flock id must not be zero")]
    ZeroFlock,
}

/// The 70-byte bundle header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleHead {
    /// Days since [`AGE_EPOCH`].
    pub expires: u16,
    /// Random generation number.
    pub generation: u32,
    /// Random seed.
    pub seed: [u8; 64],
}

impl BundleHead {
    /// Parses the header.
    pub fn parse(b: &[u8]) -> Result<Self, AmbryError> {
        let h = b.get(..HEAD_LEN).ok_or(AmbryError::TooShort(b.len()))?;
        let mut seed = [0u8; 64];
        seed.copy_from_slice(&h[6..70]);
        Ok(BundleHead {
            expires: u16::from_be_bytes([h[0], h[1]]),
            generation: u32::from_be_bytes([h[2], h[3], h[4], h[5]]),
            seed,
        })
    }

    /// The 70 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEAD_LEN] {
        let mut h = [0u8; HEAD_LEN];
        h[0..2].copy_from_slice(&self.expires.to_be_bytes());
        h[2..6].copy_from_slice(&self.generation.to_be_bytes());
        h[6..70].copy_from_slice(&self.seed);
        h
    }

    /// UNIX time at which this bundle expires.
    pub fn expires_at(&self) -> u64 {
        expires_at(self.expires)
    }
}

/// UNIX time of an `expires` day count.
pub fn expires_at(expires: u16) -> u64 {
    AGE_EPOCH + u64::from(expires) * 86_400
}

/// `expires` for a bundle made at `now` valid for `days` (files.md §5.2).
pub fn expires_for(now: u64, days: u32) -> Result<u16, AmbryError> {
    if days > MAX_DAYS {
        return Err(AmbryError::TooManyDays(days));
    }
    let end = now
        .saturating_add(u64::from(days) * 86_400)
        .saturating_sub(AGE_EPOCH);
    Ok(u16::try_from(end / 86_400).unwrap_or(u16::MAX))
}

/// One 58-byte bundle entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Flock id (domain 0) of the device that unwraps it.
    pub flock: u64,
    /// That device's tunnel id (`own << 8 | peer`).
    pub tunnel: u16,
    /// Wrapped shared secret.
    pub key: [u8; 32],
    /// GCM tag.
    pub tag: [u8; TAG_LEN],
}

impl Entry {
    /// Parses one entry (exactly [`ENTRY_LEN`] bytes are read).
    pub fn parse(b: &[u8]) -> Result<Self, AmbryError> {
        let e = b.get(..ENTRY_LEN).ok_or(AmbryError::TooShort(b.len()))?;
        let mut f = [0u8; 8];
        f.copy_from_slice(&e[0..8]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&e[10..42]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&e[42..58]);
        Ok(Entry {
            flock: u64::from_be_bytes(f),
            tunnel: u16::from_be_bytes([e[8], e[9]]),
            key,
            tag,
        })
    }

    /// The 58 wire bytes.
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut e = [0u8; ENTRY_LEN];
        e[0..8].copy_from_slice(&self.flock.to_be_bytes());
        e[8..10].copy_from_slice(&self.tunnel.to_be_bytes());
        e[10..42].copy_from_slice(&self.key);
        e[42..58].copy_from_slice(&self.tag);
        e
    }
}

/// A parsed bundle file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// Header.
    pub head: BundleHead,
    /// Entries in file order.
    pub entries: Vec<Entry>,
}

impl Bundle {
    /// Parses any well-formed bundle (header and whole entries).
    pub fn parse(b: &[u8]) -> Result<Self, AmbryError> {
        let head = BundleHead::parse(b)?;
        let body = &b[HEAD_LEN..];
        if !body.len().is_multiple_of(ENTRY_LEN) {
            return Err(AmbryError::Ragged(body.len()));
        }
        let entries = body
            .chunks_exact(ENTRY_LEN)
            .map(Entry::parse)
            .collect::<Result<_, _>>()?;
        Ok(Bundle { head, entries })
    }

    /// Parses a bundle the way a cathedral loads one for the flock pair
    /// (a, b): exact size, and every entry's flock one of the pair.
    pub fn parse_for_pair(b: &[u8], flock_a: u64, flock_b: u64) -> Result<Self, AmbryError> {
        let bundle = Self::parse(b)?;
        let (a, bb) = (flock_a & FLOCK_DOMAIN_MASK, flock_b & FLOCK_DOMAIN_MASK);
        let want = if a == bb {
            SAME_FLOCK_ENTRIES
        } else {
            XFLOCK_ENTRIES
        };
        if bundle.entries.len() != want {
            return Err(AmbryError::WrongSize(bundle.entries.len()));
        }
        if let Some((index, e)) = bundle
            .entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.flock != a && e.flock != bb)
        {
            return Err(AmbryError::ForeignFlock {
                index,
                flock: e.flock,
            });
        }
        Ok(bundle)
    }

    /// The entry for a device of `flock` with tunnel id `tunnel`.
    pub fn entry(&self, flock: u64, tunnel: u16) -> Option<&Entry> {
        let f = flock & FLOCK_DOMAIN_MASK;
        self.entries
            .iter()
            .find(|e| e.flock == f && e.tunnel == tunnel)
    }

    /// The AMBRY offer body a cathedral sends for `entry`.
    pub fn offer_body(&self, entry: &Entry) -> AmbryBody {
        AmbryBody {
            tunnel: entry.tunnel,
            expires: self.head.expires,
            generation: self.head.generation,
            seed: self.head.seed,
            key: entry.key,
            tag: entry.tag,
        }
    }

    /// The file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEAD_LEN + self.entries.len() * ENTRY_LEN);
        v.extend_from_slice(&self.head.to_bytes());
        for e in &self.entries {
            v.extend_from_slice(&e.to_bytes());
        }
        v
    }
}

/// The 88-byte wrap AAD (crypto.md §12.2). Flocks are not sorted.
pub fn wrap_aad(
    tunnel: u16,
    expires: u16,
    flock_src: u64,
    flock_dst: u64,
    generation: u32,
    seed: &[u8; 64],
) -> [u8; AAD_LEN] {
    let mut a = [0u8; AAD_LEN];
    a[0..2].copy_from_slice(&tunnel.to_be_bytes());
    a[2..4].copy_from_slice(&expires.to_be_bytes());
    a[4..12].copy_from_slice(&(flock_src & FLOCK_DOMAIN_MASK).to_be_bytes());
    a[12..20].copy_from_slice(&(flock_dst & FLOCK_DOMAIN_MASK).to_be_bytes());
    a[20..24].copy_from_slice(&generation.to_be_bytes());
    a[24..88].copy_from_slice(seed);
    a
}

/// Wraps `secret` for a device (`flock_src` its flock, `flock_dst` the flock
/// it talks to, `tunnel` its tunnel id) under its derived KEK.
pub fn wrap(
    dkek: &Key32,
    head: &BundleHead,
    flock_src: u64,
    flock_dst: u64,
    tunnel: u16,
    secret: &Key32,
) -> Entry {
    let wk = kdf::ambry_wrap_key(
        dkek,
        &head.seed,
        flock_src,
        flock_dst,
        head.generation,
        tunnel,
    );
    let aad = wrap_aad(
        tunnel,
        head.expires,
        flock_src,
        flock_dst,
        head.generation,
        &head.seed,
    );
    let mut key = *secret.expose();
    let tag = Cipher::new(&wk).seal(&FIXED_NONCE, &aad, &mut key);
    Entry {
        flock: flock_src & FLOCK_DOMAIN_MASK,
        tunnel,
        key,
        tag,
    }
}

/// A device's view for unwrapping: its base KEK and where it sits.
#[derive(Debug)]
pub struct Unwrapper<'a> {
    /// The device's base KEK (`kek-0xNN`).
    pub base_kek: &'a Key32,
    /// Own `cathedral_flock`.
    pub flock_src: u64,
    /// Own `cathedral_flock_dst`.
    pub flock_dst: u64,
    /// Own tunnel id.
    pub tunnel: u16,
    /// The generation currently installed (0: none).
    pub current_generation: u32,
}

impl Unwrapper<'_> {
    /// Unwraps an AMBRY offer body into the new shared secret
    /// (crypto.md §12.3): tunnel and generation checks, open, then expiry
    /// against the wall clock `now`.
    pub fn unwrap(&self, body: &AmbryBody, now: u64) -> Result<Key32, AmbryError> {
        if body.tunnel != self.tunnel {
            return Err(AmbryError::WrongTunnel {
                got: body.tunnel,
                ours: self.tunnel,
            });
        }
        if body.generation == self.current_generation {
            return Err(AmbryError::SameGeneration(body.generation));
        }
        let dkek = kdf::derived_kek(self.base_kek, self.flock_src, self.flock_dst);
        let wk = kdf::ambry_wrap_key(
            &dkek,
            &body.seed,
            self.flock_src,
            self.flock_dst,
            body.generation,
            self.tunnel,
        );
        let aad = wrap_aad(
            self.tunnel,
            body.expires,
            self.flock_src,
            self.flock_dst,
            body.generation,
            &body.seed,
        );
        let mut secret = Key32::new(body.key);
        Cipher::new(&wk)
            .open(&FIXED_NONCE, &aad, secret.expose_mut(), &body.tag)
            .map_err(|_| AmbryError::Auth)?;
        let expired_at = expires_at(body.expires);
        if expired_at < now {
            return Err(AmbryError::Expired { expired_at, now });
        }
        Ok(secret)
    }
}

/// A flock's derived KEKs by device id 1..=255, as the tool stores them
/// (`internal/` for the flock itself, `external/<G>/` for another flock).
#[derive(Debug)]
pub struct DerivedKeks(Vec<Key32>);

impl DerivedKeks {
    /// Derives the KEKs of ids 1..=255 from their base KEKs for (own, other).
    pub fn derive(base_keks: &[Key32], own: u64, other: u64) -> Self {
        DerivedKeks(
            base_keks
                .iter()
                .map(|k| kdf::derived_kek(k, own, other))
                .collect(),
        )
    }

    /// From already-derived KEKs (index 0 = id 1).
    pub fn from_keks(keks: Vec<Key32>) -> Self {
        DerivedKeks(keks)
    }

    /// The KEK of device `id` (1..=255).
    pub fn get(&self, id: u8) -> Option<&Key32> {
        usize::from(id).checked_sub(1).and_then(|i| self.0.get(i))
    }
}

/// Fresh base KEKs for device ids 1..=255 (`ambry generate`).
pub fn generate_base_keks(rng: &mut dyn Entropy) -> Vec<Key32> {
    (1..=255).map(|_| Key32::random(rng)).collect()
}

/// Builds a bundle for flocks `a` and `b` (equal: same flock) in the
/// reference tool's entry order. `keks_a` are a's derived KEKs for (a, b),
/// `keks_b` b's for (b, a) (the same set when a == b).
pub fn generate_bundle(
    a: u64,
    b: u64,
    keks_a: &DerivedKeks,
    keks_b: &DerivedKeks,
    now: u64,
    days: u32,
    rng: &mut dyn Entropy,
) -> Result<Bundle, AmbryError> {
    let (a, b) = (a & FLOCK_DOMAIN_MASK, b & FLOCK_DOMAIN_MASK);
    if a == 0 || b == 0 {
        return Err(AmbryError::ZeroFlock);
    }
    let mut seed = [0u8; 64];
    rng.fill(&mut seed);
    let head = BundleHead {
        expires: expires_for(now, days)?,
        generation: rng.next_u32(),
        seed,
    };
    let same = a == b;
    let mut entries = Vec::with_capacity(if same {
        SAME_FLOCK_ENTRIES
    } else {
        XFLOCK_ENTRIES
    });
    for src in 1..=255u8 {
        for dst in 1..=255u8 {
            if same && dst <= src {
                continue;
            }
            let secret = Key32::random(rng);
            let (Some(ka), Some(kb)) = (keks_a.get(src), keks_b.get(dst)) else {
                continue;
            };
            let t_a = u16::from(src) << 8 | u16::from(dst);
            let t_b = u16::from(dst) << 8 | u16::from(src);
            entries.push(wrap(ka, &head, a, b, t_a, &secret));
            entries.push(wrap(kb, &head, b, a, t_b, &secret));
        }
    }
    Ok(Bundle { head, entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn spec_vector_unwraps() {
        // crypto.md §17 "ambry".
        let base = Key32::new(core::array::from_fn(|i| i as u8));
        let f = 0x1122334455667700;
        let dkek = kdf::derived_kek(&base, f, f);
        assert_eq!(dkek.expose()[..4], [0xcf, 0x03, 0x27, 0xa8]);
        let head = BundleHead {
            expires: 0x12aa,
            generation: 0x03020100,
            seed: core::array::from_fn(|i| 4 + i as u8),
        };
        let secret = Key32::new(core::array::from_fn(|i| 0x44 + i as u8));
        let e = wrap(&dkek, &head, f, f, 0x0102, &secret);
        assert_eq!(e.key[..4], [0x1f, 0xe5, 0xc1, 0x2c]);
        assert_eq!(e.tag[..4], [0x78, 0x64, 0xea, 0x81]);
        let u = Unwrapper {
            base_kek: &base,
            flock_src: f | 1,
            flock_dst: f | 1,
            tunnel: 0x0102,
            current_generation: 0,
        };
        let body = Bundle {
            head,
            entries: vec![e],
        }
        .offer_body(&e);
        assert_eq!(u.unwrap(&body, 1_700_000_000).unwrap(), secret);
        assert!(matches!(
            u.unwrap(&body, expires_at(0x12aa) + 1),
            Err(AmbryError::Expired { .. })
        ));
        let mut bad = body;
        bad.tag[0] ^= 1;
        assert_eq!(u.unwrap(&bad, 0), Err(AmbryError::Auth));
        let u2 = Unwrapper {
            current_generation: 0x03020100,
            ..u
        };
        assert_eq!(
            u2.unwrap(&body, 0),
            Err(AmbryError::SameGeneration(0x03020100))
        );
        let u3 = Unwrapper {
            tunnel: 0x0201,
            ..u
        };
        assert!(matches!(
            u3.unwrap(&body, 0),
            Err(AmbryError::WrongTunnel { .. })
        ));
    }

    #[test]
    fn generated_xflock_bundle_unwraps_on_both_sides() {
        let mut rng = SeededEntropy::from_u64(5);
        let (a, b) = (0xaaaa00u64, 0xbbbb00u64);
        let base_a = generate_base_keks(&mut rng);
        let base_b = generate_base_keks(&mut rng);
        let ka = DerivedKeks::derive(&base_a, a, b);
        let kb = DerivedKeks::derive(&base_b, b, a);
        let bundle = generate_bundle(a, b, &ka, &kb, 1_767_225_600, 365, &mut rng).unwrap();
        assert_eq!(bundle.entries.len(), XFLOCK_ENTRIES);
        let bytes = bundle.to_bytes();
        let parsed = Bundle::parse_for_pair(&bytes, a, b).unwrap();
        let ea = parsed.entry(a, 0x0305).unwrap();
        let eb = parsed.entry(b, 0x0503).unwrap();
        let sa = Unwrapper {
            base_kek: &base_a[2],
            flock_src: a,
            flock_dst: b,
            tunnel: 0x0305,
            current_generation: 0,
        }
        .unwrap(&parsed.offer_body(ea), 1_767_225_600)
        .unwrap();
        let sb = Unwrapper {
            base_kek: &base_b[4],
            flock_src: b,
            flock_dst: a,
            tunnel: 0x0503,
            current_generation: 0,
        }
        .unwrap(&parsed.offer_body(eb), 1_767_225_600)
        .unwrap();
        assert_eq!(sa, sb);
        assert!(Bundle::parse_for_pair(&bytes[..bytes.len() - 1], a, b).is_err());
        assert!(matches!(
            Bundle::parse_for_pair(&bytes, a, 0xcccc00),
            Err(AmbryError::ForeignFlock { .. })
        ));
        assert_eq!(
            expires_for(0, MAX_DAYS + 1),
            Err(AmbryError::TooManyDays(MAX_DAYS + 1))
        );
    }
}
