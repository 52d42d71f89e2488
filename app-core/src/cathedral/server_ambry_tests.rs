//! Ambry distribution, remembrance, federation and bandwidth caps of the
//! sans-IO cathedral (behaviour.md §8.6, §8.8, §8.9, §8.10).

use std::net::Ipv4Addr;

use super::*;
use crate::ambry::{self, BundleHead, Unwrapper};
use crate::cathedral::Cosk;
use crate::cathedral::checks::MemoryDirectory;
use crate::cathedral::client::open_from_cathedral;
use crate::cathedral::settings::parse_settings;
use crate::entropy::SeededEntropy;
use crate::secret::Secret;

const FLOCK: u64 = 0xcafe_0000;
const WALL: u64 = 1_700_000_000;
const C1: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4500);
const C2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4500);

struct Device {
    id: u32,
    tunnel: u16,
    cs: Key32,
    cosk: Cosk,
    addr: SocketAddrV4,
}

fn device(i: u8) -> Device {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[0x30 + i; 32]);
    Device {
        id: 0x2a + u32::from(i),
        tunnel: if i == 1 { 0x0102 } else { 0x0201 },
        cs: Key32::new([0x20 + i; 32]),
        cosk: Cosk::from_secret_key(&Secret::new(sk.to_keypair_bytes())).unwrap(),
        addr: SocketAddrV4::new(Ipv4Addr::new(192, 168, 79, i), 5000 + u16::from(i)),
    }
}

fn now(s: u64) -> Now {
    Now::new(Instant::from_secs(s), WALL + s)
}

fn rng() -> SeededEntropy {
    SeededEntropy::from_u64(5)
}

fn cathedral_at(public: SocketAddrV4, extra: &str, devices: &[&Device]) -> Cathedral {
    let text = format!("{extra}flock cafe0000 {{\nallow 2b spi 01 0\nallow 2c spi 02 8\n}}\n");
    let (settings, problems) = parse_settings(&text);
    assert!(problems.is_empty(), "{problems:?}");
    let mut dir = MemoryDirectory::new();
    for d in devices {
        dir.add_client(FLOCK, d.id, d.cs.clone(), d.cosk.public_key());
    }
    Cathedral::new(public, settings, Box::new(dir))
}

fn info(d: &Device, wall: u64, flags: u32, generation: u32, rx: u32) -> Vec<u8> {
    let seed = [0x11u8; 64];
    let header = OfferHeader::new(Magic::Katedral, FLOCK, FLOCK, d.id, seed);
    let body = InfoBody {
        flags,
        tunnel: d.tunnel,
        rx_active: rx,
        instance: 7,
        ambry_generation: generation,
        ..InfoBody::default()
    };
    let mut o = Offer::new(header, wall, &OfferBody::Info(body), [0; 64]);
    d.cosk.sign_offer(&mut o);
    let key = kdf::offer_key(&d.cs, OfferLabel::Cathedral, &seed, FLOCK, 0);
    o.seal(&key).to_vec()
}

fn bodies_to(c: &mut Cathedral, to: SocketAddrV4, d: &Device, wall: u64) -> Vec<OfferBody> {
    let mut v = Vec::new();
    while let Some((dest, pkt)) = c.poll_transmit() {
        assert_eq!(dest, to);
        let o = open_from_cathedral(&pkt, &d.cs, FLOCK, d.id, wall).unwrap();
        v.push(o.body().unwrap());
    }
    v
}

/// A small bundle (the server does not check sizes; the role loads with
/// `Bundle::parse_for_pair`) holding the entry of device 1.
fn bundle(generation: u32, kek: &Key32, secret: &Key32, expires: u16) -> Bundle {
    let head = BundleHead {
        expires,
        generation,
        seed: [0x42; 64],
    };
    let dkek = kdf::derived_kek(kek, FLOCK, FLOCK);
    let e1 = ambry::wrap(&dkek, &head, FLOCK, FLOCK, 0x0102, secret);
    let e2 = ambry::wrap(&dkek, &head, FLOCK, FLOCK, 0x0201, secret);
    Bundle {
        head,
        entries: vec![e1, e2],
    }
}

#[test]
fn ambries_go_to_clients_of_another_generation_until_they_report_it() {
    let a = device(1);
    let mut c = cathedral_at(C1, "", &[&a]);
    let mut r = rng();
    let kek = Key32::new([9; 32]);
    let secret = Key32::new([0x55; 32]);
    let expires = ambry::expires_for(WALL, 30).unwrap();
    c.set_bundle(
        FLOCK,
        FLOCK | 0x07,
        Some(bundle(0xabcd, &kek, &secret, expires)),
    );
    assert_eq!(c.bundle_generation(FLOCK, FLOCK), Some(0xabcd));

    // SKIP_AMBRY: nothing.
    c.handle_datagram(
        now(0),
        a.addr,
        &info(&a, WALL, INFO_FLAG_SKIP_AMBRY, 0, 0),
        &mut r,
    )
    .unwrap();
    assert!(bodies_to(&mut c, a.addr, &a, WALL).is_empty());
    // Generation 0: the entry, which the device unwraps with its KEK.
    c.handle_datagram(now(5), a.addr, &info(&a, WALL + 5, 0, 0, 0), &mut r)
        .unwrap();
    let got = bodies_to(&mut c, a.addr, &a, WALL + 5);
    let [OfferBody::Ambry(body)] = got.as_slice() else {
        panic!("{got:?}")
    };
    let unwrapped = Unwrapper {
        base_kek: &kek,
        flock_src: FLOCK,
        flock_dst: FLOCK,
        tunnel: a.tunnel,
        current_generation: 0,
    }
    .unwrap(body, WALL + 5)
    .unwrap();
    assert_eq!(unwrapped.expose(), secret.expose());
    // Again on the next INFO, until it reports the generation.
    c.handle_datagram(now(10), a.addr, &info(&a, WALL + 10, 0, 0, 0), &mut r)
        .unwrap();
    assert_eq!(bodies_to(&mut c, a.addr, &a, WALL + 10).len(), 1);
    c.handle_datagram(now(15), a.addr, &info(&a, WALL + 15, 0, 0xabcd, 0), &mut r)
        .unwrap();
    assert!(bodies_to(&mut c, a.addr, &a, WALL + 15).is_empty());
    // A new generation is sent again.
    c.set_bundle(FLOCK, FLOCK, Some(bundle(0xbeef, &kek, &secret, expires)));
    c.handle_datagram(now(20), a.addr, &info(&a, WALL + 20, 0, 0xabcd, 0), &mut r)
        .unwrap();
    assert_eq!(bodies_to(&mut c, a.addr, &a, WALL + 20).len(), 1);
    assert_eq!(c.counters().ambries_sent, 3);
    // An expired bundle is not served.
    let old = ambry::expires_for(WALL - 10 * 86_400, 1).unwrap();
    c.set_bundle(FLOCK, FLOCK, Some(bundle(0x1, &kek, &secret, old)));
    c.handle_datagram(now(25), a.addr, &info(&a, WALL + 25, 0, 0, 0), &mut r)
        .unwrap();
    assert!(bodies_to(&mut c, a.addr, &a, WALL + 25).is_empty());
    // A reload that drops the flock drops its bundle.
    let (empty, _) = parse_settings("");
    c.set_settings(empty, Box::new(MemoryDirectory::new()));
    assert_eq!(c.bundle_generation(FLOCK, FLOCK), None);
}

#[test]
fn remembrance_lists_this_cathedral_then_its_peers_every_15_s() {
    let a = device(1);
    let mut c = cathedral_at(
        C1,
        "federate 10.0.0.2 4500\nfederate 10.0.0.1 4500\n",
        &[&a],
    );
    let mut r = rng();
    let flags = INFO_FLAG_SKIP_AMBRY | INFO_FLAG_REMEMBRANCE;
    c.handle_datagram(now(0), a.addr, &info(&a, WALL, flags, 0, 0), &mut r)
        .unwrap();
    let got = bodies_to(&mut c, a.addr, &a, WALL);
    let [OfferBody::Remembrance(list)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(
        list.entries(),
        vec![C1, C2],
        "own address skipped as a peer"
    );
    c.handle_datagram(now(5), a.addr, &info(&a, WALL + 5, flags, 0, 0), &mut r)
        .unwrap();
    assert!(bodies_to(&mut c, a.addr, &a, WALL + 5).is_empty());
    c.handle_datagram(now(15), a.addr, &info(&a, WALL + 15, flags, 0, 0), &mut r)
        .unwrap();
    assert_eq!(bodies_to(&mut c, a.addr, &a, WALL + 15).len(), 1);
    assert_eq!(c.counters().remembrances_sent, 2);
}

#[test]
fn federated_tunnels_are_relayed_cathedral_to_cathedral() {
    let (a, b) = (device(1), device(2));
    let sync = Key32::new([0x77; 32]);
    let mut c1 = cathedral_at(C1, "federate 10.0.0.2 4500\n", &[&a, &b]);
    let mut c2 = cathedral_at(C2, "federate 10.0.0.1 4500\n", &[&a, &b]);
    c1.set_federation(sync.clone(), false);
    c2.set_federation(sync.clone(), false);
    let mut r = rng();
    let (rx_a, rx_b) = (0x0102_0001, 0x0201_0001);
    let skip = INFO_FLAG_SKIP_AMBRY;
    // A registers at C1, which federates the INFO (and a P2P_INFO) to C2.
    c1.handle_datagram(now(0), a.addr, &info(&a, WALL, skip, 0, rx_a), &mut r)
        .unwrap();
    let out: Vec<_> = std::iter::from_fn(|| c1.poll_transmit()).collect();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(to, _)| *to == C2));
    for (_, pkt) in &out {
        // Only from a configured peer.
        let stranger = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 4500);
        assert!(c2.handle_datagram(now(0), stranger, pkt, &mut r).is_err());
    }
    c2.handle_datagram(now(0), C1, &out[0].1, &mut r).unwrap();
    assert_eq!(
        c2.handle_datagram(now(0), C1, &out[1].1, &mut r),
        Err(Dropped::P2pInfoIgnored),
        "P2P_INFO needs cathedral_p2p_sync"
    );
    assert_eq!(c2.tunnel_address((FLOCK, FLOCK, a.tunnel)), Some(C1));
    assert_eq!(c2.poll_transmit(), None, "no reply to a federated INFO");
    // A forged CATACOMB (wrong sync secret) from the peer is rejected.
    let mut wrong = cathedral_at(C1, "federate 10.0.0.2 4500\n", &[&a, &b]);
    wrong.set_federation(Key32::new([1; 32]), false);
    wrong
        .handle_datagram(now(0), a.addr, &info(&a, WALL, skip, 0, rx_a), &mut r)
        .unwrap();
    let (_, forged) = wrong.poll_transmit().unwrap();
    assert!(matches!(
        c2.handle_datagram(now(0), C1, &forged, &mut r),
        Err(Dropped::Offer(_))
    ));

    // B registers at C2. Its peer is federated and p2p sync is off: no
    // reply, B keeps sending to its own cathedral (the relay).
    c2.handle_datagram(now(1), b.addr, &info(&b, WALL + 1, skip, 0, rx_b), &mut r)
        .unwrap();
    let mut to_c1 = Vec::new();
    let mut replied = false;
    while let Some((to, pkt)) = c2.poll_transmit() {
        if to == C1 {
            to_c1.push(pkt);
        } else {
            assert_eq!(to, b.addr);
            replied = true;
        }
    }
    assert!(!replied);
    c1.handle_datagram(now(1), C2, &to_c1[0], &mut r).unwrap();
    // Data from B to A at C2 goes to C1, and C1 gives it to A.
    let mut pkt = DataHeader {
        spi: rx_a,
        pn: 1,
        flock_src: FLOCK,
        flock_dst: FLOCK,
    }
    .to_bytes()
    .to_vec();
    pkt.extend_from_slice(&[0xee; 60]);
    c2.handle_datagram(now(2), b.addr, &pkt, &mut r).unwrap();
    assert_eq!(c2.poll_transmit(), Some((C1, pkt.clone())));
    c1.handle_datagram(now(2), C2, &pkt, &mut r).unwrap();
    assert_eq!(c1.poll_transmit(), Some((a.addr, pkt.clone())));
    // C1 does not reply to A about a federated peer without p2p sync.
    c1.handle_datagram(now(5), a.addr, &info(&a, WALL + 5, skip, 0, rx_a), &mut r)
        .unwrap();
    let out: Vec<_> = std::iter::from_fn(|| c1.poll_transmit()).collect();
    assert!(out.iter().all(|(to, _)| *to == C2), "{out:?}");
    assert_eq!(out.len(), 2, "federated again after 3 s");
    // Faster than 3 s: not federated.
    c1.handle_datagram(now(6), a.addr, &info(&a, WALL + 6, skip, 0, rx_a), &mut r)
        .unwrap();
    assert_eq!(c1.poll_transmit(), None);
    // A moves to C2 (failover): its entry there is local now, and both
    // get C2 as their relay.
    c2.handle_datagram(now(7), a.addr, &info(&a, WALL + 7, skip, 0, rx_a), &mut r)
        .unwrap();
    assert_eq!(c2.tunnel_address((FLOCK, FLOCK, a.tunnel)), Some(a.addr));
    let got: Vec<_> = std::iter::from_fn(|| c2.poll_transmit())
        .filter(|(to, _)| *to == a.addr)
        .collect();
    let o = open_from_cathedral(&got[0].1, &a.cs, FLOCK, a.id, WALL + 7).unwrap();
    let OfferBody::Info(i) = o.body().unwrap() else {
        panic!("not an INFO")
    };
    assert_eq!((i.peer_ip, i.peer_port), (*C2.ip(), C2.port()));
}

#[test]
fn p2p_info_is_copied_with_p2p_sync() {
    let a = device(1);
    let sync = Key32::new([0x77; 32]);
    let mut c1 = cathedral_at(C1, "federate 10.0.0.2 4500\n", &[&a]);
    let mut c2 = cathedral_at(C2, "federate 10.0.0.1 4500\n", &[&a]);
    c1.set_federation(sync.clone(), true);
    c2.set_federation(sync, true);
    let mut r = rng();
    c1.handle_datagram(
        now(0),
        a.addr,
        &info(&a, WALL, INFO_FLAG_SKIP_AMBRY, 0, 1),
        &mut r,
    )
    .unwrap();
    let out: Vec<_> = std::iter::from_fn(|| c1.poll_transmit()).collect();
    for (_, pkt) in &out {
        c2.handle_datagram(now(0), C1, pkt, &mut r).unwrap();
    }
    assert_eq!(c2.counters().federated_in, 2);
}

#[test]
fn data_to_a_capped_tunnel_is_dropped_over_its_bandwidth() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral_at(C1, "", &[&a, &b]);
    let mut r = rng();
    let skip = INFO_FLAG_SKIP_AMBRY;
    let (rx_a, rx_b) = (0x0102_0001, 0x0201_0001);
    c.handle_datagram(now(0), a.addr, &info(&a, WALL, skip, 0, rx_a), &mut r)
        .unwrap();
    c.handle_datagram(now(0), b.addr, &info(&b, WALL, skip, 0, rx_b), &mut r)
        .unwrap();
    while c.poll_transmit().is_some() {}
    let packet = |spi: u32| {
        let mut p = DataHeader {
            spi,
            pn: 1,
            flock_src: FLOCK,
            flock_dst: FLOCK,
        }
        .to_bytes()
        .to_vec();
        p.resize(1000, 0xee);
        p
    };
    // B (identity 0x2c) is capped at 8 Mbit/s = 1 MiB per second.
    let to_b = (0..2000)
        .filter(|_| {
            c.handle_datagram(now(1), a.addr, &packet(rx_b), &mut r)
                .is_ok()
        })
        .count();
    assert_eq!(to_b, 1049);
    assert_eq!(c.counters().bandwidth_drops, 951);
    // A is unlimited.
    let to_a = (0..2000)
        .filter(|_| {
            c.handle_datagram(now(1), b.addr, &packet(rx_a), &mut r)
                .is_ok()
        })
        .count();
    assert_eq!(to_a, 2000);
    // A second later B's bucket has drained.
    assert!(
        c.handle_datagram(now(2), a.addr, &packet(rx_b), &mut r)
            .is_ok()
    );
}

#[test]
fn a_reload_keeps_allowed_registrations_and_drops_the_rest() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral_at(C1, "", &[&a, &b]);
    let mut r = rng();
    let skip = INFO_FLAG_SKIP_AMBRY;
    let (rx_a, rx_b) = (0x0102_0001, 0x0201_0001);
    c.handle_datagram(now(0), a.addr, &info(&a, WALL, skip, 0, rx_a), &mut r)
        .unwrap();
    c.handle_datagram(now(0), b.addr, &info(&b, WALL, skip, 0, rx_b), &mut r)
        .unwrap();
    assert_eq!(c.tunnels(), 2);
    let dir = || {
        let mut d = MemoryDirectory::new();
        for x in [&a, &b] {
            d.add_client(FLOCK, x.id, x.cs.clone(), x.cosk.public_key());
        }
        Box::new(d)
    };
    // Same allows, B's cap lifted: both stay, B's data is no longer capped.
    let (s, _) = parse_settings("flock cafe0000 {\nallow 2b spi 01 0\nallow 2c spi 02 0\n}\n");
    c.set_settings(s, dir());
    assert_eq!(c.tunnels(), 2);
    let mut pkt = DataHeader {
        spi: rx_b,
        pn: 1,
        flock_src: FLOCK,
        flock_dst: FLOCK,
    }
    .to_bytes()
    .to_vec();
    pkt.resize(1000, 0xee);
    assert!((0..2000).all(|_| c.handle_datagram(now(1), a.addr, &pkt, &mut r).is_ok()));
    // Owner 02 no longer allowed: B's registration goes, A's stays.
    let (s, _) = parse_settings("flock cafe0000 {\nallow 2b spi 01 0\n}\n");
    c.set_settings(s, dir());
    assert_eq!(c.tunnels(), 1);
    assert_eq!(c.tunnel_address((FLOCK, FLOCK, a.tunnel)), Some(a.addr));
    assert_eq!(c.tunnel_address((FLOCK, FLOCK, b.tunnel)), None);
    // The flock is gone: everything goes.
    let (s, _) = parse_settings("flock beef0000 {\nallow 2b spi 01 0\n}\n");
    c.set_settings(s, dir());
    assert_eq!(c.tunnels(), 0);
}
