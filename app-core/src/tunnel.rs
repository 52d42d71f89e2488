//! One whole tunnel-mode endpoint (in the spirit of libkyrka, spec/libkyrka.md):
//! the key exchange ([`crate::exchange`]), the TX and RX security
//! associations ([`crate::sa`]), graces, TFC and the shroud composed into a
//! single sans-IO value.
//!
//! The caller owns the TUN device, the UDP socket and the clock:
//! - clear packets from the TUN side go to [`Tunnel::send`];
//! - datagrams from the UDP socket go to [`Tunnel::receive`];
//! - when [`Tunnel::poll_timeout`] is reached, call [`Tunnel::handle_timeout`];
//! - after any of these, drain [`Tunnel::poll_transmit`] (datagrams to send),
//!   [`Tunnel::poll_clear`] (packets for the TUN side) and
//!   [`Tunnel::poll_event`].
//!
//! chantryd splits the same parts across role processes (chapel holds the
//! [`KeyExchange`], bless the [`TxSa`], confess the [`RxSlots`]); mobile and
//! tests use this value directly. The two halves stay separate inside: a clear
//! packet reaches the wire only through [`Tunnel::send`]'s seal, and a wire
//! packet reaches the clear side only after [`RxSlots::open`] authenticated it.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::Duration;

use crate::entropy::Entropy;
use crate::exchange::{self, ExchangeConfig, KeyCommand, KeyExchange, RxStatus};
use crate::kdf;
use crate::sa::{RxError, RxSa, RxSlots, TxError, TxSa};
use crate::secret::Key32;
use crate::time::{Instant, Now};
use crate::wire::data::{self, DataConfig, Next};
use crate::wire::grace::{self, Grace};
use crate::wire::offer::{self, Magic, PacketKind};
use crate::wire::shroud::{self, ShroudHeader};

/// Heartbeat interval (behaviour.md §4.1).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Fast heartbeat interval after a TX key install (hole punching).
pub const FAST_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long heartbeats stay fast after a TX key install.
pub const FAST_HEARTBEAT_WINDOW: Duration = Duration::from_secs(15);
/// Clear packets shorter than this are not sent (wire.md §3.4).
pub const MIN_CLEAR_LEN: usize = 13;
/// Largest datagram the reference daemon reads.
pub const MAX_DATAGRAM: usize = 1522;

/// Configuration of one tunnel.
#[derive(Clone, Debug)]
pub struct TunnelConfig {
    /// The 32-byte shared secret.
    pub shared_secret: Key32,
    /// Own `cathedral_flock` (0 without a cathedral).
    pub flock_src: u64,
    /// Own `cathedral_flock_dst` (0 without a cathedral).
    pub flock_dst: u64,
    /// Tunnel id (`local << 8 | remote`), 0 for none.
    pub tunnel_id: u16,
    /// A fixed peer, or `None` to learn it from authenticated traffic.
    pub peer: Option<SocketAddrV4>,
    /// Tunnel (inner) MTU: the largest clear packet, the TFC pad target and
    /// the shroud padding target.
    pub tun_mtu: usize,
    /// TFC padding (wire.md §3.5). Both peers must agree.
    pub tfc: bool,
    /// Shroud every datagram (wire.md §2). Both peers must agree.
    pub shroud: bool,
}

impl TunnelConfig {
    /// A tunnel without cathedral, TFC or shroud.
    pub fn new(shared_secret: Key32, peer: Option<SocketAddrV4>, tun_mtu: usize) -> Self {
        TunnelConfig {
            shared_secret,
            flock_src: 0,
            flock_dst: 0,
            tunnel_id: 0,
            peer,
            tun_mtu,
            tfc: false,
            shroud: false,
        }
    }
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: SocketAddrV4,
    /// UDP payload.
    pub datagram: Vec<u8>,
}

/// What happened, for logs and user interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelEvent {
    /// Something in the key exchange.
    Exchange(exchange::Event),
    /// A new TX SA is in use.
    TxKeyInstalled {
        /// Its SPI.
        spi: u32,
    },
    /// A new RX SA was installed (active, or pending until first use).
    RxKeyInstalled {
        /// Its SPI.
        spi: u32,
    },
    /// All session keys were wiped.
    KeysErased,
    /// The peer address changed (learned from authenticated traffic).
    PeerAddress(SocketAddrV4),
    /// The peer acknowledged an MTU probe of this payload size.
    MtuAcknowledged(u16),
    /// The TX SA hit a hard limit and was destroyed until the next rekey.
    TxExpired,
}

/// Why a clear packet was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No TX key yet (or it expired).
    #[error("no TX key")]
    NoTxKey,
    /// No peer address known yet.
    #[error("no peer address")]
    NoPeer,
    /// Shorter than 13 bytes.
    #[error("packet of {0} bytes is too short")]
    TooShort(usize),
    /// Larger than the tunnel MTU.
    #[error("packet of {len} bytes exceeds the tunnel MTU {mtu}")]
    TooBig {
        /// Packet length.
        len: usize,
        /// Tunnel MTU.
        mtu: usize,
    },
}

/// Why a received datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Too short, or could not be unshrouded.
    #[error("malformed datagram")]
    Malformed,
    /// An offer of a kind this endpoint does not accept.
    #[error("unexpected {0:?} offer")]
    UnexpectedOffer(Magic),
    /// A key offer that failed a check.
    #[error("offer rejected: {0}")]
    Offer(exchange::ExchangeError),
    /// A data packet that failed a check.
    #[error("data packet rejected: {0}")]
    Data(RxError),
}

/// Counters of one tunnel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// SPI of the TX SA (0: none).
    pub tx_spi: u32,
    /// SPI of the active RX SA (0: none).
    pub rx_spi: u32,
    /// SPI of the pending RX SA (0: none).
    pub rx_pending_spi: u32,
    /// Data packets sealed (including graces).
    pub tx_packets: u64,
    /// Bytes sealed.
    pub tx_bytes: u64,
    /// Data packets opened.
    pub rx_packets: u64,
    /// Bytes opened.
    pub rx_bytes: u64,
    /// Datagrams dropped.
    pub dropped: u64,
    /// Completed key exchanges (TX installs).
    pub rekeys: u64,
    /// When the last packet was decrypted.
    pub last_rx: Option<Instant>,
    /// Current peer address.
    pub peer: Option<SocketAddrV4>,
}

/// The exchange's view of a tunnel configuration.
fn exchange_config(cfg: &TunnelConfig) -> ExchangeConfig {
    ExchangeConfig {
        flock_src: cfg.flock_src,
        flock_dst: cfg.flock_dst,
        tunnel_id: cfg.tunnel_id,
        cathedral: cfg.flock_src != 0,
    }
}

/// A tunnel-mode sanctum endpoint.
#[derive(Debug)]
pub struct Tunnel {
    cfg: TunnelConfig,
    data: DataConfig,
    chapel: KeyExchange,
    bless: Option<TxSa>,
    confess: RxSlots,
    peer_shroud: Option<Key32>,
    peer: Option<SocketAddrV4>,
    fast_heartbeats_until: Option<Instant>,
    next_heartbeat: Option<Instant>,
    transmits: VecDeque<Transmit>,
    clear: VecDeque<Vec<u8>>,
    events: VecDeque<TunnelEvent>,
    stats: Stats,
}

impl Tunnel {
    /// A tunnel starting at `now`. No key exchange starts before the first
    /// [`Tunnel::handle_timeout`].
    pub fn new(cfg: TunnelConfig, rng: &mut dyn Entropy) -> Self {
        let ex_cfg = exchange_config(&cfg);
        let chapel = KeyExchange::new(ex_cfg, cfg.shared_secret.clone(), rng);
        Self::assemble(cfg, chapel)
    }

    /// Like [`Tunnel::new`] with a given instance id (deterministic tests).
    pub fn with_instance_id(cfg: TunnelConfig, id: u64) -> Self {
        let ex_cfg = exchange_config(&cfg);
        let chapel = KeyExchange::with_instance_id(ex_cfg, cfg.shared_secret.clone(), id);
        Self::assemble(cfg, chapel)
    }

    fn assemble(cfg: TunnelConfig, mut chapel: KeyExchange) -> Self {
        let data = DataConfig {
            flock_src: cfg.flock_src,
            flock_dst: cfg.flock_dst,
            tfc_mtu: cfg.tfc.then_some(cfg.tun_mtu),
        };
        let peer_shroud = cfg
            .shroud
            .then(|| kdf::peer_shroud_key(&cfg.shared_secret, cfg.flock_src, cfg.flock_dst));
        chapel.set_peer_known(cfg.peer.is_some());
        let peer = cfg.peer;
        Tunnel {
            cfg,
            data,
            chapel,
            bless: None,
            confess: RxSlots::new(),
            peer_shroud,
            peer,
            fast_heartbeats_until: None,
            next_heartbeat: None,
            transmits: VecDeque::new(),
            clear: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats {
                peer,
                ..Stats::default()
            },
        }
    }

    /// This endpoint's instance id (as sent in its offers).
    pub fn instance_id(&self) -> u64 {
        self.chapel.instance_id()
    }

    /// The current peer address.
    pub fn peer(&self) -> Option<SocketAddrV4> {
        self.peer
    }

    /// Counters and SPIs.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.tx_spi = self.bless.as_ref().map_or(0, TxSa::spi);
        s.rx_spi = self.confess.active_spi();
        s.rx_pending_spi = self.confess.pending_spi();
        s.peer = self.peer;
        s
    }

    /// True once both a TX and an RX key are installed.
    pub fn is_keyed(&self) -> bool {
        self.bless.is_some() && self.confess.active().is_some()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next decrypted clear packet for the TUN side.
    pub fn poll_clear(&mut self) -> Option<Vec<u8>> {
        self.clear.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TunnelEvent> {
        self.events.pop_front()
    }

    /// When [`Tunnel::handle_timeout`] must be called at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ex = self.chapel.next_deadline();
        let hb = if self.bless.is_some() {
            self.next_heartbeat
        } else {
            None
        };
        match (ex, hb) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers: the key exchange (pulses, rekey triggers, dead
    /// peer) and heartbeats.
    pub fn handle_timeout(&mut self, now: Now, rng: &mut dyn Entropy) {
        self.sync_rx_status();
        self.chapel.poll(now, rng);
        // drain_chapel also sends a heartbeat that has fallen due.
        self.drain_chapel(now, rng);
    }

    /// Encrypts one clear packet (an IPv4 packet from the TUN side) and
    /// queues the datagram for the peer.
    pub fn send(&mut self, clear: &[u8], now: Now, rng: &mut dyn Entropy) -> Result<(), SendError> {
        if clear.len() < MIN_CLEAR_LEN {
            return Err(SendError::TooShort(clear.len()));
        }
        if clear.len() > self.cfg.tun_mtu {
            return Err(SendError::TooBig {
                len: clear.len(),
                mtu: self.cfg.tun_mtu,
            });
        }
        self.seal_and_queue(Next::Traffic, clear, now, rng)
    }

    fn seal_and_queue(
        &mut self,
        next: Next,
        payload: &[u8],
        now: Now,
        rng: &mut dyn Entropy,
    ) -> Result<(), SendError> {
        let peer = self.peer.ok_or(SendError::NoPeer)?;
        let Some(tx) = self.bless.as_mut() else {
            return Err(SendError::NoTxKey);
        };
        let sealed_len =
            data::sealed_len(payload.len(), self.data.tfc_mtu).ok_or(SendError::TooBig {
                len: payload.len(),
                mtu: self.cfg.tun_mtu,
            })?;
        let room = shroud::HEADER_LEN;
        let mut buf = vec![0u8; room + sealed_len];
        buf[room + data::PAYLOAD_OFFSET..room + data::PAYLOAD_OFFSET + payload.len()]
            .copy_from_slice(payload);
        match tx.seal(&self.data, now.mono, next, &mut buf[room..], payload.len()) {
            Ok(sealed) => {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += sealed.len as u64;
                buf.truncate(room + sealed.len);
                let datagram = self.wrap(buf, sealed.len, rng);
                self.transmits.push_back(Transmit {
                    dst: peer,
                    datagram,
                });
                Ok(())
            }
            Err(TxError::Expired(_)) => {
                self.bless = None;
                self.events.push_back(TunnelEvent::TxExpired);
                Err(SendError::NoTxKey)
            }
            Err(_) => Err(SendError::TooBig {
                len: payload.len(),
                mtu: self.cfg.tun_mtu,
            }),
        }
    }

    /// Shrouds `buf[48..48 + len]` if configured, else strips the headroom.
    fn wrap(&self, mut buf: Vec<u8>, len: usize, rng: &mut dyn Entropy) -> Vec<u8> {
        match &self.peer_shroud {
            Some(key) => {
                let pad = shroud::padding_len(len, self.cfg.tun_mtu, rng);
                buf.resize(shroud::OVERHEAD + len + pad, 0);
                let header = ShroudHeader::random(rng);
                // The buffer was sized for exactly this datagram.
                let _ = shroud::shroud_in_place(key, &header, &mut buf, len, pad);
                buf
            }
            None => buf.split_off(shroud::HEADER_LEN),
        }
    }

    fn send_grace(&mut self, g: &Grace, now: Now, rng: &mut dyn Entropy) {
        let bytes = g.to_vec();
        // A grace that cannot be sent (no key, no peer) is simply not sent.
        let _ = self.seal_and_queue(Next::Grace, &bytes, now, rng);
    }

    fn schedule_heartbeat(&mut self, now: Instant) {
        let fast = self.fast_heartbeats_until.is_some_and(|t| now < t);
        let interval = if fast {
            FAST_HEARTBEAT_INTERVAL
        } else {
            HEARTBEAT_INTERVAL
        };
        self.next_heartbeat = Some(now + interval);
    }

    /// Handles one datagram received from `from`. Authenticated packets
    /// teach the peer address; decrypted traffic is queued for
    /// [`Tunnel::poll_clear`].
    pub fn receive(
        &mut self,
        from: SocketAddrV4,
        datagram: &[u8],
        now: Now,
        rng: &mut dyn Entropy,
    ) -> Result<(), DropReason> {
        let r = self.receive_inner(from, datagram, now, rng);
        if r.is_err() {
            self.stats.dropped += 1;
        }
        self.drain_chapel(now, rng);
        r
    }

    fn receive_inner(
        &mut self,
        from: SocketAddrV4,
        datagram: &[u8],
        now: Now,
        rng: &mut dyn Entropy,
    ) -> Result<(), DropReason> {
        if datagram.len() > MAX_DATAGRAM.max(self.cfg.tun_mtu + 200) {
            return Err(DropReason::Malformed);
        }
        let mut buf = datagram.to_vec();
        let range = match &self.peer_shroud {
            Some(key) => {
                shroud::unshroud_in_place(key, &mut buf).map_err(|_| DropReason::Malformed)?
            }
            None => 0..buf.len(),
        };
        let packet = &mut buf[range];
        match offer::classify(packet) {
            None => Err(DropReason::Malformed),
            Some(PacketKind::Offer(Magic::Sacrament)) => {
                self.chapel
                    .handle_offer(packet, now, rng)
                    .map_err(DropReason::Offer)?;
                self.learn_peer(from);
                Ok(())
            }
            Some(PacketKind::Offer(m)) => Err(DropReason::UnexpectedOffer(m)),
            Some(PacketKind::Data) => self.receive_data(from, packet, now, rng),
        }
    }

    fn receive_data(
        &mut self,
        from: SocketAddrV4,
        packet: &mut [u8],
        now: Now,
        rng: &mut dyn Entropy,
    ) -> Result<(), DropReason> {
        let rx = match self.confess.open(&self.data, packet) {
            Ok(rx) => rx,
            Err(e) => {
                if e.authenticated() {
                    self.learn_peer(from);
                }
                return Err(DropReason::Data(e));
            }
        };
        self.learn_peer(from);
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += packet.len() as u64;
        self.stats.last_rx = Some(now.mono);
        self.chapel.rx_decrypted(now.mono);
        if rx.promoted {
            self.events
                .push_back(TunnelEvent::RxKeyInstalled { spi: rx.spi });
        }
        self.sync_rx_status();
        let payload = &packet[rx.payload.clone()];
        match rx.next {
            Next::Traffic => self.clear.push_back(payload.to_vec()),
            Next::Grace => match Grace::parse(payload) {
                Ok(Grace::MtuProbe { size }) if grace::probe_acceptable(size, self.cfg.tun_mtu) => {
                    self.send_grace(&Grace::MtuAck { size }, now, rng);
                }
                Ok(Grace::MtuAck { size }) if grace::ack_acceptable(size) => {
                    self.events.push_back(TunnelEvent::MtuAcknowledged(size));
                }
                _ => {}
            },
        }
        Ok(())
    }

    fn learn_peer(&mut self, from: SocketAddrV4) {
        if self.peer != Some(from) {
            self.peer = Some(from);
            self.chapel.set_peer_known(true);
            self.events.push_back(TunnelEvent::PeerAddress(from));
        }
    }

    /// Tells the exchange about the active RX SA. Like the reference's RX
    /// statistics, an SA counts only from its first decrypted packet.
    fn sync_rx_status(&mut self) {
        let status = self
            .confess
            .active()
            .filter(|sa| sa.packets() > 0)
            .map(|sa| RxStatus {
                spi: sa.spi(),
                packets: sa.packets(),
                installed: sa.installed_at(),
            });
        self.chapel.set_rx_status(status);
    }

    /// Applies key commands, queues offers and forwards events.
    fn drain_chapel(&mut self, now: Now, rng: &mut dyn Entropy) {
        while let Some(cmd) = self.chapel.poll_key() {
            match cmd {
                KeyCommand::InstallRx(k) => {
                    let spi = k.spi;
                    self.confess
                        .install(RxSa::new(k.key, k.spi, k.salt, now.mono));
                    self.events.push_back(TunnelEvent::RxKeyInstalled { spi });
                }
                KeyCommand::InstallTx(k) => {
                    let spi = k.spi;
                    self.bless = Some(TxSa::new(k.key, k.spi, k.salt, now.mono));
                    self.stats.rekeys += 1;
                    self.fast_heartbeats_until = Some(now.mono + FAST_HEARTBEAT_WINDOW);
                    self.next_heartbeat = Some(now.mono);
                    self.events.push_back(TunnelEvent::TxKeyInstalled { spi });
                }
                KeyCommand::Erase => {
                    self.bless = None;
                    self.confess.erase();
                    self.next_heartbeat = None;
                    if self.cfg.peer.is_none() {
                        self.peer = None;
                        self.chapel.set_peer_known(false);
                    }
                    self.events.push_back(TunnelEvent::KeysErased);
                }
            }
        }
        self.sync_rx_status();
        while let Some(offer) = self.chapel.poll_transmit() {
            let Some(dst) = self.peer else { continue };
            let mut buf = vec![0u8; shroud::HEADER_LEN + offer.len()];
            buf[shroud::HEADER_LEN..].copy_from_slice(&offer);
            let datagram = self.wrap(buf, offer.len(), rng);
            self.transmits.push_back(Transmit { dst, datagram });
        }
        while let Some(e) = self.chapel.poll_event() {
            self.events.push_back(TunnelEvent::Exchange(e));
        }
        if self.bless.is_some() && self.next_heartbeat.is_some_and(|t| now.mono >= t) {
            self.send_grace(&Grace::Heartbeat, now, rng);
            self.schedule_heartbeat(now.mono);
        }
    }
}
