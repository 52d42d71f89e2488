//! Two engines on a simulated network, through the same Rust API the FFI
//! exports: keys, traffic both ways with exact bytes, loss and reordering,
//! the red side's filter, shutdown, host failures, re-entrant callbacks and
//! two host threads at once.

mod common;

use std::sync::{Arc, Mutex, Weak};

use chantry_mobile::{Endpoint, Engine, EngineEvent, EngineHost, HostError, TunnelState, Verdict};
use common::*;

const A_IN: [u8; 4] = [10, 9, 0, 1];
const B_IN: [u8; 4] = [10, 9, 0, 2];

fn pair() -> Net {
    let mut net = Net::new();
    net.add(addr(1), conf("10.9.0.1", Some(addr(2)), ""));
    net.add(addr(2), conf("10.9.0.2", None, ""));
    net
}

#[test]
fn keys_then_exact_packets_both_ways() {
    let mut net = pair();
    assert_eq!(net.node(addr(1)).engine.state(), TunnelState::Keying);
    assert!(net.until_up(100), "both up within 10 s");
    let (a, b) = (net.node(addr(1)), net.node(addr(2)));
    let (sa, sb) = (a.engine.stats(), b.engine.stats());
    assert_eq!(sa.tx_spi, sb.rx_spi);
    assert_eq!(sb.tx_spi, sa.rx_spi);
    assert_eq!(sb.peer, Some(Endpoint::from(addr(1))));
    let ev_b = b.take_events();
    assert!(ev_b.contains(&EngineEvent::State {
        state: TunnelState::Up
    }));
    assert!(ev_b.contains(&EngineEvent::PeerAddress {
        peer: Endpoint::from(addr(1)),
        relayed: false
    }));
    assert!(ev_b.iter().any(|e| matches!(e, EngineEvent::Rekey { .. })));
    a.take_packets();
    b.take_packets();

    let mut sent_ab = Vec::new();
    let mut sent_ba = Vec::new();
    for i in 0..50u32 {
        let p = ip_packet(60 + i as usize * 20, A_IN, B_IN, i);
        assert_eq!(
            net.node(addr(1)).engine.send_packet(p.clone()),
            Verdict::Accepted
        );
        sent_ab.push(p);
        let q = ip_packet(1400 - i as usize, B_IN, A_IN, 1000 + i);
        assert_eq!(
            net.node(addr(2)).engine.send_packet(q.clone()),
            Verdict::Accepted
        );
        sent_ba.push(q);
        net.step(10, &mut |_| {});
    }
    net.step(10, &mut |_| {});
    assert_eq!(net.node(addr(2)).take_packets(), sent_ab);
    assert_eq!(net.node(addr(1)).take_packets(), sent_ba);
    let sa = net.node(addr(1)).engine.stats();
    assert!(sa.tx_packets >= 50 && sa.rx_packets >= 50, "{sa:?}");
    assert_eq!(sa.tun_delivered, 50);
}

#[test]
fn lossy_reordering_link_still_keys_and_carries_traffic() {
    let mut net = pair();
    // Drop about 30% (a fixed pseudo-random pattern), deliver the rest in
    // reverse order.
    let mut x = 0x2545_f491_u32;
    let mut lossy = move |batch: &mut Vec<_>| {
        batch.retain(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % 10 >= 3
        });
        batch.reverse();
    };
    for _ in 0..600 {
        if net.all_up() {
            break;
        }
        net.step(100, &mut lossy);
    }
    assert!(net.all_up(), "keys within 60 s on a lossy link");
    net.node(addr(2)).take_packets();
    let mut sent = Vec::new();
    for i in 0..200u32 {
        let p = ip_packet(100, A_IN, B_IN, i);
        if net.node(addr(1)).engine.send_packet(p.clone()) == Verdict::Accepted {
            sent.push(p);
        }
        net.step(10, &mut lossy);
    }
    for _ in 0..5 {
        net.step(10, &mut lossy);
    }
    let got = net.node(addr(2)).take_packets();
    assert!(got.len() >= 100, "most packets arrive: {}", got.len());
    assert!(
        got.iter().all(|p| sent.contains(p)),
        "only sent packets arrive"
    );
    let mut dedup = got.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "no packet arrives twice");
}

#[test]
fn red_side_refuses_and_filters() {
    let mut net = pair();
    assert!(net.until_up(100));
    let a = &net.node(addr(1)).engine;
    assert_eq!(a.send_packet(vec![0x45; 12]), Verdict::TooShort);
    assert_eq!(a.send_packet(vec![0x45; 1401]), Verdict::TooBig);
    assert_eq!(a.send_packet(vec![0x60; 80]), Verdict::NotIpv4);
    assert_eq!(a.stats().tun_refused, 3);
    // Sealed by A, but neither address is in B's tunnel networks.
    let stray = ip_packet(80, [192, 0, 2, 1], [198, 51, 100, 1], 7);
    assert_eq!(a.send_packet(stray), Verdict::Accepted);
    let d = std::mem::take(&mut net.node(addr(1)).host.0.lock().unwrap().datagrams);
    assert_eq!(d.len(), 1);
    let b = &net.node(addr(2)).engine;
    assert_eq!(b.receive_from(addr(1), &d[0].1), Verdict::Filtered);
    assert_eq!(b.stats().tun_filtered, 1);
    assert!(net.node(addr(2)).take_packets().is_empty());
    // A replay of the same datagram is rejected by the black side.
    assert_eq!(b.receive_from(addr(1), &d[0].1), Verdict::Rejected);
    assert_eq!(b.receive_from(addr(1), b"garbage"), Verdict::Rejected);
    let bad = Endpoint {
        ip: "not-an-ip".into(),
        port: 1,
    };
    assert_eq!(b.receive_datagram(bad, vec![0; 64]), Verdict::BadEndpoint);
}

#[test]
fn nothing_passes_before_keys_and_after_shutdown() {
    let net = pair();
    let a = &net.node(addr(1)).engine;
    assert_eq!(a.send_packet(ip_packet(80, A_IN, B_IN, 1)), Verdict::NoKey);
    let b = &net.node(addr(2)).engine;
    a.shutdown();
    assert_eq!(a.state(), TunnelState::Closed);
    assert_eq!(a.send_packet(ip_packet(80, A_IN, B_IN, 1)), Verdict::Closed);
    assert_eq!(a.receive_from(addr(2), &[0; 100]), Verdict::Closed);
    assert_eq!(a.next_timeout_ms(), None);
    assert!(
        net.node(addr(1))
            .take_events()
            .contains(&EngineEvent::State {
                state: TunnelState::Closed
            })
    );
    assert_eq!(b.state(), TunnelState::Keying);
}

/// A host whose socket is broken and whose callbacks call the engine back.
struct Reentrant {
    engine: Mutex<Weak<Engine>>,
    seen: Mutex<Vec<TunnelState>>,
}

impl EngineHost for Reentrant {
    fn send_datagram(&self, _: Endpoint, _: Vec<u8>) -> Result<(), HostError> {
        Err(HostError::Failed {
            message: "network unreachable".into(),
        })
    }
    fn deliver_packet(&self, _: Vec<u8>) -> Result<(), HostError> {
        Ok(())
    }
    fn on_event(&self, _: EngineEvent) -> Result<(), HostError> {
        let engine = self.engine.lock().expect("engine slot").upgrade();
        if let Some(e) = engine {
            // Would deadlock if the engine called us holding a lock.
            let state = e.stats().state;
            self.seen.lock().expect("seen").push(state);
        }
        Ok(())
    }
}

#[test]
fn host_failures_are_counted_and_callbacks_may_reenter() {
    let host = Arc::new(Reentrant {
        engine: Mutex::new(Weak::new()),
        seen: Mutex::new(Vec::new()),
    });
    let engine =
        Engine::with_manual_clock(conf("10.9.0.1", Some(addr(2)), ""), host.clone(), WALL0)
            .unwrap();
    *host.engine.lock().unwrap() = Arc::downgrade(&engine);
    engine.handle_timeout();
    assert!(
        engine.stats().host_errors >= 1,
        "the offer could not be sent"
    );
    let seen = host.seen.lock().unwrap();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| *s == TunnelState::Keying),
        "{seen:?}"
    );
}

#[test]
fn two_host_threads_drive_one_engine() {
    let mut net = pair();
    assert!(net.until_up(100));
    let a = net.node(addr(1)).engine.clone();
    let b = net.node(addr(2)).engine.clone();
    let a_host = net.node(addr(1)).host.clone();
    // Thread 1 plays A's TUN reader, thread 2 A's UDP reader fed by B.
    let b2 = b.clone();
    let feeder = std::thread::spawn(move || {
        let mut n = 0;
        for i in 0..500u32 {
            b2.send_packet(ip_packet(200, B_IN, A_IN, i));
            n += 1;
        }
        n
    });
    let sender = {
        let a = a.clone();
        std::thread::spawn(move || {
            for i in 0..500u32 {
                assert_eq!(
                    a.send_packet(ip_packet(200, A_IN, B_IN, i)),
                    Verdict::Accepted
                );
            }
        })
    };
    assert_eq!(feeder.join().unwrap(), 500);
    let from_b = std::mem::take(&mut net.node(addr(2)).host.0.lock().unwrap().datagrams);
    let reader = {
        let a = a.clone();
        std::thread::spawn(move || {
            for (_, d) in from_b {
                a.receive_from(addr(2), &d);
            }
        })
    };
    sender.join().unwrap();
    reader.join().unwrap();
    let sa = a.stats();
    assert!(sa.rx_packets >= 500 && sa.tun_delivered == 500, "{sa:?}");
    assert_eq!(a_host.0.lock().unwrap().packets.len(), 500);
}
