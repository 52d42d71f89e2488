//! The virtio-net header (`struct virtio_net_hdr`, 10 bytes, in the host's
//! byte order on a TUN device without `TUNSETVNETLE`/`TUNSETVNETBE`).

/// Length of the header in front of every packet.
pub const VNET_HDR_LEN: usize = 10;
/// `flags`: the checksum at `csum_start + csum_offset` still has to be
/// computed (the packet is `CHECKSUM_PARTIAL`).
pub const NEEDS_CSUM: u8 = 1;
/// `gso_type`: a single packet.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: IPv4 TCP to be cut into `gso_size` segments.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: IPv6 TCP to be cut into `gso_size` segments.
pub const GSO_TCPV6: u8 = 4;
/// `gso_type`: UDP (either IP version) to be cut into `gso_size` datagrams.
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP flow uses ECN (CWR only on the first segment).
pub const GSO_ECN: u8 = 0x80;

/// A parsed virtio-net header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// [`NEEDS_CSUM`] or 0.
    pub flags: u8,
    /// One of the `GSO_*` types, possibly with [`GSO_ECN`].
    pub gso_type: u8,
    /// Length of the IP and transport headers (advisory).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts (the transport header).
    pub csum_start: u16,
    /// Where in the transport header the checksum goes.
    pub csum_offset: u16,
}

/// The header was shorter than [`VNET_HDR_LEN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("virtio-net header needs {VNET_HDR_LEN} bytes, got {0}")]
pub struct VnetHdrError(pub usize);

impl VnetHdr {
    /// Reads the header from the first [`VNET_HDR_LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<VnetHdr, VnetHdrError> {
        let b: &[u8; VNET_HDR_LEN] = b
            .get(..VNET_HDR_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(VnetHdrError(b.len()))?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Ok(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input() {
        let h = VnetHdr {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4 | GSO_ECN,
            hdr_len: 52,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let b = h.to_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 0x81);
        assert_eq!(VnetHdr::parse(&b), Ok(h));
        assert_eq!(VnetHdr::parse(&b[..9]), Err(VnetHdrError(9)));
        assert_eq!(VnetHdr::parse(&[0u8; VNET_HDR_LEN]), Ok(VnetHdr::default()));
    }
}
