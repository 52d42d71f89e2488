//! chapel's side of a tunnel with `cathedral` (behaviour.md §7): it
//! registers with signed INFO every 5 s and probes the cathedral's NAT
//! port from the same socket, and it decides where the tunnel's traffic
//! goes (app-core's `cathedral::path`): through the cathedral's relay,
//! straight to the peer's NAT-tested address once the cathedral names it
//! (with fast heartbeats to open both NATs), and back to the relay when
//! that direct path falls silent.
//!
//! Ambries, remembrance and failover: super::chapel_ambry.

use std::net::SocketAddrV4;

use anyhow::{Context, Result};
use chantry_core::cathedral::{
    CathedralClient, CathedralEvent, ClientConfig, InfoVerdict, PathKeeper,
};
use chantry_core::entropy::Entropy;
use chantry_core::exchange::KeyExchange;
use chantry_core::time::{Instant, Now};

use super::chapel_ambry::AmbryDuties;
use super::keying::ClientKeys;
use super::shared::Shared;
use crate::shm::{Meta, Producer};
use crate::wiring::{ClientSettings, RoleSettings};

/// The cathedral client and the peer path it steers.
#[derive(Debug)]
pub struct CathedralSide {
    client: CathedralClient,
    path: PathKeeper,
    /// A `peer` line was given: the cathedral never moves the peer.
    peer_configured: bool,
    /// Ambries, remembrance, failover.
    ambry: AmbryDuties,
}

impl CathedralSide {
    /// The client of `c` with its keys, starting at `now`; publishes the
    /// cathedral's address for the §4.4 hold.
    pub fn new(
        s: &RoleSettings,
        c: &ClientSettings,
        keys: ClientKeys,
        report: Option<std::fs::File>,
        state: &Shared,
        now: Now,
        rng: &mut dyn Entropy,
    ) -> Result<Self> {
        let mut cfg = ClientConfig::new(
            c.cathedral_id,
            keys.cs,
            keys.cosk,
            c.flock_src,
            s.tunnel_id,
            c.cathedral,
        );
        cfg.flock_dst = c.flock_dst;
        cfg.nat_port = c.nat_port;
        cfg.peer_configured = s.peer_configured;
        cfg.has_kek = keys.kek.is_some();
        cfg.remembrance = c.remembrance;
        cfg.failover = c.failover.clone();
        let client = CathedralClient::new(cfg, now, rng).context("cathedral client")?;
        state.set_cathedral(Some(client.cathedral()));
        Ok(CathedralSide {
            client,
            path: PathKeeper::new(),
            peer_configured: s.peer_configured,
            ambry: AmbryDuties {
                kek: keys.kek,
                report,
                flock_src: c.flock_src,
                flock_dst: c.flock_dst,
                tunnel: s.tunnel_id,
                generation: 0,
                peer_configured: s.peer_configured,
            },
        })
    }

    /// A `kek` is configured: no exchange before the first ambry.
    pub fn has_kek(&self) -> bool {
        self.ambry.kek.is_some()
    }

    /// A new RX SPI was installed: one INFO at once reports it.
    pub fn rx_installed(&mut self, spi: u32, now: Now, state: &Shared, rng: &mut dyn Entropy) {
        let (active, _) = state.rx_spis();
        self.client.set_rx_spis(active, spi);
        self.client.send_info_now(now, rng);
    }

    /// Timers, once per chapel iteration before the packets: the INFO
    /// fields, the direct path's liveness, the 5 s notifications.
    pub fn tick(&mut self, now: Now, state: &Shared, ex: &mut KeyExchange, rng: &mut dyn Entropy) {
        let (active, pending) = state.rx_spis();
        self.client.set_rx_spis(active, pending);
        self.client.set_instance(ex.instance_id());
        if !self.peer_configured {
            let cathedral = self.client.cathedral();
            let heard = state.heard_from_peer().map(Instant::from_secs);
            if let Some(f) = self.path.tick(now.mono, state.peer(), cathedral, heard) {
                state.force_peer(Some(cathedral));
                ex.set_peer_known(true);
                tracing::warn!(
                    direct = %f.from,
                    relay = %cathedral,
                    silent_s = f.silent.as_secs(),
                    punch_failed = f.never_heard,
                    retry_in_s = f.retry_at.saturating_since(now.mono).as_secs(),
                    "direct path silent: back to the cathedral's relay"
                );
            }
            self.client.set_nat_probing(self.path.nat_probing(now.mono));
        }
        self.client.handle_timeout(now, rng);
    }

    /// A KATEDRAL packet from `src` (purgatory-rx passes them from any
    /// source, since a failover changes the cathedral; the client drops
    /// what does not come from its current one).
    pub fn handle_datagram(&mut self, now: Now, src: SocketAddrV4, packet: &[u8]) {
        if let Err(e) = self.client.handle_datagram(now, src, packet) {
            tracing::debug!(error = %e, "cathedral packet dropped");
        }
    }

    /// Queues the client's datagrams on the offer ring (each addressed to
    /// the cathedral's main or NAT port) and acts on its events. Returns
    /// whether anything was queued.
    pub fn flush(
        &mut self,
        now: Now,
        state: &Shared,
        ex: &mut KeyExchange,
        offers: &mut Producer,
        rng: &mut dyn Entropy,
    ) -> bool {
        let mut sent = false;
        while let Some(tx) = self.client.poll_transmit() {
            let meta = Meta {
                addr: Some(tx.destination),
                kind: 0,
            };
            sent |= offers.push(meta, &tx.datagram).is_ok();
        }
        while let Some(e) = self.client.poll_event() {
            if let Some(e) = self.ambry.handle(e, now, state, ex, &mut self.client, rng) {
                self.event(e, now, state, ex);
            }
        }
        sent
    }

    /// When [`CathedralSide::tick`] must run next.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        match (self.client.next_deadline(), self.path.next_deadline(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What chapel does with the cathedral's word (behaviour.md §7.2).
    fn event(&mut self, e: CathedralEvent, now: Now, state: &Shared, ex: &mut KeyExchange) {
        let secs = now.mono.secs();
        match e {
            CathedralEvent::PeerInfo(info) => match self.path.on_info(now.mono, &info) {
                InfoVerdict::Ignore => {}
                InfoVerdict::Relay(relay) => {
                    let was = state.peer();
                    if state.learn_peer(relay, secs) {
                        ex.set_peer_known(true);
                        tracing::info!(peer = %relay, "peer address from the cathedral: its relay");
                    } else if was != Some(relay) {
                        tracing::debug!(
                            peer = ?was,
                            "the cathedral names its relay; the direct path is held for now"
                        );
                    }
                }
                InfoVerdict::Direct(direct) => {
                    if state.learn_peer(direct, secs) {
                        // Fast heartbeats open our NAT towards the peer's
                        // public address while the peer does the same.
                        state.set_punch(secs);
                        ex.set_peer_known(true);
                        tracing::info!(
                            peer = %direct,
                            "peer address from the cathedral: direct path, punching"
                        );
                    }
                }
                InfoVerdict::BackingOff { addr, until } => tracing::debug!(
                    direct = %addr,
                    retry_in_s = until.saturating_since(now.mono).as_secs(),
                    "direct path named by the cathedral ignored while backing off"
                ),
            },
            other => tracing::debug!(event = ?other, "cathedral event not used by a tunnel"),
        }
    }
}
