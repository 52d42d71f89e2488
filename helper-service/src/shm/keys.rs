//! Key messages from the keying process (chapel, pilgrim, shrine) to the
//! processes that use the keys: bless (TX), confess (RX), purgatory-tx and
//! purgatory-rx (peer shroud keys). Each consumer has its own small ring,
//! so a process only ever sees the keys of its own duty.
//!
//! This replaces the reference's shared key slots and their state machine
//! (crypto.md §8): a message is a complete hand-off, and the slot that
//! carried it is zeroed by the consumer before the slot is released.
//!
//! Encoding (at most 64 bytes): tag byte, then
//! * `InstallTx`/`InstallRx` (1, 2): SPI (u32 big-endian), salt (4), key (32)
//! * `Erase` (3): nothing
//! * `ShroudTx`/`ShroudRx` (4, 5): key (32)

use chantry_core::secret::Key32;
use zeroize::Zeroizing;

use super::ShmError;
use super::ring::{Consumer, Meta, Producer, PushError};

/// Slot kind used for key messages.
pub const KIND_KEY: u8 = 0x4b;

/// Largest encoded key message.
pub const MAX_KEY_MSG: usize = 64;

const TAG_INSTALL_TX: u8 = 1;
const TAG_INSTALL_RX: u8 = 2;
const TAG_ERASE: u8 = 3;
const TAG_SHROUD_TX: u8 = 4;
const TAG_SHROUD_RX: u8 = 5;

const SA_LEN: usize = 1 + 4 + 4 + 32;
const SHROUD_LEN: usize = 1 + 32;

/// One key hand-off. The keys wipe themselves on drop and `Debug` never
/// shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMsg {
    /// New TX SA for bless (replaces the current one at once).
    InstallTx {
        /// SPI of the new SA.
        spi: u32,
        /// Nonce salt of the new SA.
        salt: [u8; 4],
        /// AES-256-GCM key of the new SA.
        key: Key32,
    },
    /// New RX SA for confess (active if none, else pending).
    InstallRx {
        /// SPI of the new SA.
        spi: u32,
        /// Nonce salt of the new SA.
        salt: [u8; 4],
        /// AES-256-GCM key of the new SA.
        key: Key32,
    },
    /// Wipe every SA of the receiving process's direction and reset its
    /// statistics (behaviour.md §3.7).
    Erase,
    /// Peer shroud key for purgatory-tx.
    ShroudTx {
        /// The shroud key.
        key: Key32,
    },
    /// Peer shroud key for purgatory-rx.
    ShroudRx {
        /// The shroud key.
        key: Key32,
    },
}

impl KeyMsg {
    /// The message's name, for logs (never its contents).
    pub fn name(&self) -> &'static str {
        match self {
            KeyMsg::InstallTx { .. } => "install-tx",
            KeyMsg::InstallRx { .. } => "install-rx",
            KeyMsg::Erase => "erase",
            KeyMsg::ShroudTx { .. } => "shroud-tx",
            KeyMsg::ShroudRx { .. } => "shroud-rx",
        }
    }

    /// Writes the message into `out` and returns its length.
    pub fn encode(&self, out: &mut Zeroizing<[u8; MAX_KEY_MSG]>) -> usize {
        let sa = |out: &mut [u8; MAX_KEY_MSG], tag: u8, spi: u32, salt: &[u8; 4], key: &Key32| {
            out[0] = tag;
            out[1..5].copy_from_slice(&spi.to_be_bytes());
            out[5..9].copy_from_slice(salt);
            out[9..41].copy_from_slice(key.expose());
            SA_LEN
        };
        let shroud = |out: &mut [u8; MAX_KEY_MSG], tag: u8, key: &Key32| {
            out[0] = tag;
            out[1..33].copy_from_slice(key.expose());
            SHROUD_LEN
        };
        let out: &mut [u8; MAX_KEY_MSG] = out;
        match self {
            KeyMsg::InstallTx { spi, salt, key } => sa(out, TAG_INSTALL_TX, *spi, salt, key),
            KeyMsg::InstallRx { spi, salt, key } => sa(out, TAG_INSTALL_RX, *spi, salt, key),
            KeyMsg::Erase => {
                out[0] = TAG_ERASE;
                1
            }
            KeyMsg::ShroudTx { key } => shroud(out, TAG_SHROUD_TX, key),
            KeyMsg::ShroudRx { key } => shroud(out, TAG_SHROUD_RX, key),
        }
    }

    /// Parses an encoded message; the length must match the tag exactly.
    pub fn decode(b: &[u8]) -> Result<KeyMsg, ShmError> {
        let tag = *b.first().ok_or(ShmError::UnknownKeyMsg(0))?;
        let expected = match tag {
            TAG_INSTALL_TX | TAG_INSTALL_RX => SA_LEN,
            TAG_ERASE => 1,
            TAG_SHROUD_TX | TAG_SHROUD_RX => SHROUD_LEN,
            t => return Err(ShmError::UnknownKeyMsg(t)),
        };
        if b.len() != expected {
            return Err(ShmError::KeyMsgLength {
                tag,
                len: b.len(),
                expected,
            });
        }
        let key = |at: usize| {
            let mut k = Key32::zero();
            k.expose_mut().copy_from_slice(&b[at..at + 32]);
            k
        };
        let spi = || u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
        let salt = || [b[5], b[6], b[7], b[8]];
        Ok(match tag {
            TAG_INSTALL_TX => KeyMsg::InstallTx {
                spi: spi(),
                salt: salt(),
                key: key(9),
            },
            TAG_INSTALL_RX => KeyMsg::InstallRx {
                spi: spi(),
                salt: salt(),
                key: key(9),
            },
            TAG_SHROUD_TX => KeyMsg::ShroudTx { key: key(1) },
            TAG_SHROUD_RX => KeyMsg::ShroudRx { key: key(1) },
            _ => KeyMsg::Erase,
        })
    }
}

impl Producer {
    /// Queues a key message (kind [`KIND_KEY`]). The encoding buffer is
    /// wiped before returning; the slot is wiped by the consumer.
    pub fn push_key(&mut self, msg: &KeyMsg) -> Result<(), PushError> {
        let mut buf = Zeroizing::new([0u8; MAX_KEY_MSG]);
        let n = msg.encode(&mut buf);
        self.push(
            Meta {
                addr: None,
                kind: KIND_KEY,
            },
            &buf[..n],
        )
    }
}

impl Consumer {
    /// Takes the next key message, zeroing its slot before releasing it to
    /// the producer. `None` when the ring is empty; `Some(Err)` for a
    /// message that does not parse (its slot is wiped too).
    pub fn pop_key(&mut self) -> Option<Result<KeyMsg, ShmError>> {
        let mut buf = Zeroizing::new([0u8; MAX_KEY_MSG]);
        let (_, n) = self.pop_inner(&mut buf[..], true)?;
        Some(KeyMsg::decode(&buf[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::ring::{create_ring, layout};
    use crate::shm::wake::WakeFd;
    use nix::sys::uio::pread;
    use std::os::fd::OwnedFd;

    fn pair(slots: u32) -> (Producer, Consumer, OwnedFd, WakeFd) {
        let fd = create_ring("keys", slots).expect("ring");
        let w = WakeFd::new().expect("eventfd");
        let p = Producer::attach(fd.try_clone().expect("dup"), w.waker().expect("waker"))
            .expect("producer");
        let c = Consumer::attach(fd.try_clone().expect("dup")).expect("consumer");
        (p, c, fd, w)
    }

    fn k(b: u8) -> Key32 {
        Key32::new([b; 32])
    }

    #[test]
    fn encoding_is_exact() {
        let mut out = Zeroizing::new([0u8; MAX_KEY_MSG]);
        let n = KeyMsg::InstallTx {
            spi: 0x0102_0304,
            salt: [9, 8, 7, 6],
            key: k(0xaa),
        }
        .encode(&mut out);
        assert_eq!(n, 41);
        assert_eq!(&out[..9], &[1, 1, 2, 3, 4, 9, 8, 7, 6]);
        assert_eq!(&out[9..41], &[0xaa; 32]);
        assert_eq!(KeyMsg::Erase.encode(&mut out), 1);
        assert_eq!(out[0], 3);
        assert_eq!(KeyMsg::ShroudRx { key: k(5) }.encode(&mut out), 33);
        assert_eq!(out[0], 5);
    }

    #[test]
    fn decode_rejects_bad_tags_and_lengths() {
        assert!(matches!(
            KeyMsg::decode(&[]),
            Err(ShmError::UnknownKeyMsg(0))
        ));
        assert!(matches!(
            KeyMsg::decode(&[9]),
            Err(ShmError::UnknownKeyMsg(9))
        ));
        assert!(matches!(
            KeyMsg::decode(&[3, 0]),
            Err(ShmError::KeyMsgLength {
                tag: 3,
                len: 2,
                expected: 1
            })
        ));
        assert!(matches!(
            KeyMsg::decode(&[1; 40]),
            Err(ShmError::KeyMsgLength {
                tag: 1,
                len: 40,
                expected: 41
            })
        ));
    }

    #[test]
    fn round_trip_and_slots_are_wiped() {
        let (mut p, mut c, fd, _w) = pair(4);
        let msgs = [
            KeyMsg::InstallTx {
                spi: 0xdead_beef,
                salt: [1, 2, 3, 4],
                key: k(0x11),
            },
            KeyMsg::InstallRx {
                spi: 7,
                salt: [5, 6, 7, 8],
                key: k(0x22),
            },
            KeyMsg::Erase,
            KeyMsg::ShroudTx { key: k(0x33) },
            KeyMsg::ShroudRx { key: k(0x44) },
        ];
        // Five messages through a four-slot ring: the fifth reuses a slot.
        for (i, m) in msgs.iter().enumerate() {
            p.push_key(m).expect("push");
            if i == 0 {
                // The key bytes really are in the slot before the pop.
                let mut raw = [0u8; 32];
                pread(&fd, &mut raw, (layout::SLOTS + 16 + 9) as i64).expect("pread");
                assert_eq!(raw, [0x11; 32]);
            }
            let got = c.pop_key().expect("a message").expect("valid");
            assert_eq!(&got, m);
        }
        assert!(c.pop_key().is_none());
        let mut all = vec![0u8; (4 * layout::SLOT) as usize];
        assert_eq!(
            pread(&fd, &mut all, layout::SLOTS as i64).expect("pread"),
            all.len()
        );
        assert!(all.iter().all(|&b| b == 0), "slot bytes left behind");
        assert_eq!(c.dropped_malformed(), 0);
    }

    #[test]
    fn garbage_key_message_is_an_error_and_wiped() {
        let (mut p, mut c, fd, _w) = pair(2);
        p.push(
            Meta {
                addr: None,
                kind: KIND_KEY,
            },
            &[1, 0xee, 0xee],
        )
        .expect("push");
        assert!(matches!(
            c.pop_key(),
            Some(Err(ShmError::KeyMsgLength { tag: 1, len: 3, .. }))
        ));
        // Longer than a key message: dropped, counted, wiped.
        p.push(Meta::default(), &[0x55; 100]).expect("push");
        assert!(c.pop_key().is_none());
        assert_eq!(c.dropped_malformed(), 1);
        let mut all = vec![0u8; (2 * layout::SLOT) as usize];
        pread(&fd, &mut all, layout::SLOTS as i64).expect("pread");
        assert!(all.iter().all(|&b| b == 0));
    }
}
