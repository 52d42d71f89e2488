//! One complete hybrid key exchange between two [`KeyExchange`] instances:
//! A's PK set to B, B's PK and CT sets to A, A's CT set to B, every offer
//! sealed and opened, both directions' keys derived on both sides. This is
//! two ML-KEM-1024 key generations, encapsulations and decapsulations, six
//! X25519 key generations and four agreements, and 20 offers.
//!
//! Run: `cargo bench -p app-core --bench exchange`.

use std::hint::black_box;

use chantry_core::entropy::SeededEntropy;
use chantry_core::exchange::{ExchangeConfig, KeyCommand, KeyExchange};
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use criterion::{Criterion, criterion_group, criterion_main};

/// Delivers everything `from` has queued to `to`.
fn deliver(from: &mut KeyExchange, to: &mut KeyExchange, now: Now, rng: &mut SeededEntropy) {
    while let Some(p) = from.poll_transmit() {
        // Duplicates of completed sets are ignored; errors cannot happen
        // between two correctly configured instances.
        let _ = to.handle_offer(&p, now, rng);
    }
}

/// Runs one exchange to the point where both sides have both keys and
/// returns the number of keys installed (4).
fn full_exchange(rng: &mut SeededEntropy) -> usize {
    let cfg = ExchangeConfig::default();
    let secret = [0x42; 32];
    let mut a = KeyExchange::with_instance_id(cfg, Key32::new(secret), 0x1111);
    let mut b = KeyExchange::with_instance_id(cfg, Key32::new(secret), 0x2222);
    a.set_peer_known(true);
    b.set_peer_known(true);
    let mut now = Now::new(Instant::from_secs(10), 1_767_225_600);

    a.poll(now, rng); // A starts ("no keys"): PK set
    deliver(&mut a, &mut b, now, rng); // B starts ("peer renegotiate"), RX key
    b.poll(now, rng); // B: PK and CT sets
    deliver(&mut b, &mut a, now, rng); // A: RX key, then TX key
    now.mono += core::time::Duration::from_secs(1);
    a.poll(now, rng); // A: CT set
    deliver(&mut a, &mut b, now, rng); // B: TX key

    let mut keys = 0;
    for x in [&mut a, &mut b] {
        while let Some(k) = x.poll_key() {
            if matches!(k, KeyCommand::InstallRx(_) | KeyCommand::InstallTx(_)) {
                keys += 1;
            }
        }
    }
    keys
}

fn bench(c: &mut Criterion) {
    let mut rng = SeededEntropy::from_u64(7);
    assert_eq!(full_exchange(&mut rng), 4, "both sides install both keys");
    c.bench_function("exchange/full_hybrid_exchange", |bench| {
        bench.iter(|| black_box(full_exchange(&mut rng)));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
