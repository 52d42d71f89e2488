//! Offer packets (wire.md §5): the 92-byte plaintext header, the 451-byte
//! data part (type, timestamp, 442-byte union), the 64-byte extra part and
//! the GCM tag, 623 bytes in all.
//!
//! An [`Offer`] keeps the data and extra parts as raw bytes so that what
//! was signed or received can be re-sent unchanged (CATACOMB forwarding,
//! signatures over the whole union); typed views of the union are
//! [`OfferBody`] values, encoded and decoded at fixed offsets.

use core::fmt;
use std::net::Ipv4Addr;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::aead::{Cipher, FIXED_NONCE, TAG_LEN};
use crate::secret::Key32;

/// Length of an offer on the wire (without TFC padding).
pub const OFFER_LEN: usize = 623;
/// Length of the plaintext header (the AAD).
pub const HEADER_LEN: usize = 92;
/// Length of the data part (type, timestamp, union).
pub const DATA_LEN: usize = 451;
/// Length of the union inside the data part.
pub const UNION_LEN: usize = 442;
/// Length of the extra part (signature or exchange randomness).
pub const EXTRA_LEN: usize = 64;
/// Offset of the data part in the packet.
pub const DATA_OFFSET: usize = HEADER_LEN;
/// Offset of the extra part in the packet.
pub const EXTRA_OFFSET: usize = HEADER_LEN + DATA_LEN;
/// Offset of the GCM tag in the packet.
pub const TAG_OFFSET: usize = EXTRA_OFFSET + EXTRA_LEN;
/// Offset of the union inside the data part.
const UNION_OFFSET: usize = 9;

/// Size of one ML-KEM-1024 fragment in an exchange offer.
pub const KEM_FRAGMENT_LEN: usize = 392;
/// Number of fragments of a public key or ciphertext.
pub const KEM_FRAGMENTS: usize = 4;
/// Length of the ML-KEM-1024 public key and ciphertext.
pub const KEM_LEN: usize = KEM_FRAGMENT_LEN * KEM_FRAGMENTS;

/// Offer timestamp window everywhere but at a shrine (seconds).
pub const TIMESTAMP_WINDOW: u64 = 10;
/// Offer timestamp window of a shrine accepting pilgrim KEY offers.
pub const SHRINE_TIMESTAMP_WINDOW: u64 = 1750;

/// The four packet magics (wire.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Magic {
    /// `SACRAMNT`: peer key offers (exchange or pilgrim key).
    Sacrament,
    /// `KATEDRAL`: client <-> cathedral.
    Katedral,
    /// `CIBORIUM`: NAT detection probe to the cathedral's NAT port.
    Ciborium,
    /// `CATACOMB`: cathedral <-> cathedral federation.
    Catacomb,
}

impl Magic {
    /// The 64-bit big-endian value on the wire.
    pub const fn value(self) -> u64 {
        match self {
            Magic::Sacrament => 0x5341_4352_414D_4E54,
            Magic::Katedral => 0x4B41_5445_4452_414C,
            Magic::Ciborium => 0x4349_424F_5249_554D,
            Magic::Catacomb => 0x4341_5441_434F_4D42,
        }
    }

    /// The magic with this value, if any.
    pub fn from_value(v: u64) -> Option<Magic> {
        [
            Magic::Sacrament,
            Magic::Katedral,
            Magic::Ciborium,
            Magic::Catacomb,
        ]
        .into_iter()
        .find(|m| m.value() == v)
    }

    /// The high 32-bit word, which a data packet's SPI must not equal for
    /// the packet to be unambiguous (wire.md §1 hardening note).
    pub const fn high_word(self) -> u32 {
        (self.value() >> 32) as u32
    }
}

/// What a received (unshrouded) sanctum packet is, from its first 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// One of the offer magics.
    Offer(Magic),
    /// Anything else: an encrypted data packet whose first word is the SPI.
    Data,
}

/// Classifies a packet (wire.md §1). `None` if it is shorter than 8 bytes.
pub fn classify(packet: &[u8]) -> Option<PacketKind> {
    let first: [u8; 8] = packet.get(..8)?.try_into().ok()?;
    Some(match Magic::from_value(u64::from_be_bytes(first)) {
        Some(m) => PacketKind::Offer(m),
        None => PacketKind::Data,
    })
}

/// True if `spi` could be mistaken for the first word of an offer magic.
pub fn spi_collides_with_magic(spi: u32) -> bool {
    [
        Magic::Sacrament,
        Magic::Katedral,
        Magic::Ciborium,
        Magic::Catacomb,
    ]
    .iter()
    .any(|m| m.high_word() == spi)
}

/// Why an offer could not be parsed or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Fewer bytes than an offer needs.
    #[error("offer too short: {0} bytes, need {OFFER_LEN}")]
    TooShort(usize),
    /// The first 8 bytes are not an offer magic.
    #[error("not an offer magic")]
    BadMagic,
    /// The AEAD tag did not verify under the derived key.
    #[error("offer failed authentication")]
    Auth,
    /// The type byte is not 1..=7.
    #[error("unknown offer type {0}")]
    UnknownType(u8),
    /// The type is valid but not the one the caller accepts here.
    #[error("unexpected offer type {0:?}")]
    UnexpectedType(OfferType),
    /// An exchange offer whose state is not 1 (PK) or 2 (CT).
    #[error("unknown exchange state {0}")]
    BadExchangeState(u8),
    /// An exchange offer whose fragment index is not 0..=3.
    #[error("exchange fragment {0} out of range")]
    BadFragment(u8),
    /// The timestamp is outside the acceptance window.
    #[error("offer timestamp {timestamp} outside ±{window} s of {now}")]
    Stale {
        /// Timestamp carried by the offer.
        timestamp: u64,
        /// Receiver's wall clock.
        now: u64,
        /// Window in seconds.
        window: u64,
    },
}

/// The 92-byte plaintext header of every offer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OfferHeader {
    /// Which kind of offer.
    pub magic: Magic,
    /// Flock of the sender (or random, see wire.md §5.2).
    pub flock_src: u64,
    /// Flock of the destination (or random).
    pub flock_dst: u64,
    /// SPI or cathedral identity, per message.
    pub spi: u32,
    /// Fresh random seed of the per-offer key.
    pub seed: [u8; 64],
}

impl fmt::Debug for OfferHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfferHeader")
            .field("magic", &self.magic)
            .field("flock_src", &format_args!("{:#018x}", self.flock_src))
            .field("flock_dst", &format_args!("{:#018x}", self.flock_dst))
            .field("spi", &format_args!("{:#010x}", self.spi))
            .finish_non_exhaustive()
    }
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

impl OfferHeader {
    /// A header with a fresh random seed; flocks as given.
    pub fn new(magic: Magic, flock_src: u64, flock_dst: u64, spi: u32, seed: [u8; 64]) -> Self {
        OfferHeader {
            magic,
            flock_src,
            flock_dst,
            spi,
            seed,
        }
    }

    /// Parses the header of `packet` (which must hold at least 92 bytes).
    pub fn parse(packet: &[u8]) -> Result<Self, OfferError> {
        let h = packet
            .get(..HEADER_LEN)
            .ok_or(OfferError::TooShort(packet.len()))?;
        let magic = Magic::from_value(be_u64(h, 0)).ok_or(OfferError::BadMagic)?;
        Ok(OfferHeader {
            magic,
            flock_src: be_u64(h, 8),
            flock_dst: be_u64(h, 16),
            spi: be_u32(h, 24),
            seed: arr(h, 28),
        })
    }

    /// The 92 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&self.magic.value().to_be_bytes());
        h[8..16].copy_from_slice(&self.flock_src.to_be_bytes());
        h[16..24].copy_from_slice(&self.flock_dst.to_be_bytes());
        h[24..28].copy_from_slice(&self.spi.to_be_bytes());
        h[28..92].copy_from_slice(&self.seed);
        h
    }
}

/// The type byte of the data part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OfferType {
    /// Pilgrim -> shrine one-way key.
    Key = 1,
    /// Cathedral -> client wrapped shared secret.
    Ambry = 2,
    /// Registration / p2p information.
    Info = 3,
    /// Liturgy discovery and signalling.
    Liturgy = 4,
    /// List of federated cathedrals.
    Remembrance = 5,
    /// Peer key exchange fragment.
    Exchange = 6,
    /// Cathedral -> cathedral p2p information.
    P2pInfo = 7,
}

impl OfferType {
    /// The type with this byte value.
    pub fn from_u8(v: u8) -> Result<Self, OfferError> {
        Ok(match v {
            1 => OfferType::Key,
            2 => OfferType::Ambry,
            3 => OfferType::Info,
            4 => OfferType::Liturgy,
            5 => OfferType::Remembrance,
            6 => OfferType::Exchange,
            7 => OfferType::P2pInfo,
            other => return Err(OfferError::UnknownType(other)),
        })
    }
}

/// Pilgrim KEY body (wire.md §5.5): the session key itself.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyBody {
    /// Pilgrim's instance id (not checked by the shrine).
    pub id: u64,
    /// Nonce salt of the SA.
    pub salt: [u8; 4],
    /// The session key.
    pub key: Key32,
}

/// AMBRY body: a bundle entry with the bundle's header fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AmbryBody {
    /// Tunnel id the entry is for.
    pub tunnel: u16,
    /// Expiry, days since 1697855580.
    pub expires: u16,
    /// Bundle generation.
    pub generation: u32,
    /// Bundle seed.
    pub seed: [u8; 64],
    /// Wrapped shared secret.
    pub key: [u8; 32],
    /// GCM tag of the wrap.
    pub tag: [u8; 16],
}

/// INFO flag (client -> cathedral): wants REMEMBRANCE offers.
pub const INFO_FLAG_REMEMBRANCE: u32 = 1;
/// INFO flag (client -> cathedral): has no KEK, send no ambries.
pub const INFO_FLAG_SKIP_AMBRY: u32 = 2;
/// INFO flag (cathedral -> client): relaying because both share a public IPv4.
pub const INFO_FLAG_SAME_EXTERNAL_IPV4: u32 = 2;

/// INFO body (registration, keepalive, p2p information).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InfoBody {
    /// Flags (little-endian on the wire).
    pub flags: u32,
    /// Where to send traffic (cathedral -> client).
    pub peer_ip: Ipv4Addr,
    /// Port of `peer_ip`.
    pub peer_port: u16,
    /// Raw `local_ip` bytes (the reference cathedral fills them swapped).
    pub local_ip_raw: [u8; 4],
    /// Raw `local_port` bytes.
    pub local_port_raw: [u8; 2],
    /// Own tunnel id (client -> cathedral).
    pub tunnel: u16,
    /// Active ambry generation.
    pub ambry_generation: u32,
    /// Active RX SPI (little-endian on the wire).
    pub rx_active: u32,
    /// Pending RX SPI (little-endian on the wire).
    pub rx_pending: u32,
    /// Sender's instance id.
    pub instance: u64,
}

impl Default for InfoBody {
    fn default() -> Self {
        InfoBody {
            flags: 0,
            peer_ip: Ipv4Addr::UNSPECIFIED,
            peer_port: 0,
            local_ip_raw: [0; 4],
            local_port_raw: [0; 2],
            tunnel: 0,
            ambry_generation: 0,
            rx_active: 0,
            rx_pending: 0,
            instance: 0,
        }
    }
}

/// LITURGY flag: wants REMEMBRANCE offers.
pub const LITURGY_FLAG_REMEMBRANCE: u32 = 1;
/// LITURGY flag: signalling (only peers one side asked for are shown).
pub const LITURGY_FLAG_SIGNALING: u32 = 2;

/// LITURGY body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LiturgyBody {
    /// Sender's peer id.
    pub id: u8,
    /// Liturgy group.
    pub group: u16,
    /// One byte per peer id 0..=254 (0 or 1).
    pub peers: [u8; 255],
    /// 1 = hidden.
    pub hidden: u8,
    /// Flags (little-endian on the wire).
    pub flags: u32,
}

/// Number of slots in a REMEMBRANCE offer.
pub const REMEMBRANCE_SLOTS: usize = 32;

/// REMEMBRANCE body: up to 32 cathedral addresses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RemembranceBody {
    /// IPv4 addresses.
    pub ips: [Ipv4Addr; REMEMBRANCE_SLOTS],
    /// Ports.
    pub ports: [u16; REMEMBRANCE_SLOTS],
}

impl RemembranceBody {
    /// The entries before the first one whose ip or port is zero.
    pub fn entries(&self) -> Vec<std::net::SocketAddrV4> {
        self.ips
            .iter()
            .zip(self.ports.iter())
            .take_while(|(ip, port)| !ip.is_unspecified() && **port != 0)
            .map(|(ip, port)| std::net::SocketAddrV4::new(*ip, *port))
            .collect()
    }
}

/// State of an exchange fragment.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum ExchangeState {
    /// A fragment of the sender's ML-KEM public key.
    PublicKey = 1,
    /// A fragment of the ciphertext the sender encapsulated to us.
    Ciphertext = 2,
}

/// EXCHANGE body: one fragment of a hybrid key exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct ExchangeBody {
    /// Sender's instance id.
    pub id: u64,
    /// SPI of the SA being negotiated.
    pub spi: u32,
    /// Salt of that SA (raw wire bytes).
    pub salt: [u8; 4],
    /// PK or CT fragment.
    pub state: ExchangeState,
    /// Fragment index 0..=3.
    pub fragment: u8,
    /// X25519 public key.
    pub ecdh: [u8; 32],
    /// 392 bytes of the ML-KEM public key or ciphertext.
    pub kem: [u8; KEM_FRAGMENT_LEN],
}

impl fmt::Debug for ExchangeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeBody")
            .field("id", &format_args!("{:#018x}", self.id))
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("state", &self.state)
            .field("fragment", &self.fragment)
            .finish_non_exhaustive()
    }
}

/// P2P_INFO body (CATACOMB only).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct P2pInfoBody {
    /// Client's main-path address.
    pub ip: Ipv4Addr,
    /// Client's main-path port.
    pub port: u16,
    /// Tunnel id.
    pub tunnel: u16,
    /// 1 if p2p is possible (big-endian on the wire).
    pub flags: u32,
}

/// A typed view of the union.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OfferBody {
    /// Type 1.
    Key(KeyBody),
    /// Type 2.
    Ambry(AmbryBody),
    /// Type 3.
    Info(InfoBody),
    /// Type 4.
    Liturgy(LiturgyBody),
    /// Type 5.
    Remembrance(RemembranceBody),
    /// Type 6.
    Exchange(ExchangeBody),
    /// Type 7.
    P2pInfo(P2pInfoBody),
}

impl OfferBody {
    /// The type byte of this body.
    pub fn offer_type(&self) -> OfferType {
        match self {
            OfferBody::Key(_) => OfferType::Key,
            OfferBody::Ambry(_) => OfferType::Ambry,
            OfferBody::Info(_) => OfferType::Info,
            OfferBody::Liturgy(_) => OfferType::Liturgy,
            OfferBody::Remembrance(_) => OfferType::Remembrance,
            OfferBody::Exchange(_) => OfferType::Exchange,
            OfferBody::P2pInfo(_) => OfferType::P2pInfo,
        }
    }

    /// Writes the member at the start of the 442-byte union `u`; bytes after
    /// it are left as they are (zero in a fresh offer).
    fn encode(&self, u: &mut [u8; UNION_LEN]) {
        match self {
            OfferBody::Key(k) => {
                u[0..8].copy_from_slice(&k.id.to_be_bytes());
                u[8..12].copy_from_slice(&k.salt);
                u[12..44].copy_from_slice(k.key.expose());
            }
            OfferBody::Ambry(a) => {
                u[0..2].copy_from_slice(&a.tunnel.to_be_bytes());
                u[2..4].copy_from_slice(&a.expires.to_be_bytes());
                u[4..8].copy_from_slice(&a.generation.to_be_bytes());
                u[8..72].copy_from_slice(&a.seed);
                u[72..104].copy_from_slice(&a.key);
                u[104..120].copy_from_slice(&a.tag);
            }
            OfferBody::Info(i) => {
                u[0..4].copy_from_slice(&i.flags.to_le_bytes());
                u[4..8].copy_from_slice(&i.peer_ip.octets());
                u[8..10].copy_from_slice(&i.peer_port.to_be_bytes());
                u[10..14].copy_from_slice(&i.local_ip_raw);
                u[14..16].copy_from_slice(&i.local_port_raw);
                u[16..18].copy_from_slice(&i.tunnel.to_be_bytes());
                u[18..22].copy_from_slice(&i.ambry_generation.to_be_bytes());
                u[22..26].copy_from_slice(&i.rx_active.to_le_bytes());
                u[26..30].copy_from_slice(&i.rx_pending.to_le_bytes());
                u[30..38].copy_from_slice(&i.instance.to_be_bytes());
            }
            OfferBody::Liturgy(l) => {
                u[0] = l.id;
                u[1..3].copy_from_slice(&l.group.to_be_bytes());
                u[3..258].copy_from_slice(&l.peers);
                u[258] = l.hidden;
                u[259..263].copy_from_slice(&l.flags.to_le_bytes());
            }
            OfferBody::Remembrance(r) => {
                for (i, ip) in r.ips.iter().enumerate() {
                    u[4 * i..4 * i + 4].copy_from_slice(&ip.octets());
                }
                for (i, port) in r.ports.iter().enumerate() {
                    u[128 + 2 * i..130 + 2 * i].copy_from_slice(&port.to_be_bytes());
                }
            }
            OfferBody::Exchange(x) => {
                u[0..8].copy_from_slice(&x.id.to_be_bytes());
                u[8..12].copy_from_slice(&x.spi.to_be_bytes());
                u[12..16].copy_from_slice(&x.salt);
                u[16] = x.state as u8;
                u[17] = x.fragment;
                u[18..50].copy_from_slice(&x.ecdh);
                u[50..442].copy_from_slice(&x.kem);
            }
            OfferBody::P2pInfo(p) => {
                u[0..4].copy_from_slice(&p.ip.octets());
                u[4..6].copy_from_slice(&p.port.to_be_bytes());
                u[6..8].copy_from_slice(&p.tunnel.to_be_bytes());
                u[8..12].copy_from_slice(&p.flags.to_be_bytes());
            }
        }
    }

    /// Decodes the member of type `t` from the union `u`.
    fn decode(t: OfferType, u: &[u8; UNION_LEN]) -> Result<Self, OfferError> {
        Ok(match t {
            OfferType::Key => OfferBody::Key(KeyBody {
                id: be_u64(u, 0),
                salt: arr(u, 8),
                key: Key32::new(arr(u, 12)),
            }),
            OfferType::Ambry => OfferBody::Ambry(AmbryBody {
                tunnel: be_u16(u, 0),
                expires: be_u16(u, 2),
                generation: be_u32(u, 4),
                seed: arr(u, 8),
                key: arr(u, 72),
                tag: arr(u, 104),
            }),
            OfferType::Info => OfferBody::Info(InfoBody {
                flags: le_u32(u, 0),
                peer_ip: Ipv4Addr::from(arr::<4>(u, 4)),
                peer_port: be_u16(u, 8),
                local_ip_raw: arr(u, 10),
                local_port_raw: arr(u, 14),
                tunnel: be_u16(u, 16),
                ambry_generation: be_u32(u, 18),
                rx_active: le_u32(u, 22),
                rx_pending: le_u32(u, 26),
                instance: be_u64(u, 30),
            }),
            OfferType::Liturgy => OfferBody::Liturgy(LiturgyBody {
                id: u[0],
                group: be_u16(u, 1),
                peers: arr(u, 3),
                hidden: u[258],
                flags: le_u32(u, 259),
            }),
            OfferType::Remembrance => OfferBody::Remembrance(RemembranceBody {
                ips: core::array::from_fn(|i| Ipv4Addr::from(arr::<4>(u, 4 * i))),
                ports: core::array::from_fn(|i| be_u16(u, 128 + 2 * i)),
            }),
            OfferType::Exchange => {
                let state = match u[16] {
                    1 => ExchangeState::PublicKey,
                    2 => ExchangeState::Ciphertext,
                    s => return Err(OfferError::BadExchangeState(s)),
                };
                let fragment = u[17];
                if usize::from(fragment) >= KEM_FRAGMENTS {
                    return Err(OfferError::BadFragment(fragment));
                }
                OfferBody::Exchange(ExchangeBody {
                    id: be_u64(u, 0),
                    spi: be_u32(u, 8),
                    salt: arr(u, 12),
                    state,
                    fragment,
                    ecdh: arr(u, 18),
                    kem: arr(u, 50),
                })
            }
            OfferType::P2pInfo => OfferBody::P2pInfo(P2pInfoBody {
                ip: Ipv4Addr::from(arr::<4>(u, 0)),
                port: be_u16(u, 4),
                tunnel: be_u16(u, 6),
                flags: be_u32(u, 8),
            }),
        })
    }
}

/// A whole offer in plaintext: header, the raw 451 data bytes and the 64
/// extra bytes. Wiped on drop (a KEY offer carries a session key).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Offer {
    #[zeroize(skip)]
    header: OfferHeader,
    data: [u8; DATA_LEN],
    extra: [u8; EXTRA_LEN],
}

impl fmt::Debug for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offer")
            .field("header", &self.header)
            .field("type", &self.data[0])
            .field("timestamp", &self.timestamp())
            .finish_non_exhaustive()
    }
}

impl Offer {
    /// A new offer with `body` at `timestamp`; union bytes after the member
    /// are zero (as the daemon sends them) and `extra` is as given (random
    /// filler, a signature to be set later, or exchange randomness).
    pub fn new(
        header: OfferHeader,
        timestamp: u64,
        body: &OfferBody,
        extra: [u8; EXTRA_LEN],
    ) -> Self {
        let mut data = [0u8; DATA_LEN];
        data[0] = body.offer_type() as u8;
        data[1..9].copy_from_slice(&timestamp.to_be_bytes());
        let mut u = [0u8; UNION_LEN];
        body.encode(&mut u);
        data[UNION_OFFSET..].copy_from_slice(&u);
        u.zeroize();
        Offer {
            header,
            data,
            extra,
        }
    }

    /// An offer from raw plaintext parts (e.g. a signed client offer being
    /// re-encrypted for federation).
    pub fn from_parts(header: OfferHeader, data: [u8; DATA_LEN], extra: [u8; EXTRA_LEN]) -> Self {
        Offer {
            header,
            data,
            extra,
        }
    }

    /// The header.
    pub fn header(&self) -> &OfferHeader {
        &self.header
    }

    /// Replaces the header (magic, flocks, spi, seed); data and extra stay.
    pub fn set_header(&mut self, header: OfferHeader) {
        self.header = header;
    }

    /// The 451 plaintext data bytes (what a signature covers).
    pub fn data(&self) -> &[u8; DATA_LEN] {
        &self.data
    }

    /// The 64 extra bytes.
    pub fn extra(&self) -> &[u8; EXTRA_LEN] {
        &self.extra
    }

    /// Replaces the extra part (e.g. with a signature).
    pub fn set_extra(&mut self, extra: [u8; EXTRA_LEN]) {
        self.extra = extra;
    }

    /// The type byte, decoded.
    pub fn offer_type(&self) -> Result<OfferType, OfferError> {
        OfferType::from_u8(self.data[0])
    }

    /// The sender's wall-clock timestamp.
    pub fn timestamp(&self) -> u64 {
        be_u64(&self.data, 1)
    }

    /// True if the timestamp is within `±window` seconds of `now`.
    pub fn timestamp_ok(&self, now: u64, window: u64) -> bool {
        let ts = self.timestamp();
        ts >= now.saturating_sub(window) && ts <= now.saturating_add(window)
    }

    /// `Ok` if the timestamp is within `±window` of `now`, else `Stale`.
    pub fn check_timestamp(&self, now: u64, window: u64) -> Result<(), OfferError> {
        if self.timestamp_ok(now, window) {
            Ok(())
        } else {
            Err(OfferError::Stale {
                timestamp: self.timestamp(),
                now,
                window,
            })
        }
    }

    /// The typed union member.
    pub fn body(&self) -> Result<OfferBody, OfferError> {
        let t = self.offer_type()?;
        let mut u = [0u8; UNION_LEN];
        u.copy_from_slice(&self.data[UNION_OFFSET..]);
        let r = OfferBody::decode(t, &u);
        u.zeroize();
        r
    }

    /// The typed member, required to be of type `t`.
    pub fn body_of(&self, t: OfferType) -> Result<OfferBody, OfferError> {
        let actual = self.offer_type()?;
        if actual != t {
            return Err(OfferError::UnexpectedType(actual));
        }
        self.body()
    }

    /// Encrypts into the 623-byte wire form under `key` (AES-256-GCM,
    /// fixed nonce, header as AAD).
    pub fn seal(&self, key: &Key32) -> [u8; OFFER_LEN] {
        let mut out = [0u8; OFFER_LEN];
        out[..HEADER_LEN].copy_from_slice(&self.header.to_bytes());
        out[DATA_OFFSET..EXTRA_OFFSET].copy_from_slice(&self.data);
        out[EXTRA_OFFSET..TAG_OFFSET].copy_from_slice(&self.extra);
        let (aad, rest) = out.split_at_mut(HEADER_LEN);
        let (body, tag) = rest.split_at_mut(DATA_LEN + EXTRA_LEN);
        let t = Cipher::new(key).seal(&FIXED_NONCE, aad, body);
        tag.copy_from_slice(&t);
        out
    }

    /// Authenticates and decrypts an offer packet. Bytes beyond 623 (TFC
    /// padding) are ignored. The caller derives `key` from the header
    /// ([`OfferHeader::parse`]) and then checks type and timestamp.
    pub fn open(packet: &[u8], key: &Key32) -> Result<Offer, OfferError> {
        if packet.len() < OFFER_LEN {
            return Err(OfferError::TooShort(packet.len()));
        }
        let header = OfferHeader::parse(packet)?;
        let mut body = [0u8; DATA_LEN + EXTRA_LEN];
        body.copy_from_slice(&packet[DATA_OFFSET..TAG_OFFSET]);
        let tag: [u8; TAG_LEN] = arr(packet, TAG_OFFSET);
        if Cipher::new(key)
            .open(&FIXED_NONCE, &packet[..HEADER_LEN], &mut body, &tag)
            .is_err()
        {
            return Err(OfferError::Auth);
        }
        let offer = Offer {
            header,
            data: arr(&body, 0),
            extra: arr(&body, DATA_LEN),
        };
        body.zeroize();
        Ok(offer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_exchange_offer() -> (Offer, Key32) {
        // crypto.md §17 "offer (EXCHANGE PK fragment 2)".
        let header = OfferHeader::new(
            Magic::Sacrament,
            0x8081828384858687,
            0x88898a8b8c8d8e8f,
            0x01020304,
            core::array::from_fn(|i| 0x40 + i as u8),
        );
        let pub_a: [u8; 32] = [
            0x67, 0x5d, 0xd5, 0x74, 0xed, 0x77, 0x89, 0x31, 0x0b, 0x3d, 0x2e, 0x76, 0x81, 0xf3,
            0x79, 0x0b, 0x46, 0x6c, 0x77, 0x3b, 0x15, 0x21, 0xfe, 0xcf, 0x36, 0x57, 0x79, 0x58,
            0x37, 0x1e, 0xa5, 0x2f,
        ];
        let body = OfferBody::Exchange(ExchangeBody {
            id: 0x0102030405060708,
            spi: 0x01020304,
            salt: [0xa0, 0xa1, 0xa2, 0xa3],
            state: ExchangeState::PublicKey,
            fragment: 2,
            ecdh: pub_a,
            kem: [0x5a; KEM_FRAGMENT_LEN],
        });
        let offer = Offer::new(
            header,
            1_700_000_000,
            &body,
            core::array::from_fn(|i| i as u8),
        );
        let ss = Key32::new(core::array::from_fn(|i| i as u8));
        let key = crate::kdf::offer_key(&ss, crate::kdf::OfferLabel::Sacrament, &header.seed, 0, 0);
        (offer, key)
    }

    #[test]
    fn spec_offer_vector() {
        let (offer, key) = spec_exchange_offer();
        assert_eq!(key.expose()[..4], [0x72, 0x5d, 0xcc, 0x30]);
        let wire = offer.seal(&key);
        assert_eq!(wire[92..96], [0xb1, 0x91, 0x6b, 0xb5]);
        assert_eq!(wire[607..611], [0x49, 0x4c, 0xa2, 0x9b]);
        let back = Offer::open(&wire, &key).unwrap();
        assert_eq!(back.body().unwrap(), offer.body().unwrap());
        assert!(back.timestamp_ok(1_700_000_010, TIMESTAMP_WINDOW));
        assert!(!back.timestamp_ok(1_700_000_011, TIMESTAMP_WINDOW));
        assert!(!back.timestamp_ok(1_699_999_989, TIMESTAMP_WINDOW));
    }

    #[test]
    fn tampering_and_truncation_are_errors() {
        let (offer, key) = spec_exchange_offer();
        let wire = offer.seal(&key);
        for i in [0usize, 30, 91, 92, 500, 606, 607, 622] {
            let mut w = wire;
            w[i] ^= 0x80;
            assert!(Offer::open(&w, &key).is_err(), "flip at {i}");
        }
        assert_eq!(
            Offer::open(&wire[..622], &key).unwrap_err(),
            OfferError::TooShort(622)
        );
        let mut padded = wire.to_vec();
        padded.extend_from_slice(&[0xee; 100]);
        assert!(Offer::open(&padded, &key).is_ok());
    }

    #[test]
    fn every_body_roundtrips() {
        let bodies = [
            OfferBody::Key(KeyBody {
                id: 7,
                salt: [1, 2, 3, 4],
                key: Key32::new([9; 32]),
            }),
            OfferBody::Ambry(AmbryBody {
                tunnel: 0x0102,
                expires: 0x12aa,
                generation: 0x03020100,
                seed: [4; 64],
                key: [5; 32],
                tag: [6; 16],
            }),
            OfferBody::Info(InfoBody {
                flags: 3,
                peer_ip: Ipv4Addr::new(10, 0, 0, 1),
                peer_port: 4500,
                tunnel: 0x0201,
                rx_active: 0xdeadbeef,
                instance: 42,
                ..Default::default()
            }),
            OfferBody::Liturgy(LiturgyBody {
                id: 3,
                group: 0xabcd,
                peers: [1; 255],
                hidden: 1,
                flags: 2,
            }),
            OfferBody::Remembrance(RemembranceBody {
                ips: [Ipv4Addr::new(1, 2, 3, 4); 32],
                ports: [4500; 32],
            }),
            OfferBody::P2pInfo(P2pInfoBody {
                ip: Ipv4Addr::LOCALHOST,
                port: 1,
                tunnel: 2,
                flags: 1,
            }),
        ];
        let key = Key32::new([1; 32]);
        for b in bodies {
            let h = OfferHeader::new(Magic::Katedral, 1, 2, 3, [0; 64]);
            let o = Offer::new(h, 5, &b, [0; 64]);
            let back = Offer::open(&o.seal(&key), &key).unwrap();
            assert_eq!(back.body().unwrap(), b);
            assert_eq!(back.header(), &h);
        }
    }

    #[test]
    fn bad_exchange_fields_are_errors() {
        let (offer, _) = spec_exchange_offer();
        let mut data = *offer.data();
        data[UNION_OFFSET + 17] = 4;
        let o = Offer::from_parts(*offer.header(), data, [0; 64]);
        assert_eq!(o.body().unwrap_err(), OfferError::BadFragment(4));
        data[UNION_OFFSET + 17] = 0;
        data[UNION_OFFSET + 16] = 3;
        let o = Offer::from_parts(*offer.header(), data, [0; 64]);
        assert_eq!(o.body().unwrap_err(), OfferError::BadExchangeState(3));
        data[0] = 9;
        let o = Offer::from_parts(*offer.header(), data, [0; 64]);
        assert_eq!(o.body().unwrap_err(), OfferError::UnknownType(9));
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify(b"SACRAMNT...."),
            Some(PacketKind::Offer(Magic::Sacrament))
        );
        assert_eq!(
            classify(b"KATEDRAL"),
            Some(PacketKind::Offer(Magic::Katedral))
        );
        assert_eq!(
            classify(b"CIBORIUMx"),
            Some(PacketKind::Offer(Magic::Ciborium))
        );
        assert_eq!(
            classify(b"CATACOMB"),
            Some(PacketKind::Offer(Magic::Catacomb))
        );
        assert_eq!(classify(b"SACRAMNx"), Some(PacketKind::Data));
        assert_eq!(classify(b"short"), None);
        assert!(spi_collides_with_magic(0x53414352));
        assert!(!spi_collides_with_magic(0x53414353));
    }
}
