//! Two tunnel engines wired back to back through an in-memory link with a
//! fake clock: key exchange, traffic, rekeys, loss, reordering, replays and
//! stale offers. No sockets, no real time.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use chantry_core::entropy::SeededEntropy;
use chantry_core::exchange::{Event, StartReason};
use chantry_core::sa::{ReplayError, RxError};
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use chantry_core::tunnel::{DropReason, Transmit, Tunnel, TunnelConfig, TunnelEvent};

const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 2333);
const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 2333);
const WALL0: u64 = 1_767_225_600;

/// A minimal IPv4 packet of `len` bytes whose payload carries `tag`.
fn ip_packet(len: usize, tag: u32) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p[20..24].copy_from_slice(&tag.to_be_bytes());
    p
}

struct Side {
    t: Tunnel,
    rng: SeededEntropy,
    addr: SocketAddrV4,
    events: Vec<TunnelEvent>,
    received: Vec<Vec<u8>>,
    /// Wall-clock skew of this side relative to the other.
    skew: i64,
}

/// Datagrams in flight: (towards B, datagram).
type InFlight = Vec<(bool, Transmit)>;

struct Link {
    a: Side,
    b: Side,
    now: Now,
    wire: InFlight,
}

fn config(shroud: bool, tfc: bool) -> (TunnelConfig, TunnelConfig) {
    let ss = Key32::new([7u8; 32]);
    let mut ca = TunnelConfig::new(ss.clone(), Some(B), 1400);
    let mut cb = TunnelConfig::new(ss, None, 1400);
    ca.shroud = shroud;
    cb.shroud = shroud;
    ca.tfc = tfc;
    cb.tfc = tfc;
    (ca, cb)
}

impl Link {
    fn new(ca: TunnelConfig, cb: TunnelConfig) -> Self {
        let side = |cfg, id, addr, seed| Side {
            t: Tunnel::with_instance_id(cfg, id),
            rng: SeededEntropy::from_u64(seed),
            addr,
            events: Vec::new(),
            received: Vec::new(),
            skew: 0,
        };
        Link {
            a: side(ca, 0x1111, A, 1),
            b: side(cb, 0x2222, B, 2),
            now: Now::new(Instant::from_secs(1), WALL0),
            wire: Vec::new(),
        }
    }

    fn side_now(&self, s: &Side) -> Now {
        Now::new(self.now.mono, (self.now.wall as i64 + s.skew) as u64)
    }

    fn collect(&mut self) {
        for (to_b, s) in [(true, &mut self.a), (false, &mut self.b)] {
            while let Some(t) = s.t.poll_transmit() {
                self.wire.push((to_b, t));
            }
            while let Some(e) = s.t.poll_event() {
                s.events.push(e);
            }
            while let Some(p) = s.t.poll_clear() {
                s.received.push(p);
            }
        }
    }

    /// Delivers everything in flight through `filter` (which may drop or
    /// reorder), then runs timers; repeats for `steps` steps of `dt`.
    fn run(&mut self, steps: u32, dt: Duration, filter: &mut dyn FnMut(&mut InFlight)) {
        for _ in 0..steps {
            self.collect();
            let mut batch = std::mem::take(&mut self.wire);
            filter(&mut batch);
            for (to_b, t) in batch {
                let now_b = self.side_now(&self.b);
                let now_a = self.side_now(&self.a);
                let (dst, src, now) = if to_b {
                    (&mut self.b, A, now_b)
                } else {
                    (&mut self.a, B, now_a)
                };
                assert_eq!(t.dst, dst.addr, "datagram addressed to the wrong peer");
                let _ = dst.t.receive(src, &t.datagram, now, &mut dst.rng);
            }
            self.now = self.now.advance(dt);
            for s in [&mut self.a, &mut self.b] {
                let now = Now::new(self.now.mono, (self.now.wall as i64 + s.skew) as u64);
                if s.t.poll_timeout().is_some_and(|t| t <= now.mono) {
                    s.t.handle_timeout(now, &mut s.rng);
                }
            }
            self.collect();
        }
    }

    fn run_clean(&mut self, steps: u32) {
        self.run(steps, Duration::from_millis(100), &mut |_| {});
    }

    fn keyed(&self) -> bool {
        self.a.t.is_keyed() && self.b.t.is_keyed()
    }

    fn send_a(&mut self, p: &[u8]) {
        let now = self.side_now(&self.a);
        self.a.t.send(p, now, &mut self.a.rng).expect("A can send");
    }

    fn send_b(&mut self, p: &[u8]) {
        let now = self.side_now(&self.b);
        self.b.t.send(p, now, &mut self.b.rng).expect("B can send");
    }
}

fn handshake(link: &mut Link) {
    for _ in 0..100 {
        if link.keyed() {
            break;
        }
        link.run_clean(1);
    }
    assert!(link.keyed(), "keys after 10 s of clean link");
}

fn traffic_both_ways(link: &mut Link, tag: u32) {
    let (na, nb) = (link.a.received.len(), link.b.received.len());
    link.send_a(&ip_packet(84, tag));
    link.send_b(&ip_packet(1400, tag + 1));
    link.run_clean(1);
    assert_eq!(link.b.received.len(), nb + 1, "B got A's packet");
    assert_eq!(link.a.received.len(), na + 1, "A got B's packet");
    assert_eq!(link.b.received.last(), Some(&ip_packet(84, tag)));
    assert_eq!(link.a.received.last(), Some(&ip_packet(1400, tag + 1)));
}

#[test]
fn exchange_keys_and_pass_traffic() {
    for (shroud, tfc) in [(false, false), (true, false), (false, true), (true, true)] {
        let (ca, cb) = config(shroud, tfc);
        let mut link = Link::new(ca, cb);
        handshake(&mut link);
        // B learned A's address from A's offers.
        assert_eq!(link.b.t.peer(), Some(A));
        let (sa, sb) = (link.a.t.stats(), link.b.t.stats());
        assert_eq!(sa.tx_spi, sb.rx_spi, "A's TX SA is B's RX SA");
        assert_eq!(sb.tx_spi, sa.rx_spi);
        for i in 0..20 {
            traffic_both_ways(&mut link, i * 10);
        }
        assert!(link.b.events.contains(&TunnelEvent::PeerAddress(A)));
    }
}

#[test]
fn lost_and_reordered_offers_still_complete() {
    let (ca, cb) = config(false, false);
    let mut link = Link::new(ca, cb);
    // Drop about 40% of datagrams (a fixed pseudo-random pattern) and
    // deliver the rest in reverse order.
    let mut x = 0x2545_f491_u32;
    link.run(300, Duration::from_millis(100), &mut |batch| {
        batch.retain(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % 10 >= 4
        });
        batch.reverse();
    });
    assert!(link.keyed(), "keys despite 40% loss and reordering");
    traffic_both_ways(&mut link, 1);
}

#[test]
fn reordering_inside_the_window_and_replays() {
    let (ca, cb) = config(false, false);
    let mut link = Link::new(ca, cb);
    handshake(&mut link);
    link.run_clean(20); // let heartbeats settle
    let now = link.now;
    let mut datagrams = Vec::new();
    for i in 0..40 {
        link.a
            .t
            .send(&ip_packet(100, 1000 + i), now, &mut link.a.rng)
            .expect("send");
        datagrams.push(link.a.t.poll_transmit().expect("datagram"));
    }
    let before = link.b.received.len();
    for t in datagrams.iter().rev() {
        link.b
            .t
            .receive(A, &t.datagram, now, &mut link.b.rng)
            .expect("within the window");
    }
    link.collect();
    assert_eq!(link.b.received.len(), before + 40);
    // Every one of them again: all replays.
    for t in &datagrams {
        assert!(matches!(
            link.b.t.receive(A, &t.datagram, now, &mut link.b.rng),
            Err(DropReason::Data(RxError::Replay {
                reason: ReplayError::Duplicate | ReplayError::TooOld,
                ..
            }))
        ));
    }
    // 70 newer packets push the first ones out of the 64-packet window.
    let mut late = Vec::new();
    for i in 0..70 {
        link.a
            .t
            .send(&ip_packet(100, 2000 + i), now, &mut link.a.rng)
            .expect("send");
        let t = link.a.t.poll_transmit().expect("datagram");
        if i == 0 {
            late.push(t);
        } else {
            link.b
                .t
                .receive(A, &t.datagram, now, &mut link.b.rng)
                .expect("in order");
        }
    }
    assert!(matches!(
        link.b.t.receive(A, &late[0].datagram, now, &mut link.b.rng),
        Err(DropReason::Data(RxError::Replay {
            reason: ReplayError::TooOld,
            ..
        }))
    ));
    // Tampered packets are rejected and deliver nothing.
    link.a
        .t
        .send(&ip_packet(100, 3), now, &mut link.a.rng)
        .expect("send");
    let mut t = link.a.t.poll_transmit().expect("datagram");
    let last = t.datagram.len() - 1;
    t.datagram[last] ^= 1;
    assert!(matches!(
        link.b.t.receive(A, &t.datagram, now, &mut link.b.rng),
        Err(DropReason::Data(RxError::Auth { .. }))
    ));
}

#[test]
fn offers_outside_ten_seconds_are_rejected() {
    for (skew, completes) in [(11i64, false), (-11, false), (10, true), (-10, true)] {
        let (ca, cb) = config(false, false);
        let mut link = Link::new(ca, cb);
        link.b.skew = skew;
        link.run_clean(100);
        assert_eq!(link.keyed(), completes, "skew {skew}");
        if !completes {
            assert!(link.b.t.stats().dropped > 0);
            assert_eq!(link.b.t.peer(), None, "a stale offer teaches no address");
        }
    }
}

#[test]
fn rekey_on_age_keeps_traffic_flowing() {
    let (ca, cb) = config(false, false);
    let mut link = Link::new(ca, cb);
    handshake(&mut link);
    let first = (link.a.t.stats().tx_spi, link.b.t.stats().tx_spi);
    // 3600 s in 10 s steps with traffic every step: the 3500 s soft limit
    // rekeys before the 3600 s hard limit, with no gap in traffic.
    for i in 0..360 {
        traffic_both_ways(&mut link, 100_000 + i * 2);
        link.run(1, Duration::from_secs(10), &mut |_| {});
    }
    let second = (link.a.t.stats().tx_spi, link.b.t.stats().tx_spi);
    assert_ne!(first.0, second.0);
    assert_ne!(first.1, second.1);
    let age_rekeys = link
        .a
        .events
        .iter()
        .chain(link.b.events.iter())
        .filter(|e| {
            matches!(
                e,
                TunnelEvent::Exchange(Event::ExchangeStarted {
                    reason: StartReason::SaAgeLimit,
                    ..
                })
            )
        })
        .count();
    assert!(age_rekeys >= 1, "a rekey was started by the SA age limit");
}

#[test]
fn silence_rekeys_then_dead_peer_erases() {
    let (ca, cb) = config(false, false);
    let mut link = Link::new(ca, cb);
    handshake(&mut link);
    traffic_both_ways(&mut link, 1);
    // Cut the link completely.
    link.run(1300, Duration::from_millis(100), &mut |b| b.clear());
    for s in [&link.a, &link.b] {
        assert!(
            s.events.iter().any(|e| matches!(
                e,
                TunnelEvent::Exchange(Event::ExchangeStarted {
                    reason: StartReason::GraceHeartbeatTimeout,
                    ..
                })
            )),
            "30 s of silence starts a rekey"
        );
        assert!(
            s.events.contains(&TunnelEvent::KeysErased),
            "120 s of silence erases keys: {:#?}",
            s.events
        );
        assert!(!s.t.is_keyed());
    }
    // B had learned A's address; with no configured peer it forgets it.
    assert_eq!(link.b.t.peer(), None);
    // The link comes back: keys again.
    handshake(&mut link);
    traffic_both_ways(&mut link, 77);
}

#[test]
fn heartbeats_keep_an_idle_tunnel_alive() {
    let (ca, cb) = config(false, false);
    let mut link = Link::new(ca, cb);
    handshake(&mut link);
    // Five idle minutes: heartbeats every 15 s keep liveness; no erase.
    link.run(300, Duration::from_secs(1), &mut |_| {});
    for s in [&link.a, &link.b] {
        assert!(!s.events.contains(&TunnelEvent::KeysErased));
        assert!(s.t.is_keyed());
    }
    traffic_both_ways(&mut link, 5);
}
