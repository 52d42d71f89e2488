use std::net::Ipv4Addr;

use super::*;
use crate::cathedral::checks::MemoryDirectory;
use crate::cathedral::client::open_from_cathedral;
use crate::cathedral::settings::parse_settings;
use crate::cathedral::{Cosk, Rejection};
use crate::entropy::SeededEntropy;
use crate::secret::{Key32, Secret};
use crate::wire::offer::OFFER_LEN;

const FLOCK: u64 = 0xcafe_0000;
const WALL: u64 = 1_700_000_000;
const PUBLIC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 78, 1), 4500);

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

fn cathedral(devices: &[&Device]) -> Cathedral {
    let (settings, problems) =
        parse_settings("flock cafe0000 {\nallow 2b spi 01 0\nallow 2c spi 02 0\n}\n");
    assert!(problems.is_empty(), "{problems:?}");
    let mut dir = MemoryDirectory::new();
    for d in devices {
        dir.add_client(FLOCK, d.id, d.cs.clone(), d.cosk.public_key());
    }
    Cathedral::new(PUBLIC, settings, Box::new(dir))
}

fn info_from(d: &Device, magic: Magic, wall: u64, rx: u32, instance: u64) -> Vec<u8> {
    let seed = [0x11u8; 64];
    let header = OfferHeader::new(magic, FLOCK, FLOCK, d.id, seed);
    let body = InfoBody {
        tunnel: d.tunnel,
        rx_active: rx,
        instance,
        ..InfoBody::default()
    };
    let mut o = Offer::new(header, wall, &OfferBody::Info(body), [0; 64]);
    d.cosk.sign_offer(&mut o);
    let key = kdf::offer_key(&d.cs, OfferLabel::Cathedral, &seed, FLOCK, 0);
    o.seal(&key).to_vec()
}

fn data_packet(spi: u32) -> Vec<u8> {
    let h = DataHeader {
        spi,
        pn: 1,
        flock_src: FLOCK,
        flock_dst: FLOCK,
    };
    let mut p = h.to_bytes().to_vec();
    p.extend_from_slice(&[0xee; 60]);
    p
}

fn rng() -> SeededEntropy {
    SeededEntropy::from_u64(9)
}

#[test]
fn registers_replies_with_the_relay_and_relays_data() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral(&[&a, &b]);
    let mut r = rng();
    let rx_a = 0x0102_0001;
    let rx_b = 0x0201_0001;
    c.handle_datagram(
        now(0),
        a.addr,
        &info_from(&a, Magic::Katedral, WALL, rx_a, 7),
        &mut r,
    )
    .unwrap();
    assert_eq!(c.poll_transmit(), None, "no peer yet: no reply");
    c.handle_datagram(
        now(1),
        b.addr,
        &info_from(&b, Magic::Katedral, WALL, rx_b, 8),
        &mut r,
    )
    .unwrap();
    let (to, reply) = c.poll_transmit().expect("a reply to B");
    assert_eq!(to, b.addr);
    assert_eq!(reply.len(), OFFER_LEN);
    let o = open_from_cathedral(&reply, &b.cs, FLOCK, b.id, WALL + 1).unwrap();
    let OfferBody::Info(info) = o.body().unwrap() else {
        panic!("not an INFO")
    };
    assert_eq!(
        (info.peer_ip, info.peer_port),
        (*PUBLIC.ip(), PUBLIC.port())
    );
    assert_eq!(info.local_ip_raw, b.addr.ip().octets());
    assert_eq!(c.tunnels(), 2);

    // A -> B: the SPI B reported; B's address.
    c.handle_datagram(now(2), a.addr, &data_packet(rx_b), &mut r)
        .unwrap();
    assert_eq!(c.poll_transmit(), Some((b.addr, data_packet(rx_b))));
    assert_eq!(
        c.handle_datagram(now(2), a.addr, &data_packet(rx_b + 1), &mut r),
        Err(Dropped::WrongSpi(rx_b + 1))
    );
    c.handle_datagram(now(2), b.addr, &data_packet(rx_a), &mut r)
        .unwrap();
    assert_eq!(c.poll_transmit(), Some((a.addr, data_packet(rx_a))));
    let k = c.counters();
    assert_eq!(
        (k.data_relayed, k.dropped, k.registered, k.info_replies),
        (2, 1, 2, 1)
    );
}

#[test]
fn exchange_offers_go_to_the_registered_peer() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral(&[&a, &b]);
    let mut r = rng();
    let mut sac = OfferHeader::new(Magic::Sacrament, FLOCK, FLOCK, 0x0102_0003, [5; 64])
        .to_bytes()
        .to_vec();
    sac.resize(OFFER_LEN, 0x42);
    assert_eq!(
        c.handle_datagram(now(0), a.addr, &sac, &mut r),
        Err(Dropped::UnknownSender)
    );
    c.handle_datagram(
        now(0),
        a.addr,
        &info_from(&a, Magic::Katedral, WALL, 1, 7),
        &mut r,
    )
    .unwrap();
    assert_eq!(
        c.handle_datagram(now(0), a.addr, &sac, &mut r),
        Err(Dropped::UnknownReceiver)
    );
    c.handle_datagram(
        now(1),
        b.addr,
        &info_from(&b, Magic::Katedral, WALL, 2, 8),
        &mut r,
    )
    .unwrap();
    let _ = c.poll_transmit();
    c.handle_datagram(now(2), a.addr, &sac, &mut r).unwrap();
    assert_eq!(c.poll_transmit(), Some((b.addr, sac)));
}

#[test]
fn hostile_offers_are_dropped_and_counted() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral(&[&a, &b]);
    let mut r = rng();
    let good = info_from(&a, Magic::Katedral, WALL, 1, 7);
    let mut bad_sig = good.clone();
    bad_sig[200] ^= 1;
    let stale = info_from(&a, Magic::Katedral, WALL - 11, 1, 7);
    let mut wrong_flock = good.clone();
    wrong_flock[8..16].copy_from_slice(&0xdead_0000u64.to_be_bytes());
    let stranger = Device {
        id: 0x99,
        ..device(1)
    };
    let unknown = info_from(&stranger, Magic::Katedral, WALL, 1, 7);
    // Signed by B's key for A's identity.
    let forged = Device {
        cosk: device(2).cosk,
        ..device(1)
    };
    let forged = info_from(&forged, Magic::Katedral, WALL, 1, 7);
    let cases: Vec<(Vec<u8>, Dropped)> = vec![
        (
            good[..300].to_vec(),
            Dropped::Offer(Rejection::TooShort(300)),
        ),
        (vec![0; 10], Dropped::TooShort(10)),
        (bad_sig, Dropped::Offer(Rejection::Auth)),
        (
            stale,
            Dropped::Offer(Rejection::Stale {
                timestamp: WALL - 11,
                now: WALL,
            }),
        ),
        (
            wrong_flock,
            Dropped::Offer(Rejection::UnknownFlock(0xdead_0000)),
        ),
        (
            unknown,
            Dropped::Offer(Rejection::UnknownIdentity {
                flock: FLOCK,
                identity: 0x99,
            }),
        ),
        (forged, Dropped::Offer(Rejection::BadSignature)),
        (
            data_packet(0x0201_0001),
            Dropped::FlocksNotForwardable {
                src: FLOCK,
                dst: FLOCK,
            },
        ),
    ];
    let n = cases.len() as u64;
    // The data case: a registry-less flock check passes, so use another
    // flock pair in its header to make it fail.
    for (packet, want) in cases {
        let mut packet = packet;
        if matches!(want, Dropped::FlocksNotForwardable { .. }) {
            packet[24..32].copy_from_slice(&0xbeef_0000u64.to_be_bytes());
            let got = c.handle_datagram(now(0), a.addr, &packet, &mut r);
            assert_eq!(
                got,
                Err(Dropped::FlocksNotForwardable {
                    src: FLOCK,
                    dst: 0xbeef_0000
                })
            );
            continue;
        }
        assert_eq!(
            c.handle_datagram(now(0), a.addr, &packet, &mut r),
            Err(want)
        );
    }
    let k = c.counters();
    assert_eq!(k.dropped, n);
    assert_eq!(k.offers_rejected, n - 2);
    assert_eq!(c.tunnels(), 0);
    assert_eq!(c.poll_transmit(), None);
}

#[test]
fn an_identity_may_register_only_its_own_tunnels() {
    let a = device(1);
    let mut c = cathedral(&[&a]);
    let other = Device {
        tunnel: 0x0201,
        ..device(1)
    };
    let p = info_from(&other, Magic::Katedral, WALL, 1, 7);
    assert_eq!(
        c.handle_datagram(now(0), a.addr, &p, &mut rng()),
        Err(Dropped::NotAllowed {
            identity: a.id,
            tunnel: 0x0201
        })
    );
}

#[test]
fn nat_probes_never_create_and_tunnels_expire() {
    let a = device(1);
    let mut c = cathedral(&[&a]);
    let mut r = rng();
    assert_eq!(
        c.handle_datagram(
            now(0),
            a.addr,
            &info_from(&a, Magic::Ciborium, WALL, 1, 7),
            &mut r
        ),
        Err(Dropped::NatProbeUnknown)
    );
    c.handle_datagram(
        now(0),
        a.addr,
        &info_from(&a, Magic::Katedral, WALL, 1, 7),
        &mut r,
    )
    .unwrap();
    c.handle_timeout(now(100));
    assert_eq!(c.tunnels(), 1);
    c.handle_timeout(now(121));
    assert_eq!(c.tunnels(), 0);
}

/// The INFO reply `c` queued for `d`: its peer address and flags.
fn reply_to(c: &mut Cathedral, d: &Device, wall: u64) -> (SocketAddrV4, u32) {
    let (to, reply) = c.poll_transmit().expect("an INFO reply");
    assert_eq!(to, d.addr);
    let o = open_from_cathedral(&reply, &d.cs, FLOCK, d.id, wall).unwrap();
    let OfferBody::Info(info) = o.body().unwrap() else {
        panic!("not an INFO")
    };
    (SocketAddrV4::new(info.peer_ip, info.peer_port), info.flags)
}

/// Both devices send INFO (main path) and a NAT probe from `probe_from`
/// at second `s`; returns what each was told.
fn round(
    c: &mut Cathedral,
    devs: [(&Device, SocketAddrV4); 2],
    s: u64,
) -> [(SocketAddrV4, u32); 2] {
    let mut r = rng();
    devs.map(|(d, probe_from)| {
        c.handle_datagram(
            now(s),
            d.addr,
            &info_from(d, Magic::Katedral, WALL + s, 1, 7),
            &mut r,
        )
        .unwrap();
        // The reply is computed before this round's probe, as on the wire.
        let told = if c.tunnels() == 2 {
            reply_to(c, d, WALL + s)
        } else {
            (SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), 0)
        };
        c.handle_datagram(
            now(s),
            probe_from,
            &info_from(d, Magic::Ciborium, WALL + s, 1, 7),
            &mut r,
        )
        .unwrap();
        told
    })
}

#[test]
fn nat_tested_clients_are_told_each_others_address_after_the_cooldown() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral(&[&a, &b]);
    // Until the 15 s cooldown has passed: relay.
    for s in (0..15).step_by(5) {
        for (told, _) in round(&mut c, [(&a, a.addr), (&b, b.addr)], s) {
            // (a's first INFO has no reply: b is not registered yet.)
            if !told.ip().is_unspecified() {
                assert_eq!(told, PUBLIC, "at {s}");
            }
        }
    }
    // The probes at 15 s set both p2p addresses; the replies at 20 s name
    // them.
    round(&mut c, [(&a, a.addr), (&b, b.addr)], 15);
    let [(to_a, fa), (to_b, fb)] = round(&mut c, [(&a, a.addr), (&b, b.addr)], 20);
    assert_eq!((to_a, to_b), (b.addr, a.addr));
    assert_eq!(fa | fb, 0);
    let k = c.counters();
    assert_eq!(k.info_p2p, 2);
    assert_eq!(k.nat_changed, 0);
    assert_eq!(k.nat_probes, 10);
}

#[test]
fn a_port_changing_nat_keeps_both_sides_on_the_relay() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral(&[&a, &b]);
    let a_nat = SocketAddrV4::new(*a.addr.ip(), a.addr.port() + 1000);
    for s in (0..40).step_by(5) {
        let [(to_a, _), (to_b, _)] = round(&mut c, [(&a, a_nat), (&b, b.addr)], s);
        if s > 0 {
            assert_eq!((to_a, to_b), (PUBLIC, PUBLIC), "at {s}");
        }
    }
    let k = c.counters();
    assert_eq!(k.nat_changed, 8);
    assert_eq!(k.info_p2p, 0);
}

#[test]
fn a_p2p_address_ages_out_when_probes_stop() {
    let (a, b) = (device(1), device(2));
    let mut c = cathedral(&[&a, &b]);
    for s in (0..=20).step_by(5) {
        round(&mut c, [(&a, a.addr), (&b, b.addr)], s);
    }
    assert_eq!(c.counters().info_p2p, 2);
    // From 25 s on, a no longer probes (its NAT probes are lost, or it
    // backs off from a dead direct path): its last confirmation was at
    // 20 s, so from 40 s on both are told the relay again.
    let mut r = rng();
    for s in (25..=45).step_by(5) {
        for d in [&a, &b] {
            c.handle_datagram(
                now(s),
                d.addr,
                &info_from(d, Magic::Katedral, WALL + s, 1, 7),
                &mut r,
            )
            .unwrap();
            let (told, _) = reply_to(&mut c, d, WALL + s);
            let other = if d.id == a.id { b.addr } else { a.addr };
            let want = if s < 40 { other } else { PUBLIC };
            assert_eq!(told, want, "at {s}");
        }
        c.handle_datagram(
            now(s),
            b.addr,
            &info_from(&b, Magic::Ciborium, WALL + s, 1, 7),
            &mut r,
        )
        .unwrap();
    }
}
