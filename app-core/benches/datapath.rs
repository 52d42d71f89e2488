//! Data path throughput: sealing and opening 1400-byte data packets the way
//! bless and confess do (TxSa / RxSlots, in place, no allocation), plus the
//! bare AEAD on 1024-byte blocks for comparison with
//! `openssl speed -bytes 1024 -evp aes-256-gcm`.
//!
//! Run: `cargo bench -p app-core --bench datapath`. Throughput is in bytes
//! of payload per second.

use std::hint::black_box;

use chantry_core::aead::Cipher;
use chantry_core::sa::{RxSa, RxSlots, TxSa};
use chantry_core::secret::Key32;
use chantry_core::time::Instant;
use chantry_core::wire::data::{self, DataConfig, Next, PAYLOAD_OFFSET};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Payload size of the packets measured (a typical full-size tun read).
const PAYLOAD: usize = 1400;
const SPI: u32 = 0xd27f_af46;
const SALT: [u8; 4] = [0x94, 0x90, 0xb1, 0x92];

fn key() -> Key32 {
    Key32::new([0x36; 32])
}

/// A buffer with an IPv4-looking payload in place, sized for sealing.
fn payload_buf() -> Vec<u8> {
    let mut buf = vec![0u8; data::sealed_len(PAYLOAD, None).unwrap_or(PAYLOAD + data::OVERHEAD)];
    for (i, b) in buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + PAYLOAD]
        .iter_mut()
        .enumerate()
    {
        *b = i as u8;
    }
    buf
}

fn rx_slots() -> RxSlots {
    let mut rx = RxSlots::new();
    rx.install(RxSa::new(key(), SPI, SALT, Instant::ZERO));
    rx
}

fn datapath(c: &mut Criterion) {
    let cfg = DataConfig::default();
    let mut g = c.benchmark_group("datapath");
    g.throughput(Throughput::Bytes(PAYLOAD as u64));

    g.bench_function("seal_1400", |b| {
        let mut tx = TxSa::new(key(), SPI, SALT, Instant::ZERO);
        let mut buf = payload_buf();
        b.iter(|| {
            let s = tx.seal(
                &cfg,
                Instant::ZERO,
                Next::Traffic,
                black_box(&mut buf),
                PAYLOAD,
            );
            black_box(s.map(|s| s.len).unwrap_or(0))
        });
    });

    g.bench_function("open_1400", |b| {
        // Every iteration opens a fresh packet (the window refuses
        // replays); sealing them happens outside the measurement.
        let mut tx = TxSa::new(key(), SPI, SALT, Instant::ZERO);
        let mut rx = rx_slots();
        b.iter_batched(
            || {
                let mut buf = payload_buf();
                let _ = tx.seal(&cfg, Instant::ZERO, Next::Traffic, &mut buf, PAYLOAD);
                buf
            },
            |mut packet| {
                let r = rx.open(&cfg, black_box(&mut packet));
                assert!(r.is_ok(), "open failed: {r:?}");
                packet
            },
            BatchSize::SmallInput,
        );
    });

    g.bench_function("seal_open_1400", |b| {
        let mut tx = TxSa::new(key(), SPI, SALT, Instant::ZERO);
        let mut rx = rx_slots();
        let mut buf = payload_buf();
        b.iter(|| {
            let len = tx
                .seal(&cfg, Instant::ZERO, Next::Traffic, &mut buf, PAYLOAD)
                .map_or(0, |s| s.len);
            let r = rx.open(&cfg, black_box(&mut buf[..len]));
            assert!(r.is_ok(), "open failed: {r:?}");
        });
    });
    g.finish();

    // The bare AEAD, comparable to openssl speed's 1024-byte figure.
    let mut g = c.benchmark_group("aead");
    g.throughput(Throughput::Bytes(1024));
    let cipher = Cipher::new(&key());
    let nonce = data::nonce(&SALT, 1);
    let aad = [0u8; data::HEADER_LEN];
    g.bench_function("seal_1024", |b| {
        let mut buf = [0x5au8; 1024];
        b.iter(|| black_box(cipher.seal(&nonce, &aad, black_box(&mut buf))));
    });
    g.bench_function("open_1024", |b| {
        let mut ct = [0x5au8; 1024];
        let tag = cipher.seal(&nonce, &aad, &mut ct);
        b.iter_batched_ref(
            || ct,
            |buf| {
                let r = cipher.open(&nonce, &aad, black_box(buf), &tag);
                assert!(r.is_ok(), "open failed");
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, datapath);
criterion_main!(benches);
