//! vicar provisioning files (files.md §9): a device's cathedral bootstrap
//! (cathedral id, address, flock, tunnel id, base KEK, COSK and cathedral
//! secret) encrypted under a passphrase with Agelas.
//!
//! File layout (216 bytes): `salt[32]` (plaintext, the AAD), 152 bytes of
//! Agelas ciphertext, `tag[32]`. The key is nyfe's passphrase KDF over the
//! passphrase zero-padded to 256 bytes, label `VICAR.PASSPHRASE.PBKDF`.
//! Decrypted payload (offsets within the file):
//!
//! | Offset | Size | Field | Encoding |
//! | --- | --- | --- | --- |
//! | 32 | 4 | cathedral id | little-endian (the reference writes host order) |
//! | 36 | 4 | cathedral IPv4 | network order |
//! | 40 | 8 | flock | little-endian |
//! | 48 | 2 | cathedral port | network order |
//! | 50 | 2 | tunnel id | little-endian |
//! | 52 | 32 | base KEK | |
//! | 84 | 64 | COSK secret | |
//! | 148 | 32 | cathedral secret | |
//! | 180 | 4 | padding | zero (not checked: the tag covers it) |
//!
//! (files.md prints the padding offset as 152; 148 + 32 = 180 is right.)
//!
//! The KDF costs about a second of CPU and 32 MiB on purpose, so length and
//! passphrase checks come first. [`decrypt_with_key`] skips the KDF for
//! callers that already hold the key (and for fuzzing).

pub mod agelas;
pub mod passphrase;
mod sponge;

use core::net::Ipv4Addr;

use zeroize::Zeroize;

use self::agelas::{Agelas, TAG_LEN};
use self::passphrase::{OKM_LEN, SALT_LEN, passphrase_kdf};
use crate::entropy::Entropy;
use crate::secret::{Key32, Secret};

/// Size of a vicar file.
pub const FILE_LEN: usize = 216;
/// Longest accepted passphrase, in bytes (it must be shorter than 256).
pub const MAX_PASSPHRASE_LEN: usize = 255;
/// The KDF label of vicar files.
pub const KDF_LABEL: &[u8] = b"VICAR.PASSPHRASE.PBKDF";

/// Passphrases are zero-padded to this length before the KDF.
const PADDED_PASSPHRASE_LEN: usize = 256;
/// Length of the encrypted payload.
const PAYLOAD_LEN: usize = 152;
/// Where the payload starts.
const PAYLOAD_AT: usize = SALT_LEN;
/// Where the tag starts.
const TAG_AT: usize = PAYLOAD_AT + PAYLOAD_LEN;

/// Payload field offsets (relative to the payload).
mod field {
    pub const ID: usize = 0;
    pub const IP: usize = 4;
    pub const FLOCK: usize = 8;
    pub const PORT: usize = 16;
    pub const TUNNEL: usize = 18;
    pub const KEK: usize = 20;
    pub const COSK: usize = 52;
    pub const CS: usize = 116;
    pub const PAD: usize = 148;
}

/// Why a vicar file could not be opened or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VicarError {
    /// The file is not exactly 216 bytes.
    #[error("vicar file is {len} bytes, expected exactly {FILE_LEN}")]
    WrongLength {
        /// Length of the given file.
        len: usize,
    },
    /// The passphrase is 256 bytes or longer.
    #[error("passphrase is {len} bytes; vicar passphrases must be shorter than 256 bytes")]
    PassphraseTooLong {
        /// Length of the given passphrase.
        len: usize,
    },
    /// The passphrase contains a NUL byte, which the reference tools (C
    /// strings) cannot express: such a file could never be opened there.
    #[error("passphrase contains a NUL byte, which the reference tools cannot enter")]
    PassphraseHasNul,
    /// The tag did not match: a wrong passphrase, or the file was altered.
    #[error("vicar file failed authentication: wrong passphrase or the file was altered")]
    Integrity,
}

/// The decrypted contents of a vicar file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VicarProfile {
    /// The device's cathedral identity.
    pub cathedral_id: u32,
    /// The first cathedral to contact.
    pub cathedral_ip: Ipv4Addr,
    /// Its UDP port.
    pub cathedral_port: u16,
    /// The device's flock (domain byte included, as written).
    pub flock: u64,
    /// The device's tunnel id (`own << 8 | peer`).
    pub tunnel: u16,
    /// Base KEK for ambry unwrapping.
    pub kek: Key32,
    /// Ed25519 cathedral offer signing key (seed followed by public key).
    pub cosk: Secret<64>,
    /// Secret shared with the cathedral.
    pub cathedral_secret: Key32,
}

impl VicarProfile {
    /// The 152-byte plaintext payload.
    fn to_payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut p = [0u8; PAYLOAD_LEN];
        put(&mut p, field::ID, &self.cathedral_id.to_le_bytes());
        put(&mut p, field::IP, &self.cathedral_ip.octets());
        put(&mut p, field::FLOCK, &self.flock.to_le_bytes());
        put(&mut p, field::PORT, &self.cathedral_port.to_be_bytes());
        put(&mut p, field::TUNNEL, &self.tunnel.to_le_bytes());
        put(&mut p, field::KEK, self.kek.expose());
        put(&mut p, field::COSK, self.cosk.expose());
        put(&mut p, field::CS, self.cathedral_secret.expose());
        put(&mut p, field::PAD, &[0u8; 4]);
        p
    }

    /// Reads the 152-byte plaintext payload.
    fn from_payload(p: &[u8; PAYLOAD_LEN]) -> Self {
        VicarProfile {
            cathedral_id: u32::from_le_bytes(get(p, field::ID)),
            cathedral_ip: Ipv4Addr::from(get::<4>(p, field::IP)),
            cathedral_port: u16::from_be_bytes(get(p, field::PORT)),
            flock: u64::from_le_bytes(get(p, field::FLOCK)),
            tunnel: u16::from_le_bytes(get(p, field::TUNNEL)),
            kek: Secret::new(get(p, field::KEK)),
            cosk: Secret::new(get(p, field::COSK)),
            cathedral_secret: Secret::new(get(p, field::CS)),
        }
    }
}

/// Copies `src` into `dst` at `at` (all offsets are constants that fit).
fn put(dst: &mut [u8], at: usize, src: &[u8]) {
    if let Some(d) = dst.get_mut(at..at + src.len()) {
        d.copy_from_slice(src);
    }
}

/// Reads `N` bytes of `src` at `at` (all offsets are constants that fit).
fn get<const N: usize>(src: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = src.get(at..at + N) {
        out.copy_from_slice(s);
    }
    out
}

/// Checks a passphrase the way the reference `vicar` tool does (shorter
/// than 256 bytes) and that it has no NUL byte.
fn check_passphrase(passphrase: &[u8]) -> Result<(), VicarError> {
    if passphrase.len() > MAX_PASSPHRASE_LEN {
        return Err(VicarError::PassphraseTooLong {
            len: passphrase.len(),
        });
    }
    if passphrase.contains(&0) {
        return Err(VicarError::PassphraseHasNul);
    }
    Ok(())
}

/// The file key for `passphrase` and `salt`: the passphrase KDF over the
/// passphrase zero-padded to 256 bytes. Slow by design.
pub fn derive_key(passphrase: &[u8], salt: &[u8; SALT_LEN]) -> Result<Secret<OKM_LEN>, VicarError> {
    check_passphrase(passphrase)?;
    let mut padded = [0u8; PADDED_PASSPHRASE_LEN];
    put(&mut padded, 0, passphrase);
    let okm = passphrase_kdf(&padded, salt, KDF_LABEL);
    padded.zeroize();
    Ok(okm)
}

/// The salt (first 32 bytes) of a vicar file, after the length check.
pub fn salt_of(file: &[u8]) -> Result<[u8; SALT_LEN], VicarError> {
    if file.len() != FILE_LEN {
        return Err(VicarError::WrongLength { len: file.len() });
    }
    Ok(get(file, 0))
}

/// Opens a vicar file with its passphrase.
pub fn decrypt(passphrase: &[u8], file: &[u8]) -> Result<VicarProfile, VicarError> {
    let salt = salt_of(file)?;
    check_passphrase(passphrase)?;
    let okm = derive_key(passphrase, &salt)?;
    decrypt_with_key(&okm, file)
}

/// Opens a vicar file with an already derived key (see [`derive_key`]).
/// Cheap: this is the whole file format without the KDF.
pub fn decrypt_with_key(okm: &Secret<OKM_LEN>, file: &[u8]) -> Result<VicarProfile, VicarError> {
    let salt = salt_of(file)?;
    let mut payload: [u8; PAYLOAD_LEN] = get(file, PAYLOAD_AT);
    let tag: [u8; TAG_LEN] = get(file, TAG_AT);
    let mut cipher = Agelas::new(okm);
    cipher.aad(&salt).map_err(|_| VicarError::Integrity)?;
    cipher.decrypt(&mut payload);
    if !cipher.verify(&tag) {
        payload.zeroize();
        return Err(VicarError::Integrity);
    }
    let profile = VicarProfile::from_payload(&payload);
    payload.zeroize();
    Ok(profile)
}

/// Writes a vicar file for `profile` under `passphrase`, with a fresh salt.
/// Slow by design (one KDF run).
pub fn encrypt(
    passphrase: &[u8],
    profile: &VicarProfile,
    rng: &mut dyn Entropy,
) -> Result<[u8; FILE_LEN], VicarError> {
    check_passphrase(passphrase)?;
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt);
    let okm = derive_key(passphrase, &salt)?;
    Ok(encrypt_with_key(&okm, &salt, profile))
}

/// Writes a vicar file with an already derived key and its salt.
pub fn encrypt_with_key(
    okm: &Secret<OKM_LEN>,
    salt: &[u8; SALT_LEN],
    profile: &VicarProfile,
) -> [u8; FILE_LEN] {
    let mut payload = profile.to_payload();
    let mut cipher = Agelas::new(okm);
    // A 32-byte salt is always within the AAD limit.
    let _ = cipher.aad(salt);
    cipher.encrypt(&mut payload);
    let tag = cipher.tag();
    let mut file = [0u8; FILE_LEN];
    put(&mut file, 0, salt);
    put(&mut file, PAYLOAD_AT, &payload);
    put(&mut file, TAG_AT, &tag);
    payload.zeroize();
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_default())
            .collect()
    }

    /// files.md §9 test vector: passphrase `sanctum`, salt 00..1f.
    const SPEC_OKM: &str = "50fdf66e3e8989f8cd69f73a170de6b119bf09732479da1079c7beb540f0ad9bec94303d33eeec33b0df5ab8f34729f499fa5603d3b25af089eb2f55ad00bd81";

    /// files.md §9 decrypted layout of the example file.
    const SPEC_PLAINTEXT: &str = concat!(
        "0df0ad0b",
        "7f000001",
        "0077665544332211",
        "1194",
        "0201",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
        "00000000",
    );

    /// The example file as nyfe's C code (agelas.c, passphrase.c, the
    /// vicar tool's struct) writes it for that profile, salt and passphrase.
    const REFERENCE_FILE: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f068feca784576c355164fc6cec0e968d7ff2b53cb44afd58c5068db54b60adb0c9af80c81aa5bd255ffe5dc480f1bf7e968fc6d0f4a198c395fe94daf2625e40e776cad068f523940c5350f3aa818be4a63ea55c7122fac41684b5590bc177f973dc2cb31b0958c54a8013a24654fabec4e34c59031cf331274ea793855932470770294d9191bd807d74509e6f194d6b54ed0aba8819f574f45f2d26a411c7deaf007de94c486b8859137eab108fc385f382684e5683c460";

    fn spec_salt() -> [u8; SALT_LEN] {
        core::array::from_fn(|i| i as u8)
    }

    fn spec_profile() -> VicarProfile {
        VicarProfile {
            cathedral_id: 0x0bad_f00d,
            cathedral_ip: Ipv4Addr::new(127, 0, 0, 1),
            cathedral_port: 4500,
            flock: 0x1122_3344_5566_7700,
            tunnel: 0x0102,
            kek: Secret::new(core::array::from_fn(|i| i as u8)),
            cosk: Secret::new(core::array::from_fn(|i| 0x40 + i as u8)),
            cathedral_secret: Secret::new(core::array::from_fn(|i| 0x20 + i as u8)),
        }
    }

    fn spec_okm() -> Secret<OKM_LEN> {
        Secret::from_slice(&unhex(SPEC_OKM)).unwrap_or_else(Secret::zero)
    }

    /// An [`Entropy`] that hands out 00 01 02 .. (the spec's salt).
    struct CountingEntropy(u8);

    impl Entropy for CountingEntropy {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
    }

    /// The expensive part (three KDF runs): the real KDF against the spec's
    /// okm; the reference's file opened with its passphrase; and our writer,
    /// given the spec's salt, producing the reference's bytes exactly.
    #[test]
    fn spec_okm_and_passphrase_api_against_the_reference() {
        let okm = derive_key(b"sanctum", &spec_salt());
        assert_eq!(
            okm.as_ref().map(|k| k.expose().to_vec()),
            Ok(unhex(SPEC_OKM))
        );

        assert_eq!(
            decrypt(b"sanctum", &unhex(REFERENCE_FILE)),
            Ok(spec_profile())
        );

        let file = encrypt(b"sanctum", &spec_profile(), &mut CountingEntropy(0));
        assert_eq!(file.map(|f| f.to_vec()), Ok(unhex(REFERENCE_FILE)));
    }

    #[test]
    fn spec_layout_and_reference_file() {
        assert_eq!(spec_profile().to_payload().to_vec(), unhex(SPEC_PLAINTEXT));
        let file = encrypt_with_key(&spec_okm(), &spec_salt(), &spec_profile());
        assert_eq!(file.to_vec(), unhex(REFERENCE_FILE));
        assert_eq!(decrypt_with_key(&spec_okm(), &file), Ok(spec_profile()));

        // Decrypting by hand gives exactly the spec's plaintext bytes.
        let mut a = Agelas::new(&spec_okm());
        assert_eq!(a.aad(&spec_salt()), Ok(()));
        let mut payload = file[PAYLOAD_AT..TAG_AT].to_vec();
        a.decrypt(&mut payload);
        assert_eq!(payload, unhex(SPEC_PLAINTEXT));
        assert!(a.verify(&get(&file, TAG_AT)));
    }

    #[test]
    fn every_altered_byte_is_rejected() {
        let file = encrypt_with_key(&spec_okm(), &spec_salt(), &spec_profile());
        for i in 0..FILE_LEN {
            let mut bad = file;
            bad[i] ^= 0x80;
            assert_eq!(
                decrypt_with_key(&spec_okm(), &bad),
                Err(VicarError::Integrity),
                "byte {i}"
            );
        }
        let mut other = spec_okm();
        other.expose_mut()[63] ^= 1;
        assert_eq!(decrypt_with_key(&other, &file), Err(VicarError::Integrity));
    }

    #[test]
    fn cheap_checks_come_before_the_kdf() {
        let file = [0u8; FILE_LEN];
        assert_eq!(
            decrypt(b"x", &file[..215]),
            Err(VicarError::WrongLength { len: 215 })
        );
        assert_eq!(
            decrypt(b"x", &[0u8; 217]),
            Err(VicarError::WrongLength { len: 217 })
        );
        assert_eq!(decrypt(b"x", &[]), Err(VicarError::WrongLength { len: 0 }));
        assert_eq!(
            decrypt(&[b'a'; 256], &file),
            Err(VicarError::PassphraseTooLong { len: 256 })
        );
        assert_eq!(decrypt(b"a\0b", &file), Err(VicarError::PassphraseHasNul));
        let mut rng = SeededEntropy::from_u64(1);
        assert_eq!(
            encrypt(&[b'a'; 300], &spec_profile(), &mut rng),
            Err(VicarError::PassphraseTooLong { len: 300 })
        );
        assert_eq!(
            derive_key(&[b'a'; 256], &spec_salt()).err(),
            Some(VicarError::PassphraseTooLong { len: 256 })
        );
        assert_eq!(
            decrypt_with_key(&spec_okm(), &[0u8; 10]),
            Err(VicarError::WrongLength { len: 10 })
        );
    }

    #[test]
    fn salt_comes_from_entropy_and_secrets_stay_redacted() {
        let okm = spec_okm();
        let mut rng = SeededEntropy::from_u64(7);
        let mut salt = [0u8; SALT_LEN];
        rng.fill(&mut salt);
        let file = encrypt_with_key(&okm, &salt, &spec_profile());
        assert_eq!(salt_of(&file), Ok(salt));
        let shown = format!("{:?}", decrypt_with_key(&okm, &file));
        assert!(
            shown.contains("redacted") && !shown.contains("64, 65, 66"),
            "{shown}"
        );
    }
}
