//! KMAC256 (NIST SP 800-185) and every sanctum derivation (crypto.md §2-§13).
//!
//! Structured KMAC inputs follow the reference's convention (crypto.md §2.1):
//! every field is written as one length byte followed by the bytes, integers
//! big-endian. The exceptions (no prefix) are the shroud mask, the shroud
//! identity seed and the Agelas key schedule.

use cshake::CShake256;
use cshake::digest::{ExtendableOutput, Update, XofReader};

use crate::secret::{Key32, Secret};

/// Rate of Keccak[c=512] in bytes.
const RATE: usize = 136;

/// The label prefix of the default build (crypto.md §3).
pub const LABEL_PREFIX: &str = "SANCTUM.";

/// Label of exchange offers.
pub const LABEL_SACRAMENT: &[u8] = b"SANCTUM.SACRAMENT.KDF";
/// Label of pilgrim KEY offers.
pub const LABEL_PILGRIMAGE: &[u8] = b"SANCTUM.PILGRIMAGE.KDF";
/// Label of client <-> cathedral offers.
pub const LABEL_CATHEDRAL: &[u8] = b"SANCTUM.CATHEDRAL.KDF";
/// Label of cathedral <-> cathedral (CATACOMB) offers.
pub const LABEL_CATACOMB: &[u8] = b"SANCTUM.CATHEDRAL.CATACOMB";
/// Label of the session (traffic) key derivation.
pub const LABEL_TRAFFIC: &[u8] = b"SANCTUM.TRAFFIC.KDF";
/// Label of the ambry wrapping key.
pub const LABEL_AMBRY: &[u8] = b"SANCTUM.AMBRY.KDF";
/// Label of the per-datagram shroud mask.
pub const LABEL_SHROUD_MASK: &[u8] = b"SANCTUM.SHROUD.KDF";
/// Label of the rolling shroud identity.
pub const LABEL_SHROUD_IDENTITY: &[u8] = b"SANCTUM.SHROUD.IDENTITY";
/// Label of the per-device shroud base identity.
pub const LABEL_SHROUD_BASE_IDENTITY: &[u8] = b"SANCTUM.SHROUD.BASE.IDENTITY";

/// The inter-cathedral shroud key's fixed "flocks": "CATACOMB" and "KATEDRAL".
pub const CATACOMB_SHROUD_FLOCKS: (u64, u64) = (0x4341_5441_434F_4D42, 0x4B41_5445_4452_414C);

/// Mask that clears the 8-bit domain of a flock value.
pub const FLOCK_DOMAIN_MASK: u64 = !0xff;

/// Streaming KMAC256 with the output length fixed at finalization.
#[derive(Clone)]
pub struct Kmac256 {
    inner: CShake256,
}

impl core::fmt::Debug for Kmac256 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Kmac256(..)")
    }
}

/// `left_encode(x)` of SP 800-185 into `buf`, returning the used slice.
fn left_encode(x: u64, buf: &mut [u8; 9]) -> &[u8] {
    buf[1..].copy_from_slice(&x.to_be_bytes());
    let skip = buf[1..8].iter().take_while(|&&b| b == 0).count();
    buf[skip] = (8 - skip) as u8;
    &buf[skip..]
}

/// `right_encode(x)` of SP 800-185 into `buf`, returning the used slice.
fn right_encode(x: u64, buf: &mut [u8; 9]) -> &[u8] {
    buf[..8].copy_from_slice(&x.to_be_bytes());
    let skip = buf[..7].iter().take_while(|&&b| b == 0).count();
    buf[8] = (8 - skip) as u8;
    &buf[skip..]
}

impl Kmac256 {
    /// `KMAC256(key, ·, ·, customization)`: absorbs `bytepad(encode_string(key), 136)`.
    pub fn new(key: &[u8], customization: &[u8]) -> Self {
        let mut inner = CShake256::new_with_function_name(b"KMAC", customization);
        let mut b = [0u8; 9];
        let w = left_encode(RATE as u64, &mut b);
        let mut absorbed = w.len();
        inner.update(w);
        let k = left_encode(8 * key.len() as u64, &mut b);
        absorbed += k.len();
        inner.update(k);
        inner.update(key);
        absorbed += key.len();
        let pad = (RATE - absorbed % RATE) % RATE;
        const ZEROS: [u8; RATE] = [0u8; RATE];
        inner.update(&ZEROS[..pad]);
        Self { inner }
    }

    /// Absorbs more input.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// Absorbs `len8 || data` (the reference's field convention).
    ///
    /// # Panics
    /// If `data` is longer than 255 bytes (never the case for sanctum fields).
    pub fn update_field(&mut self, data: &[u8]) {
        let len = u8::try_from(data.len()).unwrap_or_else(|_| panic!("KMAC field over 255 bytes"));
        self.inner.update(&[len]);
        self.inner.update(data);
    }

    /// Finishes with output length `out.len()` (non-XOF mode: the length is
    /// part of the computation, so outputs of different lengths are unrelated).
    pub fn finalize_into(mut self, out: &mut [u8]) {
        let mut b = [0u8; 9];
        self.inner
            .update(right_encode(8 * out.len() as u64, &mut b));
        self.inner.finalize_xof().read(out);
    }

    /// Finishes with output length `buf.len()` and XORs the output into
    /// `buf` (a keystream applied in place, without a separate mask buffer).
    pub fn finalize_xor(mut self, buf: &mut [u8]) {
        let mut b = [0u8; 9];
        self.inner
            .update(right_encode(8 * buf.len() as u64, &mut b));
        let mut reader = self.inner.finalize_xof();
        let mut block = [0u8; RATE];
        for chunk in buf.chunks_mut(RATE) {
            let ks = &mut block[..chunk.len()];
            reader.read(ks);
            for (c, k) in chunk.iter_mut().zip(ks.iter()) {
                *c ^= *k;
            }
        }
    }

    /// Finishes into a 32-byte key.
    pub fn finalize_key(self) -> Key32 {
        let mut k = Key32::zero();
        self.finalize_into(k.expose_mut());
        k
    }
}

/// One-shot KMAC256 over the concatenation of `parts`.
pub fn kmac256(key: &[u8], customization: &[u8], parts: &[&[u8]], out: &mut [u8]) {
    let mut k = Kmac256::new(key, customization);
    for p in parts {
        k.update(p);
    }
    k.finalize_into(out);
}

/// The purposes of [`base_key`] (crypto.md §3), each with its own label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Purpose {
    /// Peer offers (exchange, pilgrim key, and CATACOMB).
    PeerOffer = 1,
    /// Traffic RX (named from the larger-id side's point of view).
    TrafficRx = 2,
    /// Traffic TX.
    TrafficTx = 3,
    /// Derived KEK for ambry unwrapping.
    KekUnwrap = 4,
    /// Client <-> cathedral offers.
    CathedralOffer = 5,
    /// Cathedral shroud key.
    ShroudCathedral = 6,
    /// Peer shroud key.
    ShroudPeer = 7,
}

impl Purpose {
    /// Every purpose, in numeric order.
    pub const ALL: [Purpose; 7] = [
        Purpose::PeerOffer,
        Purpose::TrafficRx,
        Purpose::TrafficTx,
        Purpose::KekUnwrap,
        Purpose::CathedralOffer,
        Purpose::ShroudCathedral,
        Purpose::ShroudPeer,
    ];

    /// The purpose with this number, as the reference numbers them.
    pub fn from_number(n: u8) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| *p as u8 == n)
    }

    /// The KMAC customization label of this purpose.
    pub fn label(self) -> &'static [u8] {
        match self {
            Purpose::PeerOffer => b"SANCTUM.PEER.OFFER.KDF",
            Purpose::TrafficRx => b"SANCTUM.KEY.TRAFFIC.RX.KDF",
            Purpose::TrafficTx => b"SANCTUM.KEY.TRAFFIC.TX.KDF",
            Purpose::KekUnwrap => b"SANCTUM.KEY.KEK.UNWRAP.KDF",
            Purpose::CathedralOffer => b"SANCTUM.CATHEDRAL.OFFER.KDF",
            Purpose::ShroudCathedral => b"SANCTUM.CATHEDRAL.SHROUD.KEY",
            Purpose::ShroudPeer => b"SANCTUM.SHROUD.KEY",
        }
    }
}

/// `base_key` (crypto.md §5): flocks sorted ascending, used exactly as given
/// (callers decide whether the domain byte is stripped).
pub fn base_key(secret: &Key32, flock_src: u64, flock_dst: u64, purpose: Purpose) -> Key32 {
    let (a, b) = if flock_src <= flock_dst {
        (flock_src, flock_dst)
    } else {
        (flock_dst, flock_src)
    };
    let mut k = Kmac256::new(secret.expose(), purpose.label());
    k.update_field(&a.to_be_bytes());
    k.update_field(&b.to_be_bytes());
    k.finalize_key()
}

/// Which per-offer key an offer uses (crypto.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OfferLabel {
    /// Peer key exchange (`SANCTUM.SACRAMENT.KDF`).
    Sacrament,
    /// Pilgrim KEY offers (`SANCTUM.PILGRIMAGE.KDF`).
    Pilgrimage,
    /// Client <-> cathedral (`SANCTUM.CATHEDRAL.KDF`).
    Cathedral,
    /// Cathedral <-> cathedral (`SANCTUM.CATHEDRAL.CATACOMB`).
    Catacomb,
}

impl OfferLabel {
    /// The KMAC customization string.
    pub fn label(self) -> &'static [u8] {
        match self {
            OfferLabel::Sacrament => LABEL_SACRAMENT,
            OfferLabel::Pilgrimage => LABEL_PILGRIMAGE,
            OfferLabel::Cathedral => LABEL_CATHEDRAL,
            OfferLabel::Catacomb => LABEL_CATACOMB,
        }
    }

    /// The label with this exact string, if it is one of the four.
    pub fn from_label(label: &[u8]) -> Option<OfferLabel> {
        [
            OfferLabel::Sacrament,
            OfferLabel::Pilgrimage,
            OfferLabel::Cathedral,
            OfferLabel::Catacomb,
        ]
        .into_iter()
        .find(|l| l.label() == label)
    }

    /// The base-key purpose. Only the cathedral label selects
    /// `CathedralOffer`; CATACOMB uses the peer purpose (the reference
    /// compares label strings).
    pub fn base_purpose(self) -> Purpose {
        match self {
            OfferLabel::Cathedral => Purpose::CathedralOffer,
            _ => Purpose::PeerOffer,
        }
    }
}

/// The per-offer AEAD key: `KMAC(base_key(secret, f1, f2, purpose), label, 0x40 || seed, 32)`.
pub fn offer_key(secret: &Key32, label: OfferLabel, seed: &[u8; 64], f1: u64, f2: u64) -> Key32 {
    let base = base_key(secret, f1, f2, label.base_purpose());
    let mut k = Kmac256::new(base.expose(), label.label());
    k.update_field(seed);
    k.finalize_key()
}

/// Direction of a session key, from the deriving side's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The key we decrypt with.
    Rx,
    /// The key we encrypt with.
    Tx,
}

/// The raw traffic KDF (crypto.md §9.5) once the ordering is decided:
/// `KMAC(base, "SANCTUM.TRAFFIC.KDF", 0x20||ecdh_ss || 0x20||kem_ss || 0x20||pub1 || 0x20||pub2 || 0x20||rnd)`.
pub fn traffic_kdf(
    base: &Key32,
    ecdh_ss: &Key32,
    kem_ss: &Key32,
    pub1: &[u8; 32],
    pub2: &[u8; 32],
    rnd: &[u8; 32],
) -> Key32 {
    let mut k = Kmac256::new(base.expose(), LABEL_TRAFFIC);
    k.update_field(ecdh_ss.expose());
    k.update_field(kem_ss.expose());
    k.update_field(pub1);
    k.update_field(pub2);
    k.update_field(rnd);
    k.finalize_key()
}

/// Everything one side contributes to a session key derivation.
#[derive(Debug)]
pub struct SessionKeyInputs<'a> {
    /// The shared secret SS.
    pub shared_secret: &'a Key32,
    /// Own `cathedral_flock` (0 without a cathedral).
    pub flock_src: u64,
    /// Own `cathedral_flock_dst`.
    pub flock_dst: u64,
    /// Which key this is.
    pub direction: Direction,
    /// Own instance id.
    pub my_id: u64,
    /// Peer instance id (`xchg.id` of the completing packet).
    pub peer_id: u64,
    /// Own X25519 public key of the half used for this direction.
    pub my_pub: &'a [u8; 32],
    /// Peer's X25519 public key from the completing packet.
    pub peer_pub: &'a [u8; 32],
    /// Own 16-byte random of that half.
    pub my_random: &'a [u8; 16],
    /// Peer's 16-byte random (`extra[0..16]` of the completing packet).
    pub peer_random: &'a [u8; 16],
    /// X25519 shared secret.
    pub ecdh_ss: &'a Key32,
    /// ML-KEM-1024 shared secret.
    pub kem_ss: &'a Key32,
}

/// A session key with the instance-id role rule of crypto.md §9.5 applied.
/// Equal ids never reach here (the exchange rejects them as a replay).
pub fn session_key(i: &SessionKeyInputs<'_>) -> Key32 {
    let mut rnd = Secret::<32>::zero();
    let (pub1, pub2, purpose) = if i.peer_id < i.my_id {
        rnd.expose_mut()[..16].copy_from_slice(i.my_random);
        rnd.expose_mut()[16..].copy_from_slice(i.peer_random);
        let p = match i.direction {
            Direction::Rx => Purpose::TrafficRx,
            Direction::Tx => Purpose::TrafficTx,
        };
        (i.my_pub, i.peer_pub, p)
    } else {
        rnd.expose_mut()[..16].copy_from_slice(i.peer_random);
        rnd.expose_mut()[16..].copy_from_slice(i.my_random);
        let p = match i.direction {
            Direction::Rx => Purpose::TrafficTx,
            Direction::Tx => Purpose::TrafficRx,
        };
        (i.peer_pub, i.my_pub, p)
    };
    let base = base_key(i.shared_secret, i.flock_src, i.flock_dst, purpose);
    traffic_kdf(&base, i.ecdh_ss, i.kem_ss, pub1, pub2, rnd.expose())
}

/// Peer shroud key: `base_key(SS, flock, flock_dst, SHROUD_PEER)`, domain kept.
pub fn peer_shroud_key(ss: &Key32, flock_src: u64, flock_dst: u64) -> Key32 {
    base_key(ss, flock_src, flock_dst, Purpose::ShroudPeer)
}

/// Client cathedral shroud key: `base_key(CS, flock & ~0xff, flock_dst & ~0xff, SHROUD_CATHEDRAL)`.
pub fn cathedral_shroud_key(cs: &Key32, flock_src: u64, flock_dst: u64) -> Key32 {
    base_key(
        cs,
        flock_src & FLOCK_DOMAIN_MASK,
        flock_dst & FLOCK_DOMAIN_MASK,
        Purpose::ShroudCathedral,
    )
}

/// Inter-cathedral shroud key from the federation sync secret.
pub fn catacomb_shroud_key(sync: &Key32) -> Key32 {
    base_key(
        sync,
        CATACOMB_SHROUD_FLOCKS.0,
        CATACOMB_SHROUD_FLOCKS.1,
        Purpose::ShroudCathedral,
    )
}

/// Per-device shroud base identity (crypto.md §13): keyed with 32 zero bytes.
pub fn shroud_base_identity(flock_src: u64, flock_dst: u64, cathedral_id: u32) -> [u8; 16] {
    let a = flock_src & FLOCK_DOMAIN_MASK;
    let b = flock_dst & FLOCK_DOMAIN_MASK;
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    let mut k = Kmac256::new(&[0u8; 32], LABEL_SHROUD_BASE_IDENTITY);
    k.update_field(&a.to_be_bytes());
    k.update_field(&b.to_be_bytes());
    k.update_field(&cathedral_id.to_be_bytes());
    let mut out = [0u8; 16];
    k.finalize_into(&mut out);
    out
}

/// Rolling shroud identity: `KMAC(base, "SANCTUM.SHROUD.IDENTITY", seed, 16)`, no length prefix.
pub fn shroud_identity(base: &[u8; 16], seed: &[u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    kmac256(base, LABEL_SHROUD_IDENTITY, &[seed], &mut out);
    out
}

/// The shroud mask over the 48-byte header, exactly `out.len()` bytes long.
pub fn shroud_mask(key: &Key32, header: &[u8; 48], out: &mut [u8]) {
    kmac256(key.expose(), LABEL_SHROUD_MASK, &[header], out);
}

/// XORs the shroud mask over the 48-byte header into `body` in place (the
/// mask length is `body.len()`).
pub fn shroud_mask_xor(key: &Key32, header: &[u8; 48], body: &mut [u8]) {
    let mut k = Kmac256::new(key.expose(), LABEL_SHROUD_MASK);
    k.update(header);
    k.finalize_xor(body);
}

/// Derived KEK for a flock pair: `base_key(base_kek, F_src, F_dst, KEK_UNWRAP)`,
/// domains stripped, flocks sorted.
pub fn derived_kek(base_kek: &Key32, flock_src: u64, flock_dst: u64) -> Key32 {
    base_key(
        base_kek,
        flock_src & FLOCK_DOMAIN_MASK,
        flock_dst & FLOCK_DOMAIN_MASK,
        Purpose::KekUnwrap,
    )
}

/// Ambry wrapping key (crypto.md §12.2). Flocks are NOT sorted here:
/// `flock_src` is the unwrapping device's flock, both domain-stripped.
pub fn ambry_wrap_key(
    derived_kek: &Key32,
    seed: &[u8; 64],
    flock_src: u64,
    flock_dst: u64,
    generation: u32,
    tunnel: u16,
) -> Key32 {
    let mut k = Kmac256::new(derived_kek.expose(), LABEL_AMBRY);
    k.update_field(seed);
    k.update_field(&(flock_src & FLOCK_DOMAIN_MASK).to_be_bytes());
    k.update_field(&(flock_dst & FLOCK_DOMAIN_MASK).to_be_bytes());
    k.update_field(&generation.to_be_bytes());
    k.update_field(&tunnel.to_be_bytes());
    k.finalize_key()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let mut o = [0u8; 32];
        for (i, b) in o.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        o
    }

    #[test]
    fn nist_sample_4() {
        let key: Vec<u8> = (0x40..=0x5f).collect();
        let mut out = [0u8; 64];
        kmac256(&key, b"My Tagged Application", &[&[0, 1, 2, 3]], &mut out);
        assert_eq!(&out[..8], &[0x20, 0xc5, 0x70, 0xc3, 0x13, 0x46, 0xf7, 0x03]);
    }

    #[test]
    fn spec_base_key_and_traffic_vectors() {
        let ss = Secret::new(core::array::from_fn(|i| i as u8));
        assert_eq!(
            base_key(&ss, 0, 0, Purpose::PeerOffer).expose(),
            &hex32("1676d985accaf7e8058341b18076340bd46e2841cae44c3b47cbdf2283ba0814")
        );
        let a = base_key(
            &ss,
            0x1122334455667701,
            0x0102030405060701,
            Purpose::PeerOffer,
        );
        let b = base_key(
            &ss,
            0x0102030405060701,
            0x1122334455667701,
            Purpose::PeerOffer,
        );
        assert_eq!(a, b);
        let base = base_key(&ss, 0, 0, Purpose::TrafficRx);
        let ecdh = Secret::new(hex32(
            "c79e663ec3fe692edf4c3176955099ba46d630a53737dc31ee6caf65abe0d277",
        ));
        let kem = Secret::new(core::array::from_fn(|i| 0xa0 + i as u8));
        let pub_a = hex32("675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f");
        let pub_b = hex32("23b7bb8c91ae008711fb12846780bcdf1e065f821bdfec49f57e7c7dcd4c4823");
        let rnd: [u8; 32] = core::array::from_fn(|i| 0xc0 + i as u8);
        assert_eq!(
            traffic_kdf(&base, &ecdh, &kem, &pub_a, &pub_b, &rnd).expose(),
            &hex32("ee80d92b8762a18327725c9476dfa17ba72c99eb1b810b1862f43df64faed1d6")
        );
    }

    #[test]
    fn shroud_identity_spec_vector() {
        let base = shroud_base_identity(0x1122334455667701, 0x1122334455667702, 0x0badf00d);
        assert_eq!(base[..4], [0x57, 0xa2, 0x43, 0x70]);
        let seed: [u8; 16] = core::array::from_fn(|i| 0xe0 + i as u8);
        assert_eq!(shroud_identity(&base, &seed)[..4], [0x64, 0xed, 0xff, 0xab]);
    }
}
