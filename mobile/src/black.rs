//! The black (wire) side: everything that holds key material or touches
//! ciphertext.
//!
//! It owns app-core's [`Tunnel`] (key exchange, TX and RX security
//! associations, graces, shroud) and, for cathedral profiles, the
//! [`CathedralClient`] and the device KEK that unwraps ambries. It takes
//! [`ClearPacket`]s from the red side, datagrams from the host's UDP socket
//! and timer ticks, and answers with [`Output`] messages: datagrams to
//! send, decrypted [`ClearPacket`]s for the red side, and events. Nothing
//! outside this module can reach a key: the values here are never shared,
//! only messages leave.

use std::net::SocketAddrV4;

use chantry_core::ambry::Unwrapper;
use chantry_core::cathedral::client::{CathedralClient, CathedralEvent, PeerInfo};
use chantry_core::entropy::OsEntropy;
use chantry_core::exchange::Event as ExchangeEvent;
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use chantry_core::tunnel::{SendError, Tunnel, TunnelConfig, TunnelEvent};
use chantry_core::wire::offer::{self, Magic, PacketKind};

use crate::error::ProfileError;
use crate::profile::CathedralSetup;
use crate::red::ClearPacket;
use crate::types::{Endpoint, EngineEvent, TunnelState, Verdict};

/// A message from the black side.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// A datagram for the host's UDP socket.
    Transmit {
        /// Destination.
        to: SocketAddrV4,
        /// UDP payload.
        datagram: Vec<u8>,
    },
    /// A decrypted packet for the red side.
    Clear(ClearPacket),
    /// Something to tell the host.
    Event(EngineEvent),
}

/// A message to the black side.
#[derive(Debug)]
pub(crate) enum Input<'a> {
    /// A clear packet the red side vetted: seal it for the peer.
    Clear(ClearPacket),
    /// A datagram from the host's UDP socket.
    Datagram {
        /// Where it came from.
        from: SocketAddrV4,
        /// UDP payload.
        bytes: &'a [u8],
    },
    /// A timer fell due.
    Tick,
}

/// The black side's counters, as the engine reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlackStats {
    /// The tunnel's own counters (zero before the shared secret exists).
    pub tunnel: chantry_core::tunnel::Stats,
    /// True if the peer is the cathedral (relay).
    pub relayed: bool,
    /// Ambry generation in use.
    pub ambry_generation: u32,
}

/// The cathedral part of a black side.
#[derive(Debug)]
struct Cathedral {
    client: CathedralClient,
    /// The device base KEK; `None` with a fixed shared secret.
    kek: Option<Key32>,
    generation: u32,
}

/// The black side of one engine.
#[derive(Debug)]
pub(crate) struct Black {
    /// How to make the tunnel (again, after a new ambry).
    config: TunnelConfig,
    tunnel: Option<Tunnel>,
    cathedral: Option<Cathedral>,
    rng: OsEntropy,
    /// False until the first [`Black::tick`].
    started: bool,
    closed: bool,
    reported: Option<TunnelState>,
}

impl Black {
    /// A black side. `config`'s shared secret is used only if
    /// `secret_known`; otherwise the tunnel is made when the first ambry
    /// arrives.
    pub(crate) fn new(
        config: TunnelConfig,
        secret_known: bool,
        cathedral: Option<CathedralSetup>,
        now: Now,
    ) -> Result<Self, ProfileError> {
        let mut rng = OsEntropy;
        let tunnel = secret_known.then(|| Tunnel::new(config.clone(), &mut rng));
        let cathedral = match cathedral {
            None => None,
            Some(setup) => {
                let mut client_cfg = setup.client;
                client_cfg.instance = tunnel.as_ref().map_or(0, Tunnel::instance_id);
                let client = CathedralClient::new(client_cfg, now, &mut rng).map_err(|e| {
                    ProfileError::InvalidKey {
                        name: "cathedral_cosk".to_owned(),
                        message: e.to_string(),
                    }
                })?;
                Some(Cathedral {
                    client,
                    kek: setup.kek,
                    generation: 0,
                })
            }
        };
        Ok(Black {
            config,
            tunnel,
            cathedral,
            rng,
            started: false,
            closed: false,
            reported: None,
        })
    }

    /// Handles one message; what it produced goes to `out`.
    pub(crate) fn handle(&mut self, input: Input<'_>, now: Now, out: &mut Vec<Output>) -> Verdict {
        match input {
            Input::Clear(p) => self.seal(&p, now, out),
            Input::Datagram { from, bytes } => self.receive(from, bytes, now, out),
            Input::Tick => {
                self.tick(now, out);
                Verdict::Accepted
            }
        }
    }

    /// Where the tunnel stands.
    pub(crate) fn state(&self) -> TunnelState {
        match &self.tunnel {
            _ if self.closed => TunnelState::Closed,
            None => TunnelState::WaitingForSecret,
            Some(t) if t.is_keyed() => TunnelState::Up,
            Some(_) => TunnelState::Keying,
        }
    }

    /// Seals a clear packet from the red side.
    fn seal(&mut self, clear: &ClearPacket, now: Now, out: &mut Vec<Output>) -> Verdict {
        if self.closed {
            return Verdict::Closed;
        }
        let Some(t) = self.tunnel.as_mut() else {
            return Verdict::NoKey;
        };
        let verdict = match t.send(clear.bytes(), now, &mut self.rng) {
            Ok(()) => Verdict::Accepted,
            Err(SendError::NoTxKey) => Verdict::NoKey,
            Err(SendError::NoPeer) => Verdict::NoPeer,
            Err(SendError::TooShort(_)) => Verdict::TooShort,
            Err(SendError::TooBig { .. }) => Verdict::TooBig,
        };
        self.drain(now, out);
        verdict
    }

    /// Handles a datagram from the host's UDP socket.
    fn receive(
        &mut self,
        from: SocketAddrV4,
        datagram: &[u8],
        now: Now,
        out: &mut Vec<Output>,
    ) -> Verdict {
        if self.closed {
            return Verdict::Closed;
        }
        let katedral = matches!(
            offer::classify(datagram),
            Some(PacketKind::Offer(Magic::Katedral))
        );
        let ok = match (&mut self.cathedral, &mut self.tunnel) {
            (Some(c), _) if katedral && from == c.client.cathedral() => {
                c.client.handle_datagram(now, from, datagram).is_ok()
            }
            (_, Some(t)) => t.receive(from, datagram, now, &mut self.rng).is_ok(),
            (_, None) => false,
        };
        self.drain(now, out);
        if ok {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        }
    }

    /// Runs the timers of the tunnel and the cathedral client.
    fn tick(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.closed {
            return;
        }
        self.started = true;
        if let Some(t) = self.tunnel.as_mut() {
            t.handle_timeout(now, &mut self.rng);
        }
        self.sync_cathedral();
        if let Some(c) = self.cathedral.as_mut() {
            c.client.handle_timeout(now, &mut self.rng);
        }
        self.drain(now, out);
    }

    /// When [`Black::tick`] must run next; `None` if only a datagram can
    /// move things on.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        if !self.started {
            return Some(Instant::ZERO);
        }
        let t = self.tunnel.as_ref().and_then(Tunnel::poll_timeout);
        let c = self
            .cathedral
            .as_ref()
            .and_then(|c| c.client.next_deadline());
        match (t, c) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counters.
    pub(crate) fn stats(&self) -> BlackStats {
        let tunnel = self.tunnel.as_ref().map(Tunnel::stats).unwrap_or_default();
        BlackStats {
            tunnel,
            relayed: self.relayed(tunnel.peer),
            ambry_generation: self.cathedral.as_ref().map_or(0, |c| c.generation),
        }
    }

    /// Wipes every key (the tunnel, the cathedral client and the KEK are
    /// dropped, which zeroizes them) and refuses all further work.
    pub(crate) fn shutdown(&mut self, out: &mut Vec<Output>) {
        self.tunnel = None;
        self.cathedral = None;
        self.config.shared_secret = Key32::zero();
        self.closed = true;
        self.report_state(out);
    }

    /// True if `peer` is the cathedral (relay).
    fn relayed(&self, peer: Option<SocketAddrV4>) -> bool {
        match (&self.cathedral, peer) {
            (Some(c), Some(p)) => c.client.is_cathedral_ip(*p.ip()),
            _ => false,
        }
    }

    /// The cathedral reports our RX SPIs (it relays only those) and our
    /// instance id.
    fn sync_cathedral(&mut self) {
        let (Some(c), Some(t)) = (self.cathedral.as_mut(), self.tunnel.as_ref()) else {
            return;
        };
        let s = t.stats();
        c.client.set_rx_spis(s.rx_spi, s.rx_pending_spi);
        c.client.set_instance(t.instance_id());
    }

    /// Moves everything the tunnel and the cathedral client produced into
    /// `out`.
    fn drain(&mut self, now: Now, out: &mut Vec<Output>) {
        self.drain_cathedral(now, out);
        let relayed_to = self.cathedral.as_ref().map(|c| *c.client.cathedral().ip());
        if let Some(t) = self.tunnel.as_mut() {
            while let Some(tx) = t.poll_transmit() {
                out.push(Output::Transmit {
                    to: tx.dst,
                    datagram: tx.datagram,
                });
            }
            while let Some(p) = t.poll_clear() {
                out.push(Output::Clear(ClearPacket::decrypted(p)));
            }
            while let Some(e) = t.poll_event() {
                out.push(Output::Event(tunnel_event(e, relayed_to)));
            }
        }
        self.sync_cathedral();
        self.report_state(out);
    }

    fn drain_cathedral(&mut self, now: Now, out: &mut Vec<Output>) {
        let mut events = Vec::new();
        if let Some(c) = self.cathedral.as_mut() {
            while let Some(tx) = c.client.poll_transmit() {
                out.push(Output::Transmit {
                    to: tx.destination,
                    datagram: tx.datagram,
                });
            }
            while let Some(e) = c.client.poll_event() {
                events.push(e);
            }
        }
        for e in events {
            self.cathedral_event(e, now, out);
        }
    }

    fn cathedral_event(&mut self, e: CathedralEvent, now: Now, out: &mut Vec<Output>) {
        let event = match e {
            CathedralEvent::Ambry(body) => match self.unwrap_ambry(&body, now) {
                Ok(()) => EngineEvent::AmbryInstalled {
                    generation: body.generation,
                },
                Err(message) => EngineEvent::Error { message },
            },
            CathedralEvent::PeerInfo(info) => match peer_discovered(&info) {
                Some(e) => e,
                None => return,
            },
            CathedralEvent::Remembrance(r) => EngineEvent::Info {
                message: format!(
                    "the cathedral sent a list of {} cathedrals",
                    r.entries.len()
                ),
            },
            CathedralEvent::Unresponsive { cathedral } => EngineEvent::Error {
                message: format!("cathedral {cathedral} has been silent for 45 s"),
            },
            CathedralEvent::Switched { from, to } => EngineEvent::Info {
                message: format!("switched from cathedral {from} to {to}"),
            },
            CathedralEvent::Liturgy(_) | CathedralEvent::Ignored { .. } => return,
        };
        out.push(Output::Event(event));
    }

    /// Unwraps an ambry with the KEK and (re)makes the tunnel with the new
    /// shared secret. A later generation makes a fresh tunnel: its keys are
    /// exchanged again under the new secret.
    fn unwrap_ambry(
        &mut self,
        body: &chantry_core::wire::offer::AmbryBody,
        now: Now,
    ) -> Result<(), String> {
        let Some(c) = self.cathedral.as_mut() else {
            return Err("ambry without a cathedral".to_owned());
        };
        let Some(kek) = c.kek.as_ref() else {
            return Err("ambry without a KEK".to_owned());
        };
        let secret = Unwrapper {
            base_kek: kek,
            flock_src: self.config.flock_src,
            flock_dst: self.config.flock_dst,
            tunnel: self.config.tunnel_id,
            current_generation: c.generation,
        }
        .unwrap(body, now.wall)
        .map_err(|e| format!("ambry refused: {e}"))?;
        c.generation = body.generation;
        c.client.set_ambry_generation(body.generation);
        let mut config = self.config.clone();
        config.shared_secret = secret;
        if let Some(peer) = self.tunnel.as_ref().and_then(Tunnel::peer) {
            config.peer = Some(peer);
        }
        let mut tunnel = Tunnel::new(config, &mut self.rng);
        if self.started {
            tunnel.handle_timeout(now, &mut self.rng);
        }
        self.tunnel = Some(tunnel);
        Ok(())
    }

    /// Reports a state change once.
    fn report_state(&mut self, out: &mut Vec<Output>) {
        let state = self.state();
        if self.reported != Some(state) {
            self.reported = Some(state);
            out.push(Output::Event(EngineEvent::State { state }));
        }
    }
}

/// A cathedral's word on where the peer is, if it names an address.
fn peer_discovered(info: &PeerInfo) -> Option<EngineEvent> {
    info.peer.map(|p| EngineEvent::PeerDiscovered {
        peer: Endpoint::from(p),
        relayed: info.relayed,
    })
}

/// A tunnel event for the host. `cathedral` is the relaying cathedral's IP.
fn tunnel_event(e: TunnelEvent, cathedral: Option<std::net::Ipv4Addr>) -> EngineEvent {
    match e {
        TunnelEvent::Exchange(e) => EngineEvent::Info {
            message: describe(&e),
        },
        TunnelEvent::TxKeyInstalled { spi } => EngineEvent::Rekey { tx_spi: spi },
        TunnelEvent::RxKeyInstalled { spi } => EngineEvent::RxKey { spi },
        TunnelEvent::KeysErased => EngineEvent::KeysErased,
        TunnelEvent::PeerAddress(a) => EngineEvent::PeerAddress {
            peer: Endpoint::from(a),
            relayed: cathedral == Some(*a.ip()),
        },
        TunnelEvent::MtuAcknowledged(size) => EngineEvent::MtuAcknowledged { size },
        TunnelEvent::TxExpired => EngineEvent::TxExpired,
    }
}

/// A key exchange event in words, as a log line would say it.
fn describe(e: &ExchangeEvent) -> String {
    match e {
        ExchangeEvent::ExchangeStarted { reason, spi } => {
            format!("key exchange started ({reason}), RX SPI {spi:08x}")
        }
        ExchangeEvent::RxKeyInstalled { spi, peer_id } => {
            format!("RX key {spi:08x} from peer {peer_id:016x}")
        }
        ExchangeEvent::TxKeyInstalled { spi, peer_id } => {
            format!("TX key {spi:08x} for peer {peer_id:016x}")
        }
        ExchangeEvent::ExchangeCompleted { spi } => format!("key exchange {spi:08x} completed"),
        ExchangeEvent::ExchangeTimedOut { spi, timeouts } => {
            format!("key exchange {spi:08x} timed out ({timeouts} in a row)")
        }
        ExchangeEvent::Backoff { until } => {
            format!("backing off key exchanges until {} s", until.secs())
        }
        ExchangeEvent::PeerRestarted { old_id, new_id } => {
            format!("peer restarted: {old_id:016x} -> {new_id:016x}")
        }
        ExchangeEvent::ReplayedOwnOffer => "someone replayed our own key offer".to_owned(),
        ExchangeEvent::Resync {
            received_spi,
            local_spi,
        } => format!("re-sync: CT for {received_spi:08x}, ours is {local_spi:08x}"),
        ExchangeEvent::ClockJump { new_id } => {
            format!("the wall clock jumped; new instance id {new_id:016x}")
        }
        ExchangeEvent::PeerDead => "nothing decrypted for 120 s: peer dead, keys erased".to_owned(),
        ExchangeEvent::AmbryRenegotiationFailed => {
            "no key exchange within 75 s of an ambry switch: keys erased".to_owned()
        }
        ExchangeEvent::ExchangeFailed { spi, reason } => {
            format!("key exchange {spi:08x} failed: {reason:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn black() -> Black {
        let cfg = TunnelConfig::new(Key32::new([0xab; 32]), None, 1400);
        Black::new(
            cfg,
            true,
            None,
            Now::new(Instant::from_secs(1), 1_767_225_600),
        )
        .expect("no cathedral to refuse")
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let b = black();
        let d = format!("{b:?}");
        assert!(
            !d.contains("171") && !d.to_lowercase().contains("abab"),
            "{d}"
        );
    }

    #[test]
    fn first_tick_is_due_at_once_and_shutdown_wipes_and_closes() {
        let mut b = black();
        assert_eq!(b.next_deadline(), Some(Instant::ZERO));
        assert_eq!(b.state(), TunnelState::Keying);
        let mut out = Vec::new();
        b.shutdown(&mut out);
        assert!(b.tunnel.is_none() && b.config.shared_secret.is_zero());
        assert_eq!(
            out,
            vec![Output::Event(EngineEvent::State {
                state: TunnelState::Closed
            })]
        );
        let now = Now::new(Instant::from_secs(2), 1_767_225_601);
        let p = ClearPacket::decrypted(vec![0x45; 40]);
        assert_eq!(b.handle(Input::Clear(p), now, &mut out), Verdict::Closed);
        assert_eq!(b.next_deadline(), None);
    }
}
