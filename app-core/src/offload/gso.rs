//! Cutting a TUN super-packet into MTU-sized segments (software GSO).
//!
//! What the kernel hands over with a [`VnetHdr`] whose `gso_type` is not
//! [`GSO_NONE`]: one IP header and one TCP or UDP header followed by up to
//! 64 KiB of payload, to be sent as segments of `gso_size` payload bytes.
//! Each segment gets a copy of the headers with its own lengths, IPv4
//! identification, TCP sequence number and flags, and full checksums.

use super::checksum::{self, finish, pseudo_v4, pseudo_v6};
use super::{
    GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, PROTO_TCP, PROTO_UDP, VnetHdr,
};

/// TCP flags cleared on every segment but the last.
const FIN_PSH: u8 = 0x01 | 0x08;
/// TCP CWR flag, kept on the first segment only.
const CWR: u8 = 0x80;

/// Why a packet read from the TUN device could not be cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The GSO type is not one the TUN device was told to produce.
    #[error("unsupported GSO type {0:#04x}")]
    Unsupported(u8),
    /// The IP header is missing, of an unknown version, or does not match
    /// the GSO type.
    #[error("bad IP header for GSO type {0:#04x}")]
    BadIp(u8),
    /// The transport header is missing or does not start at `csum_start`.
    #[error("bad transport header")]
    BadTransport,
    /// `gso_size` is zero.
    #[error("GSO size of zero")]
    ZeroSegment,
    /// A segment does not fit the output buffer.
    #[error("a segment of {0} bytes does not fit the output buffer")]
    TooLong(usize),
    /// A partial checksum's offsets lie outside the packet.
    #[error("checksum offsets outside the packet")]
    BadChecksumOffsets,
}

/// The IP and transport headers of a super-packet.
struct Headers {
    v6: bool,
    ip_len: usize,
    l4_len: usize,
    tcp: bool,
}

impl Headers {
    fn total(&self) -> usize {
        self.ip_len + self.l4_len
    }
}

/// Cuts `packet` (what follows the virtio-net header `hdr`) into segments
/// and calls `emit` with each one, in order; returns how many there were.
///
/// A packet without GSO is emitted as is, after its partial checksum is
/// completed if `hdr` asks for that. `segment` is scratch space for
/// building segments and bounds their size. Nothing is emitted when an
/// error is returned.
pub fn split(
    hdr: &VnetHdr,
    packet: &mut [u8],
    segment: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, SplitError> {
    let gso_type = hdr.gso_type & !GSO_ECN;
    if gso_type == GSO_NONE {
        if hdr.flags & NEEDS_CSUM != 0 {
            complete_partial_checksum(hdr, packet)?;
        }
        emit(packet);
        return Ok(1);
    }
    let h = headers(gso_type, packet)?;
    if usize::from(hdr.csum_start) != h.ip_len {
        return Err(SplitError::BadTransport);
    }
    let mss = usize::from(hdr.gso_size);
    if mss == 0 {
        return Err(SplitError::ZeroSegment);
    }
    let head = h.total();
    let payload = packet.len() - head;
    let longest = head + mss.min(payload);
    if longest > segment.len() {
        return Err(SplitError::TooLong(longest));
    }
    let (headers, body) = packet.split_at(head);
    let count = payload.div_ceil(mss).max(1);
    let seq = be32(headers, h.ip_len + 4);
    let ip_id = be16(headers, 4);
    for i in 0..count {
        let chunk = body
            .get(i * mss..)
            .map_or(&[][..], |b| &b[..b.len().min(mss)]);
        let len = head + chunk.len();
        let seg = &mut segment[..len];
        seg[..head].copy_from_slice(headers);
        seg[head..].copy_from_slice(chunk);
        let l4_total = h.l4_len + chunk.len();
        if h.v6 {
            put16(seg, 4, l4_total as u16);
        } else {
            put16(seg, 2, len as u16);
            put16(seg, 4, ip_id.wrapping_add(i as u16));
            checksum::set_ipv4_header(&mut seg[..h.ip_len]);
        }
        let l4 = h.ip_len;
        let check_at = if h.tcp {
            put32(seg, l4 + 4, seq.wrapping_add((i * mss) as u32));
            let mut flags = seg[l4 + 13];
            if i + 1 < count {
                flags &= !FIN_PSH;
            }
            if i > 0 {
                flags &= !CWR;
            }
            seg[l4 + 13] = flags;
            l4 + 16
        } else {
            put16(seg, l4 + 4, l4_total as u16);
            l4 + 6
        };
        put16(seg, check_at, 0);
        let proto = if h.tcp { PROTO_TCP } else { PROTO_UDP };
        let pseudo = if h.v6 {
            pseudo_v6(ip16(seg, 8), ip16(seg, 24), proto, l4_total as u32)
        } else {
            pseudo_v4(ip4(seg, 12), ip4(seg, 16), proto, l4_total as u16)
        };
        let mut c = finish(checksum::sum(&seg[l4..], pseudo));
        if !h.tcp && c == 0 {
            c = 0xffff;
        }
        put16(seg, check_at, c);
        emit(seg);
    }
    Ok(count)
}

/// Fills in the checksum of a `CHECKSUM_PARTIAL` packet: the field holds
/// the pseudo-header sum; the sum of everything from `csum_start` goes
/// there, complemented.
pub fn complete_partial_checksum(hdr: &VnetHdr, packet: &mut [u8]) -> Result<(), SplitError> {
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    if at + 2 > packet.len() {
        return Err(SplitError::BadChecksumOffsets);
    }
    let c = finish(checksum::sum(&packet[start..], 0));
    put16(packet, at, c);
    Ok(())
}

/// Finds and checks the headers of a super-packet of `gso_type`.
fn headers(gso_type: u8, p: &[u8]) -> Result<Headers, SplitError> {
    let bad_ip = SplitError::BadIp(gso_type);
    let version = p.first().ok_or(bad_ip)? >> 4;
    let (v6, ip_len, proto) = match version {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return Err(bad_ip);
            }
            (false, ihl, p[9])
        }
        6 if p.len() >= 40 => (true, 40, p[6]),
        _ => return Err(bad_ip),
    };
    let tcp = match gso_type {
        GSO_TCPV4 if !v6 => true,
        GSO_TCPV6 if v6 => true,
        GSO_UDP_L4 => false,
        GSO_TCPV4 | GSO_TCPV6 => return Err(bad_ip),
        other => return Err(SplitError::Unsupported(other)),
    };
    if proto != if tcp { PROTO_TCP } else { PROTO_UDP } {
        return Err(bad_ip);
    }
    let l4_len = if tcp {
        let off = *p.get(ip_len + 12).ok_or(SplitError::BadTransport)?;
        usize::from(off >> 4) * 4
    } else {
        8
    };
    if l4_len < 8 || (tcp && l4_len < 20) || p.len() < ip_len + l4_len {
        return Err(SplitError::BadTransport);
    }
    Ok(Headers {
        v6,
        ip_len,
        l4_len,
        tcp,
    })
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn ip4(b: &[u8], at: usize) -> &[u8; 4] {
    b[at..at + 4].try_into().expect("4 bytes")
}

fn ip16(b: &[u8], at: usize) -> &[u8; 16] {
    b[at..at + 16].try_into().expect("16 bytes")
}
