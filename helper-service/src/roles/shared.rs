//! The roles' view of the tunnel's shared state page: the handful of
//! questions and announcements each duty needs, named for what they mean
//! rather than for the atomics behind them (shm::state).

use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;

use chantry_core::cathedral::path::{HoldDecision, peer_update};
use chantry_core::time::Instant;

use crate::control::{SaStats, Status};
use crate::role::Role;
use crate::shm::{SharedState, StatsSnapshot};

/// A role's (or the guardian's) handle on the state page.
#[derive(Debug)]
pub struct Shared(SharedState);

impl Shared {
    /// Wraps an attached page.
    pub fn new(state: SharedState) -> Self {
        Shared(state)
    }

    /// The page's fd number (kept open through the sandbox).
    pub fn fd_raw(&self) -> i32 {
        self.0.fd().as_raw_fd()
    }

    /// Clears everything for a fresh role set (guardian).
    pub fn reset(&self, peer: Option<SocketAddrV4>, mtu: u16) {
        self.0.set_peer(peer);
        self.0.tx().reset();
        self.0.rx().reset();
        self.0.set_rx_pending_spi(0);
        self.0.set_last_decrypt(0);
        self.0.set_holepunch(0);
        self.0.set_cathedral(None);
        self.0.set_peer_hold(0);
        self.0.set_peer_rx(0);
        self.0.set_punch(0);
        self.0.set_mtu(u32::from(mtu));
        let _ = self.0.take_mtu_ack();
        let _ = self.0.take_mtu_probe_ack();
        self.0.clear_started();
    }

    /// The current peer.
    pub fn peer(&self) -> Option<SocketAddrV4> {
        self.0.peer()
    }

    /// Sets the current peer.
    pub fn set_peer(&self, peer: Option<SocketAddrV4>) {
        self.0.set_peer(peer);
    }

    /// Learns `addr` as the peer at monotonic second `now`, following
    /// behaviour.md §4.4: with a cathedral, an update to another address
    /// renews a 10 s hold during which an update back to the cathedral is
    /// refused. Returns whether the peer changed.
    pub fn learn_peer(&self, addr: SocketAddrV4, now: u64) -> bool {
        let cathedral = self.0.cathedral();
        let hold = self.0.peer_hold();
        let decision = peer_update(
            *addr.ip(),
            cathedral.map(|c| *c.ip()),
            (hold != 0).then(|| Instant::from_secs(hold)),
            Instant::from_secs(now),
        );
        let HoldDecision::Allowed { hold_until } = decision else {
            return false;
        };
        if cathedral.is_some() {
            self.0.set_peer_hold(hold_until.map_or(0, Instant::secs));
        }
        if self.0.peer() == Some(addr) {
            return false;
        }
        self.0.set_peer(Some(addr));
        true
    }

    /// Sets the peer whatever the hold says and clears the hold (a dead
    /// peer's reset, a dead direct path's fallback to the relay).
    pub fn force_peer(&self, peer: Option<SocketAddrV4>) {
        self.0.set_peer_hold(0);
        self.0.set_peer(peer);
    }

    /// The current cathedral, if the tunnel uses one.
    pub fn cathedral(&self) -> Option<SocketAddrV4> {
        self.0.cathedral()
    }

    /// Sets the current cathedral (chapel).
    pub fn set_cathedral(&self, cathedral: Option<SocketAddrV4>) {
        self.0.set_cathedral(cathedral);
    }

    /// Monotonic second of the last decryption of a packet from the
    /// current peer, if any.
    pub fn heard_from_peer(&self) -> Option<u64> {
        Some(self.0.peer_rx()).filter(|s| *s != 0)
    }

    /// Records a decryption from the current peer (confess).
    pub fn set_heard_from_peer(&self, secs: u64) {
        self.0.set_peer_rx(secs);
    }

    /// Records that chapel moved the peer to a direct address the
    /// cathedral named: heartbeats speed up to open both NATs (§4.1).
    pub fn set_punch(&self, secs: u64) {
        self.0.set_punch(secs);
    }

    /// The start of the latest fast-heartbeat window: a TX key install or
    /// a cathedral holepunch, whichever came last (0 = neither).
    pub fn fast_heartbeats_since(&self) -> u64 {
        self.0.holepunch().max(self.0.punch())
    }

    /// Replaces the TX statistics (bless).
    pub fn set_tx_stats(&self, spi: u32, age: u64, pkt: u64, last: u64, bytes: u64) {
        self.0.tx().set(StatsSnapshot {
            spi,
            age,
            pkt,
            last,
            bytes,
        });
    }

    /// The TX statistics.
    pub fn tx_stats(&self) -> StatsSnapshot {
        self.0.tx().snapshot()
    }

    /// SPI of the TX SA, 0 for none.
    pub fn tx_spi(&self) -> u32 {
        self.0.tx().snapshot().spi
    }

    /// Replaces the RX statistics (confess).
    pub fn set_rx_stats(&self, spi: u32, age: u64, pkt: u64, last: u64, bytes: u64) {
        self.0.rx().set(StatsSnapshot {
            spi,
            age,
            pkt,
            last,
            bytes,
        });
    }

    /// The RX statistics.
    pub fn rx_stats(&self) -> StatsSnapshot {
        self.0.rx().snapshot()
    }

    /// Publishes the active and pending RX SPIs (confess).
    pub fn set_rx_spis(&self, active: u32, pending: u32) {
        self.0.set_rx_active_spi(active);
        self.0.set_rx_pending_spi(pending);
    }

    /// The active and pending RX SPIs (purgatory-rx's pre-filter).
    pub fn rx_spis(&self) -> (u32, u32) {
        (self.0.rx_active_spi(), self.0.rx_pending_spi())
    }

    /// Monotonic second of the last decryption, 0 for none.
    pub fn last_decrypt(&self) -> u64 {
        self.0.last_decrypt()
    }

    /// Records a decryption (confess).
    pub fn set_last_decrypt(&self, secs: u64) {
        self.0.set_last_decrypt(secs);
    }

    /// Monotonic second of the last TX key install.
    pub fn holepunch(&self) -> u64 {
        self.0.holepunch()
    }

    /// Records a TX key install (bless).
    pub fn set_holepunch(&self, secs: u64) {
        self.0.set_holepunch(secs);
    }

    /// The tunnel MTU.
    pub fn mtu(&self) -> u16 {
        u16::try_from(self.0.mtu()).unwrap_or(u16::MAX)
    }

    /// Sets the tunnel MTU (guardian).
    pub fn set_mtu(&self, mtu: u16) {
        self.0.set_mtu(u32::from(mtu));
    }

    /// heaven-tx saw a probe: heaven-rx should ack it.
    pub fn request_mtu_probe_ack(&self, size: u16) {
        self.0.post_mtu_probe_ack(u32::from(size));
    }

    /// The probe heaven-rx should ack, if any.
    pub fn take_mtu_probe_ack(&self) -> Option<u16> {
        self.0
            .take_mtu_probe_ack()
            .and_then(|v| u16::try_from(v).ok())
    }

    /// heaven-tx saw an ack of our probe.
    pub fn report_mtu_ack(&self, size: u16) {
        self.0.post_mtu_ack(u32::from(size));
    }

    /// The ack the guardian should apply, if any.
    pub fn take_mtu_ack(&self) -> Option<u16> {
        self.0.take_mtu_ack().and_then(|v| u16::try_from(v).ok())
    }

    /// The guardian applied an ack (ends heaven-rx's discovery run).
    pub fn mtu_ack_applied(&self) {
        self.0.bump_mtu_applied();
    }

    /// How many acks the guardian applied so far.
    pub fn mtu_acks_applied(&self) -> u32 {
        self.0.mtu_applied()
    }

    /// The role is sandboxed and running.
    pub fn mark_started(&self, role: Role) {
        self.0.set_started(role);
    }

    /// Whether `role` reported in.
    pub fn started(&self, role: Role) -> bool {
        self.0.is_started(role)
    }

    /// The control socket's STATUS answer.
    pub fn status(&self) -> Status {
        let s = self.0.snapshot();
        let sa = |x: StatsSnapshot| SaStats {
            spi: x.spi,
            age: x.age,
            pkt: x.pkt,
            last: x.last,
            bytes: x.bytes,
        };
        Status {
            tx: sa(s.tx),
            rx: sa(s.rx),
            peer: s.peer,
            mtu: u16::try_from(s.mtu).unwrap_or(u16::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn learning_the_peer_follows_the_cathedral_hold() {
        let s = Shared::new(SharedState::create().expect("state"));
        let cat = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4500);
        let direct = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 4500);
        // Without a cathedral: every address is learned.
        assert!(s.learn_peer(direct, 100));
        assert!(s.learn_peer(cat, 101));
        s.set_cathedral(Some(cat));
        s.force_peer(Some(cat));
        // A direct address holds for 10 s; the relay is refused meanwhile,
        // and every renewal (the same address again) extends the hold.
        assert!(s.learn_peer(direct, 200));
        assert!(!s.learn_peer(cat, 209));
        assert!(!s.learn_peer(direct, 205));
        assert!(!s.learn_peer(cat, 214));
        assert_eq!(s.peer(), Some(direct));
        assert!(s.learn_peer(cat, 215));
        assert_eq!(s.peer(), Some(cat));
        // A forced fallback ignores the hold.
        assert!(s.learn_peer(direct, 300));
        s.force_peer(Some(cat));
        assert_eq!(s.peer(), Some(cat));
        assert!(!s.learn_peer(cat, 301));
        // Fast heartbeats follow the later of a key install and a punch.
        s.0.set_holepunch(50);
        s.set_punch(60);
        assert_eq!(s.fast_heartbeats_since(), 60);
        assert_eq!(s.heard_from_peer(), None);
        s.set_heard_from_peer(61);
        assert_eq!(s.heard_from_peer(), Some(61));
    }
}
