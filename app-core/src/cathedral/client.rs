//! The client side of the cathedral protocol as a sans-IO state machine
//! (behaviour.md §7 and §9, wire.md §5.5-§5.7, crypto.md §6, §11, §13).
//!
//! [`CathedralClient`] is driven like quinn-proto: the caller feeds it
//! time ([`CathedralClient::handle_timeout`] whenever
//! [`CathedralClient::next_deadline`] passes) and datagrams
//! ([`CathedralClient::handle_datagram`]), then drains
//! [`CathedralClient::poll_transmit`] (datagrams for the cathedral's main
//! or NAT port) and [`CathedralClient::poll_event`] (what the cathedral
//! told us). Nothing here touches a socket, a clock or a file: AMBRY
//! bodies go out as events for the ambry module to unwrap, REMEMBRANCE
//! lists come out with their file bytes for the caller to write.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::entropy::Entropy;
use crate::kdf::{self, OfferLabel};
use crate::secret::{Key32, Secret};
use crate::time::{Instant, Now};
use crate::wire::offer::{
    AmbryBody, INFO_FLAG_REMEMBRANCE, INFO_FLAG_SAME_EXTERNAL_IPV4, INFO_FLAG_SKIP_AMBRY, InfoBody,
    LITURGY_FLAG_REMEMBRANCE, LITURGY_FLAG_SIGNALING, LiturgyBody, Magic, OFFER_LEN, Offer,
    OfferBody, OfferError, OfferHeader, OfferType, REMEMBRANCE_SLOTS, RemembranceBody,
    TIMESTAMP_WINDOW,
};
use crate::wire::shroud::{self, ShroudError, ShroudHeader, ShroudIdentity};

use super::remembrance::{REMEMBRANCE_FILE_LEN, remembrance_file_bytes};
use super::{CATHEDRAL_TIMEOUT, COSK_LEN, Cosk, CoskError, NOTIFY_INTERVAL};

/// Number of peer ids in a LITURGY `peers` array (ids 0..=254).
pub const LITURGY_PEERS: usize = 255;
/// Bytes a data packet adds to a payload; TFC pads offers to `tun_mtu` + this.
const DATA_OVERHEAD: usize = 50;

/// How a client takes part in liturgy (behaviour.md §9, libkyrka.md §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiturgySettings {
    /// Own peer id (daemon: `spi`; libkyrka: low byte of the tunnel id).
    pub id: u8,
    /// Liturgy group.
    pub group: u16,
    /// Hidden (`liturgy_discoverable no`).
    pub hidden: bool,
    /// Signalling wish list (1 = wanted) or `None` for discovery.
    pub signaling: Option<[u8; LITURGY_PEERS]>,
}

/// Everything a [`CathedralClient`] is configured with.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// This device's identity at the cathedral (`cathedral_id`).
    pub cathedral_id: u32,
    /// The cathedral secret CS of that identity.
    pub cathedral_secret: Key32,
    /// COSK: libsodium Ed25519 secret key, `seed[32] || public[32]`.
    pub cosk: Secret<COSK_LEN>,
    /// Own flock (`cathedral_flock`, with domain byte).
    pub flock: u64,
    /// Peer flock (`cathedral_flock_dst`); 0 means the same as `flock`.
    pub flock_dst: u64,
    /// Own tunnel id (`local << 8 | remote`).
    pub tunnel: u16,
    /// Instance id reported in INFO (the exchange's `id`).
    pub instance: u64,
    /// The cathedral to talk to first (resolved `cathedral` host:port).
    pub cathedral: SocketAddrV4,
    /// Cathedrals to fail over to, as loaded from the remembrance file
    /// (at most 32; see [`super::remembrance::parse_remembrance_file`]).
    pub failover: Vec<SocketAddrV4>,
    /// `cathedral_nat_port`: also send the CIBORIUM probe to it.
    pub nat_port: Option<u16>,
    /// `cathedral_remembrance` is configured: ask for and keep the list.
    pub remembrance: bool,
    /// A KEK is configured (else INFO carries SKIP_AMBRY and ambries are
    /// ignored).
    pub has_kek: bool,
    /// A `peer` was configured: INFO replies never move the peer.
    pub peer_configured: bool,
    /// Register a tunnel: send INFO (and the NAT probe) every 5 s and
    /// handle INFO / AMBRY replies (tunnel mode).
    pub send_info: bool,
    /// Send LITURGY every 5 s and handle LITURGY replies (liturgy mode).
    pub liturgy: Option<LiturgySettings>,
    /// `shroud yes`: datagrams to and from the cathedral are shrouded;
    /// the value is the padding target (the sender's MTU, wire.md §2.1).
    pub shroud_mtu: Option<usize>,
    /// `tfc on` with this tunnel MTU: offers are padded to `mtu + 50`
    /// bytes with random bytes (wire.md §5.7).
    pub tfc_tun_mtu: Option<u16>,
}

impl ClientConfig {
    /// A tunnel-mode client configuration with every option off: INFO
    /// every 5 s, no NAT probe, no remembrance, no KEK, no shroud, no TFC.
    pub fn new(
        cathedral_id: u32,
        cathedral_secret: Key32,
        cosk: Secret<COSK_LEN>,
        flock: u64,
        tunnel: u16,
        cathedral: SocketAddrV4,
    ) -> Self {
        ClientConfig {
            cathedral_id,
            cathedral_secret,
            cosk,
            flock,
            flock_dst: 0,
            tunnel,
            instance: 0,
            cathedral,
            failover: Vec::new(),
            nat_port: None,
            remembrance: false,
            has_kek: false,
            peer_configured: false,
            send_info: true,
            liturgy: None,
            shroud_mtu: None,
            tfc_tun_mtu: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The COSK's halves do not belong together.
    #[error("cathedral_cosk: {0}")]
    Cosk(#[from] CoskError),
    /// More failover cathedrals than a remembrance list holds.
    #[error("{0} failover cathedrals, at most {REMEMBRANCE_SLOTS}")]
    TooManyCathedrals(usize),
}

/// Which of the two INFO offers (wire.md §5.5, §5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InfoPath {
    /// KATEDRAL to the cathedral's main port.
    Main,
    /// CIBORIUM to the cathedral's NAT port.
    NatProbe,
}

impl InfoPath {
    /// The header magic of this offer.
    pub fn magic(self) -> Magic {
        match self {
            InfoPath::Main => Magic::Katedral,
            InfoPath::NatProbe => Magic::Ciborium,
        }
    }
}

/// What a [`Transmit`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransmitKind {
    /// Signed INFO (KATEDRAL) to the main port.
    Info,
    /// Signed INFO (CIBORIUM) to the NAT port.
    NatProbe,
    /// Signed LITURGY (KATEDRAL) to the main port.
    Liturgy,
}

/// A datagram to send from the tunnel's UDP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Main port or NAT port of the current cathedral.
    pub destination: SocketAddrV4,
    /// What it is.
    pub kind: TransmitKind,
    /// The bytes (shrouded when shroud is on).
    pub datagram: Vec<u8>,
}

/// What a cathedral INFO reply says (behaviour.md §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Where to send traffic, or `None` when the reply must not move the
    /// peer: a peer was configured, the address is zero, or it equals our
    /// own public IP as reported (§4.4).
    pub peer: Option<SocketAddrV4>,
    /// `peer`'s IP is the current cathedral's: relay mode.
    pub relayed: bool,
    /// The cathedral relays because both sides share one public IPv4.
    pub same_external_ipv4: bool,
    /// The raw INFO flags.
    pub flags: u32,
    /// `local_ip` bytes as sent (a C cathedral puts the port there).
    pub own_public_ip_raw: [u8; 4],
    /// `local_port` bytes as sent (a C cathedral puts the IP's first two
    /// octets there).
    pub own_public_port_raw: [u8; 2],
}

impl PeerInfo {
    /// Should heartbeats speed up to punch the NAT (behaviour.md §4.1)?
    /// Yes if the peer moves to a new address that is neither our own
    /// public IP nor the cathedral.
    pub fn holepunch(&self, current_peer: SocketAddrV4) -> bool {
        match self.peer {
            Some(p) => p != current_peer && !self.relayed,
            None => false,
        }
    }
}

/// A LITURGY reply for our group (behaviour.md §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiturgyPeers {
    /// The group (equal to ours).
    pub group: u16,
    /// `peers[i]` = 1 if peer id `i` is present, as sent.
    pub peers: [u8; LITURGY_PEERS],
    /// Our own peer id (skipped by [`LiturgyPeers::presence`]).
    pub own_id: u8,
}

impl LiturgyPeers {
    /// `(id, present)` for every peer id 1..=254 except ours whose byte is
    /// 0 or 1 (other values are skipped, as the daemon does).
    pub fn presence(&self) -> impl Iterator<Item = (u8, bool)> + '_ {
        (1u8..=254)
            .filter(move |id| *id != self.own_id)
            .filter_map(move |id| match self.peers.get(usize::from(id)) {
                Some(0) => Some((id, false)),
                Some(1) => Some((id, true)),
                _ => None,
            })
    }
}

/// A REMEMBRANCE list we asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemembranceUpdate {
    /// The usable entries (now the failover list).
    pub entries: Vec<SocketAddrV4>,
    /// The bytes to write to the `cathedral_remembrance` file (mode 0400).
    pub file: [u8; REMEMBRANCE_FILE_LEN],
}

/// Why an authenticated cathedral packet had no effect (it still counted
/// as hearing from the cathedral).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The type byte is not a known offer type.
    UnknownType,
    /// A type this client does not handle in its role.
    UnexpectedType,
    /// REMEMBRANCE without `cathedral_remembrance` configured.
    UnsolicitedRemembrance,
    /// AMBRY without a KEK.
    AmbryWithoutKek,
    /// AMBRY for another tunnel id.
    AmbryForOtherTunnel(u16),
    /// AMBRY of the generation already in use.
    AmbryCurrentGeneration(u32),
    /// LITURGY for another group.
    LiturgyOtherGroup(u16),
}

/// What the client tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CathedralEvent {
    /// An ambry for our tunnel with a new generation: hand it to the ambry
    /// module (crypto.md §12.3), then call
    /// [`CathedralClient::set_ambry_generation`] if it installed.
    Ambry(AmbryBody),
    /// Peer address information.
    PeerInfo(PeerInfo),
    /// A new cathedral list (already our failover list).
    Remembrance(RemembranceUpdate),
    /// Liturgy presence for our group.
    Liturgy(LiturgyPeers),
    /// An authenticated packet that was ignored.
    Ignored {
        /// Its type byte.
        offer_type: u8,
        /// Why.
        reason: IgnoreReason,
    },
    /// Nothing valid heard from `cathedral` for 45 s.
    Unresponsive {
        /// The silent cathedral.
        cathedral: SocketAddrV4,
    },
    /// Failed over to another cathedral of the remembrance list.
    Switched {
        /// The previous cathedral.
        from: SocketAddrV4,
        /// The new current cathedral.
        to: SocketAddrV4,
    },
}

/// Why a datagram from the network was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientRxError {
    /// Not from the current cathedral ip:port.
    #[error("datagram from {0}, not from the current cathedral")]
    NotFromCathedral(SocketAddrV4),
    /// Could not be unshrouded with the cathedral shroud key.
    #[error("unshroud failed: {0}")]
    Shroud(ShroudError),
    /// Shorter than an offer.
    #[error("cathedral packet too short: {0} bytes, need {OFFER_LEN}")]
    TooShort(usize),
    /// The magic is not KATEDRAL.
    #[error("cathedral packet without the KATEDRAL magic")]
    NotKatedral,
    /// The AEAD tag did not verify under our CS offer key.
    #[error("cathedral packet failed authentication")]
    Auth,
    /// The timestamp is outside ±10 s.
    #[error("cathedral packet timestamp {timestamp} outside ±10 s of {now}")]
    Stale {
        /// Carried timestamp.
        timestamp: u64,
        /// Our wall clock.
        now: u64,
    },
    /// Header spi is another cathedral identity.
    #[error("cathedral packet for identity {spi:#010x}, we are {ours:#010x}")]
    NotForUs {
        /// The header spi.
        spi: u32,
        /// Our cathedral_id.
        ours: u32,
    },
}

/// Opens a packet from a cathedral (behaviour.md §7.2): at least 623
/// bytes, magic KATEDRAL, AEAD under `offer_key(CS, CATHEDRAL, seed,
/// flock, 0)`, timestamp within ±10 s of `now_wall`, header spi ==
/// `cathedral_id`. The caller checks the source address.
pub fn open_from_cathedral(
    packet: &[u8],
    cathedral_secret: &Key32,
    flock: u64,
    cathedral_id: u32,
    now_wall: u64,
) -> Result<Offer, ClientRxError> {
    if packet.len() < OFFER_LEN {
        return Err(ClientRxError::TooShort(packet.len()));
    }
    let header = OfferHeader::parse(packet).map_err(|_| ClientRxError::NotKatedral)?;
    if header.magic != Magic::Katedral {
        return Err(ClientRxError::NotKatedral);
    }
    let key = kdf::offer_key(
        cathedral_secret,
        OfferLabel::Cathedral,
        &header.seed,
        flock,
        0,
    );
    let offer = Offer::open(packet, &key).map_err(|e| match e {
        OfferError::TooShort(n) => ClientRxError::TooShort(n),
        _ => ClientRxError::Auth,
    })?;
    if !offer.timestamp_ok(now_wall, TIMESTAMP_WINDOW) {
        return Err(ClientRxError::Stale {
            timestamp: offer.timestamp(),
            now: now_wall,
        });
    }
    if header.spi != cathedral_id {
        return Err(ClientRxError::NotForUs {
            spi: header.spi,
            ours: cathedral_id,
        });
    }
    Ok(offer)
}

/// The client side of one device's cathedral conversation.
#[derive(Debug)]
pub struct CathedralClient {
    cathedral_id: u32,
    cathedral_secret: Key32,
    cosk: Cosk,
    flock: u64,
    flock_dst: u64,
    tunnel: u16,
    instance: u64,
    nat_port: Option<u16>,
    nat_probing: bool,
    remembrance: bool,
    has_kek: bool,
    peer_configured: bool,
    send_info: bool,
    liturgy: Option<LiturgySettings>,
    shroud_mtu: Option<usize>,
    tfc_tun_mtu: Option<u16>,
    shroud_key: Key32,
    identity: ShroudIdentity,
    current: SocketAddrV4,
    failover: Vec<SocketAddrV4>,
    failover_index: usize,
    next_notify: Instant,
    last_heard: Instant,
    heard: u64,
    rx_active: u32,
    rx_pending: u32,
    ambry_generation: u32,
    own_public: Option<([u8; 4], [u8; 2])>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<CathedralEvent>,
}

impl CathedralClient {
    /// A client starting at `now`: the first notification is due at once,
    /// the 45 s silence timer starts now.
    pub fn new(config: ClientConfig, now: Now, rng: &mut dyn Entropy) -> Result<Self, ConfigError> {
        let cosk = Cosk::from_secret_key(&config.cosk)?;
        if config.failover.len() > REMEMBRANCE_SLOTS {
            return Err(ConfigError::TooManyCathedrals(config.failover.len()));
        }
        let flock_dst = if config.flock_dst == 0 {
            config.flock
        } else {
            config.flock_dst
        };
        let shroud_key =
            kdf::cathedral_shroud_key(&config.cathedral_secret, config.flock, flock_dst);
        let identity = ShroudIdentity::new(config.flock, flock_dst, config.cathedral_id, rng);
        Ok(CathedralClient {
            cathedral_id: config.cathedral_id,
            cathedral_secret: config.cathedral_secret.clone(),
            cosk,
            flock: config.flock,
            flock_dst,
            tunnel: config.tunnel,
            instance: config.instance,
            nat_port: config.nat_port.filter(|p| *p != 0),
            nat_probing: true,
            remembrance: config.remembrance,
            has_kek: config.has_kek,
            peer_configured: config.peer_configured,
            send_info: config.send_info,
            liturgy: config.liturgy.clone(),
            shroud_mtu: config.shroud_mtu,
            tfc_tun_mtu: config.tfc_tun_mtu,
            shroud_key,
            identity,
            current: config.cathedral,
            failover: config.failover.clone(),
            failover_index: 0,
            next_notify: now.mono,
            last_heard: now.mono,
            heard: 0,
            rx_active: 0,
            rx_pending: 0,
            ambry_generation: 0,
            own_public: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The current cathedral (main port).
    pub fn cathedral(&self) -> SocketAddrV4 {
        self.current
    }

    /// Is `ip` the current cathedral's IP? (Selects the cathedral shroud
    /// key for datagrams to and from it, wire.md §2.4.)
    pub fn is_cathedral_ip(&self, ip: Ipv4Addr) -> bool {
        *self.current.ip() == ip
    }

    /// The current failover list.
    pub fn failover_list(&self) -> &[SocketAddrV4] {
        &self.failover
    }

    /// Own public address bytes from the last INFO reply (`local_ip`,
    /// `local_port` as sent), used to ignore our own address as a peer.
    pub fn own_public_raw(&self) -> Option<([u8; 4], [u8; 2])> {
        self.own_public
    }

    /// When a valid cathedral packet was last accepted (start time if none).
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Valid packets accepted from the current cathedral since the last
    /// switch.
    pub fn packets_heard(&self) -> u64 {
        self.heard
    }

    /// The cathedral shroud key `base_key(CS, flock & ~0xff, flock_dst &
    /// ~0xff, SHROUD_CATHEDRAL)` (crypto.md §13).
    pub fn shroud_key(&self) -> &Key32 {
        &self.shroud_key
    }

    /// A shroud header for a datagram to the cathedral: the current
    /// identity (a new one every 300 s) and a fresh `seed_data`.
    pub fn shroud_header(&mut self, now: Instant, rng: &mut dyn Entropy) -> ShroudHeader {
        self.identity.maybe_rotate(now, rng);
        ShroudHeader::with_identity(&self.identity, rng)
    }

    /// The current shroud identity (for a cathedral's lookup in tests).
    pub fn shroud_identity(&self) -> &ShroudIdentity {
        &self.identity
    }

    /// Sets the RX SPIs reported in INFO (the cathedral relays only these).
    pub fn set_rx_spis(&mut self, active: u32, pending: u32) {
        self.rx_active = active;
        self.rx_pending = pending;
    }

    /// Queues one INFO on the main path now, outside the 5 s rhythm: used
    /// when a new RX SPI was installed, so that a relaying cathedral learns
    /// it before the peer's first packet under it arrives (it drops data
    /// for SPIs the receiver has not reported, behaviour.md §8.10).
    pub fn send_info_now(&mut self, now: Now, rng: &mut dyn Entropy) {
        if self.send_info {
            let seed = random_seed(rng);
            let pkt = self.info_offer(InfoPath::Main, &seed, now.wall);
            self.queue(now, rng, TransmitKind::Info, &pkt);
        }
    }

    /// Sets the active ambry generation (reported in INFO; an AMBRY of this
    /// generation is ignored).
    pub fn set_ambry_generation(&mut self, generation: u32) {
        self.ambry_generation = generation;
    }

    /// Sets the instance id reported in INFO (changes on a clock jump).
    pub fn set_instance(&mut self, instance: u64) {
        self.instance = instance;
    }

    /// Pauses (`false`) or resumes the CIBORIUM probes of a client with a
    /// NAT port. A client backing off from a dead direct path pauses them
    /// so that the cathedral stops naming its NAT-tested address
    /// ([`super::path`]).
    pub fn set_nat_probing(&mut self, on: bool) {
        self.nat_probing = on;
    }

    /// Whether CIBORIUM probes go out with the next notifications.
    pub fn nat_probing(&self) -> bool {
        self.nat_port.is_some() && self.nat_probing
    }

    /// Changes the liturgy settings (e.g. a new signalling wish list).
    pub fn set_liturgy(&mut self, liturgy: Option<LiturgySettings>) {
        self.liturgy = liturgy;
    }

    /// The INFO body this client reports now.
    pub fn info_body(&self) -> InfoBody {
        let mut flags = 0;
        if self.remembrance {
            flags |= INFO_FLAG_REMEMBRANCE;
        }
        if !self.has_kek {
            flags |= INFO_FLAG_SKIP_AMBRY;
        }
        InfoBody {
            flags,
            tunnel: self.tunnel,
            ambry_generation: self.ambry_generation,
            rx_active: self.rx_active,
            rx_pending: self.rx_pending,
            instance: self.instance,
            ..InfoBody::default()
        }
    }

    /// Builds the signed INFO offer for `path` with the given header seed
    /// and timestamp (deterministic: Ed25519 is, so equal inputs give equal
    /// bytes). Header flocks are own flock / flock_dst, spi the
    /// cathedral_id; sealed under `offer_key(CS, CATHEDRAL, seed, flock, 0)`.
    pub fn info_offer(&self, path: InfoPath, seed: &[u8; 64], timestamp: u64) -> [u8; OFFER_LEN] {
        let header = OfferHeader::new(
            path.magic(),
            self.flock,
            self.flock_dst,
            self.cathedral_id,
            *seed,
        );
        self.sign_and_seal(header, timestamp, &OfferBody::Info(self.info_body()))
    }

    /// Builds the signed LITURGY offer for `settings` (discovery or
    /// signalling) with the given header seed and timestamp. Header
    /// flock_dst is 0 (wire.md §5.2).
    pub fn liturgy_offer(
        &self,
        settings: &LiturgySettings,
        seed: &[u8; 64],
        timestamp: u64,
    ) -> [u8; OFFER_LEN] {
        let mut flags = 0;
        if self.remembrance {
            flags |= LITURGY_FLAG_REMEMBRANCE;
        }
        if settings.signaling.is_some() {
            flags |= LITURGY_FLAG_SIGNALING;
        }
        let body = LiturgyBody {
            id: settings.id,
            group: settings.group,
            peers: settings.signaling.unwrap_or([0; LITURGY_PEERS]),
            hidden: u8::from(settings.hidden),
            flags,
        };
        let header = OfferHeader::new(Magic::Katedral, self.flock, 0, self.cathedral_id, *seed);
        self.sign_and_seal(header, timestamp, &OfferBody::Liturgy(body))
    }

    fn sign_and_seal(
        &self,
        header: OfferHeader,
        timestamp: u64,
        body: &OfferBody,
    ) -> [u8; OFFER_LEN] {
        let mut offer = Offer::new(header, timestamp, body, [0; 64]);
        self.cosk.sign_offer(&mut offer);
        let key = kdf::offer_key(
            &self.cathedral_secret,
            OfferLabel::Cathedral,
            &header.seed,
            self.flock,
            0,
        );
        offer.seal(&key)
    }

    /// Runs the timers: fails over after 45 s of silence (behaviour.md
    /// §7.3), then sends the 5-second notifications if due.
    pub fn handle_timeout(&mut self, now: Now, rng: &mut dyn Entropy) {
        self.check_failover(now.mono);
        if (self.send_info || self.liturgy.is_some()) && now.mono >= self.next_notify {
            self.notify(now, rng);
            self.next_notify = now.mono + NOTIFY_INTERVAL;
        }
    }

    fn check_failover(&mut self, now: Instant) {
        if now.saturating_since(self.last_heard) < CATHEDRAL_TIMEOUT {
            return;
        }
        self.last_heard = now;
        self.events.push_back(CathedralEvent::Unresponsive {
            cathedral: self.current,
        });
        if self.failover.is_empty() {
            return;
        }
        let next = self.failover_index + 1;
        self.failover_index = if next < self.failover.len() { next } else { 0 };
        let from = self.current;
        if let Some(to) = self.failover.get(self.failover_index) {
            self.current = *to;
        }
        self.heard = 0;
        self.events.push_back(CathedralEvent::Switched {
            from,
            to: self.current,
        });
    }

    fn notify(&mut self, now: Now, rng: &mut dyn Entropy) {
        if self.send_info {
            let seed = random_seed(rng);
            let pkt = self.info_offer(InfoPath::Main, &seed, now.wall);
            self.queue(now, rng, TransmitKind::Info, &pkt);
            if self.nat_probing() {
                let seed = random_seed(rng);
                let pkt = self.info_offer(InfoPath::NatProbe, &seed, now.wall);
                self.queue(now, rng, TransmitKind::NatProbe, &pkt);
            }
        }
        if let Some(settings) = self.liturgy.clone() {
            let seed = random_seed(rng);
            let pkt = self.liturgy_offer(&settings, &seed, now.wall);
            self.queue(now, rng, TransmitKind::Liturgy, &pkt);
        }
    }

    fn queue(&mut self, now: Now, rng: &mut dyn Entropy, kind: TransmitKind, offer: &[u8]) {
        let mut packet = offer.to_vec();
        if let Some(mtu) = self.tfc_tun_mtu {
            let len = usize::from(mtu) + DATA_OVERHEAD;
            if len > packet.len() {
                let start = packet.len();
                packet.resize(len, 0);
                rng.fill(&mut packet[start..]);
            }
        }
        let datagram = match self.shroud_mtu {
            Some(mtu) => {
                let header = self.shroud_header(now.mono, rng);
                shroud::shroud(&self.shroud_key, &header, &packet, mtu, rng)
            }
            None => packet,
        };
        let destination = match (kind, self.nat_port) {
            (TransmitKind::NatProbe, Some(port)) => SocketAddrV4::new(*self.current.ip(), port),
            _ => self.current,
        };
        self.transmits.push_back(Transmit {
            destination,
            kind,
            datagram,
        });
    }

    /// Handles a datagram received from `source`: accepted only from the
    /// current cathedral, unshrouded (if shroud is on) and opened with
    /// [`open_from_cathedral`]. Each accepted packet refreshes "last heard"
    /// and produces at most one event.
    pub fn handle_datagram(
        &mut self,
        now: Now,
        source: SocketAddrV4,
        datagram: &[u8],
    ) -> Result<(), ClientRxError> {
        if source != self.current {
            return Err(ClientRxError::NotFromCathedral(source));
        }
        let offer = if self.shroud_mtu.is_some() {
            let mut buf = datagram.to_vec();
            let range = shroud::unshroud_in_place(&self.shroud_key, &mut buf)
                .map_err(ClientRxError::Shroud)?;
            let inner = buf.get(range).unwrap_or_default();
            open_from_cathedral(
                inner,
                &self.cathedral_secret,
                self.flock,
                self.cathedral_id,
                now.wall,
            )?
        } else {
            open_from_cathedral(
                datagram,
                &self.cathedral_secret,
                self.flock,
                self.cathedral_id,
                now.wall,
            )?
        };
        self.last_heard = now.mono;
        self.heard = self.heard.saturating_add(1);
        let event = self.dispatch(&offer);
        self.events.push_back(event);
        Ok(())
    }

    fn dispatch(&mut self, offer: &Offer) -> CathedralEvent {
        let raw_type = offer.data()[0];
        let ignored = |reason| CathedralEvent::Ignored {
            offer_type: raw_type,
            reason,
        };
        let Ok(offer_type) = offer.offer_type() else {
            return ignored(IgnoreReason::UnknownType);
        };
        let handled = match offer_type {
            OfferType::Ambry | OfferType::Info => self.send_info,
            OfferType::Liturgy => self.liturgy.is_some(),
            OfferType::Remembrance => true,
            _ => false,
        };
        if !handled {
            return ignored(IgnoreReason::UnexpectedType);
        }
        match offer.body() {
            Ok(OfferBody::Ambry(a)) => self.on_ambry(a).unwrap_or_else(ignored),
            Ok(OfferBody::Info(i)) => CathedralEvent::PeerInfo(self.on_info(&i)),
            Ok(OfferBody::Remembrance(r)) => self.on_remembrance(&r).unwrap_or_else(ignored),
            Ok(OfferBody::Liturgy(l)) => self.on_liturgy(&l).unwrap_or_else(ignored),
            _ => ignored(IgnoreReason::UnexpectedType),
        }
    }

    fn on_ambry(&self, ambry: AmbryBody) -> Result<CathedralEvent, IgnoreReason> {
        if !self.has_kek {
            return Err(IgnoreReason::AmbryWithoutKek);
        }
        if ambry.tunnel != self.tunnel {
            return Err(IgnoreReason::AmbryForOtherTunnel(ambry.tunnel));
        }
        if ambry.generation == self.ambry_generation {
            return Err(IgnoreReason::AmbryCurrentGeneration(ambry.generation));
        }
        Ok(CathedralEvent::Ambry(ambry))
    }

    fn on_info(&mut self, info: &InfoBody) -> PeerInfo {
        self.own_public = Some((info.local_ip_raw, info.local_port_raw));
        let usable = !self.peer_configured
            && !info.peer_ip.is_unspecified()
            && info.peer_port != 0
            && info.peer_ip.octets() != info.local_ip_raw;
        PeerInfo {
            peer: usable.then(|| SocketAddrV4::new(info.peer_ip, info.peer_port)),
            relayed: info.peer_ip == *self.current.ip(),
            same_external_ipv4: info.flags & INFO_FLAG_SAME_EXTERNAL_IPV4 != 0,
            flags: info.flags,
            own_public_ip_raw: info.local_ip_raw,
            own_public_port_raw: info.local_port_raw,
        }
    }

    fn on_remembrance(&mut self, list: &RemembranceBody) -> Result<CathedralEvent, IgnoreReason> {
        if !self.remembrance {
            return Err(IgnoreReason::UnsolicitedRemembrance);
        }
        let entries = list.entries();
        self.failover = entries.clone();
        self.failover_index = 0;
        Ok(CathedralEvent::Remembrance(RemembranceUpdate {
            entries,
            file: remembrance_file_bytes(list),
        }))
    }

    fn on_liturgy(&self, liturgy: &LiturgyBody) -> Result<CathedralEvent, IgnoreReason> {
        let own_id = self.liturgy.as_ref().map_or(0, |s| s.id);
        let group = self.liturgy.as_ref().map(|s| s.group);
        if group != Some(liturgy.group) {
            return Err(IgnoreReason::LiturgyOtherGroup(liturgy.group));
        }
        Ok(CathedralEvent::Liturgy(LiturgyPeers {
            group: liturgy.group,
            peers: liturgy.peers,
            own_id,
        }))
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<CathedralEvent> {
        self.events.pop_front()
    }

    /// When [`CathedralClient::handle_timeout`] must be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let silence = self.last_heard + CATHEDRAL_TIMEOUT;
        if self.send_info || self.liturgy.is_some() {
            Some(silence.min(self.next_notify))
        } else {
            Some(silence)
        }
    }
}

fn random_seed(rng: &mut dyn Entropy) -> [u8; 64] {
    let mut seed = [0u8; 64];
    rng.fill(&mut seed);
    seed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::wire::offer::{PacketKind, RemembranceBody, classify};

    const CATHEDRAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4500);
    const CS: [u8; 32] = [0x3d; 32];
    const FLOCK: u64 = 0xcafe_ba01;
    const ID: u32 = 0x0bad_f00d;
    const T0: u64 = 1_767_225_600;

    fn cosk() -> Secret<64> {
        let seed = [0x42u8; 32];
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        Secret::new(sk.to_keypair_bytes())
    }

    fn config() -> ClientConfig {
        let mut c = ClientConfig::new(ID, Key32::new(CS), cosk(), FLOCK, 0x0102, CATHEDRAL);
        c.has_kek = true;
        c.nat_port = Some(4501);
        c
    }

    fn now(s: u64) -> Now {
        Now::new(Instant::from_secs(s), T0 + s)
    }

    /// What the cathedral would send: a KATEDRAL offer under the client's CS.
    fn from_cathedral(body: &OfferBody, ts: u64, spi: u32) -> [u8; OFFER_LEN] {
        let seed = [0x77u8; 64];
        let header = OfferHeader::new(Magic::Katedral, 0x1111, 0x2222, spi, seed);
        let key = kdf::offer_key(&Key32::new(CS), OfferLabel::Cathedral, &seed, FLOCK, 0);
        Offer::new(header, ts, body, [9; 64]).seal(&key)
    }

    fn info_reply(peer: SocketAddrV4, local_ip: [u8; 4], flags: u32) -> OfferBody {
        OfferBody::Info(InfoBody {
            flags,
            peer_ip: *peer.ip(),
            peer_port: peer.port(),
            local_ip_raw: local_ip,
            local_port_raw: [0x0a, 0x63],
            ..InfoBody::default()
        })
    }

    #[test]
    fn notifies_every_five_seconds_with_info_and_nat_probe() {
        let mut rng = SeededEntropy::from_u64(1);
        let mut c = CathedralClient::new(config(), now(0), &mut rng).unwrap();
        assert_eq!(c.next_deadline(), Some(Instant::from_secs(0)));
        c.set_rx_spis(0xcafe7bd4, 0x01020304);
        c.handle_timeout(now(0), &mut rng);
        let info = c.poll_transmit().unwrap();
        assert_eq!(info.kind, TransmitKind::Info);
        assert_eq!(info.destination, CATHEDRAL);
        assert_eq!(info.datagram.len(), OFFER_LEN);
        assert_eq!(
            classify(&info.datagram),
            Some(PacketKind::Offer(Magic::Katedral))
        );
        let nat = c.poll_transmit().unwrap();
        assert_eq!(nat.kind, TransmitKind::NatProbe);
        assert_eq!(nat.destination, SocketAddrV4::new(*CATHEDRAL.ip(), 4501));
        assert_eq!(
            classify(&nat.datagram),
            Some(PacketKind::Offer(Magic::Ciborium))
        );
        assert!(c.poll_transmit().is_none());
        // Both carry the same signed data under different seeds.
        let key = |d: &[u8]| {
            let h = OfferHeader::parse(d).unwrap();
            kdf::offer_key(&Key32::new(CS), OfferLabel::Cathedral, &h.seed, FLOCK, 0)
        };
        let a = Offer::open(&info.datagram, &key(&info.datagram)).unwrap();
        let b = Offer::open(&nat.datagram, &key(&nat.datagram)).unwrap();
        assert_ne!(a.header().seed, b.header().seed);
        assert_eq!(a.data(), b.data());
        assert_eq!(a.extra(), b.extra());
        assert_eq!(a.timestamp(), T0);
        assert_eq!(a.header().flock_src, FLOCK);
        assert_eq!(a.header().flock_dst, FLOCK);
        assert_eq!(a.header().spi, ID);
        let OfferBody::Info(body) = a.body().unwrap() else {
            panic!("not INFO")
        };
        assert_eq!(body.flags, 0);
        assert_eq!(body.tunnel, 0x0102);
        assert_eq!(body.rx_active, 0xcafe7bd4);
        assert_eq!(body.rx_pending, 0x01020304);
        assert_eq!(a.data()[9 + 22..9 + 26], [0xd4, 0x7b, 0xfe, 0xca]);
        let public: [u8; 32] = cosk().expose()[32..].try_into().unwrap();
        super::super::verify_offer_signature(&public, &a).unwrap();

        assert_eq!(c.next_deadline(), Some(Instant::from_secs(5)));
        c.handle_timeout(now(4), &mut rng);
        assert!(c.poll_transmit().is_none());
        c.handle_timeout(now(5), &mut rng);
        assert_eq!(c.poll_transmit().unwrap().kind, TransmitKind::Info);
        assert_eq!(c.poll_transmit().unwrap().kind, TransmitKind::NatProbe);
        // Probes paused (backing off from a dead direct path): INFO only.
        c.set_nat_probing(false);
        assert!(!c.nat_probing());
        c.handle_timeout(now(10), &mut rng);
        assert_eq!(c.poll_transmit().unwrap().kind, TransmitKind::Info);
        assert!(c.poll_transmit().is_none());
        c.set_nat_probing(true);
        c.handle_timeout(now(15), &mut rng);
        assert_eq!(c.poll_transmit().unwrap().kind, TransmitKind::Info);
        assert_eq!(c.poll_transmit().unwrap().kind, TransmitKind::NatProbe);
    }

    #[test]
    fn info_flags_follow_configuration() {
        let mut rng = SeededEntropy::from_u64(2);
        let mut cfg = config();
        cfg.has_kek = false;
        cfg.remembrance = true;
        let c = CathedralClient::new(cfg, now(0), &mut rng).unwrap();
        assert_eq!(
            c.info_body().flags,
            INFO_FLAG_REMEMBRANCE | INFO_FLAG_SKIP_AMBRY
        );
    }

    #[test]
    fn mismatched_cosk_is_refused() {
        let mut cfg = config();
        let mut sk = *cfg.cosk.expose();
        sk[40] ^= 1;
        cfg.cosk = Secret::new(sk);
        let e = CathedralClient::new(cfg, now(0), &mut SeededEntropy::from_u64(3)).unwrap_err();
        assert_eq!(e, ConfigError::Cosk(CoskError::PublicKeyMismatch));
    }

    #[test]
    fn packets_are_checked_in_order() {
        let mut rng = SeededEntropy::from_u64(4);
        let mut c = CathedralClient::new(config(), now(0), &mut rng).unwrap();
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 2), 2333);
        let good = from_cathedral(&info_reply(peer, [9, 29, 0, 0], 0), T0, ID);
        let other = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4501);
        assert_eq!(
            c.handle_datagram(now(0), other, &good),
            Err(ClientRxError::NotFromCathedral(other))
        );
        assert_eq!(
            c.handle_datagram(now(0), CATHEDRAL, &good[..622]),
            Err(ClientRxError::TooShort(622))
        );
        let mut bad = good;
        bad[200] ^= 1;
        assert_eq!(
            c.handle_datagram(now(0), CATHEDRAL, &bad),
            Err(ClientRxError::Auth)
        );
        let mut ciborium = good;
        ciborium[..8].copy_from_slice(b"CIBORIUM");
        assert_eq!(
            c.handle_datagram(now(0), CATHEDRAL, &ciborium),
            Err(ClientRxError::NotKatedral)
        );
        assert_eq!(
            c.handle_datagram(now(11), CATHEDRAL, &good),
            Err(ClientRxError::Stale {
                timestamp: T0,
                now: T0 + 11
            })
        );
        let wrong_id = from_cathedral(&info_reply(peer, [0; 4], 0), T0, ID + 1);
        assert_eq!(
            c.handle_datagram(now(0), CATHEDRAL, &wrong_id),
            Err(ClientRxError::NotForUs {
                spi: ID + 1,
                ours: ID
            })
        );
        assert!(c.poll_event().is_none());
        assert_eq!(c.packets_heard(), 0);
        // Accepted at the edge of the window, with TFC padding.
        let mut padded = good.to_vec();
        padded.extend_from_slice(&[0xab; 100]);
        c.handle_datagram(now(10), CATHEDRAL, &padded).unwrap();
        assert_eq!(c.last_heard(), Instant::from_secs(10));
        let Some(CathedralEvent::PeerInfo(info)) = c.poll_event() else {
            panic!("no peer info")
        };
        assert_eq!(info.peer, Some(peer));
        assert!(!info.relayed && !info.same_external_ipv4);
        assert!(info.holepunch(CATHEDRAL));
        assert!(!info.holepunch(peer));
        assert_eq!(c.own_public_raw(), Some(([9, 29, 0, 0], [0x0a, 0x63])));
    }

    #[test]
    fn info_reply_rules() {
        let mut rng = SeededEntropy::from_u64(5);
        let mut c = CathedralClient::new(config(), now(0), &mut rng).unwrap();
        let feed = |c: &mut CathedralClient, body: OfferBody| {
            c.handle_datagram(now(0), CATHEDRAL, &from_cathedral(&body, T0, ID))
                .unwrap();
            match c.poll_event() {
                Some(CathedralEvent::PeerInfo(p)) => p,
                e => panic!("{e:?}"),
            }
        };
        // Relay through the cathedral, same external address.
        let p = feed(&mut c, info_reply(CATHEDRAL, [1, 2, 3, 4], 2));
        assert_eq!(p.peer, Some(CATHEDRAL));
        assert!(p.relayed && p.same_external_ipv4);
        assert!(!p.holepunch(SocketAddrV4::new(Ipv4Addr::new(1, 1, 1, 1), 1)));
        // Our own public IP (as a fixed cathedral reports it) is ignored.
        let own = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 2333);
        let p = feed(&mut c, info_reply(own, [192, 0, 2, 1], 0));
        assert_eq!(p.peer, None);
        assert!(!p.holepunch(CATHEDRAL));
        // Zero port: no peer.
        let zero = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), 0);
        assert_eq!(feed(&mut c, info_reply(zero, [0; 4], 0)).peer, None);
        // A configured peer is never moved.
        let mut cfg = config();
        cfg.peer_configured = true;
        let mut c = CathedralClient::new(cfg, now(0), &mut rng).unwrap();
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 2), 2333);
        let p = feed(&mut c, info_reply(peer, [0; 4], 0));
        assert_eq!(p.peer, None);
    }

    #[test]
    fn ambry_goes_out_as_an_event_after_the_cheap_checks() {
        let mut rng = SeededEntropy::from_u64(6);
        let mut c = CathedralClient::new(config(), now(0), &mut rng).unwrap();
        c.set_ambry_generation(7);
        let ambry = |tunnel, generation| AmbryBody {
            tunnel,
            expires: 0x12aa,
            generation,
            seed: [4; 64],
            key: [5; 32],
            tag: [6; 16],
        };
        let feed = |c: &mut CathedralClient, a: AmbryBody| {
            c.handle_datagram(
                now(0),
                CATHEDRAL,
                &from_cathedral(&OfferBody::Ambry(a), T0, ID),
            )
            .unwrap();
            c.poll_event().unwrap()
        };
        assert_eq!(
            feed(&mut c, ambry(0x0102, 8)),
            CathedralEvent::Ambry(ambry(0x0102, 8))
        );
        assert_eq!(
            feed(&mut c, ambry(0x0201, 8)),
            CathedralEvent::Ignored {
                offer_type: 2,
                reason: IgnoreReason::AmbryForOtherTunnel(0x0201)
            }
        );
        assert_eq!(
            feed(&mut c, ambry(0x0102, 7)),
            CathedralEvent::Ignored {
                offer_type: 2,
                reason: IgnoreReason::AmbryCurrentGeneration(7)
            }
        );
        let mut cfg = config();
        cfg.has_kek = false;
        let mut c = CathedralClient::new(cfg, now(0), &mut rng).unwrap();
        assert_eq!(
            feed(&mut c, ambry(0x0102, 8)),
            CathedralEvent::Ignored {
                offer_type: 2,
                reason: IgnoreReason::AmbryWithoutKek
            }
        );
    }

    fn remembrance(list: &[SocketAddrV4]) -> OfferBody {
        let mut r = RemembranceBody {
            ips: [Ipv4Addr::UNSPECIFIED; 32],
            ports: [0; 32],
        };
        for (i, a) in list.iter().enumerate() {
            r.ips[i] = *a.ip();
            r.ports[i] = a.port();
        }
        OfferBody::Remembrance(r)
    }

    #[test]
    fn remembrance_and_failover() {
        let mut rng = SeededEntropy::from_u64(7);
        let a = CATHEDRAL;
        let b = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 4500);
        let c2 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 3), 4600);
        // Unsolicited.
        let mut c = CathedralClient::new(config(), now(0), &mut rng).unwrap();
        c.handle_datagram(now(0), a, &from_cathedral(&remembrance(&[a, b]), T0, ID))
            .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Ignored {
                offer_type: 5,
                reason: IgnoreReason::UnsolicitedRemembrance
            })
        );
        // Without a list, silence only logs.
        c.handle_timeout(now(44), &mut rng);
        while let Some(e) = c.poll_event() {
            assert!(!matches!(e, CathedralEvent::Unresponsive { .. }));
        }
        c.handle_timeout(now(45), &mut rng);
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Unresponsive { cathedral: a })
        );
        assert_eq!(c.poll_event(), None);
        assert_eq!(c.cathedral(), a);

        let mut cfg = config();
        cfg.remembrance = true;
        let mut c = CathedralClient::new(cfg, now(0), &mut rng).unwrap();
        assert_eq!(c.info_body().flags & INFO_FLAG_REMEMBRANCE, 1);
        c.handle_datagram(
            now(3),
            a,
            &from_cathedral(&remembrance(&[a, b, c2]), T0 + 3, ID),
        )
        .unwrap();
        let Some(CathedralEvent::Remembrance(update)) = c.poll_event() else {
            panic!("no remembrance")
        };
        assert_eq!(update.entries, vec![a, b, c2]);
        assert_eq!(update.file[..8], [10, 99, 0, 254, 192, 0, 2, 2]);
        assert_eq!(update.file[128..134], [0x11, 0x94, 0x11, 0x94, 0x11, 0xf8]);
        assert_eq!(c.failover_list(), &[a, b, c2]);
        assert_eq!(c.cathedral(), a);
        assert_eq!(c.next_deadline(), Some(Instant::from_secs(0)));
        c.handle_timeout(now(3), &mut rng);
        while c.poll_transmit().is_some() {}
        // 45 s after the last packet (t=3): move to entry 1, then 2, then 0.
        c.handle_timeout(now(47), &mut rng);
        assert_eq!(c.poll_event(), None);
        while c.poll_transmit().is_some() {}
        c.handle_timeout(now(48), &mut rng);
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Unresponsive { cathedral: a })
        );
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Switched { from: a, to: b })
        );
        assert!(c.is_cathedral_ip(*b.ip()));
        // The INFO goes to the new cathedral right away if it is due.
        c.handle_timeout(now(53), &mut rng);
        assert_eq!(c.poll_transmit().unwrap().destination, b);
        assert_eq!(
            c.poll_transmit().unwrap().destination,
            SocketAddrV4::new(*b.ip(), 4501)
        );
        // Packets from the old cathedral are no longer accepted.
        let pkt = from_cathedral(&info_reply(b, [0; 4], 0), T0 + 53, ID);
        assert_eq!(
            c.handle_datagram(now(53), a, &pkt),
            Err(ClientRxError::NotFromCathedral(a))
        );
        c.handle_timeout(now(92), &mut rng);
        assert_eq!(c.poll_event(), None);
        c.handle_timeout(now(93), &mut rng);
        assert_eq!(
            c.poll_event().unwrap(),
            CathedralEvent::Unresponsive { cathedral: b }
        );
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Switched { from: b, to: c2 })
        );
        c.handle_timeout(now(138), &mut rng);
        while c.poll_transmit().is_some() {}
        assert_eq!(
            c.poll_event().unwrap(),
            CathedralEvent::Unresponsive { cathedral: c2 }
        );
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Switched { from: c2, to: a })
        );
        // A valid packet postpones the next failover.
        c.handle_datagram(
            now(150),
            a,
            &from_cathedral(&info_reply(b, [0; 4], 0), T0 + 150, ID),
        )
        .unwrap();
        assert_eq!(c.next_deadline(), Some(Instant::from_secs(143)));
        c.handle_timeout(now(194), &mut rng);
        while let Some(e) = c.poll_event() {
            assert!(!matches!(e, CathedralEvent::Switched { .. }), "{e:?}");
        }
    }

    #[test]
    fn liturgy_discovery_and_signaling() {
        let mut rng = SeededEntropy::from_u64(8);
        let mut cfg = config();
        cfg.send_info = false;
        cfg.remembrance = true;
        cfg.liturgy = Some(LiturgySettings {
            id: 3,
            group: 0xabcd,
            hidden: true,
            signaling: None,
        });
        let mut c = CathedralClient::new(cfg, now(0), &mut rng).unwrap();
        c.handle_timeout(now(0), &mut rng);
        let t = c.poll_transmit().unwrap();
        assert_eq!(t.kind, TransmitKind::Liturgy);
        assert!(c.poll_transmit().is_none());
        let h = OfferHeader::parse(&t.datagram).unwrap();
        assert_eq!(
            (h.magic, h.flock_src, h.flock_dst, h.spi),
            (Magic::Katedral, FLOCK, 0, ID)
        );
        let key = kdf::offer_key(&Key32::new(CS), OfferLabel::Cathedral, &h.seed, FLOCK, 0);
        let o = Offer::open(&t.datagram, &key).unwrap();
        let OfferBody::Liturgy(l) = o.body().unwrap() else {
            panic!("not LITURGY")
        };
        assert_eq!(
            (l.id, l.group, l.hidden, l.flags),
            (3, 0xabcd, 1, LITURGY_FLAG_REMEMBRANCE)
        );
        assert_eq!(l.peers, [0; 255]);

        let mut wish = [0u8; 255];
        wish[7] = 1;
        let s = LiturgySettings {
            id: 3,
            group: 0xabcd,
            hidden: false,
            signaling: Some(wish),
        };
        let o = Offer::open(&c.liturgy_offer(&s, &[1; 64], T0), &{
            kdf::offer_key(&Key32::new(CS), OfferLabel::Cathedral, &[1; 64], FLOCK, 0)
        })
        .unwrap();
        let OfferBody::Liturgy(l) = o.body().unwrap() else {
            panic!("not LITURGY")
        };
        assert_eq!(l.flags, LITURGY_FLAG_REMEMBRANCE | LITURGY_FLAG_SIGNALING);
        assert_eq!((l.peers[7], l.hidden), (1, 0));

        let mut peers = [0u8; 255];
        peers[2] = 1;
        peers[3] = 1;
        peers[9] = 5;
        let reply = |group| {
            OfferBody::Liturgy(LiturgyBody {
                id: 0,
                group,
                peers,
                hidden: 0,
                flags: 0,
            })
        };
        c.handle_datagram(
            now(1),
            CATHEDRAL,
            &from_cathedral(&reply(0xabcd), T0 + 1, ID),
        )
        .unwrap();
        let Some(CathedralEvent::Liturgy(p)) = c.poll_event() else {
            panic!("no liturgy")
        };
        let present: Vec<u8> = p
            .presence()
            .filter(|(_, on)| *on)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(present, vec![2]);
        assert_eq!(p.presence().count(), 254 - 2);
        c.handle_datagram(now(1), CATHEDRAL, &from_cathedral(&reply(1), T0 + 1, ID))
            .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Ignored {
                offer_type: 4,
                reason: IgnoreReason::LiturgyOtherGroup(1)
            })
        );
        // INFO is not for a liturgy-only client.
        let info = from_cathedral(&info_reply(CATHEDRAL, [0; 4], 0), T0 + 1, ID);
        c.handle_datagram(now(1), CATHEDRAL, &info).unwrap();
        assert_eq!(
            c.poll_event(),
            Some(CathedralEvent::Ignored {
                offer_type: 3,
                reason: IgnoreReason::UnexpectedType
            })
        );
    }

    #[test]
    fn shroud_and_tfc() {
        let mut rng = SeededEntropy::from_u64(9);
        let mut cfg = config();
        cfg.shroud_mtu = Some(1300);
        cfg.tfc_tun_mtu = Some(1000);
        cfg.nat_port = None;
        let mut c = CathedralClient::new(cfg, now(0), &mut rng).unwrap();
        let key = kdf::cathedral_shroud_key(&Key32::new(CS), FLOCK, FLOCK);
        assert_eq!(c.shroud_key(), &key);
        c.handle_timeout(now(0), &mut rng);
        let t = c.poll_transmit().unwrap();
        let hdr = ShroudHeader::parse(&t.datagram).unwrap();
        let base = kdf::shroud_base_identity(FLOCK, FLOCK, ID);
        assert!(ShroudIdentity::matches(&base, &hdr.id, &hdr.seed_id));
        let mut d = t.datagram.clone();
        let r = shroud::unshroud_in_place(&key, &mut d).unwrap();
        assert_eq!(r.len(), 1050);
        assert_eq!(classify(&d[r]), Some(PacketKind::Offer(Magic::Katedral)));
        // Replies are unshrouded with the same key.
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 2), 2333);
        let inner = from_cathedral(&info_reply(peer, [0; 4], 0), T0 + 301, ID);
        let h = ShroudHeader::random(&mut rng);
        let datagram = shroud::shroud(&key, &h, &inner, 1300, &mut rng);
        c.handle_datagram(now(301), CATHEDRAL, &datagram).unwrap();
        assert!(matches!(c.poll_event(), Some(CathedralEvent::PeerInfo(_))));
        assert!(matches!(
            c.handle_datagram(now(301), CATHEDRAL, &[0u8; 40]),
            Err(ClientRxError::Shroud(_))
        ));
        // The identity rotates after 300 s.
        let first = *c.shroud_identity().id();
        let _ = c.shroud_header(Instant::from_secs(299), &mut rng);
        assert_eq!(c.shroud_identity().id(), &first);
        let _ = c.shroud_header(Instant::from_secs(300), &mut rng);
        assert_ne!(c.shroud_identity().id(), &first);
    }
}
