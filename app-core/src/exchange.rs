//! The tunnel-mode hybrid key exchange (crypto.md §9, behaviour.md §3) as a
//! sans-IO state machine: what the reference's chapel process does for
//! session keys, without the cathedral client and without peer-address
//! handling.
//!
//! A [`KeyExchange`] holds the shared secret, the instance id and at most
//! one running negotiation (the reference's "offer"). It is driven by:
//!
//! - [`KeyExchange::handle_offer`] for every received `SACRAMNT` datagram;
//! - [`KeyExchange::poll`] when [`KeyExchange::next_deadline`] has passed
//!   (or at least once per second, which is what the reference does and
//!   what clock-jump detection assumes), and after inputs changed;
//! - status from the data path: [`KeyExchange::set_rx_status`] (active RX
//!   SA: SPI, packet count, install time) and [`KeyExchange::rx_decrypted`]
//!   (a packet was decrypted), and [`KeyExchange::set_peer_known`].
//!
//! Its outputs are drained by the caller: [`KeyExchange::poll_transmit`]
//! (623-byte offers for the current peer address),
//! [`KeyExchange::poll_key`] (RX/TX key installs and erase requests for the
//! data path) and [`KeyExchange::poll_event`] (for logs and the UI).
//!
//! One negotiation works like this (A and B symmetric): each side pulses
//! its ML-KEM-1024 public key (4 PK fragments) with an X25519 key; on the
//! peer's complete PK set a side encapsulates, derives its RX key and adds
//! the ciphertext (4 CT fragments, with a second X25519 key) to its
//! pulses; on the peer's complete CT set it decapsulates and derives its TX
//! key. The negotiation ends when both the peer's CT set arrived and
//! traffic was decrypted on the new RX SPI (the peer has our CT).
//!
//! Deviations from the reference, none visible on the wire: a negotiation
//! created by a trigger pulses in the same `poll` (the reference waits for
//! its next one-second iteration); clock jumps are measured against the
//! monotonic clock, so infrequent polling is not mistaken for a jump; an
//! X25519 or ML-KEM failure discards the negotiation (the reference keeps
//! pulsing it without installing the key); generated SPIs are never 0 and
//! never equal to an offer magic's first word.

use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;

use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, MlKem1024, Seed};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

use crate::entropy::Entropy;
use crate::kdf::{self, Direction, OfferLabel, SessionKeyInputs};
use crate::secret::{Key32, Secret};
use crate::time::{Instant, Now};
use crate::wire::offer::{
    self, ExchangeBody, ExchangeState, KEM_FRAGMENT_LEN, KEM_FRAGMENTS, KEM_LEN, Magic, OFFER_LEN,
    Offer, OfferBody, OfferError, OfferHeader, OfferType, TIMESTAMP_WINDOW,
};

/// Pulses an offer is sent for before it times out (behaviour.md §3.2).
pub const OFFER_TTL: u16 = 15;
/// Time between two pulses of an offer.
pub const PULSE_INTERVAL: Duration = Duration::from_secs(1);
/// Exchange timeouts after which the next exchange waits [`BACKOFF_SECS`].
pub const TIMEOUTS_BEFORE_BACKOFF: u32 = 4;
/// Wait after [`TIMEOUTS_BEFORE_BACKOFF`] timed-out exchanges (seconds).
pub const BACKOFF_SECS: u64 = 60;
/// Rekey when nothing was decrypted for this long (2 x heartbeat, seconds).
pub const HEARTBEAT_TIMEOUT_SECS: u64 = 30;
/// Erase all keys when nothing was decrypted for this long (seconds).
pub const DEAD_PEER_SECS: u64 = 120;
/// RX SA packet count that triggers a new exchange (2^33).
pub const RX_PACKET_SOFT_LIMIT: u64 = 1 << 33;
/// RX SA age that triggers a new exchange (seconds).
pub const RX_AGE_SOFT_LIMIT_SECS: u64 = 3500;
/// Wall-clock jump that renews the instance id (seconds).
pub const CLOCK_JUMP_SECS: u64 = 60;
/// After a clock jump the dead-peer check is postponed this long (seconds).
pub const CLOCK_JUMP_PEER_CHECK_DELAY_SECS: u64 = 10;
/// After an ambry switch an exchange must complete within this time, or
/// all keys are erased (seconds).
pub const AMBRY_RENEGOTIATION_LIMIT_SECS: u64 = 75;
/// Retry delay of a timed-out exchange during an ambry switch (seconds).
pub const AMBRY_RETRY_SECS: u64 = 10;
/// Length of each side's random contribution to a session key.
pub const EXCHANGE_RANDOM_LEN: usize = 16;
/// Length of an ML-KEM-1024 secret key in the expanded (FIPS 203) form.
pub const MLKEM_EXPANDED_SECRET_LEN: usize = 3168;

/// The 4-bit fragment mask of a complete set.
const FRAGMENTS_DONE: u8 = (1 << KEM_FRAGMENTS) - 1;

/// The instant `secs` whole seconds after `since` on the whole-second
/// clock the reference uses (ages and timers are whole seconds of uptime).
fn secs_after(since: Instant, secs: u64) -> Instant {
    Instant::from_secs(since.secs().saturating_add(secs))
}

/// Static configuration of one tunnel's key exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// Own `cathedral_flock` (0 without a cathedral), domain byte included.
    pub flock_src: u64,
    /// Own `cathedral_flock_dst` (0 without a cathedral).
    pub flock_dst: u64,
    /// Tunnel id (`local_id << 8 | peer_id`), 0 for none. When set it is
    /// the top 16 bits of every SPI this side chooses (wire.md §3.3).
    pub tunnel_id: u16,
    /// A cathedral is used: offer headers carry the flocks (the cathedral
    /// routes on them); otherwise the header flocks are random.
    pub cathedral: bool,
}

/// What the data path reports about the active RX SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxStatus {
    /// SPI of the active RX SA.
    pub spi: u32,
    /// Packets decrypted under it (the reference's `rx.pkt`).
    pub packets: u64,
    /// When it was installed (monotonic).
    pub installed: Instant,
}

/// A session key for the data path.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyInstall {
    /// SPI of the SA (the receiver's choice).
    pub spi: u32,
    /// The SA's nonce salt, raw wire bytes.
    pub salt: [u8; 4],
    /// The AES-256-GCM key.
    pub key: Key32,
}

/// Orders for the data path, in the order they must be applied.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KeyCommand {
    /// Install an RX SA (pending if an active one exists, behaviour.md §3.6).
    InstallRx(KeyInstall),
    /// Replace the TX SA.
    InstallTx(KeyInstall),
    /// Wipe the TX SA and both RX SAs and their statistics.
    Erase,
}

/// Why a new exchange started; [`StartReason::as_str`] is the reference's
/// log text (behaviour.md §3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartReason {
    /// A forced exchange: CT for a wrong SPI, or an ambry retry.
    Resync,
    /// An RX SA exists and nothing was decrypted for 30 s.
    GraceHeartbeatTimeout,
    /// The RX SA carried 2^33 packets.
    SaPacketLimit,
    /// The RX SA is 3500 s old.
    SaAgeLimit,
    /// There is no RX SA at all.
    NoKeys,
    /// A new ambry (shared secret) was unwrapped.
    AmbrySwitch,
    /// The wall clock jumped; the instance id was renewed.
    ClockJump,
    /// The peer sent a PK fragment while no exchange was running.
    PeerRenegotiate,
    /// A PK fragment came from a new peer instance id.
    PeerRestarted,
    /// Started from explicit key material ([`KeyExchange::start_with_keys`]).
    Injected,
}

impl StartReason {
    /// The reason as the reference logs it.
    pub fn as_str(self) -> &'static str {
        match self {
            StartReason::Resync => "re-sync",
            StartReason::GraceHeartbeatTimeout => "grace heartbeat timeout",
            StartReason::SaPacketLimit => "SA packet limit",
            StartReason::SaAgeLimit => "SA age limit",
            StartReason::NoKeys => "no keys",
            StartReason::AmbrySwitch => "ambry generation switch",
            StartReason::ClockJump => "clock jump",
            StartReason::PeerRenegotiate => "peer renegotiate",
            StartReason::PeerRestarted => "peer restarted",
            StartReason::Injected => "injected",
        }
    }
}

impl fmt::Display for StartReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a negotiation failed cryptographically (crypto.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The peer's X25519 key is all zero, of low order, or gave an
    /// all-zero shared secret.
    X25519,
    /// The peer's ML-KEM-1024 public key failed the FIPS 203 input check.
    MlKemPublicKey,
}

/// Things worth a log line or a UI update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A negotiation started.
    ExchangeStarted {
        /// Why.
        reason: StartReason,
        /// Our new RX SPI (`local.spi`).
        spi: u32,
    },
    /// The peer's PK set completed: an RX key was queued for install.
    RxKeyInstalled {
        /// RX SPI.
        spi: u32,
        /// Peer instance id.
        peer_id: u64,
    },
    /// The peer's CT set completed: a TX key was queued for install.
    TxKeyInstalled {
        /// TX SPI (the peer's RX SPI).
        spi: u32,
        /// Peer instance id.
        peer_id: u64,
    },
    /// Both directions done and traffic seen on the new RX SPI.
    ExchangeCompleted {
        /// RX SPI of the finished negotiation.
        spi: u32,
    },
    /// A negotiation ran out of pulses.
    ExchangeTimedOut {
        /// RX SPI of the abandoned negotiation.
        spi: u32,
        /// Timeouts in a row so far.
        timeouts: u32,
    },
    /// Too many timeouts: no exchange before `until`.
    Backoff {
        /// Earliest next exchange.
        until: Instant,
    },
    /// The peer came back with a new instance id mid-negotiation.
    PeerRestarted {
        /// The id we were negotiating with.
        old_id: u64,
        /// The new id.
        new_id: u64,
    },
    /// Someone sent us one of our own offers.
    ReplayedOwnOffer,
    /// A CT fragment for another SPI: negotiation discarded, re-sync forced.
    Resync {
        /// SPI in the CT fragment.
        received_spi: u32,
        /// Our RX SPI.
        local_spi: u32,
    },
    /// The wall clock jumped; a new instance id was chosen.
    ClockJump {
        /// The new instance id.
        new_id: u64,
    },
    /// Nothing decrypted for 120 s: all keys erased.
    PeerDead,
    /// No exchange completed within 75 s of an ambry switch: keys erased.
    AmbryRenegotiationFailed,
    /// A negotiation was discarded because its key agreement failed.
    ExchangeFailed {
        /// RX SPI of the discarded negotiation.
        spi: u32,
        /// What failed.
        reason: FailureReason,
    },
}

/// Why a received offer was not accepted. Such packets must not teach the
/// caller a peer address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Malformed, unauthentic, stale, or of another type.
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// The packet is an offer of another kind than SACRAMNT.
    #[error("not an exchange offer (magic {0:?})")]
    NotSacrament(Magic),
    /// The offer carries our own instance id.
    #[error("someone replayed our own key offer")]
    ReplayedOwnOffer,
    /// Injected ML-KEM key material does not validate.
    #[error("invalid ML-KEM-1024 secret key")]
    InvalidMlKemKey,
}

/// Why an accepted offer changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// The offer's SPI is 0.
    ZeroSpi,
    /// A PK fragment for the SPI we last completed (a retransmission).
    AlreadyNegotiated,
    /// No negotiation exists and none could be started (peer address
    /// unknown, or waiting for the first ambry), or a CT without one.
    NoNegotiation,
    /// A PK fragment from the same peer after its PK set completed.
    PeerPkComplete,
    /// A CT fragment before the peer's PK set completed.
    PeerPkIncomplete,
    /// A CT fragment after the CT set completed.
    CtComplete,
}

/// What an accepted offer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new PK fragment was stored.
    PkFragment,
    /// The PK set completed: we encapsulated and queued the RX key.
    RxKeyDerived,
    /// A new CT fragment was stored.
    CtFragment,
    /// The CT set completed: we decapsulated and queued the TX key.
    TxKeyDerived,
    /// A fragment we already had.
    Duplicate,
    /// A CT fragment for another SPI: negotiation discarded, re-sync forced.
    Resync,
    /// The key agreement failed; the negotiation was discarded.
    Failed(FailureReason),
    /// Nothing to do.
    Ignored(IgnoreReason),
}

/// An offer that passed every check (authentic SACRAMNT EXCHANGE, fresh,
/// not our own id): the caller may learn the peer address from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The sender's instance id.
    pub peer_id: u64,
    /// What it did to the negotiation.
    pub outcome: Outcome,
}

/// An ML-KEM-1024 secret key for [`NegotiationKeys`].
#[derive(Debug)]
pub enum MlKemSecret {
    /// The 64-byte FIPS 203 seed `d || z`.
    Seed(Secret<64>),
    /// The 3168-byte expanded secret key (as the reference stores it).
    Expanded(Box<Secret<MLKEM_EXPANDED_SECRET_LEN>>),
}

/// Explicit key material for one negotiation, in place of fresh randomness:
/// for known-answer tests and for replaying recorded sessions. Production
/// code lets [`KeyExchange`] draw everything from its [`Entropy`].
pub struct NegotiationKeys {
    /// Our RX SPI (`local.spi`).
    pub local_spi: u32,
    /// Our RX salt.
    pub local_salt: [u8; 4],
    /// X25519 private key sent in PK fragments.
    pub local_x25519: Key32,
    /// Random contribution sent in PK fragments.
    pub local_random: [u8; EXCHANGE_RANDOM_LEN],
    /// X25519 private key sent in CT fragments.
    pub remote_x25519: Key32,
    /// Random contribution sent in CT fragments.
    pub remote_random: [u8; EXCHANGE_RANDOM_LEN],
    /// Our ML-KEM-1024 key pair.
    pub mlkem: MlKemSecret,
}

impl fmt::Debug for NegotiationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NegotiationKeys")
            .field("local_spi", &format_args!("{:#010x}", self.local_spi))
            .finish_non_exhaustive()
    }
}

impl Drop for NegotiationKeys {
    fn drop(&mut self) {
        // The Key32 and Secret fields wipe themselves.
        self.local_random.zeroize();
        self.remote_random.zeroize();
    }
}

/// One direction's half of a negotiation (crypto.md §9.1).
struct Half {
    spi: u32,
    salt: [u8; 4],
    x25519: StaticSecret,
    public: [u8; 32],
    random: [u8; EXCHANGE_RANDOM_LEN],
}

impl Half {
    fn new(spi: u32, salt: [u8; 4], private: &Key32, random: [u8; EXCHANGE_RANDOM_LEN]) -> Self {
        let x25519 = StaticSecret::from(*private.expose());
        let public = PublicKey::from(&x25519).to_bytes();
        Half {
            spi,
            salt,
            x25519,
            public,
            random,
        }
    }

    fn generate(spi: u32, salt: [u8; 4], rng: &mut dyn Entropy) -> Self {
        let private = Key32::random(rng);
        let mut random = [0u8; EXCHANGE_RANDOM_LEN];
        rng.fill(&mut random);
        Half::new(spi, salt, &private, random)
    }
}

impl Drop for Half {
    fn drop(&mut self) {
        // The StaticSecret wipes itself.
        self.random.zeroize();
        self.salt.zeroize();
        self.spi.zeroize();
    }
}

/// The running negotiation (the reference's "offer").
struct Negotiation {
    /// Defines our RX SA; its X25519 key and ML-KEM public key go in PK
    /// fragments.
    local: Half,
    /// Defines our TX SA (the peer's spi/salt once known); its X25519 key
    /// goes in CT fragments.
    remote: Half,
    mlkem: DecapsulationKey<MlKem1024>,
    /// Our encoded ML-KEM public key.
    mlkem_pk: Box<[u8; KEM_LEN]>,
    /// The peer's public key, assembled from PK fragments.
    peer_pk: Box<[u8; KEM_LEN]>,
    /// The peer's ciphertext, assembled from CT fragments.
    peer_ct: Box<[u8; KEM_LEN]>,
    /// Our ciphertext to the peer (valid once `send_ct` was set).
    our_ct: Box<[u8; KEM_LEN]>,
    pk_mask: u8,
    ct_mask: u8,
    send_pk: bool,
    send_ct: bool,
    ttl: u16,
    pulse: Instant,
}

impl Negotiation {
    fn from_parts(
        local: Half,
        remote: Half,
        mlkem: DecapsulationKey<MlKem1024>,
        now: Instant,
    ) -> Self {
        let mut mlkem_pk = Box::new([0u8; KEM_LEN]);
        mlkem_pk.copy_from_slice(mlkem.encapsulation_key().to_bytes().as_slice());
        Negotiation {
            local,
            remote,
            mlkem,
            mlkem_pk,
            peer_pk: Box::new([0u8; KEM_LEN]),
            peer_ct: Box::new([0u8; KEM_LEN]),
            our_ct: Box::new([0u8; KEM_LEN]),
            pk_mask: 0,
            ct_mask: 0,
            send_pk: true,
            send_ct: false,
            ttl: OFFER_TTL,
            pulse: now,
        }
    }

    fn generate(tunnel_id: u16, rng: &mut dyn Entropy, now: Instant) -> Self {
        let spi = pick_spi(rng, tunnel_id);
        let mut salt = [0u8; 4];
        rng.fill(&mut salt);
        let local = Half::generate(spi, salt, rng);
        let remote = Half::generate(0, [0; 4], rng);
        let mut seed = Secret::<64>::random(rng);
        let mlkem = DecapsulationKey::from_seed(Seed::from(*seed.expose()));
        seed.zeroize();
        Negotiation::from_parts(local, remote, mlkem, now)
    }
}

impl Drop for Negotiation {
    fn drop(&mut self) {
        // The ML-KEM decapsulation key wipes itself (zeroize feature).
        self.peer_pk.zeroize();
        self.peer_ct.zeroize();
        self.our_ct.zeroize();
        self.mlkem_pk.zeroize();
    }
}

impl fmt::Debug for Negotiation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Negotiation")
            .field("local_spi", &format_args!("{:#010x}", self.local.spi))
            .field("remote_spi", &format_args!("{:#010x}", self.remote.spi))
            .field("pk_mask", &self.pk_mask)
            .field("ct_mask", &self.ct_mask)
            .field("send_pk", &self.send_pk)
            .field("send_ct", &self.send_ct)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A random SPI for a new SA: `(random & 0xffff) | tunnel_id << 16` with a
/// tunnel id, never 0 and never the first word of an offer magic.
pub fn pick_spi(rng: &mut dyn Entropy, tunnel_id: u16) -> u32 {
    let shape = |r: u32| {
        if tunnel_id == 0 {
            r
        } else {
            (r & 0xffff) | (u32::from(tunnel_id) << 16)
        }
    };
    for _ in 0..16 {
        let spi = shape(rng.next_u32());
        if spi != 0 && !offer::spi_collides_with_magic(spi) {
            return spi;
        }
    }
    // Only a broken generator gets here; low half 0x0001 is never a magic.
    shape(1)
}

/// X25519 with the failure rules of crypto.md §1.
fn x25519(secret: &StaticSecret, peer: &[u8; 32]) -> Option<Key32> {
    if peer.iter().all(|b| *b == 0) {
        return None;
    }
    let shared = secret.diffie_hellman(&PublicKey::from(*peer));
    let key = Key32::new(shared.to_bytes());
    (!key.is_zero()).then_some(key)
}

/// The first 16 bytes of an exchange offer's extra part.
fn extra_random(extra: &[u8; offer::EXTRA_LEN]) -> [u8; EXCHANGE_RANDOM_LEN] {
    let mut r = [0u8; EXCHANGE_RANDOM_LEN];
    r.copy_from_slice(&extra[..EXCHANGE_RANDOM_LEN]);
    r
}

/// The tunnel-mode key exchange of one tunnel. See the module docs.
pub struct KeyExchange {
    config: ExchangeConfig,
    secret: Key32,
    id: u64,
    /// Id of the peer instance of the last handled exchange offer.
    peer_id: u64,
    /// The last peer SPI whose PK set we completed.
    last_spi: u32,
    negotiation: Option<Box<Negotiation>>,
    /// Earliest time a trigger may start an exchange (`None` = any time).
    offer_next: Option<Instant>,
    /// Start an exchange ("re-sync") at the next trigger check.
    force: bool,
    timeouts: u32,
    peer_known: bool,
    kek_required: bool,
    ambry_ready: bool,
    /// When the pending ambry switch happened.
    ambry_switch: Option<Instant>,
    /// The reference's `heartbeat`: last decryption (or "no keys" stamp).
    heartbeat: Option<Instant>,
    rx: Option<RxStatus>,
    /// Wall and monotonic clocks at the previous poll.
    last_clocks: Option<(u64, Instant)>,
    /// The dead-peer check is postponed until then.
    peer_check_after: Option<Instant>,
    encapsulation_override: Option<(Box<[u8; KEM_LEN]>, Key32)>,
    transmits: VecDeque<[u8; OFFER_LEN]>,
    keys: VecDeque<KeyCommand>,
    events: VecDeque<Event>,
}

impl fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyExchange")
            .field("config", &self.config)
            .field("id", &format_args!("{:#018x}", self.id))
            .field("peer_id", &format_args!("{:#018x}", self.peer_id))
            .field("negotiation", &self.negotiation)
            .field("timeouts", &self.timeouts)
            .field("peer_known", &self.peer_known)
            .finish_non_exhaustive()
    }
}

impl KeyExchange {
    /// A key exchange with a random instance id.
    pub fn new(config: ExchangeConfig, secret: Key32, rng: &mut dyn Entropy) -> Self {
        let id = rng.next_u64();
        KeyExchange::with_instance_id(config, secret, id)
    }

    /// A key exchange with the given instance id (tests, replays).
    pub fn with_instance_id(config: ExchangeConfig, secret: Key32, id: u64) -> Self {
        KeyExchange {
            config,
            secret,
            id,
            peer_id: 0,
            last_spi: 0,
            negotiation: None,
            offer_next: None,
            force: false,
            timeouts: 0,
            peer_known: false,
            kek_required: false,
            ambry_ready: false,
            ambry_switch: None,
            heartbeat: None,
            rx: None,
            last_clocks: None,
            peer_check_after: None,
            encapsulation_override: None,
            transmits: VecDeque::new(),
            keys: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our instance id (sent in every offer).
    pub fn instance_id(&self) -> u64 {
        self.id
    }

    /// The peer instance id of the last handled exchange offer (0 if none).
    pub fn peer_id(&self) -> u64 {
        self.peer_id
    }

    /// True while a negotiation is running.
    pub fn negotiating(&self) -> bool {
        self.negotiation.is_some()
    }

    /// Our RX SPI of the running negotiation.
    pub fn local_spi(&self) -> Option<u32> {
        self.negotiation.as_ref().map(|n| n.local.spi)
    }

    /// Exchanges that timed out since the last completed one.
    pub fn timeouts(&self) -> u32 {
        self.timeouts
    }

    /// Whether the peer address is known. Nothing is started while it is
    /// not (behaviour.md §3.4); offers still arriving teach it to the
    /// caller through [`Accepted`].
    pub fn set_peer_known(&mut self, known: bool) {
        self.peer_known = known;
    }

    /// Replaces the shared secret; later offers and keys use the new one.
    pub fn set_shared_secret(&mut self, secret: Key32) {
        self.secret = secret;
    }

    /// With a KEK configured no exchange starts before the first ambry was
    /// unwrapped ([`KeyExchange::ambry_installed`]).
    pub fn require_ambry(&mut self, required: bool) {
        self.kek_required = required;
    }

    /// An ambry was unwrapped in this lifetime: opens the KEK gate.
    pub fn ambry_installed(&mut self) {
        self.ambry_ready = true;
    }

    /// Discards the running negotiation (nothing is installed or erased).
    pub fn discard_offer(&mut self) {
        self.clear_negotiation();
    }

    /// Forces a new exchange ("re-sync") at the next trigger check.
    pub fn force_exchange(&mut self) {
        self.force = true;
    }

    /// A new ambry was unwrapped (crypto.md §12.3): the new shared secret
    /// replaces the old one, the gate opens, the running negotiation is
    /// discarded and a new one starts at once; if no exchange completes
    /// within 75 s all keys are erased.
    pub fn ambry_switch(&mut self, now: Now, secret: Key32, rng: &mut dyn Entropy) {
        self.set_shared_secret(secret);
        self.ambry_installed();
        self.clear_negotiation();
        self.ambry_switch = Some(now.mono);
        self.create(now.mono, StartReason::AmbrySwitch, rng);
    }

    /// The data path's view of the active RX SA (`None`: no RX SA).
    pub fn set_rx_status(&mut self, status: Option<RxStatus>) {
        self.rx = status.filter(|s| s.spi != 0);
    }

    /// A packet was decrypted at `at` (any SA, any payload). Callers may
    /// batch: only the latest time matters.
    pub fn rx_decrypted(&mut self, at: Instant) {
        if self.heartbeat.is_none_or(|hb| at > hb) {
            self.heartbeat = Some(at);
        }
    }

    /// The next offer datagram to send to the current peer address.
    pub fn poll_transmit(&mut self) -> Option<[u8; OFFER_LEN]> {
        self.transmits.pop_front()
    }

    /// The next key command for the data path.
    pub fn poll_key(&mut self) -> Option<KeyCommand> {
        self.keys.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Uses `ct`/`ss` as the result of the next ML-KEM encapsulation instead
    /// of encapsulating with fresh randomness. Test support: lets a recorded
    /// exchange whose encapsulation coins were not recorded be replayed.
    pub fn set_encapsulation_override(&mut self, ct: &[u8; KEM_LEN], ss: Key32) {
        self.encapsulation_override = Some((Box::new(*ct), ss));
    }

    /// Replaces any negotiation with one built from explicit key material
    /// (known-answer tests, replays), pulsing from `now`. The peer-address
    /// and KEK gates do not apply.
    pub fn start_with_keys(
        &mut self,
        now: Instant,
        keys: NegotiationKeys,
    ) -> Result<(), ExchangeError> {
        let mlkem = match &keys.mlkem {
            MlKemSecret::Seed(seed) => DecapsulationKey::from_seed(Seed::from(*seed.expose())),
            MlKemSecret::Expanded(sk) => {
                let arr = Array::try_from(sk.expose().as_slice())
                    .map_err(|_| ExchangeError::InvalidMlKemKey)?;
                // The expanded form is what the reference records; ml-kem
                // deprecates it in favour of seeds.
                #[allow(deprecated)]
                let dk = DecapsulationKey::from_expanded(&arr)
                    .map_err(|_| ExchangeError::InvalidMlKemKey);
                let mut arr = arr;
                arr.zeroize();
                dk?
            }
        };
        let local = Half::new(
            keys.local_spi,
            keys.local_salt,
            &keys.local_x25519,
            keys.local_random,
        );
        let remote = Half::new(0, [0; 4], &keys.remote_x25519, keys.remote_random);
        self.clear_negotiation();
        self.negotiation = Some(Box::new(Negotiation::from_parts(local, remote, mlkem, now)));
        self.events.push_back(Event::ExchangeStarted {
            reason: StartReason::Injected,
            spi: keys.local_spi,
        });
        Ok(())
    }

    /// When [`KeyExchange::poll`] has something to do at the latest (an
    /// instant in the past means now); `None` if only new input can change
    /// anything.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut add = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));

        if let (Some(_), Some(hb)) = (self.rx, self.heartbeat) {
            let dead = secs_after(hb, DEAD_PEER_SECS);
            add(self.peer_check_after.map_or(dead, |p| p.max(dead)));
        }
        if let Some(at) = self.ambry_switch {
            add(secs_after(at, AMBRY_RENEGOTIATION_LIMIT_SECS));
        }
        match &self.negotiation {
            Some(n) => {
                if self.rx_seen_on(n.local.spi) {
                    if n.send_ct {
                        add(Instant::ZERO);
                    }
                } else {
                    add(n.pulse);
                }
            }
            None if self.can_start() => {
                let earliest = self.offer_next.unwrap_or(Instant::ZERO);
                let trigger = if self.force || self.timeouts >= TIMEOUTS_BEFORE_BACKOFF {
                    Instant::ZERO
                } else if let Some(rx) = self.rx {
                    if rx.packets >= RX_PACKET_SOFT_LIMIT {
                        Instant::ZERO
                    } else {
                        let age = secs_after(rx.installed, RX_AGE_SOFT_LIMIT_SECS);
                        self.heartbeat.map_or(Instant::ZERO, |hb| {
                            secs_after(hb, HEARTBEAT_TIMEOUT_SECS).min(age)
                        })
                    }
                } else {
                    Instant::ZERO
                };
                add(earliest.max(trigger));
            }
            None => {}
        }
        next
    }

    /// Runs the timers (behaviour.md §3.1 steps 1, 4-6): clock-jump check,
    /// dead-peer check, ambry deadline, then either the running
    /// negotiation's completion check and pulse, or the triggers for a new
    /// exchange.
    pub fn poll(&mut self, now: Now, rng: &mut dyn Entropy) {
        self.check_clock_jump(now, rng);
        self.check_dead_peer(now.mono);
        self.check_ambry_deadline(now.mono);

        if self.negotiation.is_none() && !self.check_triggers(now.mono, rng) {
            return;
        }
        let Some(n) = self.negotiation.as_mut() else {
            return;
        };
        let seen = self
            .rx
            .is_some_and(|rx| rx.spi == n.local.spi && rx.packets > 0);
        if seen {
            n.send_ct = false;
            if !n.send_pk {
                let spi = n.local.spi;
                self.clear_negotiation();
                self.events.push_back(Event::ExchangeCompleted { spi });
            }
        } else if now.mono >= n.pulse {
            self.pulse(now, rng);
        }
    }

    /// Handles one received SACRAMNT datagram (TFC padding allowed).
    ///
    /// `Ok` means the offer was authentic, fresh, an EXCHANGE and not our
    /// own: the caller should update the peer address from its source.
    /// Resulting key installs, offers and events are queued.
    pub fn handle_offer(
        &mut self,
        packet: &[u8],
        now: Now,
        rng: &mut dyn Entropy,
    ) -> Result<Accepted, ExchangeError> {
        let header = OfferHeader::parse(packet)?;
        if header.magic != Magic::Sacrament {
            return Err(ExchangeError::NotSacrament(header.magic));
        }
        let key = kdf::offer_key(
            &self.secret,
            OfferLabel::Sacrament,
            &header.seed,
            self.config.flock_src,
            self.config.flock_dst,
        );
        let offer = Offer::open(packet, &key)?;
        offer.check_timestamp(now.wall, TIMESTAMP_WINDOW)?;
        let OfferBody::Exchange(x) = offer.body_of(OfferType::Exchange)? else {
            return Err(OfferError::UnexpectedType(offer.offer_type()?).into());
        };
        if x.id == self.id {
            self.events.push_back(Event::ReplayedOwnOffer);
            return Err(ExchangeError::ReplayedOwnOffer);
        }
        let peer_random = extra_random(offer.extra());
        let outcome = if x.spi == 0 {
            Outcome::Ignored(IgnoreReason::ZeroSpi)
        } else {
            let outcome = match x.state {
                ExchangeState::PublicKey => self.on_pk_fragment(&x, &peer_random, now.mono, rng),
                ExchangeState::Ciphertext => self.on_ct_fragment(&x, &peer_random),
            };
            self.peer_id = x.id;
            outcome
        };
        Ok(Accepted {
            peer_id: x.id,
            outcome,
        })
    }

    /// crypto.md §9.3: a PK fragment of the peer.
    fn on_pk_fragment(
        &mut self,
        x: &ExchangeBody,
        peer_random: &[u8; EXCHANGE_RANDOM_LEN],
        now: Instant,
        rng: &mut dyn Entropy,
    ) -> Outcome {
        if x.spi == self.last_spi {
            return Outcome::Ignored(IgnoreReason::AlreadyNegotiated);
        }
        if self.negotiation.is_none() && !self.create(now, StartReason::PeerRenegotiate, rng) {
            return Outcome::Ignored(IgnoreReason::NoNegotiation);
        }
        if self
            .negotiation
            .as_ref()
            .is_some_and(|n| n.pk_mask == FRAGMENTS_DONE)
        {
            if x.id == self.peer_id {
                return Outcome::Ignored(IgnoreReason::PeerPkComplete);
            }
            self.events.push_back(Event::PeerRestarted {
                old_id: self.peer_id,
                new_id: x.id,
            });
            self.clear_negotiation();
            if !self.create(now, StartReason::PeerRestarted, rng) {
                return Outcome::Ignored(IgnoreReason::NoNegotiation);
            }
        }
        let Some(n) = self.negotiation.as_mut() else {
            return Outcome::Ignored(IgnoreReason::NoNegotiation);
        };
        let frag = usize::from(x.fragment);
        let bit = 1u8 << frag;
        if n.pk_mask & bit != 0 {
            return Outcome::Duplicate;
        }
        let off = frag * KEM_FRAGMENT_LEN;
        n.peer_pk[off..off + KEM_FRAGMENT_LEN].copy_from_slice(&x.kem);
        n.pk_mask |= bit;
        if n.pk_mask != FRAGMENTS_DONE {
            return Outcome::PkFragment;
        }
        // A failure below still marks this SPI done, so the peer's
        // retransmissions do not restart a doomed negotiation.
        self.last_spi = x.spi;
        match self.encapsulate_and_derive_rx(x, peer_random, rng) {
            Ok(()) => Outcome::RxKeyDerived,
            Err(reason) => self.fail(reason),
        }
    }

    /// The PK set is complete: encapsulate, derive and queue the RX key.
    fn encapsulate_and_derive_rx(
        &mut self,
        x: &ExchangeBody,
        peer_random: &[u8; EXCHANGE_RANDOM_LEN],
        rng: &mut dyn Entropy,
    ) -> Result<(), FailureReason> {
        let override_result = self.encapsulation_override.take();
        let Some(n) = self.negotiation.as_mut() else {
            return Ok(());
        };
        let (ct, kem_ss) = match override_result {
            Some((ct, ss)) => (ct, ss),
            None => {
                let pk = Array::try_from(n.peer_pk.as_slice())
                    .map_err(|_| FailureReason::MlKemPublicKey)?;
                let ek = EncapsulationKey::<MlKem1024>::new(&pk)
                    .map_err(|_| FailureReason::MlKemPublicKey)?;
                let mut m = Secret::<32>::random(rng);
                let (ct, mut ss) = ek.encapsulate_deterministic(&Array::from(*m.expose()));
                m.zeroize();
                let mut ct_box = Box::new([0u8; KEM_LEN]);
                ct_box.copy_from_slice(ct.as_slice());
                let key = Key32::from_slice(ss.as_slice()).unwrap_or_else(Key32::zero);
                ss.zeroize();
                (ct_box, key)
            }
        };
        let ecdh_ss = x25519(&n.remote.x25519, &x.ecdh).ok_or(FailureReason::X25519)?;
        let key = kdf::session_key(&SessionKeyInputs {
            shared_secret: &self.secret,
            flock_src: self.config.flock_src,
            flock_dst: self.config.flock_dst,
            direction: Direction::Rx,
            my_id: self.id,
            peer_id: x.id,
            my_pub: &n.remote.public,
            peer_pub: &x.ecdh,
            my_random: &n.remote.random,
            peer_random,
            ecdh_ss: &ecdh_ss,
            kem_ss: &kem_ss,
        });
        n.ttl = OFFER_TTL;
        n.remote.spi = x.spi;
        n.remote.salt = x.salt;
        n.our_ct.copy_from_slice(ct.as_slice());
        n.send_ct = true;
        self.keys.push_back(KeyCommand::InstallRx(KeyInstall {
            spi: n.local.spi,
            salt: n.local.salt,
            key,
        }));
        self.events.push_back(Event::RxKeyInstalled {
            spi: n.local.spi,
            peer_id: x.id,
        });
        Ok(())
    }

    /// crypto.md §9.4: a CT fragment of the peer.
    fn on_ct_fragment(
        &mut self,
        x: &ExchangeBody,
        peer_random: &[u8; EXCHANGE_RANDOM_LEN],
    ) -> Outcome {
        let Some(n) = self.negotiation.as_mut() else {
            return Outcome::Ignored(IgnoreReason::NoNegotiation);
        };
        if x.spi != n.local.spi {
            let local_spi = n.local.spi;
            self.clear_negotiation();
            self.force = true;
            self.events.push_back(Event::Resync {
                received_spi: x.spi,
                local_spi,
            });
            return Outcome::Resync;
        }
        if n.remote.spi == 0 {
            return Outcome::Ignored(IgnoreReason::PeerPkIncomplete);
        }
        if !n.send_pk {
            return Outcome::Ignored(IgnoreReason::CtComplete);
        }
        let frag = usize::from(x.fragment);
        let bit = 1u8 << frag;
        if n.ct_mask & bit != 0 {
            return Outcome::Duplicate;
        }
        let off = frag * KEM_FRAGMENT_LEN;
        n.peer_ct[off..off + KEM_FRAGMENT_LEN].copy_from_slice(&x.kem);
        n.ct_mask |= bit;
        if n.ct_mask != FRAGMENTS_DONE {
            return Outcome::CtFragment;
        }
        n.send_pk = false;
        let Some(ecdh_ss) = x25519(&n.local.x25519, &x.ecdh) else {
            return self.fail(FailureReason::X25519);
        };
        let mut ss = n.mlkem.decapsulate(&Array::from(*n.peer_ct));
        let kem_ss = Key32::from_slice(ss.as_slice()).unwrap_or_else(Key32::zero);
        ss.zeroize();
        let key = kdf::session_key(&SessionKeyInputs {
            shared_secret: &self.secret,
            flock_src: self.config.flock_src,
            flock_dst: self.config.flock_dst,
            direction: Direction::Tx,
            my_id: self.id,
            peer_id: x.id,
            my_pub: &n.local.public,
            peer_pub: &x.ecdh,
            my_random: &n.local.random,
            peer_random,
            ecdh_ss: &ecdh_ss,
            kem_ss: &kem_ss,
        });
        self.keys.push_back(KeyCommand::InstallTx(KeyInstall {
            spi: n.remote.spi,
            salt: n.remote.salt,
            key,
        }));
        self.events.push_back(Event::TxKeyInstalled {
            spi: n.remote.spi,
            peer_id: x.id,
        });
        self.ambry_switch = None;
        self.timeouts = 0;
        Outcome::TxKeyDerived
    }

    /// Discards the negotiation after a failed key agreement.
    fn fail(&mut self, reason: FailureReason) -> Outcome {
        if let Some(spi) = self.local_spi() {
            self.events.push_back(Event::ExchangeFailed { spi, reason });
        }
        self.clear_negotiation();
        Outcome::Failed(reason)
    }

    fn can_start(&self) -> bool {
        self.peer_known && (self.ambry_ready || !self.kek_required)
    }

    fn rx_seen_on(&self, spi: u32) -> bool {
        self.rx.is_some_and(|rx| rx.spi == spi && rx.packets > 0)
    }

    /// Starts a negotiation unless the peer is unknown or the KEK gate is
    /// closed (chapel_offer_create).
    fn create(&mut self, now: Instant, reason: StartReason, rng: &mut dyn Entropy) -> bool {
        if !self.can_start() {
            return false;
        }
        let n = Negotiation::generate(self.config.tunnel_id, rng, now);
        self.events.push_back(Event::ExchangeStarted {
            reason,
            spi: n.local.spi,
        });
        self.negotiation = Some(Box::new(n));
        true
    }

    /// Wipes the negotiation; the next offer may start at once.
    fn clear_negotiation(&mut self) {
        self.negotiation = None;
        self.offer_next = None;
    }

    /// Sends one pulse: 4 PK and/or 4 CT fragments, then the TTL check.
    fn pulse(&mut self, now: Now, rng: &mut dyn Entropy) {
        let Some(mut n) = self.negotiation.take() else {
            return;
        };
        n.ttl = n.ttl.saturating_sub(1);
        n.pulse = now.mono + PULSE_INTERVAL;
        for (send, state) in [
            (n.send_pk, ExchangeState::PublicKey),
            (n.send_ct, ExchangeState::Ciphertext),
        ] {
            if send {
                for frag in 0..KEM_FRAGMENTS {
                    let packet = self.build_offer(&n, state, frag, now.wall, rng);
                    self.transmits.push_back(packet);
                }
            }
        }
        if n.ttl == 0 {
            let spi = n.local.spi;
            drop(n);
            self.clear_negotiation();
            self.timeouts = self.timeouts.saturating_add(1);
            self.events.push_back(Event::ExchangeTimedOut {
                spi,
                timeouts: self.timeouts,
            });
            if self.ambry_switch.is_some() {
                self.force = true;
                self.offer_next = Some(secs_after(now.mono, AMBRY_RETRY_SECS));
            }
        } else {
            self.negotiation = Some(n);
        }
    }

    /// One sealed exchange offer (crypto.md §9.2).
    fn build_offer(
        &self,
        n: &Negotiation,
        state: ExchangeState,
        frag: usize,
        wall: u64,
        rng: &mut dyn Entropy,
    ) -> [u8; OFFER_LEN] {
        let (half, kem_src) = match state {
            ExchangeState::PublicKey => (&n.local, &n.mlkem_pk),
            ExchangeState::Ciphertext => (&n.remote, &n.our_ct),
        };
        let (flock_src, flock_dst) = if self.config.cathedral {
            (self.config.flock_src, self.config.flock_dst)
        } else {
            (rng.next_u64(), rng.next_u64())
        };
        let mut seed = [0u8; 64];
        rng.fill(&mut seed);
        let header = OfferHeader::new(Magic::Sacrament, flock_src, flock_dst, n.local.spi, seed);
        let mut kem = [0u8; KEM_FRAGMENT_LEN];
        let off = frag * KEM_FRAGMENT_LEN;
        kem.copy_from_slice(&kem_src[off..off + KEM_FRAGMENT_LEN]);
        let body = OfferBody::Exchange(ExchangeBody {
            id: self.id,
            spi: half.spi,
            salt: half.salt,
            state,
            // KEM_FRAGMENTS is 4: the cast cannot truncate.
            fragment: frag as u8,
            ecdh: half.public,
            kem,
        });
        let mut extra = [0u8; offer::EXTRA_LEN];
        rng.fill(&mut extra[EXCHANGE_RANDOM_LEN..]);
        extra[..EXCHANGE_RANDOM_LEN].copy_from_slice(&half.random);
        let offer = Offer::new(header, wall, &body, extra);
        extra.zeroize();
        let key = kdf::offer_key(
            &self.secret,
            OfferLabel::Sacrament,
            &seed,
            self.config.flock_src,
            self.config.flock_dst,
        );
        offer.seal(&key)
    }

    /// Step 1: a wall-clock jump of >= 60 s (beyond the monotonic time
    /// that passed) renews the instance id and restarts the exchange.
    fn check_clock_jump(&mut self, now: Now, rng: &mut dyn Entropy) {
        let jumped = self.last_clocks.is_some_and(|(wall, mono)| {
            let wall_delta = now.wall.saturating_sub(wall);
            let mono_delta = now.mono.secs().saturating_sub(mono.secs());
            wall_delta.saturating_sub(mono_delta) >= CLOCK_JUMP_SECS
        });
        self.last_clocks = Some((now.wall, now.mono));
        if !jumped {
            return;
        }
        self.peer_check_after = Some(secs_after(now.mono, CLOCK_JUMP_PEER_CHECK_DELAY_SECS));
        self.clear_negotiation();
        self.id = rng.next_u64();
        self.events.push_back(Event::ClockJump { new_id: self.id });
        self.create(now.mono, StartReason::ClockJump, rng);
    }

    /// Step 4 (behaviour.md §4.3): nothing decrypted for 120 s with an RX
    /// SA: erase everything. What happens to the peer address is the
    /// caller's decision on [`Event::PeerDead`].
    fn check_dead_peer(&mut self, now: Instant) {
        if self.peer_check_after.is_some_and(|t| now < t) {
            return;
        }
        self.peer_check_after = None;
        let (Some(_), Some(hb)) = (self.rx, self.heartbeat) else {
            return;
        };
        if now < secs_after(hb, DEAD_PEER_SECS) {
            return;
        }
        self.keys.push_back(KeyCommand::Erase);
        self.rx = None;
        self.heartbeat = None;
        self.clear_negotiation();
        self.events.push_back(Event::PeerDead);
    }

    /// Step 5: no exchange completed within 75 s of an ambry switch.
    fn check_ambry_deadline(&mut self, now: Instant) {
        let Some(at) = self.ambry_switch else {
            return;
        };
        if now < secs_after(at, AMBRY_RENEGOTIATION_LIMIT_SECS) {
            return;
        }
        self.force = false;
        self.ambry_switch = None;
        self.timeouts = self.timeouts.saturating_add(1);
        self.clear_negotiation();
        self.keys.push_back(KeyCommand::Erase);
        self.rx = None;
        self.events.push_back(Event::AmbryRenegotiationFailed);
    }

    /// Triggers for a new exchange (behaviour.md §3.4). True if a
    /// negotiation was started.
    fn check_triggers(&mut self, now: Instant, rng: &mut dyn Entropy) -> bool {
        if !self.peer_known || self.offer_next.is_some_and(|t| now < t) {
            return false;
        }
        if self.timeouts >= TIMEOUTS_BEFORE_BACKOFF {
            let until = secs_after(now, BACKOFF_SECS);
            self.offer_next = Some(until);
            self.timeouts = 0;
            self.events.push_back(Event::Backoff { until });
            return false;
        }
        let reason = if self.force {
            self.force = false;
            StartReason::Resync
        } else if let Some(rx) = self.rx {
            if self
                .heartbeat
                .is_none_or(|hb| now >= secs_after(hb, HEARTBEAT_TIMEOUT_SECS))
            {
                StartReason::GraceHeartbeatTimeout
            } else if rx.packets >= RX_PACKET_SOFT_LIMIT {
                StartReason::SaPacketLimit
            } else if now >= secs_after(rx.installed, RX_AGE_SOFT_LIMIT_SECS) {
                StartReason::SaAgeLimit
            } else {
                return false;
            }
        } else {
            self.heartbeat = Some(now);
            StartReason::NoKeys
        };
        self.create(now, reason, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    /// Replays a fixed list of u32 values, then zeros.
    struct Script(Vec<u32>);

    impl Entropy for Script {
        fn fill(&mut self, buf: &mut [u8]) {
            let v = if self.0.is_empty() {
                0
            } else {
                self.0.remove(0)
            };
            for (i, b) in buf.iter_mut().enumerate() {
                *b = v.to_be_bytes()[i % 4];
            }
        }
    }

    #[test]
    fn spis_carry_the_tunnel_id_and_avoid_zero_and_magics() {
        let mut rng = Script(vec![0, 0x5341_4352, 0x1234_5678]);
        assert_eq!(pick_spi(&mut rng, 0), 0x1234_5678);
        let mut rng = Script(vec![0xabcd_4352, 0xabcd_0007]);
        // 0x5341 << 16 | 0x4352 is SACRAMNT's first word.
        assert_eq!(pick_spi(&mut rng, 0x5341), 0x5341_0007);
        let mut rng = Script(vec![0xffff_0000]);
        assert_eq!(pick_spi(&mut rng, 0x0102), 0x0102_0000);
        let mut zeros = Script(vec![]);
        assert_eq!(pick_spi(&mut zeros, 0), 1);
    }

    #[test]
    fn x25519_rejects_zero_and_low_order_keys() {
        let s = StaticSecret::from([7u8; 32]);
        assert!(x25519(&s, &[0u8; 32]).is_none());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(x25519(&s, &one).is_none());
        let p = PublicKey::from(&StaticSecret::from([9u8; 32])).to_bytes();
        assert!(x25519(&s, &p).is_some());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let mut rng = SeededEntropy::from_u64(3);
        let mut x = KeyExchange::new(ExchangeConfig::default(), Key32::new([0xab; 32]), &mut rng);
        x.set_peer_known(true);
        x.poll(Now::new(Instant::ZERO, 1_700_000_000), &mut rng);
        let n = x.negotiation.as_ref().unwrap();
        let secret_hex = format!("{:02x}{:02x}", n.local.random[0], n.local.random[1]);
        let d = format!("{x:?}");
        assert!(d.contains("Negotiation"), "{d}");
        assert!(!d.contains("abab"), "{d}");
        assert!(!d.contains(&secret_hex), "{d}");
        let k = KeyCommand::InstallRx(KeyInstall {
            spi: 1,
            salt: [0; 4],
            key: Key32::new([0xcd; 32]),
        });
        assert!(!format!("{k:?}").contains("cd, cd"));
    }
}
