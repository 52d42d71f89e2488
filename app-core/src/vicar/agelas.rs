//! Agelas: nyfe's authenticated Keccak-f[1600] duplex cipher (files.md §9).
//!
//! The sponge has rate 136 and no padding byte: every absorb XORs one full
//! 136-byte block and permutes, every squeeze reads the leading bytes of the
//! state without permuting. Data is processed in 128-byte blocks; the last
//! 8 bytes of each absorbed block carry a 56-bit block counter and a domain
//! byte. The keystream block `S` is refreshed lazily, when the byte after a
//! full block arrives, so encryption calls can be split anywhere and give
//! the same bytes.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::sponge::{Block, Keccak1600, RATE, block_from_bytes};
use crate::secret::Secret;

/// Length of an Agelas key.
pub const KEY_LEN: usize = 64;
/// Length of an Agelas tag.
pub const TAG_LEN: usize = 32;
/// Longest input of one [`Agelas::aad`] call.
pub const MAX_AAD_LEN: usize = 130;

/// Bytes of keystream used per block (the rest holds counter and domain).
const XOR_RATE: usize = 128;
/// Domain byte of the first key half.
const DOMAIN_K1: u8 = 0x01;
/// Domain byte of the second key half (absorbed before the tag).
const DOMAIN_K2: u8 = 0x03;
/// Domain byte of a data block.
const DOMAIN_DATA: u8 = 0x07;
/// Domain byte of an AAD block.
const DOMAIN_AAD: u8 = 0x0f;
/// Domain byte of the length blocks.
const DOMAIN_LENGTH: u8 = 0x1f;
/// Domain byte of the final state block.
const DOMAIN_TAG: u8 = 0x3f;

/// An [`Agelas::aad`] input longer than [`MAX_AAD_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Agelas AAD of {len} bytes is over the {MAX_AAD_LEN}-byte limit")]
pub struct AadTooLong {
    /// The rejected length.
    pub len: usize,
}

/// One Agelas encryption or decryption context. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Agelas {
    sponge: Keccak1600,
    /// The current keystream/state block `S`, as little-endian lanes.
    s: Block,
    /// The padded second key half, absorbed before squeezing the tag.
    k2: Block,
    /// Position in `S` of the next data byte (0..=128).
    off: usize,
    counter: u64,
    alen: u64,
    clen: u64,
}

impl core::fmt::Debug for Agelas {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Agelas(redacted)")
    }
}

/// `bytepad` of nyfe's Agelas: `01 88 01 len(x) x 00..` over 136 bytes, with
/// the last byte set to `domain`. `x` is at most 131 bytes in every caller.
fn pad(x: &[u8], domain: u8) -> Block {
    let mut b = [0u8; RATE];
    b[0] = 0x01;
    b[1] = RATE as u8;
    b[2] = 0x01;
    b[3] = x.len() as u8;
    if let Some(dst) = b.get_mut(4..4 + x.len()) {
        dst.copy_from_slice(x);
    }
    b[RATE - 1] = domain;
    let block = block_from_bytes(&b);
    b.zeroize();
    block
}

/// The padded key half: `pad(0x20 || half)`.
fn pad_key_half(half: &[u8], domain: u8) -> Block {
    let mut x = [0u8; 33];
    x[0] = 0x20;
    if let Some(dst) = x.get_mut(1..1 + half.len()) {
        dst.copy_from_slice(half);
    }
    let block = pad(&x, domain);
    x.zeroize();
    block
}

/// Reads 8 bytes as a little-endian lane.
fn lane_of(chunk: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(chunk);
    u64::from_le_bytes(b)
}

impl Agelas {
    /// A context keyed with the 64-byte `key`.
    pub fn new(key: &Secret<KEY_LEN>) -> Self {
        let (k1, k2) = key.expose().split_at(KEY_LEN / 2);
        let mut sponge = Keccak1600::new();
        let mut block = pad_key_half(k1, DOMAIN_K1);
        sponge.absorb_block(&block);
        block.zeroize();
        let s = sponge.rate_lanes();
        Self {
            sponge,
            s,
            k2: pad_key_half(k2, DOMAIN_K2),
            off: 0,
            counter: 0,
            alen: 0,
            clen: 0,
        }
    }

    /// Absorbs `S` (with counter and domain in its last 8 bytes) and
    /// squeezes the next `S`.
    fn advance(&mut self, domain: u8) {
        let c = self.counter.to_be_bytes();
        self.s[RATE / 8 - 1] =
            u64::from_le_bytes([c[1], c[2], c[3], c[4], c[5], c[6], c[7], domain]);
        self.sponge.absorb_block(&self.s);
        self.s = self.sponge.rate_lanes();
        self.off = 0;
        self.counter = self.counter.wrapping_add(1);
    }

    /// Adds associated data (at most [`MAX_AAD_LEN`] bytes per call).
    pub fn aad(&mut self, data: &[u8]) -> Result<(), AadTooLong> {
        if data.len() > MAX_AAD_LEN {
            return Err(AadTooLong { len: data.len() });
        }
        let mut block = pad(data, DOMAIN_AAD);
        self.sponge.absorb_block(&block);
        block.zeroize();
        self.alen = self.alen.wrapping_add(data.len() as u64);
        Ok(())
    }

    /// Encrypts `buf` in place.
    pub fn encrypt(&mut self, buf: &mut [u8]) {
        self.process(buf, false);
    }

    /// Decrypts `buf` in place.
    pub fn decrypt(&mut self, buf: &mut [u8]) {
        self.process(buf, true);
    }

    /// The duplex: output `in ^ S[off]`, then `S[off] = plaintext`.
    fn process(&mut self, buf: &mut [u8], decrypt: bool) {
        let len = buf.len();
        let mut rest = buf;
        while !rest.is_empty() {
            if self.off == XOR_RATE {
                self.advance(DOMAIN_DATA);
            }
            if self.off.is_multiple_of(8) && rest.len() >= 8 {
                // Whole lanes up to the end of this block.
                let lanes = ((XOR_RATE - self.off) / 8).min(rest.len() / 8);
                let (now, tail) = core::mem::take(&mut rest).split_at_mut(lanes * 8);
                let state = self.s.iter_mut().skip(self.off / 8);
                for (chunk, s) in now.chunks_exact_mut(8).zip(state) {
                    let input = lane_of(chunk);
                    let output = input ^ *s;
                    *s = if decrypt { output } else { input };
                    chunk.copy_from_slice(&output.to_le_bytes());
                }
                self.off += lanes * 8;
                rest = tail;
            } else {
                let (first, tail) = core::mem::take(&mut rest).split_at_mut(1);
                let shift = 8 * (self.off % 8);
                if let (Some(b), Some(s)) = (first.first_mut(), self.s.get_mut(self.off / 8)) {
                    let input = *b;
                    let output = input ^ (*s >> shift) as u8;
                    let plain = if decrypt { output } else { input };
                    *s = (*s & !(0xffu64 << shift)) | (u64::from(plain) << shift);
                    *b = output;
                }
                self.off += 1;
                rest = tail;
            }
        }
        self.clen = self.clen.wrapping_add(len as u64);
    }

    /// Finishes and returns the 32-byte tag.
    pub fn tag(mut self) -> [u8; TAG_LEN] {
        let alen = pad(&self.alen.to_be_bytes(), DOMAIN_LENGTH);
        self.sponge.absorb_block(&alen);
        let clen = pad(&self.clen.to_be_bytes(), DOMAIN_LENGTH);
        self.sponge.absorb_block(&clen);
        self.advance(DOMAIN_TAG);
        let k2 = self.k2;
        self.sponge.absorb_block(&k2);
        let mut tag = [0u8; TAG_LEN];
        self.sponge.read_bytes(&mut tag);
        tag
    }

    /// Finishes and compares the tag with `expected` in constant time.
    pub fn verify(self, expected: &[u8; TAG_LEN]) -> bool {
        let mut tag = self.tag();
        let ok = tag.ct_eq(expected).into();
        tag.zeroize();
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_default())
            .collect()
    }

    fn kat_key() -> Secret<KEY_LEN> {
        Secret::new(core::array::from_fn(|i| i as u8))
    }

    /// Produced by nyfe's agelas.c (key 00..3f, AAD "abc" then 130 x aa,
    /// plaintext 00..ff 00..2b encrypted as 100 + 200 bytes).
    const KAT_CT: &str = "9ac02c02c65f8786578a0556d0d343eb5e73222b6216ad9a643d1dd0862d0f2732123851837b36660f398b0b348aafc8ab7049c0c2088d3ebbe51b5afad082215fa2ad1f8ce96c83b9607585891501ed156e84b8ffdf827a1175645d3e6a3d62de3f9593e09ff55865aea397da230bbabd94e37b33ff0352bbcf079c60b34b99af58857a97c04d6336b5a319086ea238628051a4405cc467cfe7a7699cec851427a50d1107ffae3bd976f1506f0062e7e24c01c2714db6112194080f06e0115079efcf90077f0962f209262e5858fe693031049e44a1751f84d48277dd243a82a442121f4d3bf7f9fd59f16f7fe4ca0f3b18bcdb3180f2a74ba6b3e5d1e811a64aa5a3b0f378f99f8fe921b796ca15a6a27495ba3a1eaf2d4e7fdb999058897cf1111ce800022a3879540e3e";
    const KAT_TAG: &str = "7e7f7e72deeabde78f3c3d66f67f3f6f5402475ac5c1695e72ac24573530f0c1";

    fn kat_plain() -> Vec<u8> {
        (0..300u32).map(|i| i as u8).collect()
    }

    fn kat_context() -> Agelas {
        let mut a = Agelas::new(&kat_key());
        assert_eq!(a.aad(b"abc"), Ok(()));
        assert_eq!(a.aad(&[0xaa; 130]), Ok(()));
        a
    }

    #[test]
    fn reference_known_answer_any_split() {
        for split in [
            &[100usize, 200][..],
            &[300],
            &[1; 300],
            &[7, 121, 8, 164],
            &[128, 128, 44],
        ] {
            let mut a = kat_context();
            let mut buf = kat_plain();
            let mut at = 0;
            for &n in split {
                a.encrypt(&mut buf[at..at + n]);
                at += n;
            }
            assert_eq!(buf, unhex(KAT_CT), "split {split:?}");
            assert_eq!(a.tag().to_vec(), unhex(KAT_TAG), "split {split:?}");

            let mut d = kat_context();
            let mut at = 0;
            for &n in split {
                d.decrypt(&mut buf[at..at + n]);
                at += n;
            }
            assert_eq!(buf, kat_plain());
            let tag: [u8; 32] = unhex(KAT_TAG).try_into().unwrap_or([0; 32]);
            assert!(d.verify(&tag));
        }
    }

    #[test]
    fn tampering_changes_the_tag() {
        let tag: [u8; 32] = unhex(KAT_TAG).try_into().unwrap_or([0; 32]);
        let mut ct = unhex(KAT_CT);
        ct[299] ^= 0x01;
        let mut d = kat_context();
        d.decrypt(&mut ct);
        assert!(!d.verify(&tag));

        let mut ct = unhex(KAT_CT);
        let mut d = Agelas::new(&kat_key());
        assert_eq!(d.aad(b"abd"), Ok(()));
        assert_eq!(d.aad(&[0xaa; 130]), Ok(()));
        d.decrypt(&mut ct);
        assert!(!d.verify(&tag));
    }

    #[test]
    fn aad_limit() {
        let mut a = Agelas::new(&kat_key());
        assert_eq!(a.aad(&[0u8; 131]), Err(AadTooLong { len: 131 }));
        assert_eq!(a.aad(&[]), Ok(()));
        assert_eq!(format!("{a:?}"), "Agelas(redacted)");
    }
}
