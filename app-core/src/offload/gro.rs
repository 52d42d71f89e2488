//! Merging in-order IPv4 TCP segments of one flow before they are written
//! to the TUN device (software GRO).
//!
//! The [`Coalescer`] keeps a few flows open. A segment that continues an
//! open flow exactly (next sequence number, same acknowledgment, same
//! headers but for lengths, checksum and window) is appended to it; any
//! other packet first flushes what it could be reordered with. Flushed
//! flows of one segment go out untouched; longer ones go out as one packet
//! with a [`VnetHdr`] telling the kernel they are `gso_size` segments whose
//! checksum is already verified, as a NIC with GRO would deliver them.
//!
//! Only segments whose IPv4 and TCP checksums verify are merged: the
//! merged packet's checksum is not looked at again by the kernel.

use super::checksum::{self, finish, fold, pseudo_v4};
use super::{GSO_TCPV4, NEEDS_CSUM, PROTO_TCP, VNET_HDR_LEN, VnetHdr};

/// Largest IPv4 packet, the bound of a merged packet.
const MAX_IP_LEN: usize = 65535;
/// Most segments merged into one packet (Linux's GRO limit).
const MAX_SEGMENTS: u16 = 64;
/// TCP flags.
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// The fields that decide whether two segments belong together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKey {
    src: [u8; 4],
    dst: [u8; 4],
    ports: [u8; 4],
}

/// A segment that may be merged.
#[derive(Clone, Copy, Debug)]
struct Segment {
    key: FlowKey,
    tcp_len: usize,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: usize,
}

/// One open flow: its first packet (after room for the virtio-net header)
/// with the payload of the following segments appended.
#[derive(Debug)]
struct Flow {
    buf: Vec<u8>,
    /// Bytes of `buf` in use, header room included.
    len: usize,
    key: FlowKey,
    tcp_len: usize,
    ack: u32,
    next_seq: u32,
    gso_size: usize,
    segments: u16,
    /// Nothing more may be appended (a short or PSH segment was).
    closed: bool,
}

/// Counters of what the coalescer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroStats {
    /// Packets handed to [`Coalescer::push`].
    pub packets_in: u64,
    /// Packets given to the writer.
    pub packets_out: u64,
}

/// Merges TCP segments on their way to the TUN device.
#[derive(Debug)]
pub struct Coalescer {
    flows: Vec<Flow>,
    spare: Vec<Vec<u8>>,
    max_flows: usize,
    stats: GroStats,
}

impl Coalescer {
    /// A coalescer keeping at most `max_flows` flows open (at least one).
    pub fn new(max_flows: usize) -> Coalescer {
        Coalescer {
            flows: Vec::new(),
            spare: Vec::new(),
            max_flows: max_flows.max(1),
            stats: GroStats::default(),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> GroStats {
        self.stats
    }

    /// Offers one packet. `frame` holds [`VNET_HDR_LEN`] bytes of room and
    /// then the packet. `write` is called with every frame (virtio-net
    /// header and packet) that must go to the device now, in order.
    pub fn push(&mut self, frame: &mut [u8], write: &mut impl FnMut(&[u8])) {
        self.stats.packets_in += 1;
        let Some(packet) = frame.get(VNET_HDR_LEN..) else {
            return;
        };
        let Some(seg) = candidate(packet) else {
            // Not mergeable: it must not overtake anything held back.
            self.flush(write);
            self.write_single(frame, write);
            return;
        };
        if let Some(i) = self.flows.iter().position(|f| f.key == seg.key) {
            if self.flows[i].can_append(&seg, packet) {
                self.flows[i].append(&seg, packet);
                return;
            }
            let flow = self.flows.remove(i);
            self.emit(flow, write);
        }
        if seg.flags & PSH != 0 {
            // Nothing could follow it; no need to hold it.
            self.write_single(frame, write);
            return;
        }
        if self.flows.len() >= self.max_flows {
            let oldest = self.flows.remove(0);
            self.emit(oldest, write);
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        if buf.len() < VNET_HDR_LEN + MAX_IP_LEN {
            buf.resize(VNET_HDR_LEN + MAX_IP_LEN, 0);
        }
        let len = VNET_HDR_LEN + packet.len();
        buf[VNET_HDR_LEN..len].copy_from_slice(packet);
        self.flows.push(Flow {
            buf,
            len,
            key: seg.key,
            tcp_len: seg.tcp_len,
            ack: seg.ack,
            next_seq: seg.seq.wrapping_add(seg.payload as u32),
            gso_size: seg.payload,
            segments: 1,
            closed: false,
        });
    }

    /// Writes every open flow, oldest first.
    pub fn flush(&mut self, write: &mut impl FnMut(&[u8])) {
        let flows = std::mem::take(&mut self.flows);
        for flow in flows {
            self.emit(flow, write);
        }
    }

    fn write_single(&mut self, frame: &mut [u8], write: &mut impl FnMut(&[u8])) {
        frame[..VNET_HDR_LEN].fill(0);
        self.stats.packets_out += 1;
        write(frame);
    }

    fn emit(&mut self, mut flow: Flow, write: &mut impl FnMut(&[u8])) {
        let frame = &mut flow.buf[..flow.len];
        if flow.segments > 1 {
            let packet = &mut frame[VNET_HDR_LEN..];
            let ip_len = packet.len();
            packet[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            checksum::set_ipv4_header(&mut packet[..20]);
            let tcp_total = (ip_len - 20) as u16;
            let pseudo = pseudo_v4(ip4(packet, 12), ip4(packet, 16), PROTO_TCP, tcp_total);
            // CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
            packet[36..38].copy_from_slice(&fold(pseudo).to_be_bytes());
            let hdr = VnetHdr {
                flags: NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: (20 + flow.tcp_len) as u16,
                gso_size: flow.gso_size as u16,
                csum_start: 20,
                csum_offset: 16,
            };
            frame[..VNET_HDR_LEN].copy_from_slice(&hdr.to_bytes());
        } else {
            frame[..VNET_HDR_LEN].fill(0);
        }
        self.stats.packets_out += 1;
        write(frame);
        self.spare.push(flow.buf);
    }
}

impl Flow {
    fn packet(&self) -> &[u8] {
        &self.buf[VNET_HDR_LEN..self.len]
    }

    fn can_append(&self, seg: &Segment, packet: &[u8]) -> bool {
        let mine = self.packet();
        !self.closed
            && seg.seq == self.next_seq
            && seg.ack == self.ack
            && seg.tcp_len == self.tcp_len
            && seg.payload <= self.gso_size
            && self.segments < MAX_SEGMENTS
            && self.len - VNET_HDR_LEN + seg.payload <= MAX_IP_LEN
            // TOS, DF and TTL, and the TCP options, must match.
            && mine[1] == packet[1]
            && mine[6] & 0x40 == packet[6] & 0x40
            && mine[8] == packet[8]
            && mine[40..20 + self.tcp_len] == packet[40..20 + seg.tcp_len]
    }

    fn append(&mut self, seg: &Segment, packet: &[u8]) {
        let payload = &packet[20 + seg.tcp_len..];
        let end = self.len + payload.len();
        self.buf[self.len..end].copy_from_slice(payload);
        self.len = end;
        self.segments += 1;
        self.next_seq = self.next_seq.wrapping_add(payload.len() as u32);
        let tcp = VNET_HDR_LEN + 20;
        // The latest window and PSH are what the receiver should see.
        self.buf[tcp + 14..tcp + 16].copy_from_slice(&packet[34..36]);
        if seg.flags & PSH != 0 {
            self.buf[tcp + 13] |= PSH;
        }
        if seg.payload < self.gso_size || seg.flags & PSH != 0 {
            self.closed = true;
        }
    }
}

/// The segment `packet` is, if it may be merged: IPv4 without options or
/// fragmentation, TCP with payload and only ACK (and PSH) set, and both
/// checksums correct.
fn candidate(p: &[u8]) -> Option<Segment> {
    if p.len() < 40 || p[0] != 0x45 || p[9] != PROTO_TCP {
        return None;
    }
    if usize::from(u16::from_be_bytes([p[2], p[3]])) != p.len() {
        return None;
    }
    // Fragment offset and more-fragments must be zero.
    if u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0 {
        return None;
    }
    let tcp_len = usize::from(p[32] >> 4) * 4;
    if tcp_len < 20 || p.len() <= 20 + tcp_len {
        return None;
    }
    let flags = p[33];
    if flags & ACK == 0 || flags & !(ACK | PSH) != 0 {
        return None;
    }
    if !checksum::ipv4_header_ok(&p[..20]) {
        return None;
    }
    let tcp_total = (p.len() - 20) as u16;
    let pseudo = pseudo_v4(ip4(p, 12), ip4(p, 16), PROTO_TCP, tcp_total);
    if finish(checksum::sum(&p[20..], pseudo)) != 0 {
        return None;
    }
    Some(Segment {
        key: FlowKey {
            src: *ip4(p, 12),
            dst: *ip4(p, 16),
            ports: [p[20], p[21], p[22], p[23]],
        },
        tcp_len,
        seq: u32::from_be_bytes([p[24], p[25], p[26], p[27]]),
        ack: u32::from_be_bytes([p[28], p[29], p[30], p[31]]),
        flags,
        payload: p.len() - 20 - tcp_len,
    })
}

fn ip4(b: &[u8], at: usize) -> &[u8; 4] {
    b[at..at + 4].try_into().expect("4 bytes")
}
