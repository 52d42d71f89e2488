//! Shared-memory ring throughput with 1400-byte packets (a full-size tun
//! read):
//!
//! * `ring/push_pop_1400`: one push and one pop in the same thread (the
//!   cost of the two copies and the index updates, no contention);
//! * `ring/push_pop_batch32_1400`: 32 pushes, one wake(), 32 pops;
//! * `ring/two_threads_1400`: a producer thread pushing in batches of 32
//!   with one wake() per batch, and a consumer draining and sleeping in
//!   `shm::sleep` (eventfd + poll) when the ring is empty: packets per
//!   second through a 1024-slot ring, wakeups included.
//!
//! Run: `cargo bench -p chantry-service --bench ring`.
//!
//! Measured on the shared 2-core development machine (2026-11, release
//! profile): push_pop_1400 114 ns (8.8 M packets/s), push_pop_batch32_1400
//! 3.5 us per 32 (9.1 M packets/s), two_threads_1400 173 ns per packet
//! (5.8 M packets/s).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use chantry_service::shm::{
    Consumer, Meta, Producer, PushError, SLOT_DATA, WakeFd, create_ring, sleep,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PACKET: usize = 1400;
const BATCH: usize = 32;

fn meta() -> Meta {
    Meta {
        addr: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4500)),
        kind: 1,
    }
}

fn pair(slots: u32) -> (Producer, Consumer, WakeFd) {
    let fd = create_ring("bench", slots).expect("ring");
    let w = WakeFd::new().expect("eventfd");
    let p = Producer::attach(fd.try_clone().expect("dup"), w.waker().expect("waker"))
        .expect("producer");
    let c = Consumer::attach(fd).expect("consumer");
    (p, c, w)
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    let pkt: Vec<u8> = (0..PACKET).map(|i| i as u8).collect();
    let mut buf = vec![0u8; SLOT_DATA];

    let (mut p, mut cons, _w) = pair(1024);
    g.throughput(Throughput::Elements(1));
    g.bench_function("push_pop_1400", |b| {
        b.iter(|| {
            p.push(meta(), black_box(&pkt)).expect("push");
            black_box(cons.pop(&mut buf))
        })
    });

    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("push_pop_batch32_1400", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                p.push(meta(), black_box(&pkt)).expect("push");
            }
            p.wake();
            for _ in 0..BATCH {
                black_box(cons.pop(&mut buf));
            }
        })
    });
    g.finish();
}

/// Moves `n` packets from a producer thread to this thread; returns the
/// time from the start of the producer to the last packet consumed.
fn transfer(n: u64) -> Duration {
    let (mut p, mut c, w) = pair(1024);
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        let pkt: Vec<u8> = (0..PACKET).map(|i| i as u8).collect();
        let mut sent = 0u64;
        while sent < n {
            let batch = (n - sent).min(BATCH as u64);
            let mut i = 0;
            while i < batch {
                match p.push(meta(), &pkt) {
                    Ok(()) => i += 1,
                    Err(PushError::Full) => {
                        p.wake();
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            sent += batch;
            p.wake();
        }
    });
    let mut buf = vec![0u8; SLOT_DATA];
    let mut got = 0u64;
    while got < n {
        while let Some((_, len)) = c.pop(&mut buf) {
            black_box(&buf[..len]);
            got += 1;
        }
        if got < n {
            let r = sleep(&mut [&mut c], &w, &[], Some(Duration::from_secs(5))).expect("sleep");
            assert!(!r.timed_out, "producer stalled at {got}/{n}");
        }
    }
    let elapsed = start.elapsed();
    producer.join().expect("producer thread");
    elapsed
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.bench_function("two_threads_1400", |b| b.iter_custom(transfer));
    g.finish();
}

criterion_group!(benches, single_thread, two_threads);
criterion_main!(benches);
