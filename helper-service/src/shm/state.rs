//! One page of shared atomics per tunnel, mapped by every role of that
//! tunnel and by the guardian (spec/behaviour.md §1.2 "shared state").
//!
//! Every field has its writers named in its documentation: one, except
//! the peer address and its cathedral hold (chapel and confess); everyone
//! else only reads. A [`StateSnapshot`] is a field-by-field copy, not an
//! atomic picture of the whole page: good enough for status output.
//! Times are CLOCK_MONOTONIC seconds of this host.

use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::ShmError;
use super::region::Region;
use crate::role::Role;

const MAGIC: u64 = u64::from_be_bytes(*b"CHNTSTAT");
const VERSION: u32 = 2;
const PAGE: usize = 4096;
const ROLES: usize = Role::ALL.len();

/// SA statistics of one direction (files.md §8). Written only by bless
/// (`tx`) or confess (`rx`).
#[derive(Debug)]
#[repr(C)]
pub struct StatsBlock {
    spi: AtomicU32,
    age: AtomicU64,
    pkt: AtomicU64,
    last: AtomicU64,
    bytes: AtomicU64,
}

/// A plain copy of a [`StatsBlock`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// SPI of the SA (0 = no SA).
    pub spi: u32,
    /// Monotonic second the SA was installed.
    pub age: u64,
    /// Packets.
    pub pkt: u64,
    /// Monotonic second of the last packet (0 = never).
    pub last: u64,
    /// Payload bytes.
    pub bytes: u64,
}

impl StatsSnapshot {
    /// The 40-byte statistics block of the control reply (files.md §8):
    /// host byte order, C natural alignment.
    pub fn to_bytes(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..4].copy_from_slice(&self.spi.to_ne_bytes());
        b[8..16].copy_from_slice(&self.age.to_ne_bytes());
        b[16..24].copy_from_slice(&self.pkt.to_ne_bytes());
        b[24..32].copy_from_slice(&self.last.to_ne_bytes());
        b[32..40].copy_from_slice(&self.bytes.to_ne_bytes());
        b
    }
}

impl StatsBlock {
    /// Replaces every field (e.g. confess's first packet on a new SA:
    /// `pkt = 1`, its SPI and age).
    pub fn set(&self, s: StatsSnapshot) {
        self.spi.store(s.spi, Ordering::Relaxed);
        self.age.store(s.age, Ordering::Relaxed);
        self.pkt.store(s.pkt, Ordering::Relaxed);
        self.last.store(s.last, Ordering::Relaxed);
        self.bytes.store(s.bytes, Ordering::Relaxed);
    }

    /// A new SA: its SPI and install time, counters at zero.
    pub fn install(&self, spi: u32, age: u64) {
        self.set(StatsSnapshot {
            spi,
            age,
            ..StatsSnapshot::default()
        });
    }

    /// No SA: everything zero.
    pub fn reset(&self) {
        self.set(StatsSnapshot::default());
    }

    /// One more packet of `bytes` bytes at monotonic second `now`.
    pub fn count(&self, bytes: u64, now: u64) {
        self.pkt.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last.store(now, Ordering::Relaxed);
    }

    /// A copy of every field.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            spi: self.spi.load(Ordering::Relaxed),
            age: self.age.load(Ordering::Relaxed),
            pkt: self.pkt.load(Ordering::Relaxed),
            last: self.last.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// The page's layout. Only atomics, so any bit pattern is valid.
#[repr(C)]
struct Layout {
    magic: AtomicU64,
    version: AtomicU32,
    /// Peer address as `ipv4 << 16 | port`, 0 = unknown. Written by
    /// chapel, pilgrim or shrine (offers, dead peer) and confess (roaming).
    peer: AtomicU64,
    /// Written by bless.
    tx: StatsBlock,
    /// Written by confess.
    rx: StatsBlock,
    /// SPI of the pending RX SA, 0 = none. Written by confess.
    rx_pending_spi: AtomicU32,
    /// SPI of the active RX SA from its install on (the RX statistics show
    /// it only from the first packet), 0 = none. Written by confess, read
    /// by purgatory-rx's pre-filter.
    rx_active_spi: AtomicU32,
    /// MTU discovery acks the guardian applied to the TUN device (a
    /// counter). Written by the guardian, read by heaven-rx.
    mtu_applied: AtomicU32,
    /// Tunnel MTU (`mtu_size`). Written by the guardian.
    mtu: AtomicU32,
    /// Monotonic second of the last successful decryption, 0 = none.
    /// Written by confess: set on each decryption, cleared when it handles
    /// the `Erase` key message chapel sends on a dead peer.
    last_decrypt: AtomicU64,
    /// Monotonic second of the last TX key install. Written by bless.
    holepunch: AtomicU64,
    /// MTU probe size heaven-rx must acknowledge, 0 = none. Posted by
    /// heaven-tx, taken by heaven-rx.
    mtu_probe_ack: AtomicU32,
    /// MTU size the peer acknowledged, 0 = none. Posted by heaven-tx,
    /// taken by the guardian.
    mtu_ack_rx: AtomicU32,
    /// Non-zero once the role (index in [`Role::ALL`]) is sandboxed and
    /// ready. Each written by its own role.
    started: [AtomicU32; ROLES],
    /// The current cathedral's main address, encoded like `peer`, 0 = no
    /// cathedral. Written by chapel; read by every writer of `peer` for
    /// the hold rule of behaviour.md §4.4.
    cathedral: AtomicU64,
    /// Monotonic second until which an update of `peer` back to the
    /// cathedral is refused, 0 = none (§4.4). Written with `peer` by
    /// chapel and confess.
    peer_hold: AtomicU64,
    /// Monotonic second of the last decryption of a packet whose source
    /// was the current peer, 0 = none. Written by confess; chapel reads it
    /// to tell a live direct path from a dead one.
    peer_rx: AtomicU64,
    /// Monotonic second chapel moved the peer to a direct address the
    /// cathedral named (a holepunch, §4.1/§7.2), 0 = never. Written by
    /// chapel; heaven-rx sends fast heartbeats after it as after
    /// `holepunch`.
    punch: AtomicU64,
}

const _: () = assert!(size_of::<Layout>() <= PAGE);

/// Plain copy of the shared state, for control and chapel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSnapshot {
    /// Current peer address.
    pub peer: Option<SocketAddrV4>,
    /// TX statistics.
    pub tx: StatsSnapshot,
    /// RX statistics.
    pub rx: StatsSnapshot,
    /// Pending RX SPI (0 = none).
    pub rx_pending_spi: u32,
    /// Monotonic second of the last decryption (0 = none).
    pub last_decrypt: u64,
    /// Monotonic second of the last TX key install.
    pub holepunch: u64,
    /// Tunnel MTU.
    pub mtu: u32,
    /// Started flags, indexed like [`Role::ALL`].
    pub started: [bool; ROLES],
}

impl StateSnapshot {
    /// The 88-byte STATUS reply of the control socket (files.md §8).
    pub fn control_reply(&self) -> [u8; 88] {
        let mut b = [0u8; 88];
        b[0..40].copy_from_slice(&self.tx.to_bytes());
        b[40..80].copy_from_slice(&self.rx.to_bytes());
        if let Some(p) = self.peer {
            b[80..84].copy_from_slice(&p.ip().octets());
            b[84..86].copy_from_slice(&p.port().to_be_bytes());
        }
        let mtu = u16::try_from(self.mtu).unwrap_or(u16::MAX);
        b[86..88].copy_from_slice(&mtu.to_ne_bytes());
        b
    }
}

fn encode_peer(p: Option<SocketAddrV4>) -> u64 {
    p.map_or(0, |a| {
        (u64::from(a.ip().to_bits()) << 16) | u64::from(a.port())
    })
}

fn decode_peer(v: u64) -> Option<SocketAddrV4> {
    // Bits above 48 (a hostile writer) are ignored.
    let v = v & 0xffff_ffff_ffff;
    (v != 0).then(|| SocketAddrV4::new(Ipv4Addr::from_bits((v >> 16) as u32), v as u16))
}

fn role_index(r: Role) -> usize {
    Role::ALL.iter().position(|&x| x == r).unwrap_or(0)
}

/// A mapping of a tunnel's shared state page.
#[derive(Debug)]
pub struct SharedState {
    region: Region,
}

impl SharedState {
    /// Creates the page (all zero: no peer, no SAs, nobody started).
    pub fn create() -> Result<Self, ShmError> {
        let s = Self {
            region: Region::create("chantry-state", PAGE)?,
        };
        s.l().version.store(VERSION, Ordering::Relaxed);
        s.l().magic.store(MAGIC, Ordering::Release);
        Ok(s)
    }

    /// Maps a page created by [`create`](Self::create) in another process.
    pub fn attach(fd: OwnedFd) -> Result<Self, ShmError> {
        let region = Region::attach(fd)?;
        if region.len() < size_of::<Layout>() {
            return Err(ShmError::TooSmall {
                len: region.len(),
                need: size_of::<Layout>(),
            });
        }
        let s = Self { region };
        let magic = s.l().magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(ShmError::BadMagic {
                found: magic,
                expected: MAGIC,
            });
        }
        let version = s.l().version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(ShmError::BadVersion {
                found: version,
                expected: VERSION,
            });
        }
        Ok(s)
    }

    /// The memfd, to hand to each role.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.region.fd()
    }

    fn l(&self) -> &Layout {
        // SAFETY: the mapping is page aligned and at least
        // size_of::<Layout>() bytes long (PAGE in `create`, checked in
        // `attach`). Layout holds only atomics: interior mutability, valid
        // for every bit pattern, so the shared reference stays sound while
        // other processes write. It borrows `self`, which owns the mapping.
        unsafe { &*(self.region.as_ptr() as *const Layout) }
    }

    /// Current peer address, `None` if unknown.
    pub fn peer(&self) -> Option<SocketAddrV4> {
        decode_peer(self.l().peer.load(Ordering::Relaxed))
    }

    /// Sets the peer address (chapel, pilgrim, shrine, confess). `None`
    /// and `0.0.0.0:0` both mean unknown.
    pub fn set_peer(&self, peer: Option<SocketAddrV4>) {
        self.l().peer.store(encode_peer(peer), Ordering::Relaxed);
    }

    /// TX statistics (bless writes).
    pub fn tx(&self) -> &StatsBlock {
        &self.l().tx
    }

    /// RX statistics (confess writes).
    pub fn rx(&self) -> &StatsBlock {
        &self.l().rx
    }

    /// SPI of the pending RX SA, 0 = none.
    pub fn rx_pending_spi(&self) -> u32 {
        self.l().rx_pending_spi.load(Ordering::Relaxed)
    }

    /// Publishes the pending RX SPI (confess).
    pub fn set_rx_pending_spi(&self, spi: u32) {
        self.l().rx_pending_spi.store(spi, Ordering::Relaxed);
    }

    /// SPI of the active RX SA, 0 = none.
    pub fn rx_active_spi(&self) -> u32 {
        self.l().rx_active_spi.load(Ordering::Relaxed)
    }

    /// Publishes the active RX SPI (confess).
    pub fn set_rx_active_spi(&self, spi: u32) {
        self.l().rx_active_spi.store(spi, Ordering::Relaxed);
    }

    /// How many MTU acks the guardian applied.
    pub fn mtu_applied(&self) -> u32 {
        self.l().mtu_applied.load(Ordering::Acquire)
    }

    /// Counts one applied MTU ack (guardian).
    pub fn bump_mtu_applied(&self) {
        self.l().mtu_applied.fetch_add(1, Ordering::AcqRel);
    }

    /// Clears every started flag (guardian, before starting a new set).
    pub fn clear_started(&self) {
        for s in &self.l().started {
            s.store(0, Ordering::Release);
        }
    }

    /// Monotonic second of the last successful decryption, 0 = none.
    pub fn last_decrypt(&self) -> u64 {
        self.l().last_decrypt.load(Ordering::Relaxed)
    }

    /// Records a successful decryption (confess).
    pub fn set_last_decrypt(&self, secs: u64) {
        self.l().last_decrypt.store(secs, Ordering::Relaxed);
    }

    /// Monotonic second of the last TX key install, 0 = never.
    pub fn holepunch(&self) -> u64 {
        self.l().holepunch.load(Ordering::Relaxed)
    }

    /// Records a TX key install (bless).
    pub fn set_holepunch(&self, secs: u64) {
        self.l().holepunch.store(secs, Ordering::Relaxed);
    }

    /// Tunnel MTU, 0 = not set.
    pub fn mtu(&self) -> u32 {
        self.l().mtu.load(Ordering::Relaxed)
    }

    /// Sets the tunnel MTU (guardian).
    pub fn set_mtu(&self, mtu: u32) {
        self.l().mtu.store(mtu, Ordering::Relaxed);
    }

    /// Asks heaven-rx to acknowledge an MTU probe of `size` bytes
    /// (heaven-tx). A newer probe replaces an unanswered one.
    pub fn post_mtu_probe_ack(&self, size: u32) {
        self.l().mtu_probe_ack.store(size, Ordering::Release);
    }

    /// Takes the probe size to acknowledge, if any (heaven-rx).
    pub fn take_mtu_probe_ack(&self) -> Option<u32> {
        let v = self.l().mtu_probe_ack.swap(0, Ordering::AcqRel);
        (v != 0).then_some(v)
    }

    /// Reports that the peer acknowledged an MTU of `size` (heaven-tx).
    pub fn post_mtu_ack(&self, size: u32) {
        self.l().mtu_ack_rx.store(size, Ordering::Release);
    }

    /// Takes the acknowledged MTU, if any (guardian).
    pub fn take_mtu_ack(&self) -> Option<u32> {
        let v = self.l().mtu_ack_rx.swap(0, Ordering::AcqRel);
        (v != 0).then_some(v)
    }

    /// The current cathedral, if the tunnel uses one.
    pub fn cathedral(&self) -> Option<SocketAddrV4> {
        decode_peer(self.l().cathedral.load(Ordering::Relaxed))
    }

    /// Sets the current cathedral (chapel).
    pub fn set_cathedral(&self, cathedral: Option<SocketAddrV4>) {
        self.l()
            .cathedral
            .store(encode_peer(cathedral), Ordering::Relaxed);
    }

    /// Monotonic second until which the peer may not return to the
    /// cathedral, 0 = no hold.
    pub fn peer_hold(&self) -> u64 {
        self.l().peer_hold.load(Ordering::Relaxed)
    }

    /// Sets the hold (chapel, confess).
    pub fn set_peer_hold(&self, secs: u64) {
        self.l().peer_hold.store(secs, Ordering::Relaxed);
    }

    /// Monotonic second of the last decryption from the current peer.
    pub fn peer_rx(&self) -> u64 {
        self.l().peer_rx.load(Ordering::Relaxed)
    }

    /// Records a decryption from the current peer (confess).
    pub fn set_peer_rx(&self, secs: u64) {
        self.l().peer_rx.store(secs, Ordering::Relaxed);
    }

    /// Monotonic second of the last cathedral holepunch, 0 = never.
    pub fn punch(&self) -> u64 {
        self.l().punch.load(Ordering::Relaxed)
    }

    /// Records a cathedral holepunch (chapel).
    pub fn set_punch(&self, secs: u64) {
        self.l().punch.store(secs, Ordering::Relaxed);
    }

    /// Flags `role` as sandboxed and ready (the role itself).
    pub fn set_started(&self, role: Role) {
        self.l().started[role_index(role)].store(1, Ordering::Release);
    }

    /// Whether `role` flagged itself started.
    pub fn is_started(&self, role: Role) -> bool {
        self.l().started[role_index(role)].load(Ordering::Acquire) != 0
    }

    /// A copy of every field.
    pub fn snapshot(&self) -> StateSnapshot {
        let l = self.l();
        StateSnapshot {
            peer: self.peer(),
            tx: l.tx.snapshot(),
            rx: l.rx.snapshot(),
            rx_pending_spi: self.rx_pending_spi(),
            last_decrypt: self.last_decrypt(),
            holepunch: self.holepunch(),
            mtu: self.mtu(),
            started: std::array::from_fn(|i| l.started[i].load(Ordering::Acquire) != 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> (SharedState, SharedState) {
        let a = SharedState::create().expect("create");
        let b = SharedState::attach(a.fd().try_clone_to_owned().expect("dup")).expect("attach");
        (a, b)
    }

    #[test]
    fn fields_visible_across_attachments() {
        let (a, b) = two();
        assert_eq!(b.snapshot(), StateSnapshot::default());

        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 4500);
        a.set_peer(Some(peer));
        a.tx().install(0x1234_5678, 100);
        a.tx().count(1400, 101);
        a.tx().count(600, 102);
        b.rx().set(StatsSnapshot {
            spi: 9,
            age: 50,
            pkt: 1,
            last: 51,
            bytes: 80,
        });
        a.set_rx_pending_spi(0xaabb_ccdd);
        a.set_last_decrypt(777);
        a.set_holepunch(778);
        a.set_mtu(1422);
        a.set_started(Role::Bless);
        a.set_started(Role::Control);

        let s = b.snapshot();
        assert_eq!(s.peer, Some(peer));
        assert_eq!(
            s.tx,
            StatsSnapshot {
                spi: 0x1234_5678,
                age: 100,
                pkt: 2,
                last: 102,
                bytes: 2000
            }
        );
        assert_eq!(a.rx().snapshot().bytes, 80);
        assert_eq!(s.rx_pending_spi, 0xaabb_ccdd);
        assert_eq!(s.last_decrypt, 777);
        assert_eq!(s.holepunch, 778);
        assert_eq!(s.mtu, 1422);
        assert!(b.is_started(Role::Bless) && b.is_started(Role::Control));
        assert!(!b.is_started(Role::Confess));
        assert_eq!(s.started.iter().filter(|&&x| x).count(), 2);
        let control = Role::ALL.iter().position(|r| *r == Role::Control).unwrap();
        assert!(s.started[control]);

        a.tx().reset();
        assert_eq!(b.tx().snapshot(), StatsSnapshot::default());
        b.set_peer(None);
        assert_eq!(a.peer(), None);
    }

    #[test]
    fn mtu_mailboxes_are_taken_once() {
        let (a, b) = two();
        assert_eq!(b.take_mtu_probe_ack(), None);
        a.post_mtu_probe_ack(1300);
        assert_eq!(b.take_mtu_probe_ack(), Some(1300));
        assert_eq!(b.take_mtu_probe_ack(), None);
        a.post_mtu_ack(1280);
        assert_eq!(b.take_mtu_ack(), Some(1280));
        assert_eq!(a.take_mtu_ack(), None);
    }

    #[test]
    fn peer_encoding_and_control_reply() {
        let p = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 0x1f90);
        assert_eq!(encode_peer(Some(p)), 0x0a01_0203_1f90);
        assert_eq!(decode_peer(0x0a01_0203_1f90), Some(p));
        assert_eq!(decode_peer(0xffff_0000_0000_0000), None);
        assert_eq!(encode_peer(None), 0);

        let snap = StateSnapshot {
            peer: Some(p),
            tx: StatsSnapshot {
                spi: 1,
                age: 2,
                pkt: 3,
                last: 4,
                bytes: 5,
            },
            mtu: 1422,
            ..StateSnapshot::default()
        };
        let r = snap.control_reply();
        assert_eq!(&r[0..4], &1u32.to_ne_bytes());
        assert_eq!(&r[4..8], &[0; 4]);
        assert_eq!(&r[32..40], &5u64.to_ne_bytes());
        assert_eq!(&r[40..80], &[0; 40]);
        assert_eq!(&r[80..86], &[10, 1, 2, 3, 0x1f, 0x90]);
        assert_eq!(&r[86..88], &1422u16.to_ne_bytes());
    }

    #[test]
    fn attach_rejects_a_ring() {
        let fd = crate::shm::create_ring("not-state", 1).expect("ring");
        assert!(matches!(
            SharedState::attach(fd),
            Err(ShmError::BadMagic { .. })
        ));
    }
}
