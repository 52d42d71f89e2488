//! TUN offload: super-packets cut by `gso::split` are valid packets whose
//! checksums verify independently, and `gro::Coalescer` puts in-order
//! segments back together without merging what must stay apart.

use chantry_core::offload::gro::Coalescer;
use chantry_core::offload::gso::{self, SplitError};
use chantry_core::offload::{
    GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, VNET_HDR_LEN, VnetHdr,
};

const SRC: [u8; 4] = [10, 77, 0, 1];
const DST: [u8; 4] = [10, 77, 0, 2];

/// The Internet checksum the slow, obvious way: 16-bit words, carries
/// folded at every step.
fn naive_checksum(chunks: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = chunks.concat();
    let mut sum: u32 = 0;
    for w in bytes.chunks(2) {
        let word = u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_ok(p: &[u8]) -> bool {
    naive_checksum(&[&p[..20]]) == 0
}

fn l4_ok(p: &[u8], proto: u8) -> bool {
    let l4 = &p[20..];
    let len = (l4.len() as u16).to_be_bytes();
    let pseudo = [&p[12..20], &[0, proto], &len[..]].concat();
    naive_checksum(&[&pseudo, l4]) == 0
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An IPv4 TCP packet with valid checksums, 12 bytes of options
/// (timestamps-like) and `payload`.
fn tcp4(seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let tcp_len = 32;
    let total = 20 + tcp_len + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&SRC);
    p[16..20].copy_from_slice(&DST);
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5201u16.to_be_bytes());
    p[24..28].copy_from_slice(&seq.to_be_bytes());
    p[28..32].copy_from_slice(&ack.to_be_bytes());
    p[32] = (tcp_len as u8 / 4) << 4;
    p[33] = flags;
    p[34..36].copy_from_slice(&512u16.to_be_bytes());
    p[40..52].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
    p[52..].copy_from_slice(payload);
    let c = naive_checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    set_tcp_checksum(&mut p);
    p
}

/// Recomputes the TCP checksum of an IPv4 packet without options.
fn set_tcp_checksum(p: &mut [u8]) {
    p[36..38].fill(0);
    let len = ((p.len() - 20) as u16).to_be_bytes();
    let pseudo = [&p[12..20], &[0, 6], &len[..]].concat();
    let c = naive_checksum(&[&pseudo, &p[20..]]);
    p[36..38].copy_from_slice(&c.to_be_bytes());
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

fn split_all(hdr: &VnetHdr, packet: &mut [u8]) -> Result<Vec<Vec<u8>>, SplitError> {
    let mut seg = vec![0u8; 1500];
    let mut out = Vec::new();
    gso::split(hdr, packet, &mut seg, |s| out.push(s.to_vec()))?;
    Ok(out)
}

fn tso_hdr(gso_type: u8, mss: u16) -> VnetHdr {
    VnetHdr {
        flags: NEEDS_CSUM,
        gso_type,
        hdr_len: 52,
        gso_size: mss,
        csum_start: 20,
        csum_offset: 16,
    }
}

#[test]
fn tcp_super_packet_splits_into_valid_segments() {
    let data = payload(10_000);
    // The kernel leaves a partial checksum in a super-packet; split must
    // not depend on it.
    let mut sp = tcp4(1_000_000, 77, 0x18 | 0x01, &data);
    sp[36..38].copy_from_slice(&[0xde, 0xad]);
    let segs = split_all(&tso_hdr(GSO_TCPV4, 1400), &mut sp).expect("split");
    assert_eq!(segs.len(), 8); // 7 × 1400 + 200
    let mut rebuilt = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let last = i == segs.len() - 1;
        assert_eq!(usize::from(be16(s, 2)), s.len());
        assert_eq!(be16(s, 4), 0x1234 + i as u16, "IP id increments");
        assert_eq!(be32(s, 24), 1_000_000 + 1400 * i as u32);
        assert_eq!(be32(s, 28), 77);
        assert_eq!(s[33] & 0x09 != 0, last, "FIN and PSH only on the last");
        assert!(ipv4_ok(s), "segment {i} IPv4 checksum");
        assert!(l4_ok(s, 6), "segment {i} TCP checksum");
        assert_eq!(s[40..52], sp[40..52], "options copied");
        assert_eq!(s.len(), 52 + if last { 200 } else { 1400 });
        rebuilt.extend_from_slice(&s[52..]);
    }
    assert_eq!(rebuilt, data);
}

#[test]
fn udp_super_packet_splits_with_udp_lengths() {
    let data = payload(3000);
    let mut p = vec![0u8; 28 + data.len()];
    p[0] = 0x45;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&SRC);
    p[16..20].copy_from_slice(&DST);
    p[20..22].copy_from_slice(&443u16.to_be_bytes());
    p[22..24].copy_from_slice(&443u16.to_be_bytes());
    p[28..].copy_from_slice(&data);
    let hdr = VnetHdr {
        gso_type: GSO_UDP_L4,
        csum_offset: 6,
        hdr_len: 28,
        ..tso_hdr(GSO_UDP_L4, 1200)
    };
    let segs = split_all(&hdr, &mut p).expect("split");
    assert_eq!(
        segs.iter().map(Vec::len).collect::<Vec<_>>(),
        [1228, 1228, 628]
    );
    for s in &segs {
        assert_eq!(usize::from(be16(s, 24)), s.len() - 20, "UDP length");
        assert!(ipv4_ok(s) && l4_ok(s, 17));
    }
}

#[test]
fn tcp6_super_packet_splits() {
    let data = payload(2500);
    let mut p = vec![0u8; 40 + 20 + data.len()];
    p[0] = 0x60;
    p[6] = 6;
    p[7] = 64;
    p[8..24].copy_from_slice(&[0xfd; 16]);
    p[24..40].copy_from_slice(&[0xfe; 16]);
    p[52] = 5 << 4;
    p[53] = 0x10;
    p[60..].copy_from_slice(&data);
    let hdr = VnetHdr {
        csum_start: 40,
        ..tso_hdr(GSO_TCPV6, 1000)
    };
    let segs = split_all(&hdr, &mut p).expect("split");
    assert_eq!(segs.len(), 3);
    for s in &segs {
        assert_eq!(usize::from(be16(s, 4)), s.len() - 40, "payload length");
        let l4 = &s[40..];
        let len = (l4.len() as u32).to_be_bytes();
        let pseudo = [&s[8..40], &len[..], &[0, 0, 0, 6]].concat();
        assert_eq!(naive_checksum(&[&pseudo, l4]), 0);
    }
}

#[test]
fn partial_checksum_of_a_single_packet_is_completed() {
    let mut p = tcp4(5, 6, 0x18, &payload(300));
    let good = p.clone();
    // What the kernel leaves: the pseudo-header sum, not complemented.
    let len = ((p.len() - 20) as u16).to_be_bytes();
    let pseudo = [&p[12..20], &[0, 6], &len[..]].concat();
    let partial = !naive_checksum(&[&pseudo]);
    p[36..38].copy_from_slice(&partial.to_be_bytes());
    let hdr = VnetHdr {
        gso_type: GSO_NONE,
        gso_size: 0,
        ..tso_hdr(GSO_NONE, 0)
    };
    let segs = split_all(&hdr, &mut p).expect("split");
    assert_eq!(segs, vec![good]);
}

#[test]
fn malformed_super_packets_are_errors() {
    let mut p = tcp4(1, 1, 0x10, &payload(3000));
    let mut short = p[..30].to_vec();
    assert_eq!(
        split_all(&tso_hdr(GSO_TCPV4, 1000), &mut short),
        Err(SplitError::BadTransport)
    );
    assert_eq!(
        split_all(&tso_hdr(GSO_TCPV4, 0), &mut p),
        Err(SplitError::ZeroSegment)
    );
    assert_eq!(
        split_all(&tso_hdr(GSO_TCPV6, 1000), &mut p),
        Err(SplitError::BadIp(GSO_TCPV6))
    );
    assert_eq!(
        split_all(&tso_hdr(3, 1000), &mut p),
        Err(SplitError::Unsupported(3))
    );
    assert_eq!(
        split_all(&tso_hdr(GSO_TCPV4, 1490), &mut p),
        Err(SplitError::TooLong(1542))
    );
    let far = VnetHdr {
        csum_start: 4000,
        ..VnetHdr::default()
    };
    let far = VnetHdr {
        flags: NEEDS_CSUM,
        ..far
    };
    assert_eq!(split_all(&far, &mut p), Err(SplitError::BadChecksumOffsets));
    assert_eq!(
        split_all(&tso_hdr(GSO_TCPV4, 1000), &mut []),
        Err(SplitError::BadIp(GSO_TCPV4))
    );
}

fn run_gro(packets: &[Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
    let mut c = Coalescer::new(8);
    let mut out = Vec::new();
    let mut write = |f: &[u8]| {
        out.push((
            VnetHdr::parse(f).expect("header"),
            f[VNET_HDR_LEN..].to_vec(),
        ));
    };
    for p in packets {
        let mut frame = vec![0xaa; VNET_HDR_LEN];
        frame.extend_from_slice(p);
        c.push(&mut frame, &mut write);
    }
    c.flush(&mut write);
    assert_eq!(c.stats().packets_in, packets.len() as u64);
    out
}

#[test]
fn in_order_segments_merge_and_split_back() {
    let data = payload(1400 * 5 + 100);
    let mut sp = tcp4(9_000, 1, 0x18, &data);
    let segs = split_all(&tso_hdr(GSO_TCPV4, 1400), &mut sp).expect("split");
    let out = run_gro(&segs);
    assert_eq!(out.len(), 1);
    let (hdr, merged) = &out[0];
    assert_eq!(hdr.flags, NEEDS_CSUM);
    assert_eq!(hdr.gso_type, GSO_TCPV4);
    assert_eq!(
        (hdr.gso_size, hdr.csum_start, hdr.csum_offset, hdr.hdr_len),
        (1400, 20, 16, 52)
    );
    assert_eq!(usize::from(be16(merged, 2)), merged.len());
    assert!(ipv4_ok(merged));
    assert_eq!(be32(merged, 24), 9_000);
    assert_eq!(merged[33], 0x18, "PSH of the last segment kept");
    assert_eq!(&merged[52..], &data[..]);
    // The field holds the pseudo-header sum: adding the segment makes the
    // full checksum, which the kernel would compute when it needs one.
    let mut full = merged.clone();
    full[36..38].fill(0);
    let len = ((full.len() - 20) as u16).to_be_bytes();
    let pseudo = [&full[12..20], &[0, 6], &len[..]].concat();
    assert_eq!(!naive_checksum(&[&pseudo]), be16(merged, 36));
    // And the kernel's GSO would cut it back into the same segments.
    let mut again = merged.clone();
    let back = split_all(hdr, &mut again).expect("split");
    assert_eq!(back.len(), segs.len());
    for (a, b) in back.iter().zip(&segs) {
        assert_eq!(a[20..], b[20..]);
    }
}

#[test]
fn what_must_stay_apart_stays_apart() {
    let p = |seq: u32, flags: u8, n: usize| tcp4(seq, 1, flags, &payload(n));
    // A gap, then a SYN-less FIN, then a short segment ending the flow.
    let packets = vec![
        p(0, 0x10, 1000),
        p(1000, 0x10, 1000),
        p(5000, 0x10, 1000), // gap: new flow start
        p(6000, 0x11, 10),   // FIN: never merged, flushes first
        p(7000, 0x10, 500),
        p(7500, 0x10, 1000), // longer than the first: starts anew
    ];
    let out = run_gro(&packets);
    let shape: Vec<(u8, u32, usize)> = out
        .iter()
        .map(|(h, p)| (h.gso_type, be32(p, 24), p.len() - 52))
        .collect();
    assert_eq!(
        shape,
        [
            (GSO_TCPV4, 0, 2000),
            (GSO_NONE, 5000, 1000),
            (GSO_NONE, 6000, 10),
            (GSO_NONE, 7000, 500),
            (GSO_NONE, 7500, 1000),
        ]
    );
    // Single packets go out byte for byte, with an empty header.
    assert_eq!(out[2].0, VnetHdr::default());
    assert_eq!(out[2].1, packets[3]);
}

#[test]
fn bad_checksums_and_odd_packets_pass_through_unmerged() {
    let a = tcp4(0, 1, 0x10, &payload(1000));
    let mut b = tcp4(1000, 1, 0x10, &payload(1000));
    b[60] ^= 1; // corrupt payload: TCP checksum fails
    let c = tcp4(2000, 1, 0x10, &payload(1000));
    let out = run_gro(&[a.clone(), b.clone(), c.clone(), vec![0x45, 0], vec![]]);
    let bodies: Vec<&Vec<u8>> = out.iter().map(|(_, p)| p).collect();
    assert_eq!(bodies, [&a, &b, &c, &vec![0x45, 0], &vec![]]);
    assert!(out.iter().all(|(h, _)| *h == VnetHdr::default()));
}

#[test]
fn flows_interleave_and_options_must_match() {
    let mut other = tcp4(0, 1, 0x10, &payload(1000));
    other[22..24].copy_from_slice(&5202u16.to_be_bytes());
    set_tcp_checksum(&mut other);

    let a1 = tcp4(0, 1, 0x10, &payload(1000));
    let a2 = tcp4(1000, 1, 0x10, &payload(1000));
    let mut a3 = tcp4(2000, 1, 0x10, &payload(1000));
    // A different timestamp option: must not be merged.
    a3[51] = 10;
    set_tcp_checksum(&mut a3);

    let out = run_gro(&[a1, other, a2, a3]);
    let shape: Vec<(u8, u16, usize)> = out
        .iter()
        .map(|(h, p)| (h.gso_type, be16(p, 22), p.len() - 52))
        .collect();
    assert_eq!(
        shape,
        [
            (GSO_TCPV4, 5201, 2000),
            (GSO_NONE, 5202, 1000),
            (GSO_NONE, 5201, 1000)
        ]
    );
}
