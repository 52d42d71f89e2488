//! The FFI object: one tunnel, driven by the host.
//!
//! The host owns the TUN interface, the UDP socket and the timer; the
//! engine owns the protocol. Inside, the red side ([`crate::red`]) and the
//! black side ([`crate::black`]) are separate values, each behind its own
//! lock, that share nothing: the engine moves messages between them
//! ([`ClearPacket`]s one way, [`Output`]s the other) and calls the host only
//! after releasing both locks, so a host callback may call the engine again.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::black::{Black, Input, Output};
use crate::clock::Clock;
use crate::error::{EngineError, HostError, ProfileError};
use crate::lock;
use crate::profile::Profile;
use crate::red::Red;
use crate::types::{Endpoint, EngineEvent, EngineStats, TunnelSettings, TunnelState, Verdict};

/// What the host implements: where the engine's output goes. Called on the
/// thread that called the engine, never while the engine holds a lock;
/// implementations must be thread-safe when the host drives the engine from
/// several threads.
#[uniffi::export(with_foreign)]
pub trait EngineHost: Send + Sync {
    /// Send `datagram` from the tunnel's UDP socket to `to`.
    fn send_datagram(&self, to: Endpoint, datagram: Vec<u8>) -> Result<(), HostError>;
    /// Write a decrypted IPv4 packet to the TUN interface.
    fn deliver_packet(&self, packet: Vec<u8>) -> Result<(), HostError>;
    /// Something happened (state, peer, keys, errors).
    fn on_event(&self, event: EngineEvent) -> Result<(), HostError>;
}

/// One sanctum tunnel: app-core's tunnel engine behind a red/black split.
///
/// Drive it like this: call [`Engine::handle_timeout`] once after creating
/// it and again whenever [`Engine::next_timeout_ms`] milliseconds have
/// passed (recompute after every call); hand every packet read from the TUN
/// interface to [`Engine::send_packet`] and every datagram read from the UDP
/// socket to [`Engine::receive_datagram`]. Output arrives through the
/// [`EngineHost`].
#[derive(uniffi::Object)]
pub struct Engine {
    host: Arc<dyn EngineHost>,
    clock: Clock,
    settings: TunnelSettings,
    red: Mutex<Red>,
    black: Mutex<Black>,
    host_errors: AtomicU64,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("settings", &self.settings)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Engine {
    fn build(
        profile: Profile,
        host: Arc<dyn EngineHost>,
        clock: Clock,
    ) -> Result<Arc<Self>, ProfileError> {
        let r = profile.resolve()?;
        let red = Red::new(r.tunnel.tun_mtu, r.allowed);
        let black = Black::new(r.tunnel, r.secret_known, r.cathedral, clock.now())?;
        Ok(Arc::new(Engine {
            host,
            clock,
            settings: r.settings,
            red: Mutex::new(red),
            black: Mutex::new(black),
            host_errors: AtomicU64::new(0),
        }))
    }

    /// Runs one message through the black side and delivers its output.
    fn run(&self, input: Input<'_>) -> Verdict {
        let now = self.clock.now();
        let mut out = Vec::new();
        let verdict = lock(&self.black).handle(input, now, &mut out);
        let filtered = self.dispatch(out);
        if verdict == Verdict::Accepted && filtered {
            Verdict::Filtered
        } else {
            verdict
        }
    }

    /// Hands the black side's output to the host (clear packets through the
    /// red side). True if a decrypted packet was filtered out.
    fn dispatch(&self, out: Vec<Output>) -> bool {
        let mut filtered = false;
        for o in out {
            let r = match o {
                Output::Transmit { to, datagram } => {
                    self.host.send_datagram(Endpoint::from(to), datagram)
                }
                Output::Clear(p) => {
                    let packet = lock(&self.red).inbound(p);
                    match packet {
                        Some(p) => self.host.deliver_packet(p),
                        None => {
                            filtered = true;
                            Ok(())
                        }
                    }
                }
                Output::Event(e) => self.host.on_event(e),
            };
            if r.is_err() {
                self.host_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        filtered
    }
}

#[uniffi::export]
impl Engine {
    /// An engine on the system clock.
    #[uniffi::constructor]
    pub fn new(profile: Profile, host: Arc<dyn EngineHost>) -> Result<Arc<Self>, ProfileError> {
        Self::build(profile, host, Clock::system())
    }

    /// An engine whose clock stands still (at `wall_secs` UNIX seconds)
    /// until [`Engine::advance_clock`] moves it: for tests and simulations.
    #[uniffi::constructor]
    pub fn with_manual_clock(
        profile: Profile,
        host: Arc<dyn EngineHost>,
        wall_secs: u64,
    ) -> Result<Arc<Self>, ProfileError> {
        Self::build(profile, host, Clock::manual(wall_secs))
    }

    /// What the host needs for its TUN interface.
    pub fn settings(&self) -> TunnelSettings {
        self.settings.clone()
    }

    /// A clear packet read from the TUN interface: sealed and sent to the
    /// peer through [`EngineHost::send_datagram`].
    pub fn send_packet(&self, packet: Vec<u8>) -> Verdict {
        let clear = lock(&self.red).outbound(packet);
        match clear {
            Ok(p) => self.run(Input::Clear(p)),
            Err(v) => v,
        }
    }

    /// A datagram read from the UDP socket, from `from`. Decrypted packets
    /// go to [`EngineHost::deliver_packet`], answers (key offers, MTU acks)
    /// to [`EngineHost::send_datagram`].
    pub fn receive_datagram(&self, from: Endpoint, datagram: Vec<u8>) -> Verdict {
        let Some(from) = from.to_socket_addr() else {
            return Verdict::BadEndpoint;
        };
        self.receive_from(from, &datagram)
    }

    /// Runs the timers (key exchange pulses, rekeys, heartbeats, dead peer,
    /// cathedral notifications).
    pub fn handle_timeout(&self) {
        self.run(Input::Tick);
    }

    /// Milliseconds until [`Engine::handle_timeout`] must be called (0:
    /// now); `None` when only a datagram can move things on.
    pub fn next_timeout_ms(&self) -> Option<u64> {
        let deadline = lock(&self.black).next_deadline()?;
        let now = self.clock.now().mono;
        Some(u64::try_from(deadline.saturating_since(now).as_millis()).unwrap_or(u64::MAX))
    }

    /// Moves a manual clock on by `ms` milliseconds (see
    /// [`Engine::with_manual_clock`]). Timers do not run by themselves:
    /// call [`Engine::handle_timeout`] afterwards.
    pub fn advance_clock(&self, ms: u64) -> Result<(), EngineError> {
        if self.clock.advance(Duration::from_millis(ms)) {
            Ok(())
        } else {
            Err(EngineError::SystemClock)
        }
    }

    /// Where the tunnel stands.
    pub fn state(&self) -> TunnelState {
        lock(&self.black).state()
    }

    /// Counters and key state.
    pub fn stats(&self) -> EngineStats {
        let black = lock(&self.black).stats();
        let red = lock(&self.red).stats();
        let now = self.clock.now().mono;
        let t = black.tunnel;
        EngineStats {
            state: self.state(),
            tx_spi: t.tx_spi,
            rx_spi: t.rx_spi,
            rx_pending_spi: t.rx_pending_spi,
            tx_packets: t.tx_packets,
            tx_bytes: t.tx_bytes,
            rx_packets: t.rx_packets,
            rx_bytes: t.rx_bytes,
            rx_dropped: t.dropped,
            rekeys: t.rekeys,
            last_rx_ms_ago: t
                .last_rx
                .map(|at| u64::try_from(now.saturating_since(at).as_millis()).unwrap_or(u64::MAX)),
            peer: t.peer.map(Endpoint::from),
            relayed: black.relayed,
            tun_refused: red.refused,
            tun_filtered: red.filtered,
            tun_delivered: red.delivered,
            host_errors: self.host_errors.load(Ordering::Relaxed),
            ambry_generation: black.ambry_generation,
        }
    }

    /// Wipes every key and stops: later calls answer [`Verdict::Closed`].
    pub fn shutdown(&self) {
        let mut out = Vec::new();
        lock(&self.black).shutdown(&mut out);
        self.dispatch(out);
    }
}

impl Engine {
    /// [`Engine::receive_datagram`] for Rust callers with a socket address.
    pub fn receive_from(&self, from: SocketAddrV4, datagram: &[u8]) -> Verdict {
        self.run(Input::Datagram {
            from,
            bytes: datagram,
        })
    }
}
