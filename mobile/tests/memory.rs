//! Heap bytes, counted exactly by an instrumented global allocator: what one
//! keyed engine holds, and that 10 000 packets each way leave nothing
//! behind. (test_memory.py checks the process RSS through the FFI.)
//!
//! One test function: the allocator counts every thread of this binary.

mod common;

use std::alloc::System;

use chantry_mobile::Verdict;
use common::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes one keyed engine may hold, its host's buffers aside. An iOS
/// NetworkExtension has about 50 MB for everything; 64 KiB per engine is a
/// rounding error there and still catches a queue that is never drained.
const ENGINE_BUDGET: isize = 64 * 1024;

fn live(r: &Region<System>) -> isize {
    // Reallocations are already counted in both totals.
    let c = r.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

fn pump(net: &mut Net, n: u32) {
    let pa = ip_packet(500, [10, 9, 0, 1], [10, 9, 0, 2], 1);
    let pb = ip_packet(500, [10, 9, 0, 2], [10, 9, 0, 1], 2);
    for i in 0..n {
        assert_eq!(
            net.node(addr(1)).engine.send_packet(pa.clone()),
            Verdict::Accepted
        );
        assert_eq!(
            net.node(addr(2)).engine.send_packet(pb.clone()),
            Verdict::Accepted
        );
        if i % 50 == 49 {
            net.step(1, &mut |_| {});
            for a in [addr(1), addr(2)] {
                net.node(a).take_packets();
                net.node(a).take_events();
            }
        }
    }
}

#[test]
fn engine_heap_budget_and_no_growth_under_traffic() {
    // One keyed pair with traffic behind it.
    let region = Region::new(GLOBAL);
    let mut net = Net::new();
    net.add(addr(1), conf("10.9.0.1", Some(addr(2)), ""));
    net.add(addr(2), conf("10.9.0.2", None, ""));
    assert!(net.until_up(100));
    pump(&mut net, 100);
    net.step(1, &mut |_| {});
    for a in [addr(1), addr(2)] {
        net.node(a).take_packets();
        net.node(a).take_events();
    }
    let per_engine = live(&region) / 2;
    println!("heap per keyed engine (with its host and the simulation): {per_engine} bytes");
    assert!(
        per_engine > 0 && per_engine < ENGINE_BUDGET,
        "{per_engine} bytes per engine"
    );

    // 10 000 packets each way after a warm-up: the live heap is unchanged
    // (a few hundred bytes of slack for queues whose capacity moved).
    pump(&mut net, 1000);
    let region = Region::new(GLOBAL);
    pump(&mut net, 10_000);
    net.step(1, &mut |_| {});
    for a in [addr(1), addr(2)] {
        net.node(a).take_packets();
        net.node(a).take_events();
    }
    let grew = live(&region);
    let stats = net.node(addr(1)).engine.stats();
    println!("heap change over 10 000 packets each way: {grew} bytes; {stats:?}");
    assert!(stats.tun_delivered >= 11_000, "{stats:?}");
    assert!(grew.abs() < 4096, "heap changed by {grew} bytes");
}
