//! nyfe's memory-hard passphrase KDF (files.md §9): 32 MiB of SHAKE256
//! output encrypted under Agelas, 65536 data-dependent visits, then KMAC256
//! over the whole buffer.
//!
//! One call allocates the 32 MiB work buffer and the 128 KiB access list
//! once, reuses fixed stack buffers in the loop, and wipes everything before
//! returning.

use zeroize::Zeroize;

use super::agelas::{Agelas, KEY_LEN};
use super::sponge::{Shake256, shake256};
use crate::kdf::Kmac256;
use crate::secret::Secret;

/// Size of the work buffer.
pub const MEM_SIZE: usize = 32 * 1024 * 1024;
/// Number of visits.
pub const ITERATIONS: usize = 65536;
/// Bytes hashed per visit (`MEM_SIZE / ITERATIONS`).
const STEP_LEN: usize = MEM_SIZE / ITERATIONS;
/// Visits between two Agelas passes over the tail of the buffer.
const AGELAS_EVERY: usize = 2048;
/// Length of the derived key.
pub const OKM_LEN: usize = 64;
/// Length of the salt.
pub const SALT_LEN: usize = 32;

/// `passphrase_kdf(P, salt, label)`: a 64-byte key from `passphrase` (used
/// exactly as given: the vicar caller pads it to 256 bytes first).
///
/// Deliberately slow: about 5 million Keccak permutations and 32 MiB of
/// memory. The reference quirk of step 5 is kept: each visit changes only
/// ONE byte of the buffer (the XOR of the 512 hash bytes).
pub fn passphrase_kdf(passphrase: &[u8], salt: &[u8; SALT_LEN], label: &[u8]) -> Secret<OKM_LEN> {
    // 1. buf = SHAKE256(LE32(len(P)) || P || salt), 512 bytes.
    let mut buf = [0u8; 2 * 256];
    let len = u32::try_from(passphrase.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    shake256(&[&len, passphrase, salt], &mut buf);
    let (first, second) = buf.split_at(256);

    // 2. The access pattern: 65536 little-endian u16 from SHAKE256(buf[0..256]).
    let mut ap = vec![0u8; ITERATIONS * 2];
    shake256(&[first], &mut ap);

    // 3. tmp = SHAKE256(buf[256..512]), 32 MiB.
    let mut tmp = vec![0u8; MEM_SIZE];
    shake256(&[second], &mut tmp);

    // 4. tmp = Agelas(buf[0..64]).encrypt(tmp).
    let mut key = Secret::<KEY_LEN>::zero();
    key.expose_mut().copy_from_slice(&buf[..KEY_LEN]);
    let mut stream = Agelas::new(&key);
    drop(key);
    buf.zeroize();
    stream.encrypt(&mut tmp);

    // 5. The visits.
    let mut h = [0u8; STEP_LEN];
    for (iter, pair) in ap.chunks_exact(2).enumerate() {
        let offset = usize::from(u16::from_le_bytes([pair[0], pair[1]])) * STEP_LEN;
        if iter % AGELAS_EVERY == 0
            && let Some(tail) = tmp.get_mut(offset..)
        {
            stream.encrypt(tail);
        }
        let Some(block) = tmp.get(offset..offset + STEP_LEN) else {
            continue; // cannot happen: the largest offset is MEM_SIZE - STEP_LEN
        };
        let mut shake = Shake256::new();
        shake.update(&(iter as u32).to_be_bytes());
        shake.update(block);
        shake.finalize().read(&mut h);
        let folded = fold_xor(&h);
        if let Some(b) = tmp.get_mut(offset) {
            *b ^= folded;
        }
    }
    h.zeroize();
    drop(stream);

    // 6. okm = KMAC256(tmp[0..32], label, BE32(MEM_SIZE - 32) || tmp[32..], 64).
    let mut okm = Secret::<OKM_LEN>::zero();
    let (k, x) = tmp.split_at(32);
    let mut kmac = Kmac256::new(k, label);
    kmac.update(&((MEM_SIZE - 32) as u32).to_be_bytes());
    kmac.update(x);
    kmac.finalize_into(okm.expose_mut());

    tmp.zeroize();
    ap.zeroize();
    okm
}

/// XOR of all bytes of `h`.
fn fold_xor(h: &[u8; STEP_LEN]) -> u8 {
    let mut acc = 0u64;
    for chunk in h.chunks_exact(8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        acc ^= u64::from_le_bytes(b);
    }
    acc.to_le_bytes().iter().fold(0u8, |a, b| a ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_xor_is_the_byte_xor() {
        let h: [u8; STEP_LEN] = core::array::from_fn(|i| (i * 31 + 7) as u8);
        assert_eq!(fold_xor(&h), h.iter().fold(0, |a, b| a ^ b));
    }
}
