//! The red (clear) side: what the host's TUN interface hands the engine
//! and what the engine hands back to it.
//!
//! It holds no key and sees no ciphertext. Outbound it vets a clear packet
//! (IPv4, 13 bytes to the tunnel MTU) and wraps it as a [`ClearPacket`]
//! message for the black side; inbound it takes the black side's
//! [`ClearPacket`]s and lets through only IPv4 packets whose source or
//! destination lies in a tunnel network (chantryd's heaven-tx rule), so a
//! peer cannot inject traffic for other networks through this tunnel.

use std::net::Ipv4Addr;

use chantry_core::config::Ipv4Net;
use chantry_core::tunnel::MIN_CLEAR_LEN;

use crate::types::Verdict;

/// A clear IPv4 packet on its way between the red and the black side. Only
/// the red side makes one from host input, and only the black side makes
/// one from a decrypted datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClearPacket(Vec<u8>);

impl ClearPacket {
    /// Wraps a packet the black side decrypted.
    pub(crate) fn decrypted(bytes: Vec<u8>) -> Self {
        ClearPacket(bytes)
    }

    /// The packet bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Counters of the red side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RedStats {
    /// Host packets refused before encryption.
    pub refused: u64,
    /// Decrypted packets outside the tunnel networks.
    pub filtered: u64,
    /// Decrypted packets handed to the host.
    pub delivered: u64,
}

/// The red side of one engine.
#[derive(Debug)]
pub(crate) struct Red {
    mtu: usize,
    allowed: Vec<Ipv4Net>,
    stats: RedStats,
}

impl Red {
    /// A red side for a tunnel of this MTU whose decrypted packets must
    /// come from or go to one of `allowed`.
    pub(crate) fn new(mtu: usize, allowed: Vec<Ipv4Net>) -> Self {
        Red {
            mtu,
            allowed,
            stats: RedStats::default(),
        }
    }

    /// Vets a packet from the host's TUN interface.
    pub(crate) fn outbound(&mut self, packet: Vec<u8>) -> Result<ClearPacket, Verdict> {
        let verdict = if packet.len() < MIN_CLEAR_LEN {
            Some(Verdict::TooShort)
        } else if packet.len() > self.mtu {
            Some(Verdict::TooBig)
        } else if packet.first().map(|b| b >> 4) != Some(4) {
            Some(Verdict::NotIpv4)
        } else {
            None
        };
        match verdict {
            Some(v) => {
                self.stats.refused += 1;
                Err(v)
            }
            None => Ok(ClearPacket(packet)),
        }
    }

    /// Checks a decrypted packet before it goes to the host; `None` (and
    /// counted) if it does not belong to the tunnel.
    pub(crate) fn inbound(&mut self, packet: ClearPacket) -> Option<Vec<u8>> {
        if self.allowed(packet.bytes()) {
            self.stats.delivered += 1;
            Some(packet.0)
        } else {
            self.stats.filtered += 1;
            None
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> RedStats {
        self.stats
    }

    fn allowed(&self, packet: &[u8]) -> bool {
        if packet.first().map(|b| b >> 4) != Some(4) {
            return false;
        }
        let addr = |r: std::ops::Range<usize>| {
            packet
                .get(r)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(Ipv4Addr::from)
        };
        let (Some(src), Some(dst)) = (addr(12..16), addr(16..20)) else {
            return false;
        };
        self.allowed
            .iter()
            .any(|n| n.contains(src) || n.contains(dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(len: usize, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p
    }

    fn red() -> Red {
        let net = Ipv4Net::new(Ipv4Addr::new(10, 9, 0, 0), 30).unwrap();
        Red::new(1400, vec![net])
    }

    #[test]
    fn outbound_checks_version_and_size() {
        let mut r = red();
        assert!(r.outbound(packet(84, [10, 9, 0, 2], [1, 1, 1, 1])).is_ok());
        assert_eq!(r.outbound(vec![0x45; 12]), Err(Verdict::TooShort));
        assert_eq!(r.outbound(vec![0x45; 1401]), Err(Verdict::TooBig));
        let mut v6 = packet(84, [0; 4], [0; 4]);
        v6[0] = 0x60;
        assert_eq!(r.outbound(v6), Err(Verdict::NotIpv4));
        assert_eq!(r.stats().refused, 3);
    }

    #[test]
    fn inbound_only_for_tunnel_networks() {
        let mut r = red();
        let inside = packet(84, [10, 9, 0, 1], [10, 9, 0, 2]);
        assert_eq!(
            r.inbound(ClearPacket::decrypted(inside.clone())),
            Some(inside)
        );
        let outside = packet(84, [192, 0, 2, 1], [198, 51, 100, 1]);
        assert_eq!(r.inbound(ClearPacket::decrypted(outside)), None);
        assert_eq!(r.inbound(ClearPacket::decrypted(vec![0x45; 19])), None);
        assert_eq!(
            r.stats(),
            RedStats {
                refused: 0,
                filtered: 2,
                delivered: 1
            }
        );
    }
}
