//! The encrypted data packet (wire.md §3).
//!
//! ```text
//! 0        4        8                16          24          32
//! | spi    | seq    | pn             | flock_src | flock_dst | payload (n) | 0x00 | next | tag (16) |
//! |<------------- header: plaintext, AAD, BE ---------------->|<---- ciphertext ---->|
//! ```
//!
//! Everything here works in place in a caller's buffer so that the packet
//! path allocates nothing: the caller reads the payload into
//! `buf[PAYLOAD_OFFSET..]`, [`seal_in_place`] writes the header in front of
//! it and the padding, tail and tag behind it. On receipt
//! [`open_in_place`] decrypts `packet[PAYLOAD_OFFSET..len - TAG_LEN]` where
//! it lies.
//!
//! The security association logic (which key, anti-replay, lifetimes) is in
//! [`crate::sa`]; this module is only the packet format and its crypto.

use core::ops::Range;

use crate::aead::{self, Cipher, NONCE_LEN};

/// Length of the plaintext header (spi, seq, pn, flock_src, flock_dst).
pub const HEADER_LEN: usize = 32;
/// Length of the encrypted tail (`reserved`, `next`).
pub const TAIL_LEN: usize = 2;
/// Length of the GCM tag.
pub const TAG_LEN: usize = aead::TAG_LEN;
/// Bytes a data packet adds to its payload: header + tail + tag = 50.
pub const OVERHEAD: usize = HEADER_LEN + TAIL_LEN + TAG_LEN;
/// Shortest data packet a receiver accepts (an empty payload).
pub const MIN_PACKET_LEN: usize = OVERHEAD;
/// Where the payload starts in a packet (and in a buffer given to
/// [`seal_in_place`]).
pub const PAYLOAD_OFFSET: usize = HEADER_LEN;

/// The 4 salt bytes of an SA, exactly as they appeared on the wire in the
/// key exchange (never byte-swapped; crypto.md §9).
pub type Salt = [u8; 4];

/// What a data packet carries: the tail's `next` byte (wire.md §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Next {
    /// 0x00: user traffic (an IPv4 packet, or an Ethernet frame in tap mode).
    Traffic = 0x00,
    /// 0xFC: a grace (wire.md §4, [`crate::wire::grace`]).
    Grace = 0xFC,
}

impl Next {
    /// The byte on the wire.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// The `next` value for `byte`, if it is one sanctum defines.
    pub const fn from_u8(byte: u8) -> Option<Next> {
        match byte {
            0x00 => Some(Next::Traffic),
            0xFC => Some(Next::Grace),
            _ => None,
        }
    }
}

/// Why a received datagram is not a well-formed data packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Shorter than header + tail + tag.
    #[error("data packet of {len} bytes is shorter than the minimum of {MIN_PACKET_LEN}")]
    TooShort {
        /// Length of the datagram.
        len: usize,
    },
    /// SPI 0 is never valid (wire.md §1).
    #[error("data packet with SPI 0")]
    ZeroSpi,
    /// `seq` is not the low 32 bits of `pn`.
    #[error("data packet seq {seq:#010x} is not the low half of pn {pn:#x}")]
    SeqMismatch {
        /// The `seq` field.
        seq: u32,
        /// The `pn` field.
        pn: u64,
    },
}

/// The 32-byte plaintext header of a data packet. `seq` is not stored: it
/// is always the low 32 bits of `pn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The receiver's SPI for this SA.
    pub spi: u32,
    /// Packet number (nonce counter), from 1.
    pub pn: u64,
    /// Sender's `cathedral_flock` (0 without a cathedral).
    pub flock_src: u64,
    /// Sender's `cathedral_flock_dst` (0 without a cathedral).
    pub flock_dst: u64,
}

impl Header {
    /// The `seq` field: the low 32 bits of `pn`.
    pub const fn seq(&self) -> u32 {
        // Truncation is the definition of seq.
        (self.pn & 0xFFFF_FFFF) as u32
    }

    /// The header as it goes on the wire (also the AAD).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        self.write(&mut out);
        out
    }

    /// Writes the header into `out`.
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0..4].copy_from_slice(&self.spi.to_be_bytes());
        out[4..8].copy_from_slice(&self.seq().to_be_bytes());
        out[8..16].copy_from_slice(&self.pn.to_be_bytes());
        out[16..24].copy_from_slice(&self.flock_src.to_be_bytes());
        out[24..32].copy_from_slice(&self.flock_dst.to_be_bytes());
    }

    /// Parses the header of a received datagram (after unshrouding and
    /// classification). Checks the length (>= [`MIN_PACKET_LEN`]), that
    /// the SPI is not 0 and that `seq == pn & 0xFFFFFFFF`.
    pub fn parse(packet: &[u8]) -> Result<Header, HeaderError> {
        if packet.len() < MIN_PACKET_LEN {
            return Err(HeaderError::TooShort { len: packet.len() });
        }
        let spi = be32(packet, 0);
        let seq = be32(packet, 4);
        let pn = be64(packet, 8);
        let header = Header {
            spi,
            pn,
            flock_src: be64(packet, 16),
            flock_dst: be64(packet, 24),
        };
        if spi == 0 {
            return Err(HeaderError::ZeroSpi);
        }
        if header.seq() != seq {
            return Err(HeaderError::SeqMismatch { seq, pn });
        }
        Ok(header)
    }

    /// The GCM nonce of this packet under an SA with `salt`.
    pub fn nonce(&self, salt: &Salt) -> [u8; NONCE_LEN] {
        nonce(salt, self.pn)
    }
}

/// Reads a BE u32 at `at`; the caller has checked the length.
fn be32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_be_bytes(w)
}

/// Reads a BE u64 at `at`; the caller has checked the length.
fn be64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        w.copy_from_slice(s);
    }
    u64::from_be_bytes(w)
}

/// The data packet nonce: `salt[4] || BE64(pn)` (wire.md §3.2).
pub fn nonce(salt: &Salt, pn: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(&pn.to_be_bytes());
    n
}

/// The local settings data packets are built and checked with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataConfig {
    /// Our `cathedral_flock` (0 without a cathedral); sent as `flock_src`.
    pub flock_src: u64,
    /// Our `cathedral_flock_dst` (0 without a cathedral); sent as
    /// `flock_dst`.
    pub flock_dst: u64,
    /// `Some(tun_mtu)` when `tfc on`: payloads are padded to it on send and
    /// traffic is trimmed (and checked against it) on receipt (§3.5).
    pub tfc_mtu: Option<usize>,
}

impl DataConfig {
    /// The header we send with `spi` and `pn`.
    pub fn header(&self, spi: u32, pn: u64) -> Header {
        Header {
            spi,
            pn,
            flock_src: self.flock_src,
            flock_dst: self.flock_dst,
        }
    }

    /// The receiver's flock check (wire.md §3.3): the sender's source flock
    /// must be our destination flock and vice versa.
    pub fn flocks_match(&self, header: &Header) -> bool {
        header.flock_src == self.flock_dst && header.flock_dst == self.flock_src
    }
}

/// Length of the payload after TFC padding to `tfc_mtu` (§3.5): payloads
/// shorter than the MTU are padded up to it, longer ones are untouched.
pub fn padded_len(payload_len: usize, tfc_mtu: Option<usize>) -> usize {
    match tfc_mtu {
        Some(mtu) if payload_len < mtu => mtu,
        _ => payload_len,
    }
}

/// Length of the sealed packet for a payload of `payload_len` bytes, i.e.
/// the buffer size [`seal_in_place`] needs. `None` on overflow.
pub fn sealed_len(payload_len: usize, tfc_mtu: Option<usize>) -> Option<usize> {
    padded_len(payload_len, tfc_mtu).checked_add(OVERHEAD)
}

/// Why a packet could not be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The buffer cannot hold header, (padded) payload, tail and tag.
    #[error("buffer of {have} bytes is too small for a {need}-byte data packet")]
    BufferTooSmall {
        /// Bytes the sealed packet needs.
        need: usize,
        /// Length of the buffer.
        have: usize,
    },
}

/// Seals a data packet in place.
///
/// On entry `buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + payload_len]` holds the
/// payload; `buf` must be at least [`sealed_len`] long. Writes `header` in
/// front of it, the TFC padding (zeros up to `tfc_mtu`, §3.5), the tail
/// `{0x00, next}`, encrypts payload and tail and appends the tag. Returns
/// the length of the packet, `buf[..len]`. Bytes of `buf` beyond it are
/// untouched.
pub fn seal_in_place(
    cipher: &Cipher,
    salt: &Salt,
    header: &Header,
    next: Next,
    tfc_mtu: Option<usize>,
    buf: &mut [u8],
    payload_len: usize,
) -> Result<usize, SealError> {
    let padded = padded_len(payload_len, tfc_mtu);
    let have = buf.len();
    let need = padded
        .checked_add(OVERHEAD)
        .ok_or(SealError::BufferTooSmall {
            need: usize::MAX,
            have,
        })?;
    let Some(packet) = buf.get_mut(..need) else {
        return Err(SealError::BufferTooSmall { need, have });
    };
    let (head, rest) = packet.split_at_mut(HEADER_LEN);
    let (body, tag) = rest.split_at_mut(padded + TAIL_LEN);
    if let Some(pad) = body.get_mut(payload_len..padded) {
        pad.fill(0);
    }
    body[padded] = 0;
    body[padded + 1] = next.to_u8();
    let head: &mut [u8; HEADER_LEN] = head
        .try_into()
        .unwrap_or_else(|_| unreachable!("split at HEADER_LEN"));
    header.write(head);
    let t = cipher.seal(&header.nonce(salt), head, body);
    tag.copy_from_slice(&t);
    Ok(need)
}

/// The decrypted tail of a packet, not yet validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    /// Must be 0x00.
    pub reserved: u8,
    /// The `next` byte.
    pub next: u8,
}

/// Why a decrypted tail is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    /// `reserved` is not 0x00.
    #[error("tail reserved byte is {0:#04x}, not 0")]
    Reserved(u8),
    /// `next` is neither traffic (0x00) nor grace (0xFC).
    #[error("unknown next value {0:#04x}")]
    UnknownNext(u8),
}

impl Tail {
    /// Checks `reserved == 0` and a known `next` (wire.md §3.3).
    pub fn next(self) -> Result<Next, TailError> {
        if self.reserved != 0 {
            return Err(TailError::Reserved(self.reserved));
        }
        Next::from_u8(self.next).ok_or(TailError::UnknownNext(self.next))
    }
}

/// Why a packet could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Shorter than header + tail + tag.
    #[error("data packet of {len} bytes is shorter than the minimum of {MIN_PACKET_LEN}")]
    TooShort {
        /// Length of the packet.
        len: usize,
    },
    /// The tag did not verify (wrong key or altered bytes). The ciphertext
    /// may have been overwritten.
    #[error("data packet authentication failed")]
    Auth,
}

/// Opens a data packet in place: decrypts `packet[PAYLOAD_OFFSET..len -
/// TAG_LEN]` under `cipher` with the nonce of `header.pn`, the packet's
/// own first 32 bytes as AAD. On success the payload is
/// `packet[payload_range(packet.len())]` and the (unchecked) tail is
/// returned. On failure the body is either unchanged or zeroed (the
/// ciphertext is lost: copy it first to try another key).
///
/// `header` must be the result of [`Header::parse`] on this `packet`.
pub fn open_in_place(
    cipher: &Cipher,
    salt: &Salt,
    header: &Header,
    packet: &mut [u8],
) -> Result<Tail, OpenError> {
    let len = packet.len();
    if len < MIN_PACKET_LEN {
        return Err(OpenError::TooShort { len });
    }
    let (head, rest) = packet.split_at_mut(HEADER_LEN);
    let (body, tag) = rest.split_at_mut(len - HEADER_LEN - TAG_LEN);
    let tag: &[u8; TAG_LEN] = (&*tag)
        .try_into()
        .unwrap_or_else(|_| unreachable!("split at len - TAG_LEN"));
    cipher
        .open(&header.nonce(salt), head, body, tag)
        .map_err(|_| OpenError::Auth)?;
    let n = body.len();
    Ok(Tail {
        reserved: body[n - 2],
        next: body[n - 1],
    })
}

/// Where the payload of an opened packet of `packet_len` bytes lies
/// (before any TFC trim).
pub fn payload_range(packet_len: usize) -> Range<usize> {
    PAYLOAD_OFFSET
        ..packet_len
            .saturating_sub(TAIL_LEN + TAG_LEN)
            .max(PAYLOAD_OFFSET)
}

/// Why a TFC-padded traffic payload cannot be trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TfcError {
    /// Too short to hold an IPv4 total-length field.
    #[error("TFC payload of {len} bytes has no IPv4 total length")]
    TooShort {
        /// Decrypted payload length.
        len: usize,
    },
    /// The IPv4 total length exceeds what was decrypted.
    #[error("IPv4 total length {total} exceeds the {len} decrypted bytes")]
    BeyondPayload {
        /// IPv4 total-length field.
        total: usize,
        /// Decrypted payload length.
        len: usize,
    },
    /// The IPv4 total length exceeds our tunnel MTU.
    #[error("IPv4 total length {total} exceeds the tunnel MTU {tun_mtu}")]
    BeyondMtu {
        /// IPv4 total-length field.
        total: usize,
        /// Our tunnel MTU.
        tun_mtu: usize,
    },
}

/// The length a TFC-padded traffic payload is trimmed to (§3.5): its IPv4
/// total length (bytes 2..3, BE), which must be <= the decrypted length and
/// <= `tun_mtu`. Only for `next = 0x00`; graces are not trimmed.
pub fn tfc_trimmed_len(payload: &[u8], tun_mtu: usize) -> Result<usize, TfcError> {
    let len = payload.len();
    let Some(&[hi, lo]) = payload.get(2..4) else {
        return Err(TfcError::TooShort { len });
    };
    let total = usize::from(u16::from_be_bytes([hi, lo]));
    if total > len {
        return Err(TfcError::BeyondPayload { total, len });
    }
    if total > tun_mtu {
        return Err(TfcError::BeyondMtu { total, tun_mtu });
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::secret::Key32;

    fn cipher() -> Cipher {
        Cipher::new(&Key32::new([0x42; 32]))
    }

    const SALT: Salt = [1, 2, 3, 4];

    fn header(pn: u64) -> Header {
        Header {
            spi: 0xd27f_af46,
            pn,
            flock_src: 0xaaaa_aa01,
            flock_dst: 0xbbbb_bb02,
        }
    }

    #[test]
    fn header_layout_is_spi_seq_pn_flocks() {
        let h = Header {
            spi: 0x0102_0304,
            pn: 0x1_0000_0005,
            flock_src: 0x1112_1314_1516_1718,
            flock_dst: 0x2122_2324_2526_2728,
        };
        let b = h.to_bytes();
        assert_eq!(
            hex(&b),
            "0102030400000005000000010000000511121314151617182122232425262728"
        );
        let mut packet = b.to_vec();
        packet.resize(MIN_PACKET_LEN, 0);
        assert_eq!(Header::parse(&packet), Ok(h));
        assert_eq!(h.nonce(&SALT), [1, 2, 3, 4, 0, 0, 0, 1, 0, 0, 0, 5]);
    }

    #[test]
    fn header_parse_rejects() {
        let mut p = header(7).to_bytes().to_vec();
        p.resize(MIN_PACKET_LEN - 1, 0);
        assert_eq!(Header::parse(&p), Err(HeaderError::TooShort { len: 49 }));
        assert_eq!(Header::parse(&[]), Err(HeaderError::TooShort { len: 0 }));
        p.push(0);
        assert!(Header::parse(&p).is_ok());
        let mut z = p.clone();
        z[..4].fill(0);
        assert_eq!(Header::parse(&z), Err(HeaderError::ZeroSpi));
        let mut s = p.clone();
        s[7] = 8;
        assert_eq!(
            Header::parse(&s),
            Err(HeaderError::SeqMismatch { seq: 8, pn: 7 })
        );
    }

    #[test]
    fn next_values() {
        assert_eq!(Next::from_u8(0), Some(Next::Traffic));
        assert_eq!(Next::from_u8(0xfc), Some(Next::Grace));
        assert_eq!(Next::from_u8(4), None);
        assert_eq!(Next::Grace.to_u8(), 0xfc);
    }

    #[test]
    fn seal_open_roundtrip_in_place() {
        let c = cipher();
        let payload: Vec<u8> = (0..100u8).collect();
        let mut buf = vec![0xEEu8; 200];
        buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 100].copy_from_slice(&payload);
        let h = header(3);
        let len = seal_in_place(&c, &SALT, &h, Next::Traffic, None, &mut buf, 100).unwrap();
        assert_eq!(len, 150);
        assert_eq!(buf[..32], h.to_bytes());
        assert_ne!(buf[32..132], payload[..]);
        assert!(
            buf[150..].iter().all(|&b| b == 0xEE),
            "bytes beyond the packet untouched"
        );
        let packet = &mut buf[..len];
        let parsed = Header::parse(packet).unwrap();
        assert_eq!(parsed, h);
        let tail = open_in_place(&c, &SALT, &parsed, packet).unwrap();
        assert_eq!(
            tail,
            Tail {
                reserved: 0,
                next: 0
            }
        );
        assert_eq!(tail.next(), Ok(Next::Traffic));
        assert_eq!(payload_range(len), 32..132);
        assert_eq!(packet[payload_range(len)], payload[..]);
    }

    #[test]
    fn empty_payload_is_fifty_bytes() {
        let c = cipher();
        let mut buf = [0u8; MIN_PACKET_LEN];
        let len = seal_in_place(&c, &SALT, &header(1), Next::Grace, None, &mut buf, 0).unwrap();
        assert_eq!(len, 50);
        let h = Header::parse(&buf).unwrap();
        assert_eq!(
            open_in_place(&c, &SALT, &h, &mut buf).unwrap().next(),
            Ok(Next::Grace)
        );
        assert_eq!(payload_range(50), 32..32);
    }

    #[test]
    fn tfc_pads_with_zeros_to_mtu() {
        let c = cipher();
        let mut buf = vec![0xAAu8; 400];
        let len = seal_in_place(
            &c,
            &SALT,
            &header(1),
            Next::Traffic,
            Some(300),
            &mut buf,
            20,
        )
        .unwrap();
        assert_eq!(len, 350);
        let h = Header::parse(&buf[..len]).unwrap();
        open_in_place(&c, &SALT, &h, &mut buf[..len]).unwrap();
        assert!(buf[32..52].iter().all(|&b| b == 0xAA));
        assert!(buf[52..332].iter().all(|&b| b == 0), "padding is zeros");
        // Payloads already >= tun_mtu are untouched.
        assert_eq!(padded_len(300, Some(300)), 300);
        assert_eq!(padded_len(301, Some(300)), 301);
        assert_eq!(padded_len(20, None), 20);
        assert_eq!(sealed_len(20, Some(300)), Some(350));
        assert_eq!(sealed_len(usize::MAX, None), None);
    }

    #[test]
    fn seal_refuses_small_buffer() {
        let c = cipher();
        let mut buf = [0u8; 149];
        assert_eq!(
            seal_in_place(&c, &SALT, &header(1), Next::Traffic, None, &mut buf, 100),
            Err(SealError::BufferTooSmall {
                need: 150,
                have: 149
            })
        );
        assert_eq!(
            seal_in_place(
                &c,
                &SALT,
                &header(1),
                Next::Traffic,
                Some(1000),
                &mut buf,
                10
            ),
            Err(SealError::BufferTooSmall {
                need: 1050,
                have: 149
            })
        );
        assert!(matches!(
            seal_in_place(
                &c,
                &SALT,
                &header(1),
                Next::Traffic,
                None,
                &mut buf,
                usize::MAX
            ),
            Err(SealError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn open_detects_tampering_anywhere() {
        let c = cipher();
        let mut buf = [7u8; 80];
        let len = seal_in_place(&c, &SALT, &header(9), Next::Traffic, None, &mut buf, 30).unwrap();
        for i in 0..len {
            let mut p = buf;
            p[i] ^= 0x01;
            // A flipped header bit changes the parsed pn (nonce) or the AAD.
            let h = match Header::parse(&p[..len]) {
                Ok(h) => h,
                Err(_) => continue,
            };
            assert_eq!(
                open_in_place(&c, &SALT, &h, &mut p[..len]),
                Err(OpenError::Auth),
                "byte {i}"
            );
        }
        let h = Header::parse(&buf[..len]).unwrap();
        let mut p = buf;
        assert_eq!(
            open_in_place(&c, &[9, 9, 9, 9], &h, &mut p[..len]),
            Err(OpenError::Auth),
            "wrong salt"
        );
        assert_eq!(
            open_in_place(&c, &SALT, &h, &mut p[..49]),
            Err(OpenError::TooShort { len: 49 })
        );
    }

    #[test]
    fn tail_checks() {
        assert_eq!(
            Tail {
                reserved: 1,
                next: 0
            }
            .next(),
            Err(TailError::Reserved(1))
        );
        assert_eq!(
            Tail {
                reserved: 0,
                next: 4
            }
            .next(),
            Err(TailError::UnknownNext(4))
        );
        assert_eq!(
            Tail {
                reserved: 0,
                next: 0xfc
            }
            .next(),
            Ok(Next::Grace)
        );
    }

    #[test]
    fn tfc_trim() {
        let mut p = vec![0u8; 1300];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&84u16.to_be_bytes());
        assert_eq!(tfc_trimmed_len(&p, 1300), Ok(84));
        p[2..4].copy_from_slice(&1300u16.to_be_bytes());
        assert_eq!(tfc_trimmed_len(&p, 1300), Ok(1300));
        assert_eq!(
            tfc_trimmed_len(&p, 1299),
            Err(TfcError::BeyondMtu {
                total: 1300,
                tun_mtu: 1299
            })
        );
        assert_eq!(
            tfc_trimmed_len(&p[..1000], 1400),
            Err(TfcError::BeyondPayload {
                total: 1300,
                len: 1000
            })
        );
        assert_eq!(
            tfc_trimmed_len(&p[..3], 1400),
            Err(TfcError::TooShort { len: 3 })
        );
    }

    #[test]
    fn flock_check_is_crossed() {
        let cfg = DataConfig {
            flock_src: 0xA,
            flock_dst: 0xB,
            tfc_mtu: None,
        };
        let sent = cfg.header(5, 1);
        assert_eq!((sent.flock_src, sent.flock_dst), (0xA, 0xB));
        let peer = DataConfig {
            flock_src: 0xB,
            flock_dst: 0xA,
            tfc_mtu: None,
        };
        assert!(peer.flocks_match(&sent));
        assert!(!cfg.flocks_match(&sent));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
