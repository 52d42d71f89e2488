//! Shared memory between role processes (spec/behaviour.md §1.2,
//! DESIGN.md §3).
//!
//! * [`region`]: a sealed memfd mapping, the building block of the rest.
//! * [`ring`]: single-producer single-consumer packet rings with inline
//!   slots. Each ring has its own memfd, mapped only by its two ends, so a
//!   compromised role can only touch the queues it legitimately uses.
//! * [`wake`]: one eventfd per consuming process; producers write it only
//!   when the consumer announced that it is going to sleep.
//! * [`sleep`](fn@sleep): the announce / recheck / poll / clear dance over
//!   every ring a process consumes plus its other fds.
//! * [`keys`]: key messages (chapel to bless, confess, purgatory-rx/tx)
//!   carried on small dedicated rings and wiped after use.
//! * [`state`]: one page of shared atomics per tunnel (peer address,
//!   statistics, MTU, started flags).
//!
//! The other end of a mapping may be hostile: every index and length read
//! from shared memory is validated, nothing here can panic or cause UB
//! because of what the other process wrote; at worst a packet carries
//! garbage bytes, which the protocol code then rejects.
//!
//! Shared memory is only ever accessed through atomics (`Atomic*` types
//! placed over the mapping; slot payloads are copied word by word with
//! relaxed atomic loads and stores). No Rust reference to a plain integer
//! or byte in shared memory is ever created, so concurrent writes by the
//! other process are never a data race in the Rust memory model.

#![allow(unsafe_code)]

pub mod keys;
pub mod region;
pub mod ring;
mod sleep;
pub mod state;
pub mod wake;

pub use keys::KeyMsg;
pub use region::Region;
pub use ring::{Consumer, Meta, Producer, PushError, SLOT_DATA, create_ring};
pub use sleep::{Readiness, sleep};
pub use state::{SharedState, StateSnapshot, StatsBlock, StatsSnapshot};
pub use wake::{WakeFd, Waker};

use nix::errno::Errno;

/// Errors of the shared-memory layer. Each names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// The memfd name contains a NUL byte or is too long.
    #[error("invalid shared memory name `{0}`")]
    Name(String),
    /// `memfd_create(2)` failed.
    #[error("memfd_create failed: {0}")]
    Memfd(#[source] Errno),
    /// Setting the size of the memfd failed.
    #[error("ftruncate of shared memory to {len} bytes failed: {source}")]
    Truncate {
        /// Requested length.
        len: usize,
        /// The error from the kernel.
        #[source]
        source: Errno,
    },
    /// Sealing the memfd failed.
    #[error("sealing shared memory failed: {0}")]
    Seal(#[source] Errno),
    /// The memfd handed to `attach` can still shrink: another process
    /// could truncate it under our mapping and make us fault.
    #[error("shared memory fd is not sealed against shrinking")]
    NotSealed,
    /// `fstat(2)` on the shared memory fd failed.
    #[error("fstat of shared memory fd failed: {0}")]
    Stat(#[source] Errno),
    /// A length of zero or one that does not fit the address space.
    #[error("invalid shared memory length {0}")]
    BadLength(u64),
    /// `mmap(2)` failed.
    #[error("mmap of {len} bytes of shared memory failed: {source}")]
    Map {
        /// Length of the mapping.
        len: usize,
        /// The error from the kernel.
        #[source]
        source: Errno,
    },
    /// The mapping does not start with the expected magic number: the fd
    /// is not what the caller thinks it is.
    #[error("shared memory has magic {found:#018x}, expected {expected:#018x}")]
    BadMagic {
        /// Magic found in the header.
        found: u64,
        /// Magic of the expected object.
        expected: u64,
    },
    /// Layout version mismatch between the creator and this binary.
    #[error("shared memory layout version {found}, expected {expected}")]
    BadVersion {
        /// Version found in the header.
        found: u32,
        /// Version this binary understands.
        expected: u32,
    },
    /// The ring slot count is not a power of two in 1..=4096.
    #[error("ring slot count {0} is not a power of two between 1 and 4096")]
    BadSlotCount(u32),
    /// The ring slot size is not the one this binary uses.
    #[error("ring slot size {found}, expected {expected}")]
    BadSlotSize {
        /// Slot size found in the header.
        found: u32,
        /// Slot size of this binary.
        expected: u32,
    },
    /// The mapping is smaller than its header says it must be.
    #[error("shared memory of {len} bytes is too small, {need} needed")]
    TooSmall {
        /// Length of the mapping.
        len: usize,
        /// Length the layout needs.
        need: usize,
    },
    /// The ring indices found at attach time are inconsistent.
    #[error("ring indices are corrupt (head {head}, tail {tail}, {slots} slots)")]
    CorruptIndices {
        /// Producer index.
        head: u32,
        /// Consumer index.
        tail: u32,
        /// Slot count.
        slots: u32,
    },
    /// Creating an eventfd failed.
    #[error("eventfd creation failed: {0}")]
    EventFd(#[source] Errno),
    /// Duplicating a file descriptor failed.
    #[error("duplicating fd failed: {0}")]
    Dup(#[source] std::io::Error),
    /// `poll(2)` failed (other than by a signal).
    #[error("poll failed: {0}")]
    Poll(#[source] Errno),
    /// More extra fds than [`sleep`](fn@sleep) can report on.
    #[error("{0} extra fds given to sleep, at most {max} supported", max = sleep::MAX_EXTRA)]
    TooManyFds(usize),
    /// A key message with an unknown tag.
    #[error("unknown key message tag {0:#04x}")]
    UnknownKeyMsg(u8),
    /// A key message whose length does not match its tag.
    #[error("key message tag {tag:#04x} has length {len}, expected {expected}")]
    KeyMsgLength {
        /// Message tag.
        tag: u8,
        /// Length received.
        len: usize,
        /// Length that tag requires.
        expected: usize,
    },
}
