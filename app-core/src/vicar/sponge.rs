//! A Keccak-f[1600] sponge of rate 136 (capacity 512), the building block of
//! Agelas and of the SHAKE256 that nyfe's passphrase KDF uses.
//!
//! The permutation comes from the `keccak` crate; this module only adds the
//! byte/lane bookkeeping, with lane-at-a-time fast paths (the KDF pushes a
//! few hundred MiB through here) and wiping of every state on drop.

use keccak::Keccak;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Sponge rate in bytes (Keccak[c=512]).
pub(crate) const RATE: usize = 136;
/// Sponge rate in 64-bit lanes.
pub(crate) const RATE_LANES: usize = RATE / 8;

/// One rate-sized block as little-endian lanes.
pub(crate) type Block = [u64; RATE_LANES];

/// The bare Keccak-f[1600] state with whole-block absorb, as nyfe's
/// `keccak1600_absorb`/`squeeze` use it: absorbing XORs a full block and
/// permutes; reading returns the state's leading lanes without permuting.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Keccak1600 {
    state: [u64; 25],
    #[zeroize(skip)]
    keccak: Keccak,
}

impl Keccak1600 {
    /// The all-zero state.
    pub(crate) fn new() -> Self {
        Self {
            state: [0u64; 25],
            keccak: Keccak::new(),
        }
    }

    /// Applies Keccak-f[1600] to the state.
    pub(crate) fn permute(&mut self) {
        let state = &mut self.state;
        self.keccak.with_f1600(|f| f(state));
    }

    /// XORs one full block into the rate part and permutes.
    pub(crate) fn absorb_block(&mut self, block: &Block) {
        for (s, b) in self.state.iter_mut().zip(block.iter()) {
            *s ^= *b;
        }
        self.permute();
    }

    /// The rate part of the state (what a squeeze reads), as lanes.
    pub(crate) fn rate_lanes(&self) -> Block {
        let mut out = [0u64; RATE_LANES];
        out.copy_from_slice(&self.state[..RATE_LANES]);
        out
    }

    /// Copies the first `out.len()` bytes of the rate part (at most 136)
    /// into `out`, without permuting.
    pub(crate) fn read_bytes(&self, out: &mut [u8]) {
        for (chunk, lane) in out.chunks_mut(8).zip(self.state.iter()) {
            let bytes = lane.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// XORs `data` into the state starting at byte `pos` of the rate part.
    /// The caller keeps `pos + data.len() <= RATE`.
    fn xor_bytes(&mut self, pos: usize, data: &[u8]) {
        let mut pos = pos;
        let mut data = data;
        while !data.is_empty() {
            if pos.is_multiple_of(8) && data.len() >= 8 {
                let (lane, rest) = data.split_at(8);
                let mut b = [0u8; 8];
                b.copy_from_slice(lane);
                if let Some(s) = self.state.get_mut(pos / 8) {
                    *s ^= u64::from_le_bytes(b);
                }
                data = rest;
                pos += 8;
            } else if let Some((&first, rest)) = data.split_first() {
                if let Some(s) = self.state.get_mut(pos / 8) {
                    *s ^= u64::from(first) << (8 * (pos % 8));
                }
                data = rest;
                pos += 1;
            }
        }
    }
}

/// Builds a 136-byte block from raw bytes (little-endian lanes).
pub(crate) fn block_from_bytes(bytes: &[u8; RATE]) -> Block {
    let mut out = [0u64; RATE_LANES];
    for (lane, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *lane = u64::from_le_bytes(b);
    }
    out
}

/// SHAKE256 (FIPS 202): Keccak[c=512] with the `0x1F` domain padding.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Shake256 {
    sponge: Keccak1600,
    pos: usize,
}

impl Shake256 {
    /// A fresh SHAKE256 instance.
    pub(crate) fn new() -> Self {
        Self {
            sponge: Keccak1600::new(),
            pos: 0,
        }
    }

    /// Absorbs more input.
    pub(crate) fn update(&mut self, data: &[u8]) {
        let mut data = data;
        while !data.is_empty() {
            let room = RATE - self.pos;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.sponge.xor_bytes(self.pos, now);
            self.pos += now.len();
            if self.pos == RATE {
                self.sponge.permute();
                self.pos = 0;
            }
            data = rest;
        }
    }

    /// Pads and switches to squeezing.
    pub(crate) fn finalize(mut self) -> ShakeReader {
        let pos = self.pos;
        self.sponge.xor_bytes(pos, &[0x1f]);
        self.sponge.xor_bytes(RATE - 1, &[0x80]);
        self.sponge.permute();
        let sponge = core::mem::replace(&mut self.sponge, Keccak1600::new());
        ShakeReader { sponge, pos: 0 }
    }
}

/// The squeezing half of [`Shake256`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ShakeReader {
    sponge: Keccak1600,
    pos: usize,
}

impl ShakeReader {
    /// Fills `out` with the next output bytes.
    pub(crate) fn read(&mut self, out: &mut [u8]) {
        let mut out = out;
        while !out.is_empty() {
            if self.pos == RATE {
                self.sponge.permute();
                self.pos = 0;
            }
            let take = (RATE - self.pos).min(out.len());
            let (now, rest) = out.split_at_mut(take);
            if self.pos == 0 && take == RATE {
                self.sponge.read_bytes(now);
            } else {
                let mut block = [0u8; RATE];
                self.sponge.read_bytes(&mut block);
                now.copy_from_slice(&block[self.pos..self.pos + take]);
                block.zeroize();
            }
            self.pos += take;
            out = rest;
        }
    }
}

/// One-shot SHAKE256 over the concatenation of `parts`.
pub(crate) fn shake256(parts: &[&[u8]], out: &mut [u8]) {
    let mut h = Shake256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().read(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cshake::CShake256;
    use cshake::digest::{ExtendableOutput, Update, XofReader};

    #[test]
    fn shake256_empty_known_answer() {
        // FIPS 202 SHAKE256("") first 32 bytes.
        let mut out = [0u8; 32];
        shake256(&[], &mut out);
        assert_eq!(
            out,
            [
                0x46, 0xb9, 0xdd, 0x2b, 0x0b, 0xa8, 0x8d, 0x13, 0x23, 0x3b, 0x3f, 0xeb, 0x74, 0x3e,
                0xeb, 0x24, 0x3f, 0xcd, 0x52, 0xea, 0x62, 0xb8, 0x1b, 0x82, 0xb5, 0x0c, 0x27, 0x64,
                0x6e, 0xd5, 0x76, 0x2f
            ]
        );
    }

    /// cSHAKE256 with empty N and S is SHAKE256; compare against the
    /// RustCrypto implementation at awkward lengths and split points.
    #[test]
    fn shake256_matches_reference_crate() {
        let input: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        for &len in &[0usize, 1, 7, 8, 135, 136, 137, 272, 516, 700] {
            for &split in &[0usize, 3, 136] {
                let split = split.min(len);
                let mut want = vec![0u8; 600];
                let mut r = CShake256::default();
                r.update(&input[..len]);
                r.finalize_xof().read(&mut want);

                let mut h = Shake256::new();
                h.update(&input[..split]);
                h.update(&input[split..len]);
                let mut reader = h.finalize();
                let mut got = vec![0u8; 600];
                let (a, b) = got.split_at_mut(5);
                reader.read(a);
                reader.read(b);
                assert_eq!(got, want, "len {len} split {split}");
            }
        }
    }
}
