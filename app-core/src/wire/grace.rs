//! Graces: control messages carried inside the encrypted channel as the
//! payload of a data packet with `next = 0xFC` (wire.md §4).
//!
//! Integers are NATIVE in the reference, i.e. little-endian on every
//! platform it runs on; they are written and read as little-endian here.

/// Type of a HEARTBEAT grace.
pub const HEARTBEAT: u16 = 1;
/// Type of an MTU_PROBE grace.
pub const MTU_PROBE: u16 = 2;
/// Type of an MTU_ACK grace.
pub const MTU_ACK: u16 = 3;

/// Length of a HEARTBEAT payload (just the type).
pub const HEARTBEAT_LEN: usize = 2;
/// Length of the `{type, size}` header of MTU_PROBE and MTU_ACK, and the
/// whole length of an MTU_ACK payload.
pub const MTU_HEADER_LEN: usize = 4;
/// Smallest MTU size a probe or ack may name (the offer size).
pub const MIN_MTU_SIZE: u16 = 623;
/// Largest size an accepted MTU_ACK may name (the daemon's max datagram).
pub const MAX_MTU_ACK_SIZE: u16 = 1522;

/// One grace message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grace {
    /// Liveness / NAT keepalive / hole punching.
    Heartbeat,
    /// "Can a payload of `size` bytes reach you?": the payload is exactly
    /// `size` bytes long (header then zeros).
    MtuProbe {
        /// The probed payload size.
        size: u16,
    },
    /// "Your probe of `size` arrived."
    MtuAck {
        /// The `size` of the probe being acknowledged.
        size: u16,
    },
}

/// Why a grace payload is ignored by the receiver, or cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraceError {
    /// Shorter than its type needs (2 bytes; 4 for probe and ack).
    #[error("grace payload of {len} bytes is too short")]
    TooShort {
        /// Length of the payload.
        len: usize,
    },
    /// A type sanctum does not define.
    #[error("unknown grace type {0}")]
    UnknownType(u16),
    /// Building: an MTU_PROBE of `size` cannot hold its own 4-byte header.
    #[error("MTU probe of {size} bytes cannot hold its header")]
    ProbeTooSmall {
        /// The requested size.
        size: u16,
    },
    /// Building: the output buffer is too small.
    #[error("buffer of {have} bytes is too small for a {need}-byte grace")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Length of the buffer.
        have: usize,
    },
}

impl Grace {
    /// The grace type on the wire.
    pub const fn kind(&self) -> u16 {
        match self {
            Grace::Heartbeat => HEARTBEAT,
            Grace::MtuProbe { .. } => MTU_PROBE,
            Grace::MtuAck { .. } => MTU_ACK,
        }
    }

    /// Length of the payload this grace is sent as (before TFC padding).
    pub fn encoded_len(&self) -> usize {
        match self {
            Grace::Heartbeat => HEARTBEAT_LEN,
            Grace::MtuProbe { size } => usize::from(*size),
            Grace::MtuAck { .. } => MTU_HEADER_LEN,
        }
    }

    /// Writes the payload into the front of `out` (for a data packet, the
    /// payload area at [`crate::wire::data::PAYLOAD_OFFSET`]) and returns
    /// its length. A probe's bytes after its header are zeroed.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, GraceError> {
        let need = self.encoded_len();
        if let Grace::MtuProbe { size } = self
            && need < MTU_HEADER_LEN
        {
            return Err(GraceError::ProbeTooSmall { size: *size });
        }
        let have = out.len();
        let Some(payload) = out.get_mut(..need) else {
            return Err(GraceError::BufferTooSmall { need, have });
        };
        payload[..2].copy_from_slice(&self.kind().to_le_bytes());
        match self {
            Grace::Heartbeat => {}
            Grace::MtuProbe { size } | Grace::MtuAck { size } => {
                payload[2..4].copy_from_slice(&size.to_le_bytes());
                payload[4..].fill(0);
            }
        }
        Ok(need)
    }

    /// The payload as a new vector (for tests and non-hot paths).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.encoded_len().max(MTU_HEADER_LEN)];
        let n = self.write(&mut v).unwrap_or(0);
        v.truncate(n);
        v
    }

    /// Parses a decrypted grace payload (wire.md §4 receiver rules): shorter
    /// than 2 bytes, a probe or ack shorter than 4, or an unknown type are
    /// errors the receiver ignores. Trailing bytes (TFC padding, a probe's
    /// zeros) are ignored; a probe's `size` is taken from its header, not
    /// from the measured length.
    pub fn parse(payload: &[u8]) -> Result<Grace, GraceError> {
        let len = payload.len();
        let Some(&[t0, t1]) = payload.get(..2) else {
            return Err(GraceError::TooShort { len });
        };
        let kind = u16::from_le_bytes([t0, t1]);
        let size = || match payload.get(2..4) {
            Some(&[s0, s1]) => Ok(u16::from_le_bytes([s0, s1])),
            _ => Err(GraceError::TooShort { len }),
        };
        match kind {
            HEARTBEAT => Ok(Grace::Heartbeat),
            MTU_PROBE => Ok(Grace::MtuProbe { size: size()? }),
            MTU_ACK => Ok(Grace::MtuAck { size: size()? }),
            other => Err(GraceError::UnknownType(other)),
        }
    }
}

/// Whether a received MTU_PROBE of `size` is acked: `623 <= size <= tun_mtu`.
pub fn probe_acceptable(size: u16, tun_mtu: usize) -> bool {
    size >= MIN_MTU_SIZE && usize::from(size) <= tun_mtu
}

/// Whether a received MTU_ACK of `size` is accepted: `623 <= size <= 1522`.
pub fn ack_acceptable(size: u16) -> bool {
    (MIN_MTU_SIZE..=MAX_MTU_ACK_SIZE).contains(&size)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn encodings_are_little_endian() {
        assert_eq!(Grace::Heartbeat.to_vec(), [0x01, 0x00]);
        assert_eq!(
            Grace::MtuAck { size: 1300 }.to_vec(),
            [0x03, 0x00, 0x14, 0x05]
        );
        let probe = Grace::MtuProbe { size: 623 }.to_vec();
        assert_eq!(probe.len(), 623);
        assert_eq!(probe[..4], [0x02, 0x00, 0x6f, 0x02]);
        assert!(probe[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn write_zeroes_probe_body_and_checks_room() {
        let mut buf = [0xFFu8; 700];
        assert_eq!(Grace::MtuProbe { size: 650 }.write(&mut buf), Ok(650));
        assert!(buf[4..650].iter().all(|&b| b == 0));
        assert!(buf[650..].iter().all(|&b| b == 0xFF));
        assert_eq!(
            Grace::MtuProbe { size: 701 }.write(&mut buf),
            Err(GraceError::BufferTooSmall {
                need: 701,
                have: 700
            })
        );
        assert_eq!(
            Grace::MtuProbe { size: 3 }.write(&mut buf),
            Err(GraceError::ProbeTooSmall { size: 3 })
        );
        assert_eq!(
            Grace::Heartbeat.write(&mut buf[..1]),
            Err(GraceError::BufferTooSmall { need: 2, have: 1 })
        );
    }

    #[test]
    fn parse_roundtrip_and_rules() {
        for g in [
            Grace::Heartbeat,
            Grace::MtuProbe { size: 1000 },
            Grace::MtuAck { size: 1422 },
        ] {
            assert_eq!(Grace::parse(&g.to_vec()), Ok(g));
        }
        assert_eq!(Grace::parse(&[]), Err(GraceError::TooShort { len: 0 }));
        assert_eq!(Grace::parse(&[1]), Err(GraceError::TooShort { len: 1 }));
        assert_eq!(
            Grace::parse(&[2, 0, 5]),
            Err(GraceError::TooShort { len: 3 })
        );
        assert_eq!(Grace::parse(&[3, 0]), Err(GraceError::TooShort { len: 2 }));
        assert_eq!(Grace::parse(&[4, 0, 0, 0]), Err(GraceError::UnknownType(4)));
        assert_eq!(Grace::parse(&[0, 1]), Err(GraceError::UnknownType(256)));
        // TFC-padded heartbeat; a probe whose measured length differs from size.
        assert_eq!(Grace::parse(&[1, 0, 0, 0, 0, 0]), Ok(Grace::Heartbeat));
        assert_eq!(
            Grace::parse(&[2, 0, 0x14, 0x05]),
            Ok(Grace::MtuProbe { size: 1300 })
        );
    }

    #[test]
    fn acceptance_bounds() {
        assert!(!probe_acceptable(622, 1400));
        assert!(probe_acceptable(623, 1400));
        assert!(probe_acceptable(1400, 1400));
        assert!(!probe_acceptable(1401, 1400));
        assert!(!ack_acceptable(622));
        assert!(ack_acceptable(623));
        assert!(ack_acceptable(1522));
        assert!(!ack_acceptable(1523));
    }
}
