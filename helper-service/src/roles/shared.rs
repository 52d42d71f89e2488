//! The roles' view of the tunnel's shared state page: the handful of
//! questions and announcements each duty needs, named for what they mean
//! rather than for the atomics behind them (shm::state).

use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;

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
