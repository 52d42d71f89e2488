//! What a device pays when a cathedral hands it a new shared secret: one
//! ambry unwrap (derived KEK, wrapping key, AES-256-GCM open of 32 bytes,
//! expiry check), and the cost of opening a vicar profile, which is
//! dominated by the passphrase KDF (slow by design, so few samples).
//!
//! Run: `cargo bench -p app-core --bench ambry`.

use std::hint::black_box;
use std::time::Duration;

use chantry_core::ambry::{self, Bundle, BundleHead, Unwrapper};
use chantry_core::kdf;
use chantry_core::secret::{Key32, Secret};
use chantry_core::vicar::{self, VicarProfile};
use criterion::{Criterion, criterion_group, criterion_main};

/// 2026-01-01, the time the reference vectors were made at.
const NOW: u64 = 1_767_225_600;
const FLOCK: u64 = 0xcafe_ba00;
const TUNNEL: u16 = 0x0102;

fn ambry_unwrap(c: &mut Criterion) {
    let base_kek = Key32::new(core::array::from_fn(|i| i as u8));
    let head = BundleHead {
        expires: ambry::expires_for(NOW, 365).expect("365 days fit"),
        generation: 0x0302_0100,
        seed: [4; 64],
    };
    let dkek = kdf::derived_kek(&base_kek, FLOCK, FLOCK);
    let entry = ambry::wrap(&dkek, &head, FLOCK, FLOCK, TUNNEL, &Key32::new([0x44; 32]));
    let bundle = Bundle {
        head,
        entries: vec![entry],
    };
    let body = bundle.offer_body(&bundle.entries[0]);
    let unwrapper = Unwrapper {
        base_kek: &base_kek,
        flock_src: FLOCK,
        flock_dst: FLOCK,
        tunnel: TUNNEL,
        current_generation: 0,
    };
    // The bench must measure a successful unwrap, not an early error.
    let secret = unwrapper.unwrap(&body, NOW).expect("unwraps");
    assert_eq!(secret.expose(), &[0x44; 32]);
    c.bench_function("ambry unwrap (derived KEK, wrap key, open)", |b| {
        b.iter(|| unwrapper.unwrap(black_box(&body), black_box(NOW)))
    });
}

fn vicar_decrypt(c: &mut Criterion) {
    let profile = VicarProfile {
        cathedral_id: 0x0bad_f00d,
        cathedral_ip: [127, 0, 0, 1].into(),
        cathedral_port: 4500,
        flock: FLOCK,
        tunnel: TUNNEL,
        kek: Key32::new([1; 32]),
        cosk: Secret::new([2; 64]),
        cathedral_secret: Key32::new([3; 32]),
    };
    let salt = [7u8; 32];
    let okm = vicar::derive_key(b"sanctum", &salt).expect("passphrase is valid");
    let file = vicar::encrypt_with_key(&okm, &salt, &profile);
    assert_eq!(
        vicar::decrypt(b"sanctum", &file).expect("opens"),
        profile,
        "the bench must measure a successful decrypt"
    );
    let mut group = c.benchmark_group("vicar");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(20));
    group.bench_function("decrypt with passphrase (KDF included)", |b| {
        b.iter(|| vicar::decrypt(black_box(b"sanctum"), black_box(&file)))
    });
    group.bench_function("decrypt with derived key", |b| {
        b.iter(|| vicar::decrypt_with_key(black_box(&okm), black_box(&file)))
    });
    group.finish();
}

criterion_group!(benches, ambry_unwrap, vicar_decrypt);
criterion_main!(benches);
