//! Security associations: one AES-256-GCM key, SPI and salt per direction,
//! the packet number, the 64-packet anti-replay window and the lifetimes
//! (crypto.md §7, §15; behaviour.md §3.5, §3.6; wire.md §3.6, §3.7).
//!
//! - [`TxSa`] seals outgoing packets (bless): pn from 1, hard limits of 2^34
//!   packets and 3600 s after which it refuses to seal.
//! - [`RxSa`] opens incoming packets of one SA: replay check before
//!   decryption, window update only after it; soft limits (2^33 packets,
//!   3500 s) that ask for a rekey.
//! - [`RxSlots`] is the receive side of a tunnel (confess): an active and a
//!   pending RX SA, tried in that order; success on the pending one
//!   promotes it.
//!
//! Keys are taken as [`Key32`] and expanded into a [`Cipher`]; both are
//! wiped when dropped. Every packet operation works in place in the
//! caller's buffer and allocates nothing.

use core::ops::Range;

use crate::aead::Cipher;
use crate::secret::Key32;
use crate::time::Instant;
use crate::wire::data::{
    self, DataConfig, Header, HeaderError, Next, OpenError, PAYLOAD_OFFSET, Salt, SealError,
    TailError, TfcError,
};

/// RX SA packet count at which a new exchange is wanted (2^33).
pub const PACKET_SOFT_LIMIT: u64 = 1 << 33;
/// TX SA packet number at which the SA is dead (2^34).
pub const PACKET_HARD_LIMIT: u64 = 1 << 34;
/// RX SA age (whole seconds) at which a new exchange is wanted.
pub const SOFT_LIFETIME_SECS: u64 = 3500;
/// TX SA age (whole seconds) at which the SA is dead.
pub const HARD_LIFETIME_SECS: u64 = 3600;
/// Size of the anti-replay window in packets.
pub const REPLAY_WINDOW: u64 = 64;

/// Which limit a security association has reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The packet limit (2^34 for TX hard, 2^33 for RX soft).
    Packets,
    /// The lifetime (3600 s for TX hard, 3500 s for RX soft).
    Age,
}

/// Whole seconds between `installed` and `now` on the monotonic clock (the
/// reference keeps ages in whole seconds of uptime).
fn age_secs(installed: Instant, now: Instant) -> u64 {
    now.secs().saturating_sub(installed.secs())
}

/// Why a packet was not sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The TX SA reached a hard limit: destroy it and drop packets until
    /// the next key is installed.
    #[error("TX SA expired ({0:?} limit)")]
    Expired(Limit),
    /// The buffer was too small.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// A sealed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Length of the packet at the front of the buffer.
    pub len: usize,
    /// Packet number it was sealed with.
    pub pn: u64,
}

/// A transmit security association (bless).
#[derive(Debug)]
pub struct TxSa {
    cipher: Cipher,
    spi: u32,
    salt: Salt,
    next_pn: u64,
    installed: Instant,
    packets: u64,
    bytes: u64,
}

impl TxSa {
    /// A freshly installed TX SA: the key is expanded (and the `Key32`
    /// wiped), the next packet number is 1.
    pub fn new(key: Key32, spi: u32, salt: Salt, now: Instant) -> Self {
        TxSa {
            cipher: Cipher::new(&key),
            spi,
            salt,
            next_pn: 1,
            installed: now,
            packets: 0,
            bytes: 0,
        }
    }

    /// The peer's SPI this SA sends to.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The packet number the next packet gets.
    pub fn next_pn(&self) -> u64 {
        self.next_pn
    }

    /// When the SA was installed.
    pub fn installed_at(&self) -> Instant {
        self.installed
    }

    /// Packets sealed.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes sealed (whole packets as they go on the wire).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hard limit the SA has reached at `now`, if any (then it must be
    /// destroyed): next pn >= 2^34, or age >= 3600 s.
    pub fn expiry(&self, now: Instant) -> Option<Limit> {
        if self.next_pn >= PACKET_HARD_LIMIT {
            Some(Limit::Packets)
        } else if age_secs(self.installed, now) >= HARD_LIFETIME_SECS {
            Some(Limit::Age)
        } else {
            None
        }
    }

    /// Seals the payload at `buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET +
    /// payload_len]` into a data packet in place (see
    /// [`data::seal_in_place`]) with the next packet number, our flocks and
    /// TFC setting from `cfg`. Refuses once the SA is expired. The packet
    /// number is only used up when the packet is sealed.
    pub fn seal(
        &mut self,
        cfg: &DataConfig,
        now: Instant,
        next: Next,
        buf: &mut [u8],
        payload_len: usize,
    ) -> Result<Sealed, TxError> {
        if let Some(limit) = self.expiry(now) {
            return Err(TxError::Expired(limit));
        }
        let pn = self.next_pn;
        let header = cfg.header(self.spi, pn);
        let len = data::seal_in_place(
            &self.cipher,
            &self.salt,
            &header,
            next,
            cfg.tfc_mtu,
            buf,
            payload_len,
        )?;
        self.next_pn = pn + 1;
        self.packets += 1;
        self.bytes = self.bytes.saturating_add(len as u64);
        Ok(Sealed { len, pn })
    }
}

/// Why the anti-replay window rejects a packet number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Inside the window and already received.
    #[error("packet already seen")]
    Duplicate,
    /// Below the window (or pn 0).
    #[error("packet too old")]
    TooOld,
}

/// The 64-packet anti-replay window of wire.md §3.6: highest accepted pn
/// `S` and bitmap `B`, where bit `63 - (S - pn)` records pn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayWindow {
    highest: u64,
    bitmap: u64,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// The window of a freshly installed SA: `S = 1`, `B = 0` (so pn 1 is
    /// judged by bit 63 and accepted once).
    pub const fn new() -> Self {
        ReplayWindow {
            highest: 1,
            bitmap: 0,
        }
    }

    /// `S`, the highest packet number accepted so far (1 when fresh).
    pub const fn highest(&self) -> u64 {
        self.highest
    }

    /// `B`, the bitmap.
    pub const fn bitmap(&self) -> u64 {
        self.bitmap
    }

    /// The check made before decryption.
    pub fn check(&self, pn: u64) -> Result<(), ReplayError> {
        if pn > self.highest {
            return Ok(());
        }
        let behind = self.highest - pn;
        if pn > 0 && behind < REPLAY_WINDOW {
            if self.bitmap & (1u64 << (REPLAY_WINDOW - 1 - behind)) != 0 {
                return Err(ReplayError::Duplicate);
            }
            return Ok(());
        }
        Err(ReplayError::TooOld)
    }

    /// The update made after successful decryption of `pn` (which passed
    /// [`check`](Self::check)).
    pub fn update(&mut self, pn: u64) {
        if pn > self.highest {
            let ahead = pn - self.highest;
            self.bitmap = if ahead >= REPLAY_WINDOW {
                1 << 63
            } else {
                (self.bitmap >> ahead) | 1 << 63
            };
            self.highest = pn;
        } else {
            let behind = self.highest - pn;
            if behind < REPLAY_WINDOW {
                self.bitmap |= 1u64 << (REPLAY_WINDOW - 1 - behind);
            }
        }
    }
}

/// A receive security association (one slot of confess).
#[derive(Debug)]
pub struct RxSa {
    cipher: Cipher,
    spi: u32,
    salt: Salt,
    installed: Instant,
    window: ReplayWindow,
    packets: u64,
    bytes: u64,
    used: bool,
}

/// What happened to a packet the replay check and the AEAD accepted.
#[derive(Clone, Copy, Debug)]
struct Authenticated {
    tail: data::Tail,
    first_on_sa: bool,
}

impl RxSa {
    /// A freshly installed RX SA (our SPI `spi`): the key is expanded (and
    /// the `Key32` wiped), the window is fresh, nothing received yet.
    pub fn new(key: Key32, spi: u32, salt: Salt, now: Instant) -> Self {
        RxSa {
            cipher: Cipher::new(&key),
            spi,
            salt,
            installed: now,
            window: ReplayWindow::new(),
            packets: 0,
            bytes: 0,
            used: false,
        }
    }

    /// Our SPI for this SA.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// When the SA was installed.
    pub fn installed_at(&self) -> Instant {
        self.installed
    }

    /// The anti-replay window.
    pub fn window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Packets authenticated under this SA.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes authenticated under this SA (whole packets as received).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True once a packet has been authenticated under this SA.
    pub fn used(&self) -> bool {
        self.used
    }

    /// The soft limit reached at `now`, if any: a new exchange is wanted
    /// (>= 2^33 packets received, or age >= 3500 s).
    pub fn rekey_wanted(&self, now: Instant) -> Option<Limit> {
        if self.packets >= PACKET_SOFT_LIMIT {
            Some(Limit::Packets)
        } else if age_secs(self.installed, now) >= SOFT_LIFETIME_SECS {
            Some(Limit::Age)
        } else {
            None
        }
    }

    /// Anti-replay check, AEAD open, window update (wire.md §3.7). The SPI
    /// and flocks have been checked by the caller.
    fn authenticate(
        &mut self,
        header: &Header,
        packet: &mut [u8],
    ) -> Result<Authenticated, RxError> {
        let (spi, pn) = (header.spi, header.pn);
        self.window
            .check(pn)
            .map_err(|reason| RxError::Replay { spi, pn, reason })?;
        let tail =
            data::open_in_place(&self.cipher, &self.salt, header, packet).map_err(|e| match e {
                OpenError::Auth => RxError::Auth { spi, pn },
                OpenError::TooShort { len } => RxError::Malformed(HeaderError::TooShort { len }),
            })?;
        self.window.update(pn);
        let first_on_sa = !self.used;
        self.used = true;
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(packet.len() as u64);
        Ok(Authenticated { tail, first_on_sa })
    }

    /// Opens a packet under this SA alone: header parse, SPI, flock check,
    /// replay check, decryption, window update, tail and TFC trim (for
    /// one-way receivers; a tunnel uses [`RxSlots::open`]).
    pub fn open(&mut self, cfg: &DataConfig, packet: &mut [u8]) -> Result<Received, RxError> {
        let header = Header::parse(packet).map_err(RxError::Malformed)?;
        if header.spi != self.spi {
            return Err(RxError::UnknownSpi { spi: header.spi });
        }
        check_flocks(cfg, &header)?;
        let auth = self.authenticate(&header, packet)?;
        finish(cfg, &header, auth, packet, false)
    }
}

/// The receiver's flock check.
fn check_flocks(cfg: &DataConfig, header: &Header) -> Result<(), RxError> {
    if cfg.flocks_match(header) {
        Ok(())
    } else {
        Err(RxError::FlockMismatch {
            flock_src: header.flock_src,
            flock_dst: header.flock_dst,
        })
    }
}

/// Tail validation and TFC trim of an authenticated packet.
fn finish(
    cfg: &DataConfig,
    header: &Header,
    auth: Authenticated,
    packet: &[u8],
    promoted: bool,
) -> Result<Received, RxError> {
    let (spi, pn) = (header.spi, header.pn);
    let next = auth
        .tail
        .next()
        .map_err(|error| RxError::BadTail { spi, pn, error })?;
    let mut payload = data::payload_range(packet.len());
    if let (Next::Traffic, Some(tun_mtu)) = (next, cfg.tfc_mtu) {
        let body = packet.get(payload.clone()).unwrap_or_default();
        let len = data::tfc_trimmed_len(body, tun_mtu).map_err(|error| RxError::BadTfc {
            spi,
            pn,
            error,
        })?;
        payload.end = PAYLOAD_OFFSET + len;
    }
    Ok(Received {
        spi,
        pn,
        next,
        payload,
        promoted,
        first_on_sa: auth.first_on_sa,
    })
}

/// Why a received data packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RxError {
    /// Not a well-formed data packet (length, SPI 0, seq).
    #[error("malformed data packet: {0}")]
    Malformed(HeaderError),
    /// The SPI is neither the active nor the pending RX SPI.
    #[error("unknown SPI {spi:#010x}")]
    UnknownSpi {
        /// The packet's SPI.
        spi: u32,
    },
    /// The flocks are not the crossed pair of ours.
    #[error("flock mismatch (src {flock_src:#018x}, dst {flock_dst:#018x})")]
    FlockMismatch {
        /// The packet's `flock_src`.
        flock_src: u64,
        /// The packet's `flock_dst`.
        flock_dst: u64,
    },
    /// The anti-replay window rejected the packet number.
    #[error("replayed packet spi {spi:#010x} pn {pn}: {reason}")]
    Replay {
        /// The packet's SPI.
        spi: u32,
        /// The packet's pn.
        pn: u64,
        /// Duplicate or too old.
        reason: ReplayError,
    },
    /// The AEAD tag did not verify.
    #[error("authentication failed for spi {spi:#010x} pn {pn}")]
    Auth {
        /// The packet's SPI.
        spi: u32,
        /// The packet's pn.
        pn: u64,
    },
    /// Authenticated, but the tail is invalid (the window was updated).
    #[error("bad tail in spi {spi:#010x} pn {pn}: {error}")]
    BadTail {
        /// The packet's SPI.
        spi: u32,
        /// The packet's pn.
        pn: u64,
        /// What is wrong with it.
        error: TailError,
    },
    /// Authenticated traffic whose TFC padding cannot be trimmed (the
    /// window was updated).
    #[error("bad TFC length in spi {spi:#010x} pn {pn}: {error}")]
    BadTfc {
        /// The packet's SPI.
        spi: u32,
        /// The packet's pn.
        pn: u64,
        /// What is wrong with it.
        error: TfcError,
    },
}

impl RxError {
    /// True if the packet was authenticated before it was dropped: the
    /// reference learns the peer address from such a packet (wire.md §3.7).
    pub fn authenticated(&self) -> bool {
        matches!(self, RxError::BadTail { .. } | RxError::BadTfc { .. })
    }
}

/// A packet accepted by [`RxSlots::open`] or [`RxSa::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The SA's SPI.
    pub spi: u32,
    /// The packet number.
    pub pn: u64,
    /// Traffic or grace.
    pub next: Next,
    /// Where the plaintext payload lies in the packet buffer (TFC-trimmed
    /// for traffic when TFC is on; graces are not trimmed).
    pub payload: Range<usize>,
    /// The packet was opened by the pending SA, which is now active (the
    /// old active SA was destroyed; `rx_pending` is now 0).
    pub promoted: bool,
    /// First packet authenticated on this SA (reset the RX statistics:
    /// behaviour.md §3.6).
    pub first_on_sa: bool,
}

/// Where [`RxSlots::install`] put a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// No active SA existed: the key is active now.
    Active,
    /// It is the pending SA (an unused pending SA was replaced).
    Pending,
}

/// The receive side of a tunnel: an active and a pending RX SA
/// (behaviour.md §3.6).
#[derive(Debug, Default)]
pub struct RxSlots {
    active: Option<RxSa>,
    pending: Option<RxSa>,
}

impl RxSlots {
    /// No SAs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs a new RX SA: active if there is none, else pending
    /// (replacing, and wiping, an unused pending one).
    pub fn install(&mut self, sa: RxSa) -> Slot {
        if self.active.is_none() {
            self.active = Some(sa);
            Slot::Active
        } else {
            self.pending = Some(sa);
            Slot::Pending
        }
    }

    /// Wipes both SAs.
    pub fn erase(&mut self) {
        self.active = None;
        self.pending = None;
    }

    /// The active SA.
    pub fn active(&self) -> Option<&RxSa> {
        self.active.as_ref()
    }

    /// The pending SA.
    pub fn pending(&self) -> Option<&RxSa> {
        self.pending.as_ref()
    }

    /// SPI of the active SA, 0 if none (the `rx_active` value).
    pub fn active_spi(&self) -> u32 {
        self.active.as_ref().map_or(0, RxSa::spi)
    }

    /// SPI of the pending SA, 0 if none (the `rx_pending` value).
    pub fn pending_spi(&self) -> u32 {
        self.pending.as_ref().map_or(0, RxSa::spi)
    }

    /// The soft limit the active SA has reached at `now`, if any.
    pub fn rekey_wanted(&self, now: Instant) -> Option<Limit> {
        self.active.as_ref().and_then(|sa| sa.rekey_wanted(now))
    }

    /// Opens a received data packet in place, in the order of wire.md
    /// §3.7: header (length, SPI != 0, seq) -> SPI is the active or pending
    /// one -> flock check -> per SA (active first, then pending): replay
    /// check, AES-GCM open, window update -> tail (`reserved == 0`, known
    /// `next`) -> TFC trim of traffic. Success on the pending SA promotes
    /// it (it keeps its window; the old active SA is wiped).
    pub fn open(&mut self, cfg: &DataConfig, packet: &mut [u8]) -> Result<Received, RxError> {
        let header = Header::parse(packet).map_err(RxError::Malformed)?;
        let spi = header.spi;
        let on_active = self.active.as_ref().is_some_and(|sa| sa.spi == spi);
        let on_pending = self.pending.as_ref().is_some_and(|sa| sa.spi == spi);
        if !on_active && !on_pending {
            return Err(RxError::UnknownSpi { spi });
        }
        check_flocks(cfg, &header)?;
        if on_active {
            // Only if both slots carry this SPI must the ciphertext survive a
            // failed open under the active key; that never happens with
            // fresh random SPIs, so the copy is off the fast path.
            let saved = on_pending.then(|| packet.to_vec());
            let result = match self.active.as_mut() {
                Some(sa) => sa.authenticate(&header, packet),
                None => Err(RxError::UnknownSpi { spi }),
            };
            match (result, saved) {
                (Ok(auth), _) => return finish(cfg, &header, auth, packet, false),
                (Err(e), None) => return Err(e),
                (Err(_), Some(saved)) => packet.copy_from_slice(&saved),
            }
        }
        let auth = match self.pending.as_mut() {
            Some(sa) => sa.authenticate(&header, packet)?,
            None => return Err(RxError::UnknownSpi { spi }),
        };
        let received = finish(cfg, &header, auth, packet, true)?;
        self.active = self.pending.take();
        Ok(received)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::wire::data::{HEADER_LEN, OVERHEAD};

    const SALT: Salt = [0x94, 0x90, 0xb1, 0x92];
    const T0: Instant = Instant::from_secs(100);

    fn key(b: u8) -> Key32 {
        Key32::new([b; 32])
    }

    /// Sender and receiver configurations with crossed flocks.
    fn cfgs(tfc: Option<usize>) -> (DataConfig, DataConfig) {
        (
            DataConfig {
                flock_src: 0xaaaa_aa01,
                flock_dst: 0xbbbb_bb02,
                tfc_mtu: tfc,
            },
            DataConfig {
                flock_src: 0xbbbb_bb02,
                flock_dst: 0xaaaa_aa01,
                tfc_mtu: tfc,
            },
        )
    }

    /// An IPv4-looking payload of `len` bytes.
    fn ipv4(len: usize) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p
    }

    /// Seals `payload` with `tx` into a fresh packet.
    fn seal(tx: &mut TxSa, cfg: &DataConfig, next: Next, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; data::sealed_len(payload.len(), cfg.tfc_mtu).unwrap()];
        buf[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
        let s = tx.seal(cfg, T0, next, &mut buf, payload.len()).unwrap();
        assert_eq!(s.len, buf.len());
        buf
    }

    /// Seals `payload` with an explicit pn (bypassing the TX SA counter).
    fn seal_pn(k: u8, spi: u32, pn: u64, cfg: &DataConfig, payload: &[u8]) -> Vec<u8> {
        let mut tx = TxSa::new(key(k), spi, SALT, T0);
        tx.next_pn = pn;
        seal(&mut tx, cfg, Next::Traffic, payload)
    }

    fn slots_with(k: u8, spi: u32) -> RxSlots {
        let mut s = RxSlots::new();
        assert_eq!(s.install(RxSa::new(key(k), spi, SALT, T0)), Slot::Active);
        s
    }

    #[test]
    fn window_pn1_first_and_once() {
        let mut w = ReplayWindow::new();
        assert_eq!((w.highest(), w.bitmap()), (1, 0));
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        assert_eq!(w.check(1), Ok(()));
        w.update(1);
        assert_eq!((w.highest(), w.bitmap()), (1, 1 << 63));
        assert_eq!(w.check(1), Err(ReplayError::Duplicate));
        assert_eq!(w.check(2), Ok(()));
        w.update(2);
        assert_eq!((w.highest(), w.bitmap()), (2, 0b11 << 62));
        assert_eq!(w.check(1), Err(ReplayError::Duplicate));
        assert_eq!(w.check(2), Err(ReplayError::Duplicate));
    }

    #[test]
    fn window_out_of_order_inside() {
        let mut w = ReplayWindow::new();
        w.update(10);
        assert_eq!(w.bitmap(), 1 << 63);
        for pn in [9, 5, 1] {
            assert_eq!(w.check(pn), Ok(()), "pn {pn}");
            w.update(pn);
            assert_eq!(w.check(pn), Err(ReplayError::Duplicate), "pn {pn}");
        }
        assert_eq!(w.bitmap(), 1 << 63 | 1 << 62 | 1 << 58 | 1 << 54);
        assert_eq!(w.check(8), Ok(()));
        assert_eq!(w.highest(), 10);
    }

    #[test]
    fn window_edges_and_far_jump() {
        let mut w = ReplayWindow::new();
        w.update(100);
        // S - pn == 63 is the last slot (bit 0); 64 behind is too old.
        assert_eq!(w.check(37), Ok(()));
        w.update(37);
        assert_eq!(w.bitmap(), 1 << 63 | 1);
        assert_eq!(w.check(37), Err(ReplayError::Duplicate));
        assert_eq!(w.check(36), Err(ReplayError::TooOld));
        // A jump of exactly 64 clears everything but the new bit.
        w.update(164);
        assert_eq!((w.highest(), w.bitmap()), (164, 1 << 63));
        assert_eq!(w.check(100), Err(ReplayError::TooOld));
        assert_eq!(w.check(101), Ok(()));
        // A jump of 63 keeps the old top bit as bit 0.
        w.update(227);
        assert_eq!(w.bitmap(), 1 << 63 | 1);
        assert_eq!(w.check(164), Err(ReplayError::Duplicate));
        // A huge jump.
        w.update(u64::MAX);
        assert_eq!((w.highest(), w.bitmap()), (u64::MAX, 1 << 63));
        assert_eq!(w.check(u64::MAX), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u64::MAX - 63), Ok(()));
        assert_eq!(w.check(u64::MAX - 64), Err(ReplayError::TooOld));
    }

    #[test]
    fn tx_pn_starts_at_one_and_rx_accepts_once() {
        let (txc, rxc) = cfgs(None);
        let mut tx = TxSa::new(key(1), 0x1234_5678, SALT, T0);
        let mut rx = slots_with(1, 0x1234_5678);
        let payload = ipv4(84);
        let p1 = seal(&mut tx, &txc, Next::Traffic, &payload);
        assert_eq!(p1[4..16], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(p1[16..32], txc.header(0, 0).to_bytes()[16..32]);
        let mut got = p1.clone();
        let r = rx.open(&rxc, &mut got).unwrap();
        assert_eq!(
            r,
            Received {
                spi: 0x1234_5678,
                pn: 1,
                next: Next::Traffic,
                payload: 32..116,
                promoted: false,
                first_on_sa: true
            }
        );
        assert_eq!(got[r.payload], payload[..]);
        let mut again = p1.clone();
        assert_eq!(
            rx.open(&rxc, &mut again),
            Err(RxError::Replay {
                spi: 0x1234_5678,
                pn: 1,
                reason: ReplayError::Duplicate
            })
        );
        let mut p2 = seal(&mut tx, &txc, Next::Grace, &[1, 0]);
        let r2 = rx.open(&rxc, &mut p2).unwrap();
        assert_eq!(
            (r2.pn, r2.next, r2.first_on_sa, r2.payload),
            (2, Next::Grace, false, 32..34)
        );
        assert_eq!((tx.packets(), tx.bytes(), tx.next_pn()), (2, 134 + 52, 3));
        let sa = rx.active().unwrap();
        assert_eq!(
            (sa.packets(), sa.bytes(), sa.window().highest()),
            (2, 134 + 52, 2)
        );
    }

    #[test]
    fn rx_rejections_in_order() {
        let (txc, rxc) = cfgs(None);
        let mut rx = slots_with(1, 77);
        let good = seal_pn(1, 77, 5, &txc, &ipv4(40));

        let mut p = good.clone();
        assert_eq!(
            rx.open(&rxc, &mut p[..49]),
            Err(RxError::Malformed(HeaderError::TooShort { len: 49 }))
        );
        let other_spi = seal_pn(1, 78, 5, &txc, &ipv4(40));
        assert_eq!(
            rx.open(&rxc, &mut other_spi.clone()),
            Err(RxError::UnknownSpi { spi: 78 })
        );
        // Flocks are checked before anything else about the SA.
        let mut p = good.clone();
        assert_eq!(
            rx.open(&txc, &mut p),
            Err(RxError::FlockMismatch {
                flock_src: 0xaaaa_aa01,
                flock_dst: 0xbbbb_bb02
            })
        );
        let wrong_key = seal_pn(2, 77, 5, &txc, &ipv4(40));
        assert_eq!(
            rx.open(&rxc, &mut wrong_key.clone()),
            Err(RxError::Auth { spi: 77, pn: 5 })
        );
        // A failed open does not move the window.
        assert_eq!(rx.active().unwrap().window().highest(), 1);
        assert!(!rx.active().unwrap().used());
        let mut p = good.clone();
        assert_eq!(rx.open(&rxc, &mut p).map(|r| r.pn), Ok(5));
        assert_eq!(
            rx.open(&rxc, &mut good.clone()),
            Err(RxError::Replay {
                spi: 77,
                pn: 5,
                reason: ReplayError::Duplicate
            })
        );
        let far = seal_pn(1, 77, 5 + 64, &txc, &ipv4(40));
        assert!(rx.open(&rxc, &mut far.clone()).is_ok());
        let old = seal_pn(1, 77, 5, &txc, &ipv4(40));
        assert_eq!(
            rx.open(&rxc, &mut old.clone()),
            Err(RxError::Replay {
                spi: 77,
                pn: 5,
                reason: ReplayError::TooOld
            })
        );
    }

    /// A packet with an arbitrary tail, sealed by hand.
    fn with_tail(k: u8, spi: u32, pn: u64, cfg: &DataConfig, body: &[u8]) -> Vec<u8> {
        let c = Cipher::new(&key(k));
        let h = cfg.header(spi, pn);
        let mut p = h.to_bytes().to_vec();
        let mut b = body.to_vec();
        let tag = c.seal(&h.nonce(&SALT), &p, &mut b);
        p.extend_from_slice(&b);
        p.extend_from_slice(&tag);
        p
    }

    #[test]
    fn bad_tail_is_authenticated_and_updates_window() {
        let (txc, rxc) = cfgs(None);
        let mut rx = slots_with(3, 9);
        let mut p = with_tail(3, 9, 4, &txc, &[0x45, 0, 1, 0xfc]);
        let e = rx.open(&rxc, &mut p).unwrap_err();
        assert_eq!(
            e,
            RxError::BadTail {
                spi: 9,
                pn: 4,
                error: TailError::Reserved(1)
            }
        );
        assert!(e.authenticated());
        assert_eq!(rx.active().unwrap().window().highest(), 4);
        let mut p = with_tail(3, 9, 5, &txc, &[0x45, 0, 0, 0x04]);
        assert_eq!(
            rx.open(&rxc, &mut p),
            Err(RxError::BadTail {
                spi: 9,
                pn: 5,
                error: TailError::UnknownNext(4)
            })
        );
        assert!(!RxError::Auth { spi: 9, pn: 5 }.authenticated());
    }

    #[test]
    fn tfc_roundtrip_and_trim() {
        let (txc, rxc) = cfgs(Some(1300));
        let mut tx = TxSa::new(key(4), 5, SALT, T0);
        let mut rx = slots_with(4, 5);
        let payload = ipv4(84);
        let mut p = seal(&mut tx, &txc, Next::Traffic, &payload);
        assert_eq!(p.len(), 1350);
        let r = rx.open(&rxc, &mut p).unwrap();
        assert_eq!(r.payload, 32..116);
        assert_eq!(p[r.payload], payload[..]);
        // Graces are padded but not trimmed.
        let mut g = seal(&mut tx, &txc, Next::Grace, &[1, 0]);
        assert_eq!(g.len(), 1350);
        assert_eq!(rx.open(&rxc, &mut g).unwrap().payload, 32..1332);
        // Total length beyond our MTU: dropped after authentication.
        let small = DataConfig {
            tfc_mtu: Some(80),
            ..rxc
        };
        let mut p = seal(&mut tx, &txc, Next::Traffic, &payload);
        assert_eq!(
            rx.open(&small, &mut p),
            Err(RxError::BadTfc {
                spi: 5,
                pn: 3,
                error: TfcError::BeyondMtu {
                    total: 84,
                    tun_mtu: 80
                }
            })
        );
        // A receiver without TFC keeps the padding.
        let mut p = seal(&mut tx, &txc, Next::Traffic, &payload);
        let plain = DataConfig {
            tfc_mtu: None,
            ..rxc
        };
        assert_eq!(rx.open(&plain, &mut p).unwrap().payload, 32..1332);
    }

    #[test]
    fn pending_install_and_promotion_keeps_window() {
        let (txc, rxc) = cfgs(None);
        let mut rx = slots_with(1, 100);
        assert_eq!(rx.install(RxSa::new(key(9), 200, SALT, T0)), Slot::Pending);
        // A second new key overwrites the unused pending one.
        assert_eq!(rx.install(RxSa::new(key(2), 200, SALT, T0)), Slot::Pending);
        assert_eq!((rx.active_spi(), rx.pending_spi()), (100, 200));

        let mut old = seal_pn(1, 100, 1, &txc, &ipv4(30));
        assert!(!rx.open(&rxc, &mut old).unwrap().promoted);
        let mut new1 = seal_pn(2, 200, 3, &txc, &ipv4(30));
        let new1_copy = new1.clone();
        let r = rx.open(&rxc, &mut new1).unwrap();
        assert!(r.promoted && r.first_on_sa);
        assert_eq!((rx.active_spi(), rx.pending_spi()), (200, 0));
        // The window travelled with the SA: the promoting packet is not
        // accepted twice.
        assert_eq!(rx.active().unwrap().window().highest(), 3);
        assert_eq!(
            rx.open(&rxc, &mut new1_copy.clone()),
            Err(RxError::Replay {
                spi: 200,
                pn: 3,
                reason: ReplayError::Duplicate
            })
        );
        // The old SA is gone.
        let mut old2 = seal_pn(1, 100, 2, &txc, &ipv4(30));
        assert_eq!(
            rx.open(&rxc, &mut old2),
            Err(RxError::UnknownSpi { spi: 100 })
        );
        let mut new2 = seal_pn(2, 200, 4, &txc, &ipv4(30));
        let r = rx.open(&rxc, &mut new2).unwrap();
        assert!(!r.promoted && !r.first_on_sa);
    }

    #[test]
    fn pending_failure_does_not_promote() {
        let (txc, rxc) = cfgs(None);
        let mut rx = slots_with(1, 100);
        rx.install(RxSa::new(key(2), 200, SALT, T0));
        let mut forged = seal_pn(3, 200, 1, &txc, &ipv4(30));
        assert_eq!(
            rx.open(&rxc, &mut forged),
            Err(RxError::Auth { spi: 200, pn: 1 })
        );
        let mut bad_tail = with_tail(2, 200, 2, &txc, &[0x45, 0, 9, 0]);
        assert!(rx.open(&rxc, &mut bad_tail).unwrap_err().authenticated());
        assert_eq!((rx.active_spi(), rx.pending_spi()), (100, 200));
    }

    #[test]
    fn same_spi_in_both_slots_tries_pending_with_intact_ciphertext() {
        let (txc, rxc) = cfgs(None);
        let mut rx = slots_with(1, 300);
        rx.install(RxSa::new(key(2), 300, SALT, T0));
        let mut p = seal_pn(2, 300, 1, &txc, &ipv4(50));
        let r = rx.open(&rxc, &mut p).unwrap();
        assert!(r.promoted);
        assert_eq!(p[r.payload], ipv4(50)[..]);
        assert!(rx.pending().is_none());
    }

    #[test]
    fn erase_wipes_both() {
        let (txc, rxc) = cfgs(None);
        let mut rx = slots_with(1, 100);
        rx.install(RxSa::new(key(2), 200, SALT, T0));
        rx.erase();
        assert!(rx.active().is_none() && rx.pending().is_none());
        assert_eq!((rx.active_spi(), rx.pending_spi()), (0, 0));
        let mut p = seal_pn(1, 100, 1, &txc, &ipv4(30));
        assert_eq!(rx.open(&rxc, &mut p), Err(RxError::UnknownSpi { spi: 100 }));
        assert_eq!(rx.install(RxSa::new(key(2), 200, SALT, T0)), Slot::Active);
    }

    #[test]
    fn tx_hard_limits() {
        let cfg = DataConfig::default();
        let mut tx = TxSa::new(key(1), 1, SALT, T0);
        let mut buf = [0u8; OVERHEAD + 2];
        assert_eq!(tx.expiry(T0 + core::time::Duration::from_secs(3599)), None);
        let late = T0 + core::time::Duration::from_secs(3600);
        assert_eq!(tx.expiry(late), Some(Limit::Age));
        assert_eq!(
            tx.seal(&cfg, late, Next::Grace, &mut buf, 2),
            Err(TxError::Expired(Limit::Age))
        );
        tx.next_pn = PACKET_HARD_LIMIT - 1;
        assert_eq!(
            tx.seal(&cfg, T0, Next::Grace, &mut buf, 2).map(|s| s.pn),
            Ok(PACKET_HARD_LIMIT - 1)
        );
        assert_eq!(
            tx.seal(&cfg, T0, Next::Grace, &mut buf, 2),
            Err(TxError::Expired(Limit::Packets))
        );
        assert_eq!(tx.next_pn(), PACKET_HARD_LIMIT);
        // A too-small buffer does not use up a packet number.
        let mut tx = TxSa::new(key(1), 1, SALT, T0);
        assert!(matches!(
            tx.seal(&cfg, T0, Next::Grace, &mut buf[..51], 2),
            Err(TxError::Seal(_))
        ));
        assert_eq!(tx.next_pn(), 1);
    }

    #[test]
    fn rx_soft_limits() {
        let mut rx = slots_with(1, 1);
        assert_eq!(
            rx.rekey_wanted(T0 + core::time::Duration::from_secs(3499)),
            None
        );
        assert_eq!(
            rx.rekey_wanted(T0 + core::time::Duration::from_secs(3500)),
            Some(Limit::Age)
        );
        if let Some(sa) = rx.active.as_mut() {
            sa.packets = PACKET_SOFT_LIMIT - 1;
        }
        assert_eq!(rx.rekey_wanted(T0), None);
        if let Some(sa) = rx.active.as_mut() {
            sa.packets = PACKET_SOFT_LIMIT;
        }
        assert_eq!(rx.rekey_wanted(T0), Some(Limit::Packets));
        assert_eq!(RxSlots::new().rekey_wanted(T0), None);
    }

    #[test]
    fn expanded_keys_are_wiped_on_drop() {
        // Cipher wraps aes-gcm's Aes256Gcm; with its `zeroize` feature the
        // AES round keys and the GHASH key are cleared when an SA drops.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<aes_gcm::Aes256Gcm>();
        wiped_on_drop::<Key32>();
    }

    #[test]
    fn single_sa_open() {
        let (txc, rxc) = cfgs(None);
        let mut sa = RxSa::new(key(5), 42, SALT, T0);
        let mut p = seal_pn(5, 42, 1, &txc, &ipv4(20));
        assert_eq!(sa.open(&rxc, &mut p).map(|r| r.payload), Ok(32..52));
        let mut q = seal_pn(5, 43, 2, &txc, &ipv4(20));
        assert_eq!(sa.open(&rxc, &mut q), Err(RxError::UnknownSpi { spi: 43 }));
    }
}
