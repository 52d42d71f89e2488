//! Writes a vicar file for the Python tests of the FFI (which cannot make
//! one themselves): `vicar_fixture OUT PASSPHRASE`. The device is cathedral
//! id 0x2a of flock 0xcafe01, tunnel 0x0102, cathedral 127.0.0.1:4600; its
//! keys come from a fixed seed. Test material only.

use std::net::Ipv4Addr;

use chantry_core::entropy::SeededEntropy;
use chantry_core::secret::{Key32, Secret};
use chantry_core::vicar::{self, VicarProfile};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, passphrase] = args.as_slice() else {
        eprintln!("usage: vicar_fixture OUT PASSPHRASE");
        std::process::exit(2);
    };
    let seed = [0x42u8; 32];
    let cosk = ed25519_dalek::SigningKey::from_bytes(&seed).to_keypair_bytes();
    let profile = VicarProfile {
        cathedral_id: 0x2a,
        cathedral_ip: Ipv4Addr::LOCALHOST,
        cathedral_port: 4600,
        flock: 0xcafe01,
        tunnel: 0x0102,
        kek: Key32::new([0x11; 32]),
        cosk: Secret::new(cosk),
        cathedral_secret: Key32::new([0x22; 32]),
    };
    let mut rng = SeededEntropy::from_u64(7);
    let file = match vicar::encrypt(passphrase.as_bytes(), &profile, &mut rng) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vicar_fixture: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = std::fs::write(out, file) {
        eprintln!("vicar_fixture: {out}: {e}");
        std::process::exit(1);
    }
}
