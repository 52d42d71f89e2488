//! One-way keying (crypto.md §10, behaviour.md §6): a [`Pilgrim`] only
//! sends, a [`Shrine`] only receives.
//!
//! The pilgrim picks a random key, SPI and salt, installs them as its TX SA
//! at once and announces them in a KEY offer (wire.md §5.5) encrypted under
//! `offer_key(SS, "SANCTUM.PILGRIMAGE.KDF", seed, 0, 0)`: first pulse
//! immediately, then every 30 s, 115 pulses in all. A new key follows when
//! the TX SA is 3500 s old. The shrine installs every authentic, fresh KEY
//! offer with a new SPI as its RX SA. There is no key agreement: the
//! session keys are only as secret as SS.
//!
//! Same output style as [`crate::exchange`]: datagrams from
//! [`Pilgrim::poll_transmit`], key commands ([`KeyCommand`]) from
//! `poll_key`, events from `poll_event`.

use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;

use crate::entropy::Entropy;
use crate::exchange::{KeyCommand, KeyInstall, pick_spi};
use crate::kdf::{self, OfferLabel};
use crate::secret::Key32;
use crate::time::{Instant, Now};
use crate::wire::offer::{
    EXTRA_LEN, KeyBody, Magic, OFFER_LEN, Offer, OfferBody, OfferError, OfferHeader, OfferType,
    SHRINE_TIMESTAMP_WINDOW,
};

/// Pulses of one KEY offer.
pub const KEY_OFFER_PULSES: u16 = 115;
/// Time between two pulses of a KEY offer.
pub const KEY_PULSE_INTERVAL: Duration = Duration::from_secs(30);
/// TX SA age after which the pilgrim sends a new key (seconds).
pub const KEY_LIFETIME_SECS: u64 = 3500;

/// The instant `secs` whole seconds after `since` (whole-second uptime).
fn secs_after(since: Instant, secs: u64) -> Instant {
    Instant::from_secs(since.secs().saturating_add(secs))
}

/// The key being announced.
struct KeyOffer {
    spi: u32,
    salt: [u8; 4],
    key: Key32,
    pulses_left: u16,
    pulse: Instant,
}

/// Why the pilgrim made a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyReason {
    /// There was no TX SA.
    NoKeys,
    /// The TX SA reached 3500 s.
    SaAgeLimit,
}

impl KeyReason {
    /// The reason as the reference logs it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyReason::NoKeys => "no keys",
            KeyReason::SaAgeLimit => "SA age limit",
        }
    }
}

/// Pilgrim and shrine events, for logs and the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PilgrimEvent {
    /// The pilgrim generated and installed a new TX key.
    NewKey {
        /// Why.
        reason: KeyReason,
        /// Its SPI.
        spi: u32,
    },
    /// The pilgrim stopped announcing the key after its last pulse.
    OfferExpired {
        /// SPI of the key.
        spi: u32,
    },
    /// The shrine installed a new RX key.
    KeyReceived {
        /// Its SPI.
        spi: u32,
        /// The pilgrim's instance id.
        pilgrim_id: u64,
    },
}

/// The sending side: generates, installs and announces TX keys.
pub struct Pilgrim {
    secret: Key32,
    id: u64,
    offer: Option<KeyOffer>,
    /// Earliest time for the next key (`None`: any time).
    next_key: Option<Instant>,
    /// The TX SA as we last installed it or the data path reported it:
    /// `(spi, installed)`.
    tx: Option<(u32, Instant)>,
    transmits: VecDeque<[u8; OFFER_LEN]>,
    keys: VecDeque<KeyCommand>,
    events: VecDeque<PilgrimEvent>,
}

impl fmt::Debug for Pilgrim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pilgrim")
            .field("id", &format_args!("{:#018x}", self.id))
            .field("spi", &self.offer.as_ref().map(|o| o.spi))
            .field("pulses_left", &self.offer.as_ref().map(|o| o.pulses_left))
            .field("next_key", &self.next_key)
            .finish_non_exhaustive()
    }
}

impl Pilgrim {
    /// A pilgrim with a random instance id.
    pub fn new(secret: Key32, rng: &mut dyn Entropy) -> Self {
        Pilgrim {
            secret,
            id: rng.next_u64(),
            offer: None,
            next_key: None,
            tx: None,
            transmits: VecDeque::new(),
            keys: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our instance id (sent in KEY offers, not checked by shrines).
    pub fn instance_id(&self) -> u64 {
        self.id
    }

    /// Replaces the shared secret used for later KEY offers.
    pub fn set_shared_secret(&mut self, secret: Key32) {
        self.secret = secret;
    }

    /// What the data path reports about the TX SA (`spi`, install time),
    /// e.g. `None` after it destroyed the SA at a hard limit. Optional: the
    /// pilgrim otherwise assumes its own installs are in place.
    pub fn set_tx_status(&mut self, status: Option<(u32, Instant)>) {
        self.tx = status.filter(|(spi, _)| *spi != 0);
    }

    /// The next KEY offer datagram for the configured peer address.
    pub fn poll_transmit(&mut self) -> Option<[u8; OFFER_LEN]> {
        self.transmits.pop_front()
    }

    /// The next key command (only `InstallTx`).
    pub fn poll_key(&mut self) -> Option<KeyCommand> {
        self.keys.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PilgrimEvent> {
        self.events.pop_front()
    }

    /// When [`Pilgrim::poll`] has something to do.
    pub fn next_deadline(&self) -> Instant {
        match (&self.offer, self.next_key, self.tx) {
            (Some(o), _, _) => o.pulse,
            (None, next, Some((_, installed))) => {
                secs_after(installed, KEY_LIFETIME_SECS).max(next.unwrap_or(Instant::ZERO))
            }
            (None, next, None) => next.unwrap_or(Instant::ZERO),
        }
    }

    /// Pulses the current KEY offer when due, or makes a new key when
    /// there is none or the TX SA is 3500 s old (behaviour.md §6).
    pub fn poll(&mut self, now: Now, rng: &mut dyn Entropy) {
        if self.offer.is_none() {
            if self.next_key.is_some_and(|t| now.mono < t) {
                return;
            }
            let reason = match self.tx {
                None => KeyReason::NoKeys,
                Some((_, installed)) if now.mono >= secs_after(installed, KEY_LIFETIME_SECS) => {
                    KeyReason::SaAgeLimit
                }
                Some(_) => return,
            };
            self.new_key(now.mono, reason, rng);
        }
        if self.offer.as_ref().is_some_and(|o| now.mono >= o.pulse) {
            self.pulse(now, rng);
        }
    }

    fn new_key(&mut self, now: Instant, reason: KeyReason, rng: &mut dyn Entropy) {
        let key = Key32::random(rng);
        let spi = pick_spi(rng, 0);
        let mut salt = [0u8; 4];
        rng.fill(&mut salt);
        self.keys.push_back(KeyCommand::InstallTx(KeyInstall {
            spi,
            salt,
            key: key.clone(),
        }));
        self.tx = Some((spi, now));
        self.next_key = Some(secs_after(now, KEY_LIFETIME_SECS));
        self.offer = Some(KeyOffer {
            spi,
            salt,
            key,
            pulses_left: KEY_OFFER_PULSES,
            pulse: now,
        });
        self.events.push_back(PilgrimEvent::NewKey { reason, spi });
    }

    fn pulse(&mut self, now: Now, rng: &mut dyn Entropy) {
        let Some(o) = self.offer.as_mut() else {
            return;
        };
        o.pulses_left = o.pulses_left.saturating_sub(1);
        o.pulse = now.mono + KEY_PULSE_INTERVAL;
        let mut seed = [0u8; 64];
        rng.fill(&mut seed);
        let header = OfferHeader::new(
            Magic::Sacrament,
            rng.next_u64(),
            rng.next_u64(),
            o.spi,
            seed,
        );
        let mut extra = [0u8; EXTRA_LEN];
        rng.fill(&mut extra);
        let body = OfferBody::Key(KeyBody {
            id: self.id,
            salt: o.salt,
            key: o.key.clone(),
        });
        let offer = Offer::new(header, now.wall, &body, extra);
        let key = kdf::offer_key(&self.secret, OfferLabel::Pilgrimage, &seed, 0, 0);
        self.transmits.push_back(offer.seal(&key));
        if o.pulses_left == 0 {
            let spi = o.spi;
            self.offer = None;
            self.events.push_back(PilgrimEvent::OfferExpired { spi });
        }
    }
}

/// Why a shrine dropped a datagram. None of these teach a peer address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShrineError {
    /// KEY offers must be exactly 623 bytes (no TFC padding).
    #[error("key offer of {0} bytes, must be exactly {OFFER_LEN}")]
    Length(usize),
    /// Not a SACRAMNT offer.
    #[error("not a key offer (magic {0:?})")]
    NotSacrament(Magic),
    /// Unauthentic, stale or not a KEY offer.
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// The SPI is the one installed last (a retransmission), or 0.
    #[error("key for spi {0:#010x} already installed")]
    KnownSpi(u32),
}

/// The receiving side: installs announced keys as RX SAs.
pub struct Shrine {
    secret: Key32,
    last_spi: u32,
    keys: VecDeque<KeyCommand>,
    events: VecDeque<PilgrimEvent>,
}

impl fmt::Debug for Shrine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shrine")
            .field("last_spi", &format_args!("{:#010x}", self.last_spi))
            .finish_non_exhaustive()
    }
}

impl Shrine {
    /// A shrine that accepts keys announced under `secret`.
    pub fn new(secret: Key32) -> Self {
        Shrine {
            secret,
            last_spi: 0,
            keys: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Replaces the shared secret.
    pub fn set_shared_secret(&mut self, secret: Key32) {
        self.secret = secret;
    }

    /// Handles one received datagram. `Ok(spi)` means a new RX key was
    /// queued ([`Shrine::poll_key`]) and the caller should learn the
    /// pilgrim's address from the datagram's source.
    pub fn handle_offer(&mut self, packet: &[u8], now: Now) -> Result<u32, ShrineError> {
        if packet.len() != OFFER_LEN {
            return Err(ShrineError::Length(packet.len()));
        }
        let header = OfferHeader::parse(packet)?;
        if header.magic != Magic::Sacrament {
            return Err(ShrineError::NotSacrament(header.magic));
        }
        let key = kdf::offer_key(&self.secret, OfferLabel::Pilgrimage, &header.seed, 0, 0);
        let offer = Offer::open(packet, &key)?;
        offer.check_timestamp(now.wall, SHRINE_TIMESTAMP_WINDOW)?;
        let OfferBody::Key(k) = offer.body_of(OfferType::Key)? else {
            return Err(OfferError::UnexpectedType(offer.offer_type()?).into());
        };
        let spi = header.spi;
        // last_spi starts at 0, so like the reference an SPI of 0 is never
        // installed.
        if spi == self.last_spi {
            return Err(ShrineError::KnownSpi(spi));
        }
        self.last_spi = spi;
        self.keys.push_back(KeyCommand::InstallRx(KeyInstall {
            spi,
            salt: k.salt,
            key: k.key,
        }));
        self.events.push_back(PilgrimEvent::KeyReceived {
            spi,
            pilgrim_id: k.id,
        });
        Ok(spi)
    }

    /// The next key command (only `InstallRx`).
    pub fn poll_key(&mut self) -> Option<KeyCommand> {
        self.keys.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PilgrimEvent> {
        self.events.pop_front()
    }
}
