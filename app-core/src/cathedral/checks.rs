//! What a cathedral checks before it acts on an offer from a client (KATEDRAL,
//! CIBORIUM) or from a federated cathedral (CATACOMB): behaviour.md §8.3,
//! crypto.md §6 and §11. And the CATACOMB re-encryption of a client's signed
//! offer for federation (wire.md §5.8).
//!
//! The cathedral server itself (registry, relay, federation) builds on
//! [`check_offer`]; everything here is pure.

use std::collections::{HashMap, HashSet};

use crate::kdf::{self, FLOCK_DOMAIN_MASK, OfferLabel};
use crate::secret::Key32;
use crate::wire::offer::{
    Magic, OFFER_LEN, Offer, OfferBody, OfferHeader, OfferType, TIMESTAMP_WINDOW,
};

use super::{COSK_PUBLIC_LEN, SignatureCheckError, verify_offer_signature};

/// Where a cathedral finds its clients' keys (crypto.md §4: the
/// `<secretdir>/flock-<F>/<ID>.key` and `.pub` files, files.md §3).
pub trait ClientDirectory {
    /// Is the flock with this id (domain byte zero) configured?
    fn has_flock(&self, flock_id: u64) -> bool;
    /// The cathedral secret CS of `identity` in `flock_id`.
    fn cathedral_secret(&self, flock_id: u64, identity: u32) -> Option<Key32>;
    /// The COSK public key of `identity` in `flock_id`.
    fn cosk_public(&self, flock_id: u64, identity: u32) -> Option<[u8; COSK_PUBLIC_LEN]>;
}

/// A [`ClientDirectory`] held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryDirectory {
    flocks: HashSet<u64>,
    secrets: HashMap<(u64, u32), Key32>,
    publics: HashMap<(u64, u32), [u8; COSK_PUBLIC_LEN]>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a flock (its domain byte is cleared).
    pub fn add_flock(&mut self, flock: u64) {
        self.flocks.insert(flock & FLOCK_DOMAIN_MASK);
    }

    /// Adds a client identity with its CS and COSK public key (the flock is
    /// added too).
    pub fn add_client(
        &mut self,
        flock: u64,
        identity: u32,
        cathedral_secret: Key32,
        cosk_public: [u8; COSK_PUBLIC_LEN],
    ) {
        let id = flock & FLOCK_DOMAIN_MASK;
        self.flocks.insert(id);
        self.secrets.insert((id, identity), cathedral_secret);
        self.publics.insert((id, identity), cosk_public);
    }
}

impl ClientDirectory for MemoryDirectory {
    fn has_flock(&self, flock_id: u64) -> bool {
        self.flocks.contains(&flock_id)
    }

    fn cathedral_secret(&self, flock_id: u64, identity: u32) -> Option<Key32> {
        self.secrets.get(&(flock_id, identity)).cloned()
    }

    fn cosk_public(&self, flock_id: u64, identity: u32) -> Option<[u8; COSK_PUBLIC_LEN]> {
        self.publics.get(&(flock_id, identity)).copied()
    }
}

/// Why a cathedral dropped an offer (silently, on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Shorter than 623 bytes.
    #[error("offer too short: {0} bytes, need {OFFER_LEN}")]
    TooShort(usize),
    /// Not KATEDRAL, CIBORIUM or CATACOMB.
    #[error("not a cathedral offer magic")]
    NotCathedralOffer,
    /// Header flock_src names a flock that is not configured.
    #[error("unknown flock {0:#x}")]
    UnknownFlock(u64),
    /// No key (CS, or COSK public key) for this identity in the flock.
    #[error("unknown identity {identity:#010x} in flock {flock:#x}")]
    UnknownIdentity {
        /// Flock id (domain cleared).
        flock: u64,
        /// Header spi.
        identity: u32,
    },
    /// CATACOMB but no sync secret: not from a configured federation peer.
    #[error("CATACOMB offer not from a federation peer")]
    NotFederationPeer,
    /// The AEAD tag did not verify.
    #[error("offer failed authentication")]
    Auth,
    /// Timestamp outside ±10 s.
    #[error("offer timestamp {timestamp} outside ±10 s of {now}")]
    Stale {
        /// Carried timestamp.
        timestamp: u64,
        /// Cathedral wall clock.
        now: u64,
    },
    /// A type that may not come from there (only INFO and LITURGY are
    /// signed client offers; P2P_INFO only via CATACOMB).
    #[error("offer type {0} not allowed")]
    TypeNotAllowed(u8),
    /// The stored COSK public key is not a valid point.
    #[error("COSK public key of the identity is invalid")]
    InvalidPublicKey,
    /// The client's Ed25519 signature does not verify.
    #[error("bad offer signature")]
    BadSignature,
}

/// How an offer reached the cathedral (its magic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OfferSource {
    /// KATEDRAL from a client.
    Client,
    /// CIBORIUM (NAT probe) from a client.
    NatProbe,
    /// CATACOMB from a federated cathedral.
    Federation,
}

/// An offer that passed every check of [`check_offer`].
#[derive(Clone, Debug)]
pub struct VerifiedOffer {
    source: OfferSource,
    offer: Offer,
    body: OfferBody,
}

impl VerifiedOffer {
    /// How it arrived.
    pub fn source(&self) -> OfferSource {
        self.source
    }

    /// The decrypted offer (header, data and extra exactly as received).
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// The typed body (INFO, LITURGY or, via CATACOMB, P2P_INFO).
    pub fn body(&self) -> &OfferBody {
        &self.body
    }

    /// Header flock_src: flock id OR domain byte.
    pub fn flock(&self) -> u64 {
        self.offer.header().flock_src
    }

    /// The flock id (domain byte cleared).
    pub fn flock_id(&self) -> u64 {
        self.flock() & FLOCK_DOMAIN_MASK
    }

    /// The domain byte.
    pub fn domain(&self) -> u8 {
        (self.flock() & 0xff) as u8
    }

    /// The client's cathedral identity (header spi).
    pub fn identity(&self) -> u32 {
        self.offer.header().spi
    }
}

/// Validates an offer a cathedral received (behaviour.md §8.3):
/// length >= 623 -> magic (KATEDRAL, CIBORIUM, CATACOMB) -> flock of
/// header flock_src configured -> key: the client's CS by (flock id,
/// header spi), or `sync` for CATACOMB (pass `Some` only for datagrams from
/// a configured federation peer) -> AEAD -> timestamp ±10 s of `now_wall`
/// -> type: CATACOMB P2P_INFO is unsigned; otherwise only INFO and LITURGY,
/// with the client's Ed25519 signature over the 451 data bytes.
pub fn check_offer(
    packet: &[u8],
    now_wall: u64,
    directory: &dyn ClientDirectory,
    sync: Option<&Key32>,
) -> Result<VerifiedOffer, Rejection> {
    if packet.len() < OFFER_LEN {
        return Err(Rejection::TooShort(packet.len()));
    }
    let header = OfferHeader::parse(packet).map_err(|_| Rejection::NotCathedralOffer)?;
    let source = match header.magic {
        Magic::Katedral => OfferSource::Client,
        Magic::Ciborium => OfferSource::NatProbe,
        Magic::Catacomb => OfferSource::Federation,
        Magic::Sacrament => return Err(Rejection::NotCathedralOffer),
    };
    let flock_id = header.flock_src & FLOCK_DOMAIN_MASK;
    if !directory.has_flock(flock_id) {
        return Err(Rejection::UnknownFlock(flock_id));
    }
    let unknown = Rejection::UnknownIdentity {
        flock: flock_id,
        identity: header.spi,
    };
    let key = match source {
        OfferSource::Federation => {
            let sync = sync.ok_or(Rejection::NotFederationPeer)?;
            kdf::offer_key(
                sync,
                OfferLabel::Catacomb,
                &header.seed,
                header.flock_src,
                0,
            )
        }
        OfferSource::Client | OfferSource::NatProbe => {
            let cs = directory
                .cathedral_secret(flock_id, header.spi)
                .ok_or(unknown)?;
            kdf::offer_key(
                &cs,
                OfferLabel::Cathedral,
                &header.seed,
                header.flock_src,
                0,
            )
        }
    };
    let offer = Offer::open(packet, &key).map_err(|_| Rejection::Auth)?;
    if !offer.timestamp_ok(now_wall, TIMESTAMP_WINDOW) {
        return Err(Rejection::Stale {
            timestamp: offer.timestamp(),
            now: now_wall,
        });
    }
    let raw_type = offer.data()[0];
    let offer_type = offer
        .offer_type()
        .map_err(|_| Rejection::TypeNotAllowed(raw_type))?;
    let signed = match (source, offer_type) {
        (OfferSource::Federation, OfferType::P2pInfo) => false,
        (_, OfferType::Info | OfferType::Liturgy) => true,
        _ => return Err(Rejection::TypeNotAllowed(raw_type)),
    };
    if signed {
        let public = directory.cosk_public(flock_id, header.spi).ok_or(unknown)?;
        verify_offer_signature(&public, &offer).map_err(|e| match e {
            SignatureCheckError::InvalidPublicKey => Rejection::InvalidPublicKey,
            SignatureCheckError::BadSignature => Rejection::BadSignature,
        })?;
    }
    let body = offer
        .body()
        .map_err(|_| Rejection::TypeNotAllowed(raw_type))?;
    Ok(VerifiedOffer {
        source,
        offer,
        body,
    })
}

/// Why an offer cannot be federated as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FederateError {
    /// Only signed INFO and LITURGY offers are re-sent unchanged.
    #[error("offer type {0:?} is not a signed client offer")]
    NotSigned(OfferType),
}

/// Re-encrypts a verified, signed client offer for a federation peer
/// (wire.md §5.8): the 451 data bytes and the 64 extra bytes (the
/// client's signature) stay exactly as received; the header becomes magic
/// CATACOMB, flock_src the client's flock (id OR domain, as received),
/// `flock_dst` as given (the destination flock OR its domain), spi the
/// client's cathedral_id, and `seed` (fresh random from the caller); the
/// key is `offer_key(sync, CATACOMB, seed, flock_src, 0)`.
pub fn catacomb_reencrypt(
    verified: &VerifiedOffer,
    flock_dst: u64,
    sync: &Key32,
    seed: &[u8; 64],
) -> Result<[u8; OFFER_LEN], FederateError> {
    let offer_type = verified.body.offer_type();
    if !matches!(offer_type, OfferType::Info | OfferType::Liturgy) {
        return Err(FederateError::NotSigned(offer_type));
    }
    let received = verified.offer.header();
    let header = OfferHeader::new(
        Magic::Catacomb,
        received.flock_src,
        flock_dst,
        received.spi,
        *seed,
    );
    let offer = Offer::from_parts(header, *verified.offer.data(), *verified.offer.extra());
    let key = kdf::offer_key(sync, OfferLabel::Catacomb, seed, header.flock_src, 0);
    Ok(offer.seal(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cathedral::Cosk;
    use crate::secret::Secret;
    use crate::wire::offer::{InfoBody, LiturgyBody, P2pInfoBody};
    use std::net::Ipv4Addr;

    const FLOCK: u64 = 0xcafe_ba01;
    const ID: u32 = 0x0bad_f00d;
    const T: u64 = 1_767_225_600;

    fn cosk() -> Cosk {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
        Cosk::from_secret_key(&Secret::new(sk.to_keypair_bytes())).unwrap()
    }

    fn directory() -> MemoryDirectory {
        let mut d = MemoryDirectory::new();
        d.add_client(FLOCK, ID, Key32::new([0x3d; 32]), cosk().public_key());
        d
    }

    fn client_offer(magic: Magic, body: &OfferBody, ts: u64, sign: bool) -> [u8; OFFER_LEN] {
        let seed = [0x5a; 64];
        let h = OfferHeader::new(magic, FLOCK, 0xcafe_ba02, ID, seed);
        let mut o = Offer::new(h, ts, body, [0xee; 64]);
        if sign {
            cosk().sign_offer(&mut o);
        }
        let key = kdf::offer_key(
            &Key32::new([0x3d; 32]),
            OfferLabel::Cathedral,
            &seed,
            FLOCK,
            0,
        );
        o.seal(&key)
    }

    fn info() -> OfferBody {
        OfferBody::Info(InfoBody {
            tunnel: 0x0102,
            instance: 9,
            ..InfoBody::default()
        })
    }

    #[test]
    fn accepts_signed_info_and_liturgy() {
        let d = directory();
        let v = check_offer(
            &client_offer(Magic::Katedral, &info(), T, true),
            T,
            &d,
            None,
        )
        .unwrap();
        assert_eq!(v.source(), OfferSource::Client);
        assert_eq!(
            (v.flock(), v.flock_id(), v.domain(), v.identity()),
            (FLOCK, 0xcafe_ba00, 1, ID)
        );
        assert_eq!(v.body(), &info());
        let v = check_offer(
            &client_offer(Magic::Ciborium, &info(), T, true),
            T,
            &d,
            None,
        )
        .unwrap();
        assert_eq!(v.source(), OfferSource::NatProbe);
        // TFC padding after the tag is ignored.
        let mut padded = client_offer(Magic::Katedral, &info(), T, true).to_vec();
        padded.extend_from_slice(&[0x5c; 427]);
        assert!(check_offer(&padded, T, &d, None).is_ok());
        let lit = OfferBody::Liturgy(LiturgyBody {
            id: 1,
            group: 2,
            peers: [0; 255],
            hidden: 0,
            flags: 1,
        });
        assert!(check_offer(&client_offer(Magic::Katedral, &lit, T, true), T, &d, None).is_ok());
    }

    #[test]
    fn rejections_name_the_reason() {
        let d = directory();
        let good = client_offer(Magic::Katedral, &info(), T, true);
        assert_eq!(
            check_offer(&good[..622], T, &d, None).unwrap_err(),
            Rejection::TooShort(622)
        );
        let mut sac = good;
        sac[..8].copy_from_slice(b"SACRAMNT");
        assert_eq!(
            check_offer(&sac, T, &d, None).unwrap_err(),
            Rejection::NotCathedralOffer
        );
        let mut flock = good;
        flock[12] ^= 0x10;
        assert_eq!(
            check_offer(&flock, T, &d, None).unwrap_err(),
            Rejection::UnknownFlock(0xdafe_ba00)
        );
        let mut domain = good;
        domain[15] = 0x02;
        assert_eq!(
            check_offer(&domain, T, &d, None).unwrap_err(),
            Rejection::Auth
        );
        let mut spi = good;
        spi[27] ^= 1;
        assert_eq!(
            check_offer(&spi, T, &d, None).unwrap_err(),
            Rejection::UnknownIdentity {
                flock: 0xcafe_ba00,
                identity: ID ^ 1
            }
        );
        let mut tag = good;
        tag[622] ^= 1;
        assert_eq!(check_offer(&tag, T, &d, None).unwrap_err(), Rejection::Auth);
        assert_eq!(
            check_offer(&good, T + 11, &d, None).unwrap_err(),
            Rejection::Stale {
                timestamp: T,
                now: T + 11
            }
        );
        assert!(check_offer(&good, T - 10, &d, None).is_ok());
        let unsigned = client_offer(Magic::Katedral, &info(), T, false);
        assert_eq!(
            check_offer(&unsigned, T, &d, None).unwrap_err(),
            Rejection::BadSignature
        );
        let p2p = OfferBody::P2pInfo(P2pInfoBody {
            ip: Ipv4Addr::LOCALHOST,
            port: 1,
            tunnel: 2,
            flags: 1,
        });
        assert_eq!(
            check_offer(&client_offer(Magic::Katedral, &p2p, T, true), T, &d, None).unwrap_err(),
            Rejection::TypeNotAllowed(7)
        );
        let mut bad_pub = MemoryDirectory::new();
        let mut small_order = [0u8; 32];
        small_order[0] = 1;
        bad_pub.add_client(FLOCK, ID, Key32::new([0x3d; 32]), small_order);
        assert!(matches!(
            check_offer(&good, T, &bad_pub, None).unwrap_err(),
            Rejection::BadSignature | Rejection::InvalidPublicKey
        ));
        let mut no_flock = MemoryDirectory::new();
        no_flock.add_flock(FLOCK);
        assert_eq!(
            check_offer(&good, T, &no_flock, None).unwrap_err(),
            Rejection::UnknownIdentity {
                flock: 0xcafe_ba00,
                identity: ID
            }
        );
    }

    #[test]
    fn catacomb_keeps_the_signature_and_allows_unsigned_p2p_info() {
        let d = directory();
        let sync = Key32::new([0x20; 32]);
        let v = check_offer(
            &client_offer(Magic::Katedral, &info(), T, true),
            T,
            &d,
            None,
        )
        .unwrap();
        let fed = catacomb_reencrypt(&v, 0xcafe_ba02, &sync, &[0x99; 64]).unwrap();
        assert_eq!(&fed[..8], b"CATACOMB");
        assert_eq!(&fed[28..92], &[0x99; 64]);
        let back = check_offer(&fed, T, &d, Some(&sync)).unwrap();
        assert_eq!(back.source(), OfferSource::Federation);
        assert_eq!(back.offer().data(), v.offer().data());
        assert_eq!(back.offer().extra(), v.offer().extra());
        assert_eq!(back.offer().header().flock_dst, 0xcafe_ba02);
        assert_eq!(back.identity(), ID);
        assert_eq!(
            check_offer(&fed, T, &d, None).unwrap_err(),
            Rejection::NotFederationPeer
        );
        assert_eq!(
            check_offer(&fed, T, &d, Some(&Key32::new([0x21; 32]))).unwrap_err(),
            Rejection::Auth
        );
        // Unsigned P2P_INFO is fine over CATACOMB only.
        let seed = [3; 64];
        let h = OfferHeader::new(Magic::Catacomb, FLOCK, FLOCK, ID, seed);
        let p2p = OfferBody::P2pInfo(P2pInfoBody {
            ip: Ipv4Addr::new(10, 99, 0, 1),
            port: 2333,
            tunnel: 0xcafe,
            flags: 1,
        });
        let pkt = Offer::new(h, T, &p2p, [0; 64]).seal(&kdf::offer_key(
            &sync,
            OfferLabel::Catacomb,
            &seed,
            FLOCK,
            0,
        ));
        let v2 = check_offer(&pkt, T, &d, Some(&sync)).unwrap();
        assert_eq!(v2.body(), &p2p);
        assert_eq!(
            catacomb_reencrypt(&v2, FLOCK, &sync, &seed).unwrap_err(),
            FederateError::NotSigned(OfferType::P2pInfo)
        );
        // A federated INFO with a broken signature is still refused.
        let unsigned = OfferHeader::new(Magic::Catacomb, FLOCK, FLOCK, ID, seed);
        let pkt = Offer::new(unsigned, T, &info(), [0; 64]).seal(&kdf::offer_key(
            &sync,
            OfferLabel::Catacomb,
            &seed,
            FLOCK,
            0,
        ));
        assert_eq!(
            check_offer(&pkt, T, &d, Some(&sync)).unwrap_err(),
            Rejection::BadSignature
        );
    }
}
