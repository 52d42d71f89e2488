//! The STATUS request and its 88-byte reply (spec/files.md §8).
//!
//! The reply is the reference's `struct sanctum_ctl_status_response` as it
//! lies in memory on the host: integers in host byte order with C natural
//! alignment, except the peer address and port, which are kept in network
//! order.
//!
//! ```text
//! offset size field
//!      0   40 tx statistics
//!     40   40 rx statistics
//!     80    4 peer IPv4 address (network order)
//!     84    2 peer UDP port (network order)
//!     86    2 tunnel MTU (host order)
//!
//! statistics block: spi u32 @0, 4 bytes of padding, age u64 @8,
//!                   pkt u64 @16, last u64 @24, bytes u64 @32
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use super::ControlError;

/// The only request the control socket answers: one byte, `0x01`.
pub const STATUS_REQUEST: u8 = 1;

/// Size of a STATUS reply in bytes.
pub const STATUS_LEN: usize = 88;

/// Size of one statistics block inside the reply.
const SA_STATS_LEN: usize = 40;
/// Offset of the rx block.
const RX_OFFSET: usize = SA_STATS_LEN;
/// Offset of the peer address.
const PEER_IP_OFFSET: usize = 2 * SA_STATS_LEN;
/// Offset of the peer port.
const PEER_PORT_OFFSET: usize = PEER_IP_OFFSET + 4;
/// Offset of the MTU.
const MTU_OFFSET: usize = PEER_PORT_OFFSET + 2;

/// Counters of one direction's security association.
///
/// Times are whole seconds of the host's `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SaStats {
    /// SPI of the installed SA; 0 when there is none.
    pub spi: u32,
    /// Monotonic second the SA was installed.
    pub age: u64,
    /// Packets carried.
    pub pkt: u64,
    /// Monotonic second of the last packet; 0 = never.
    pub last: u64,
    /// Bytes carried.
    pub bytes: u64,
}

impl SaStats {
    /// Writes the 40-byte block into `out` (exactly 40 bytes long).
    fn encode_into(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.spi.to_ne_bytes());
        out[4..8].fill(0);
        out[8..16].copy_from_slice(&self.age.to_ne_bytes());
        out[16..24].copy_from_slice(&self.pkt.to_ne_bytes());
        out[24..32].copy_from_slice(&self.last.to_ne_bytes());
        out[32..40].copy_from_slice(&self.bytes.to_ne_bytes());
    }

    /// Reads a 40-byte block; the padding bytes are not looked at.
    fn decode_from(b: &[u8; SA_STATS_LEN]) -> SaStats {
        SaStats {
            spi: u32::from_ne_bytes(field(b, 0)),
            age: u64::from_ne_bytes(field(b, 8)),
            pkt: u64::from_ne_bytes(field(b, 16)),
            last: u64::from_ne_bytes(field(b, 24)),
            bytes: u64::from_ne_bytes(field(b, 32)),
        }
    }
}

/// What the control socket reports about a running tunnel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// The sending SA.
    pub tx: SaStats,
    /// The receiving SA.
    pub rx: SaStats,
    /// Where packets currently go; `None` (0.0.0.0:0 on the wire) while the
    /// peer is unknown.
    pub peer: Option<SocketAddrV4>,
    /// Current tunnel MTU.
    pub mtu: u16,
}

impl Status {
    /// The reply as the reference lays it out (module documentation).
    ///
    /// A `peer` of `None` is written as address 0.0.0.0, port 0.
    pub fn encode(&self) -> [u8; STATUS_LEN] {
        let mut out = [0u8; STATUS_LEN];
        self.tx.encode_into(&mut out[..RX_OFFSET]);
        self.rx.encode_into(&mut out[RX_OFFSET..PEER_IP_OFFSET]);
        let peer = self
            .peer
            .unwrap_or_else(|| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        out[PEER_IP_OFFSET..PEER_PORT_OFFSET].copy_from_slice(&peer.ip().octets());
        out[PEER_PORT_OFFSET..MTU_OFFSET].copy_from_slice(&peer.port().to_be_bytes());
        out[MTU_OFFSET..].copy_from_slice(&self.mtu.to_ne_bytes());
        out
    }

    /// Parses a reply of exactly [`STATUS_LEN`] bytes.
    ///
    /// Padding bytes are ignored. Address 0.0.0.0 with port 0 is "no peer"
    /// (`None`); any other address/port pair is returned as it is.
    pub fn decode(b: &[u8]) -> Result<Status, ControlError> {
        let b: &[u8; STATUS_LEN] = b
            .try_into()
            .map_err(|_| ControlError::BadReplyLength { len: b.len() })?;
        let ip = Ipv4Addr::from(field::<4>(b, PEER_IP_OFFSET));
        let port = u16::from_be_bytes(field(b, PEER_PORT_OFFSET));
        let peer = (!ip.is_unspecified() || port != 0).then(|| SocketAddrV4::new(ip, port));
        Ok(Status {
            tx: SaStats::decode_from(&field(b, 0)),
            rx: SaStats::decode_from(&field(b, RX_OFFSET)),
            peer,
            mtu: u16::from_ne_bytes(field(b, MTU_OFFSET)),
        })
    }
}

/// `N` bytes of `b` starting at `at`. Every caller passes constant offsets
/// that lie inside its fixed-size array, so the zero fallback is never
/// taken; it exists so that no path can panic.
fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0u8; N])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status with a distinct value in every field, and the reply the
    /// reference would send for it on a little-endian host.
    fn example() -> (Status, [u8; STATUS_LEN]) {
        let status = Status {
            tx: SaStats {
                spi: 0x1122_3344,
                age: 0x0102_0304_0506_0708,
                pkt: 5,
                last: 0x0100,
                bytes: 0x00ff_0000_0000_0001,
            },
            rx: SaStats {
                spi: 0xdead_beef,
                age: 7,
                pkt: 0x0a0b,
                last: 9,
                bytes: 1500,
            },
            peer: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 4500)),
            mtu: 1422,
        };
        #[rustfmt::skip]
        let le: [u8; STATUS_LEN] = [
            // tx: spi, padding, age, pkt, last, bytes
            0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0,
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
            5, 0, 0, 0, 0, 0, 0, 0,
            0x00, 0x01, 0, 0, 0, 0, 0, 0,
            0x01, 0, 0, 0, 0, 0, 0xff, 0x00,
            // rx
            0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0,
            7, 0, 0, 0, 0, 0, 0, 0,
            0x0b, 0x0a, 0, 0, 0, 0, 0, 0,
            9, 0, 0, 0, 0, 0, 0, 0,
            0xdc, 0x05, 0, 0, 0, 0, 0, 0,
            // peer 192.0.2.7:4500 in network order, mtu 1422 host order
            192, 0, 2, 7,
            0x11, 0x94,
            0x8e, 0x05,
        ];
        (status, le)
    }

    /// The expected bytes on this host: the little-endian example with
    /// every host-order integer byte-swapped on a big-endian host.
    fn example_on_host() -> (Status, [u8; STATUS_LEN]) {
        let (status, mut b) = example();
        if cfg!(target_endian = "big") {
            for block in [0, RX_OFFSET] {
                b[block..block + 4].reverse();
                for at in [8, 16, 24, 32] {
                    b[block + at..block + at + 8].reverse();
                }
            }
            b[MTU_OFFSET..].reverse();
        }
        (status, b)
    }

    #[test]
    fn encode_gives_the_reference_layout() {
        let (status, bytes) = example_on_host();
        assert_eq!(status.encode(), bytes);
    }

    #[test]
    fn decode_reads_the_reference_layout() {
        let (status, bytes) = example_on_host();
        assert_eq!(Status::decode(&bytes).unwrap(), status);
    }

    #[test]
    fn round_trip_of_default_and_example() {
        for s in [Status::default(), example().0] {
            assert_eq!(Status::decode(&s.encode()).unwrap(), s);
        }
        assert_eq!(Status::default().encode(), [0u8; STATUS_LEN]);
    }

    #[test]
    fn padding_is_ignored() {
        let (status, mut bytes) = example_on_host();
        bytes[4..8].copy_from_slice(&[0xaa; 4]);
        bytes[RX_OFFSET + 4..RX_OFFSET + 8].copy_from_slice(&[0x55; 4]);
        assert_eq!(Status::decode(&bytes).unwrap(), status);
    }

    #[test]
    fn unknown_peer_is_all_zero_and_a_bare_port_is_kept() {
        let mut s = example().0;
        s.peer = None;
        let b = s.encode();
        assert_eq!(&b[PEER_IP_OFFSET..MTU_OFFSET], &[0u8; 6]);
        assert_eq!(Status::decode(&b).unwrap().peer, None);

        s.peer = Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4500));
        let b = s.encode();
        assert_eq!(&b[PEER_IP_OFFSET..MTU_OFFSET], &[0, 0, 0, 0, 0x11, 0x94]);
        assert_eq!(Status::decode(&b).unwrap().peer, s.peer);
    }

    #[test]
    fn decode_rejects_short_and_long_input() {
        let b = example().0.encode();
        for len in [0, 1, 40, STATUS_LEN - 1] {
            assert!(
                matches!(Status::decode(&b[..len]), Err(ControlError::BadReplyLength { len: l }) if l == len),
                "length {len}"
            );
        }
        let mut long = b.to_vec();
        long.push(0);
        assert!(matches!(
            Status::decode(&long),
            Err(ControlError::BadReplyLength { len: 89 })
        ));
    }

    #[test]
    fn json_names_every_field() {
        let json = serde_json::to_value(example().0).unwrap();
        assert_eq!(json["tx"]["spi"], 0x1122_3344);
        assert_eq!(json["rx"]["bytes"], 1500);
        assert_eq!(json["peer"], "192.0.2.7:4500");
        assert_eq!(json["mtu"], 1422);
        assert_eq!(
            serde_json::to_value(Status::default()).unwrap()["peer"],
            serde_json::Value::Null
        );
    }
}
