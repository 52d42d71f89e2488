//! Cathedral messages: the client side of a device talking to its
//! cathedral, and the checks a cathedral applies to what clients send.
//!
//! - [`client`]: [`CathedralClient`], a sans-IO state machine that signs and
//!   sends INFO / CIBORIUM / LITURGY offers every 5 s, accepts the
//!   cathedral's replies (AMBRY, INFO, REMEMBRANCE, LITURGY) and fails over
//!   between remembered cathedrals (behaviour.md §7, §9; wire.md §5.5-§5.7).
//! - [`path`]: where a client's traffic goes: the §4.4 hold rule and the
//!   relay → direct → relay life of the peer address ([`PathKeeper`]).
//! - [`checks`]: what a cathedral does with a client or federation offer
//!   before acting on it (behaviour.md §8.3, crypto.md §11), and the
//!   CATACOMB re-encryption of a signed client offer (wire.md §5.8).
//! - [`remembrance`]: the cathedral list and its 192-byte file (files.md §6).
//! - [`settings`]: the cathedral settings file (files.md §4).
//! - [`server`]: a sans-IO cathedral: registry, INFO replies, relay
//!   (behaviour.md §8).
//!
//! This module also holds the Ed25519 signing of cathedral offers
//! ([`Cosk`], [`verify_offer_signature`]), shared by both sides.

pub mod checks;
pub mod client;
pub mod path;
pub mod remembrance;
pub mod server;
pub mod settings;

use core::fmt;
use core::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroize;

use crate::secret::Secret;
use crate::wire::offer::{EXTRA_LEN, Offer};

pub use checks::{
    ClientDirectory, FederateError, MemoryDirectory, OfferSource, Rejection, VerifiedOffer,
    catacomb_reencrypt, check_offer,
};
pub use client::{
    CathedralClient, CathedralEvent, ClientConfig, ClientRxError, ConfigError, IgnoreReason,
    InfoPath, LITURGY_PEERS, LiturgyPeers, LiturgySettings, PeerInfo, RemembranceUpdate, Transmit,
    TransmitKind, open_from_cathedral,
};
pub use path::{Fallback, HoldDecision, InfoVerdict, PathKeeper, peer_update};
pub use remembrance::{
    REMEMBRANCE_FILE_LEN, RemembranceFileError, parse_remembrance_file, remembrance_entries,
    remembrance_file_bytes,
};

/// How often a client notifies its cathedral (INFO, NAT probe, LITURGY).
pub const NOTIFY_INTERVAL: Duration = Duration::from_secs(5);
/// Silence after which a cathedral is considered unresponsive.
pub const CATHEDRAL_TIMEOUT: Duration = Duration::from_secs(45);
/// Length of the 64-byte libsodium Ed25519 secret key (seed || public).
pub const COSK_LEN: usize = 64;
/// Length of an Ed25519 public key.
pub const COSK_PUBLIC_LEN: usize = 32;

/// Why a COSK cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoskError {
    /// The public half of the 64-byte key is not the seed's public key.
    #[error("COSK public half does not match its seed")]
    PublicKeyMismatch,
}

/// Why a signature over an offer was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureCheckError {
    /// The 32 public-key bytes are not a valid Ed25519 point.
    #[error("COSK public key is not a valid Ed25519 point")]
    InvalidPublicKey,
    /// The signature in `extra` does not verify over the data part.
    #[error("offer signature does not verify")]
    BadSignature,
}

/// A client's offer signing key (COSK, crypto.md §11). Wiped on drop.
pub struct Cosk {
    key: SigningKey,
}

impl fmt::Debug for Cosk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cosk")
            .field("public", &HexBytes(self.key.verifying_key().as_bytes()))
            .finish_non_exhaustive()
    }
}

/// Hex display of public bytes in `Debug` output.
struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Cosk {
    /// From the 64-byte libsodium layout `seed[32] || public[32]` (the
    /// `cathedral_cosk` file); the public half must match the seed.
    pub fn from_secret_key(sk: &Secret<COSK_LEN>) -> Result<Self, CoskError> {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&sk.expose()[..32]);
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        if key.verifying_key().as_bytes()[..] != sk.expose()[32..] {
            return Err(CoskError::PublicKeyMismatch);
        }
        Ok(Cosk { key })
    }

    /// A new random key in the 64-byte `cathedral_cosk` layout
    /// (`ambry cosk-pair`).
    pub fn generate(rng: &mut dyn crate::entropy::Entropy) -> Secret<COSK_LEN> {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        let mut pair = key.to_keypair_bytes();
        let sk = Secret::new(pair);
        pair.zeroize();
        sk
    }

    /// The Ed25519 public key (the cathedral's `<id>.pub`).
    pub fn public_key(&self) -> [u8; COSK_PUBLIC_LEN] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs the 451 data bytes of `offer` and stores the signature in its
    /// extra part (build -> sign -> encrypt, crypto.md §11).
    pub fn sign_offer(&self, offer: &mut Offer) {
        let sig: Signature = self.key.sign(offer.data());
        offer.set_extra(sig.to_bytes());
    }
}

/// Verifies the Ed25519 signature in `offer`'s extra part over its 451 data
/// bytes with `public` (libsodium `crypto_sign_verify_detached` semantics:
/// canonical S, no small-order R or public key).
pub fn verify_offer_signature(
    public: &[u8; COSK_PUBLIC_LEN],
    offer: &Offer,
) -> Result<(), SignatureCheckError> {
    let key =
        VerifyingKey::from_bytes(public).map_err(|_| SignatureCheckError::InvalidPublicKey)?;
    let sig_bytes: &[u8; EXTRA_LEN] = offer.extra();
    let sig = Signature::from_bytes(sig_bytes);
    key.verify_strict(offer.data(), &sig)
        .map_err(|_| SignatureCheckError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::offer::{InfoBody, Magic, OfferBody, OfferHeader};

    fn rfc8032_test1() -> Secret<64> {
        // RFC 8032 §7.1 TEST 1.
        let mut sk = [0u8; 64];
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        for (i, c) in seed
            .as_bytes()
            .chunks(2)
            .chain(public.as_bytes().chunks(2))
            .enumerate()
        {
            sk[i] = u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap();
        }
        Secret::new(sk)
    }

    #[test]
    fn cosk_sign_and_verify() {
        let cosk = Cosk::from_secret_key(&rfc8032_test1()).unwrap();
        let public = cosk.public_key();
        assert_eq!(public[..4], [0xd7, 0x5a, 0x98, 0x01]);
        let h = OfferHeader::new(Magic::Katedral, 1, 2, 3, [7; 64]);
        let mut o = Offer::new(h, 9, &OfferBody::Info(InfoBody::default()), [0; 64]);
        cosk.sign_offer(&mut o);
        assert_eq!(verify_offer_signature(&public, &o), Ok(()));
        let mut extra = *o.extra();
        extra[5] ^= 1;
        let bad = Offer::from_parts(*o.header(), *o.data(), extra);
        assert_eq!(
            verify_offer_signature(&public, &bad),
            Err(SignatureCheckError::BadSignature)
        );
        let mut data = *o.data();
        data[300] ^= 1;
        let bad = Offer::from_parts(*o.header(), data, *o.extra());
        assert_eq!(
            verify_offer_signature(&public, &bad),
            Err(SignatureCheckError::BadSignature)
        );
        // Small-order public key (the identity point).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(verify_offer_signature(&identity, &o).is_err());
    }

    #[test]
    fn cosk_public_half_must_match() {
        let mut sk = *rfc8032_test1().expose();
        sk[63] ^= 1;
        assert_eq!(
            Cosk::from_secret_key(&Secret::new(sk)).unwrap_err(),
            CoskError::PublicKeyMismatch
        );
        let d = format!("{:?}", Cosk::from_secret_key(&rfc8032_test1()).unwrap());
        assert!(d.contains("d75a9801") && !d.contains("9d61b19d"), "{d}");
    }
}
