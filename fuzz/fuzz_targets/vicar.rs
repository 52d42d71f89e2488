#![no_main]
//! Hostile vicar files: decryption with a fixed derived key (the expensive
//! passphrase KDF is skipped) never panics and accepts nothing forged.

use chantry_core::secret::Secret;
use chantry_core::vicar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let okm = Secret::new([0x5a; 64]);
    let _ = vicar::salt_of(data);
    let _ = vicar::decrypt_with_key(&okm, data);
});
