//! The Internet checksum (RFC 1071) over IPv4/IPv6 pseudo-headers and
//! packet bytes.

/// Adds `data` as big-endian 16-bit words (an odd last byte is the high
/// half of a word) to a running one's-complement sum. Sums of several
/// pieces add up as long as every piece but the last has an even length.
pub fn sum(data: &[u8], initial: u64) -> u64 {
    let mut acc = initial;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc + u64::from(u32::from_be_bytes(tail))
}

/// Folds a running sum to 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The finished checksum of a running sum: folded and complemented.
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// The pseudo-header sum of an IPv4 transport segment of `len` bytes.
pub fn pseudo_v4(src: &[u8; 4], dst: &[u8; 4], proto: u8, len: u16) -> u64 {
    sum(src, 0) + sum(dst, 0) + u64::from(proto) + u64::from(len)
}

/// The pseudo-header sum of an IPv6 transport segment of `len` bytes.
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], proto: u8, len: u32) -> u64 {
    sum(src, 0) + sum(dst, 0) + u64::from(proto) + u64::from(len)
}

/// Whether an IPv4 header (options included) carries a correct checksum.
pub fn ipv4_header_ok(header: &[u8]) -> bool {
    fold(sum(header, 0)) == 0xffff
}

/// Recomputes the checksum of an IPv4 header in place. Does nothing to a
/// slice shorter than 20 bytes.
pub fn set_ipv4_header(header: &mut [u8]) {
    if header.len() < 20 {
        return;
    }
    header[10..12].fill(0);
    let c = finish(sum(header, 0));
    header[10..12].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to
    /// ddf2 (folded).
    #[test]
    fn rfc1071_example() {
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(finish(sum(&d, 0)), !0xddf2);
        // Split at an even offset, the pieces add up.
        assert_eq!(fold(sum(&d[4..], sum(&d[..4], 0))), 0xddf2);
        // Odd tail: the last byte is a high half.
        assert_eq!(fold(sum(&[0x01, 0x02, 0x03], 0)), 0x0402);
    }

    /// A real IPv4 header (the classic example from Wikipedia's checksum
    /// article): checksum b861.
    #[test]
    fn ipv4_header_known_answer() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(!ipv4_header_ok(&h));
        set_ipv4_header(&mut h);
        assert_eq!(&h[10..12], &[0xb8, 0x61]);
        assert!(ipv4_header_ok(&h));
    }
}
