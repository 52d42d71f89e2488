//! Single-producer single-consumer packet rings in a memfd, with the packet
//! bytes inline in fixed-size slots.
//!
//! # Layout
//!
//! ```text
//! offset    0  header line: magic u64, version u32, slot count u32, slot size u32
//! offset  128  head  u32  (producer writes: number of slots ever published)
//! offset  256  tail  u32  (consumer writes: number of slots ever consumed)
//! offset  384  sleep u32  (consumer sets 1 before sleeping; either end clears)
//! offset  512  slots[slot count], SLOT_SIZE (2048) bytes each:
//!                0  u16 len (host order)
//!                2  IPv4 address (4 bytes, network order)
//!                6  port (2 bytes, network order); address and port all
//!                   zero = no address
//!                8  u8 kind
//!                9  padding up to 16
//!               16  data[SLOT_DATA]
//! ```
//!
//! Head, tail and sleep each sit on their own 128-byte block (two cache
//! lines, as the adjacent-line prefetcher pairs them) so the two ends never
//! write the same line in the fast path. Head and tail are free-running
//! counters; slot `i` lives at index `i & (slots - 1)`.
//!
//! # Ordering
//!
//! The producer writes a slot with relaxed atomic stores, then stores head
//! with `Release`; the consumer loads head with `Acquire` before reading the
//! slot, so it sees the complete slot. Symmetrically the consumer stores
//! tail with `Release` after copying a slot out and the producer loads tail
//! with `Acquire` before reusing it.
//!
//! # Trust
//!
//! Each end keeps its own copy of the index it owns and never reads it back
//! from shared memory. The other end's index and each slot's length are
//! validated on every read: a consumer that finds more than `slots` entries
//! or a length above [`SLOT_DATA`] drops what it cannot trust, counts it in
//! [`Consumer::dropped_malformed`] and carries on. Slot indices are always
//! masked, so no value in shared memory can make either end read or write
//! outside the mapping.

use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use super::ShmError;
use super::region::Region;
use super::wake::Waker;

/// Size of one slot: 16 bytes of slot header, then the payload.
pub const SLOT_SIZE: usize = 2048;
/// Payload bytes per slot: a 1500-byte MTU plus 48 bytes of shroud room
/// plus the sanctum headers fit.
pub const SLOT_DATA: usize = SLOT_SIZE - 16;
/// Largest slot count of a ring.
pub const MAX_SLOTS: u32 = 4096;

const MAGIC: u64 = u64::from_be_bytes(*b"CHNTRING");
const VERSION: u32 = 1;

/// One 128-byte block, keeping what it holds off the cache lines of its
/// neighbours.
#[repr(C, align(128))]
struct Padded<T>(T);

/// The start of a ring mapping. Every field is an atomic, so any bit
/// pattern the other process writes is a valid value.
#[repr(C)]
struct RingHeader {
    magic: AtomicU64,
    version: AtomicU32,
    slots: AtomicU32,
    slot_size: AtomicU32,
    head: Padded<AtomicU32>,
    tail: Padded<AtomicU32>,
    sleep: Padded<AtomicU32>,
}

/// Byte offset of the first slot.
const HEADER_LEN: usize = size_of::<RingHeader>();

/// One slot, as 64-bit words so that it can be copied atomically.
#[repr(C)]
struct Slot {
    /// len (2 bytes), address (4), port (2), in memory order.
    w0: AtomicU64,
    /// kind (1 byte), then padding.
    w1: AtomicU64,
    data: [AtomicU64; SLOT_DATA / 8],
}

const _: () = {
    assert!(HEADER_LEN == 512);
    assert!(offset_of!(RingHeader, head) == 128);
    assert!(offset_of!(RingHeader, tail) == 256);
    assert!(offset_of!(RingHeader, sleep) == 384);
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(SLOT_DATA.is_multiple_of(8));
    assert!(SLOT_DATA <= u16::MAX as usize);
};

/// Per-packet metadata carried in the slot header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Source or destination address of the datagram, if any. The
    /// unspecified address `0.0.0.0:0` cannot be carried and reads back as
    /// `None`.
    pub addr: Option<SocketAddrV4>,
    /// Ring-specific packet type.
    pub kind: u8,
}

impl Meta {
    fn encode(&self, len: u16) -> (u64, u64) {
        let (ip, port) = match self.addr {
            Some(a) => (a.ip().octets(), a.port().to_be_bytes()),
            None => ([0; 4], [0; 2]),
        };
        let l = len.to_ne_bytes();
        let w0 = [l[0], l[1], ip[0], ip[1], ip[2], ip[3], port[0], port[1]];
        let w1 = [self.kind, 0, 0, 0, 0, 0, 0, 0];
        (u64::from_ne_bytes(w0), u64::from_ne_bytes(w1))
    }

    fn decode(w0: u64, w1: u64) -> (Meta, usize) {
        let b = w0.to_ne_bytes();
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ip = Ipv4Addr::new(b[2], b[3], b[4], b[5]);
        let port = u16::from_be_bytes([b[6], b[7]]);
        let addr = (!ip.is_unspecified() || port != 0).then(|| SocketAddrV4::new(ip, port));
        let kind = w1.to_ne_bytes()[0];
        (Meta { addr, kind }, len)
    }
}

/// Why a packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Every slot is in use; the packet is the caller's to drop.
    #[error("ring is full")]
    Full,
    /// The packet is longer than [`SLOT_DATA`].
    #[error("packet of {0} bytes does not fit a ring slot")]
    TooLong(usize),
}

fn ring_len(slots: u32) -> usize {
    HEADER_LEN + slots as usize * SLOT_SIZE
}

fn valid_slot_count(slots: u32) -> bool {
    slots.is_power_of_two() && slots <= MAX_SLOTS
}

/// Creates a ring of `slots` slots (a power of two, at most 4096) in a new
/// sealed memfd and returns the fd. Give a duplicate to each end:
/// [`Producer::attach`] and [`Consumer::attach`].
pub fn create_ring(name: &str, slots: u32) -> Result<OwnedFd, ShmError> {
    if !valid_slot_count(slots) {
        return Err(ShmError::BadSlotCount(slots));
    }
    let region = Region::create(name, ring_len(slots))?;
    {
        let ring = Ring {
            region,
            slots,
            mask: slots - 1,
        };
        let h = ring.header();
        h.version.store(VERSION, Ordering::Relaxed);
        h.slots.store(slots, Ordering::Relaxed);
        h.slot_size.store(SLOT_SIZE as u32, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        Ok(ring.region.into_fd())
    }
}

/// A validated ring mapping, shared code of both ends.
#[derive(Debug)]
struct Ring {
    region: Region,
    slots: u32,
    mask: u32,
}

impl Ring {
    fn attach(fd: OwnedFd) -> Result<Ring, ShmError> {
        let region = Region::attach(fd)?;
        let len = region.len();
        if len < HEADER_LEN {
            return Err(ShmError::TooSmall {
                len,
                need: HEADER_LEN,
            });
        }
        // `slots` is provisional until validated below; `header()` does
        // not depend on it.
        let ring = Ring {
            region,
            slots: 1,
            mask: 0,
        };
        let h = ring.header();
        let magic = h.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(ShmError::BadMagic {
                found: magic,
                expected: MAGIC,
            });
        }
        let version = h.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(ShmError::BadVersion {
                found: version,
                expected: VERSION,
            });
        }
        let slot_size = h.slot_size.load(Ordering::Relaxed);
        if slot_size as usize != SLOT_SIZE {
            return Err(ShmError::BadSlotSize {
                found: slot_size,
                expected: SLOT_SIZE as u32,
            });
        }
        let slots = h.slots.load(Ordering::Relaxed);
        if !valid_slot_count(slots) {
            return Err(ShmError::BadSlotCount(slots));
        }
        let need = ring_len(slots);
        if len < need {
            return Err(ShmError::TooSmall { len, need });
        }
        let head = h.head.0.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        if head.wrapping_sub(tail) > slots {
            return Err(ShmError::CorruptIndices { head, tail, slots });
        }
        Ok(Ring {
            slots,
            mask: slots - 1,
            ..ring
        })
    }

    fn header(&self) -> &RingHeader {
        // SAFETY: the mapping is page aligned (more than RingHeader's 128)
        // and at least HEADER_LEN bytes long (checked in `attach`, and
        // `create_ring` maps more). RingHeader holds only atomics, which
        // have interior mutability and are valid for every bit pattern, so
        // a shared reference stays sound while the other process writes
        // them. The reference borrows `self`, which owns the mapping.
        unsafe { &*(self.region.as_ptr() as *const RingHeader) }
    }

    fn slot(&self, index: u32) -> &Slot {
        let i = (index & self.mask) as usize;
        // SAFETY: `i < slots` and the mapping holds HEADER_LEN +
        // slots * SLOT_SIZE bytes (checked in `attach`), so the slot is in
        // bounds; HEADER_LEN and SLOT_SIZE are multiples of 8, the
        // alignment of Slot. Slot holds only atomics (see `header`).
        unsafe { &*(self.region.as_ptr().add(HEADER_LEN + i * SLOT_SIZE) as *const Slot) }
    }
}

/// Copies `src` into slot words with relaxed atomic stores. The bytes of
/// the last word past `src.len()` are zeroed.
fn copy_in(words: &[AtomicU64], src: &[u8]) {
    let mut chunks = src.chunks_exact(8);
    let mut w = words.iter();
    for (c, word) in (&mut chunks).zip(&mut w) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        word.store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
    let rest = chunks.remainder();
    if !rest.is_empty()
        && let Some(word) = w.next()
    {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        word.store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
}

/// Copies slot words into `dst` with relaxed atomic loads.
fn copy_out(words: &[AtomicU64], dst: &mut [u8]) {
    let mut chunks = dst.chunks_exact_mut(8);
    let mut w = words.iter();
    for (c, word) in (&mut chunks).zip(&mut w) {
        c.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty()
        && let Some(word) = w.next()
    {
        let n = rest.len();
        rest.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes()[..n]);
    }
}

/// The writing end of a ring.
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    waker: Waker,
    /// Our head; the copy in shared memory is never read back.
    head: u32,
    /// Last tail seen, refreshed only when the ring looks full.
    tail_cache: u32,
}

impl Producer {
    /// Maps a ring created by [`create_ring`] and checks its header (magic,
    /// version, slot size, slot count against the mapping's length).
    /// `waker` wakes the consumer's process.
    pub fn attach(fd: OwnedFd, waker: Waker) -> Result<Self, ShmError> {
        let ring = Ring::attach(fd)?;
        let h = ring.header();
        let head = h.head.0.load(Ordering::Acquire);
        let tail = h.tail.0.load(Ordering::Acquire);
        Ok(Self {
            ring,
            waker,
            head,
            tail_cache: tail,
        })
    }

    /// Reloads tail. A value that would put more than `slots` entries in
    /// the ring (a hostile or broken consumer) is ignored.
    fn refresh_tail(&mut self) {
        let t = self.ring.header().tail.0.load(Ordering::Acquire);
        if self.head.wrapping_sub(t) <= self.ring.slots {
            self.tail_cache = t;
        }
    }

    /// Copies a packet into the next slot and publishes it. Does not wake
    /// the consumer: push a batch, then call [`wake`](Self::wake) once.
    pub fn push(&mut self, meta: Meta, data: &[u8]) -> Result<(), PushError> {
        let len = u16::try_from(data.len())
            .ok()
            .filter(|&l| l as usize <= SLOT_DATA)
            .ok_or(PushError::TooLong(data.len()))?;
        if self.head.wrapping_sub(self.tail_cache) >= self.ring.slots {
            self.refresh_tail();
            if self.head.wrapping_sub(self.tail_cache) >= self.ring.slots {
                return Err(PushError::Full);
            }
        }
        let slot = self.ring.slot(self.head);
        copy_in(&slot.data, data);
        let (w0, w1) = meta.encode(len);
        slot.w0.store(w0, Ordering::Relaxed);
        slot.w1.store(w1, Ordering::Relaxed);
        self.head = self.head.wrapping_add(1);
        // Release: the slot contents above happen-before the consumer's
        // Acquire load that observes this head.
        self.ring
            .header()
            .head
            .0
            .store(self.head, Ordering::Release);
        Ok(())
    }

    /// Wakes the consumer if, and only if, it announced that it is going
    /// to sleep and has not consumed everything pushed so far.
    ///
    /// Lost-wakeup argument: the consumer stores `sleep = 1`, issues a
    /// SeqCst fence, then loads head ([`Consumer::prepare_sleep`]). This
    /// producer stored head (in `push`), issues a SeqCst fence here, then
    /// loads `sleep`. The two fences are totally ordered: if the
    /// consumer's fence comes first, our load of `sleep` sees 1 and we
    /// write the eventfd; if ours comes first, the consumer's load of head
    /// sees our packets and it does not sleep. Either way a published
    /// packet is never left behind a sleeping consumer. The eventfd counter
    /// persists until drained, so a wake written before the consumer
    /// reaches poll(2) still makes poll return.
    pub fn wake(&mut self) {
        fence(Ordering::SeqCst);
        let h = self.ring.header();
        if h.sleep.0.load(Ordering::Relaxed) == 0 {
            return;
        }
        // Nothing unread: the consumer has already seen every packet.
        if h.tail.0.load(Ordering::Acquire) == self.head {
            return;
        }
        // Clear the announcement so later batches do not write the eventfd
        // again before the consumer runs. Only the caller that flips it
        // writes the eventfd.
        if h.sleep.0.swap(0, Ordering::AcqRel) != 0 {
            self.waker.wake();
        }
    }

    /// Slots free right now (0 if the consumer's index is corrupt).
    pub fn free_slots(&self) -> u32 {
        let t = self.ring.header().tail.0.load(Ordering::Acquire);
        let used = self.head.wrapping_sub(t);
        self.ring.slots.saturating_sub(used)
    }

    /// Number of slots in the ring.
    pub fn capacity(&self) -> u32 {
        self.ring.slots
    }
}

/// The reading end of a ring.
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    /// Our tail; the copy in shared memory is never read back.
    tail: u32,
    /// Last head seen, refreshed only when the ring looks empty.
    head_cache: u32,
    dropped: u64,
}

impl Consumer {
    /// Maps a ring created by [`create_ring`] and checks its header.
    pub fn attach(fd: OwnedFd) -> Result<Self, ShmError> {
        let ring = Ring::attach(fd)?;
        let h = ring.header();
        let tail = h.tail.0.load(Ordering::Acquire);
        let head = h.head.0.load(Ordering::Acquire);
        Ok(Self {
            ring,
            tail,
            head_cache: head,
            dropped: 0,
        })
    }

    fn advance(&mut self) {
        self.tail = self.tail.wrapping_add(1);
        // Release: our reads of the slot happen-before the producer's
        // Acquire load that observes this tail and lets it reuse the slot.
        self.ring
            .header()
            .tail
            .0
            .store(self.tail, Ordering::Release);
    }

    /// Entries readable now. A head that claims more than `slots` entries
    /// is corrupt: everything up to it is skipped and counted once.
    fn available(&mut self) -> u32 {
        if self.head_cache == self.tail {
            self.head_cache = self.ring.header().head.0.load(Ordering::Acquire);
        }
        let n = self.head_cache.wrapping_sub(self.tail);
        if n > self.ring.slots {
            self.dropped += 1;
            self.tail = self.head_cache;
            self.ring
                .header()
                .tail
                .0
                .store(self.tail, Ordering::Release);
            return 0;
        }
        n
    }

    /// Copies the next packet into `buf` (which should be [`SLOT_DATA`]
    /// long) and frees its slot. Returns its metadata and length, or `None`
    /// when the ring is empty. A slot whose length exceeds [`SLOT_DATA`] or
    /// `buf` is dropped and counted in
    /// [`dropped_malformed`](Self::dropped_malformed).
    pub fn pop(&mut self, buf: &mut [u8]) -> Option<(Meta, usize)> {
        self.pop_inner(buf, false)
    }

    /// `pop`, optionally zeroing the slot's header and payload before it is
    /// handed back to the producer.
    pub(super) fn pop_inner(&mut self, buf: &mut [u8], wipe: bool) -> Option<(Meta, usize)> {
        // At most one pass over the ring per call, so a producer that
        // fills it with garbage cannot keep us here forever.
        for _ in 0..self.ring.slots {
            if self.available() == 0 {
                return None;
            }
            let slot = self.ring.slot(self.tail);
            let (meta, len) = Meta::decode(
                slot.w0.load(Ordering::Relaxed),
                slot.w1.load(Ordering::Relaxed),
            );
            let ok = len <= SLOT_DATA && len <= buf.len();
            if ok {
                copy_out(&slot.data, &mut buf[..len]);
            } else {
                self.dropped += 1;
            }
            if wipe {
                let words = len.min(SLOT_DATA).div_ceil(8);
                for w in slot.data.iter().take(words) {
                    w.store(0, Ordering::Relaxed);
                }
                slot.w0.store(0, Ordering::Relaxed);
                slot.w1.store(0, Ordering::Relaxed);
            }
            self.advance();
            if ok {
                return Some((meta, len));
            }
        }
        None
    }

    /// True if no packet is waiting (a corrupt head counts as waiting, so
    /// that the next [`pop`](Self::pop) deals with it).
    pub fn is_empty(&self) -> bool {
        self.ring.header().head.0.load(Ordering::Acquire) == self.tail
    }

    /// Announces that this consumer is about to sleep, then re-checks the
    /// ring. Returns `true` if the caller may now block on its eventfd; if
    /// data is already waiting it withdraws the announcement and returns
    /// `false`. See [`Producer::wake`] for why no wakeup can be lost.
    pub fn prepare_sleep(&mut self) -> bool {
        let h = self.ring.header();
        h.sleep.0.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if h.head.0.load(Ordering::SeqCst) != self.tail {
            h.sleep.0.store(0, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Clears the sleep announcement once poll(2) has returned.
    pub fn woke(&mut self) {
        self.ring.header().sleep.0.store(0, Ordering::Relaxed);
    }

    /// Slots dropped because their length or the producer's index could
    /// not be trusted (or did not fit the caller's buffer).
    pub fn dropped_malformed(&self) -> u64 {
        self.dropped
    }

    /// Number of slots in the ring.
    pub fn capacity(&self) -> u32 {
        self.ring.slots
    }
}

/// Byte offsets in a ring memfd, for tests that corrupt it directly.
#[cfg(test)]
pub(super) mod layout {
    pub const HEAD: u64 = 128;
    pub const TAIL: u64 = 256;
    pub const SLEEP: u64 = 384;
    pub const SLOTS: u64 = super::HEADER_LEN as u64;
    pub const SLOT: u64 = super::SLOT_SIZE as u64;
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
