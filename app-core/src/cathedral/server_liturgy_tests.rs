//! Liturgy through the whole sans-IO cathedral (behaviour.md §8.7): signed
//! LITURGY offers in, sealed replies out, federation to a peer cathedral,
//! and hostile liturgy offers dropped and counted.

use std::net::Ipv4Addr;

use super::*;
use crate::cathedral::Cosk;
use crate::cathedral::checks::MemoryDirectory;
use crate::cathedral::client::open_from_cathedral;
use crate::cathedral::settings::parse_settings;
use crate::entropy::SeededEntropy;
use crate::secret::Secret;
use crate::wire::offer::LITURGY_FLAG_REMEMBRANCE;

const FLOCK: u64 = 0xcafe_0000;
const WALL: u64 = 1_700_000_000;
const C1: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4500);
const C2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4500);

/// A liturgy member: cathedral identity 0x30 + i, peer id i.
struct Member {
    identity: u32,
    peer: u8,
    cs: Key32,
    cosk: Cosk,
    addr: SocketAddrV4,
}

fn member(i: u8) -> Member {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[0x50 + i; 32]);
    Member {
        identity: 0x30 + u32::from(i),
        peer: i,
        cs: Key32::new([0x60 + i; 32]),
        cosk: Cosk::from_secret_key(&Secret::new(sk.to_keypair_bytes())).unwrap(),
        addr: SocketAddrV4::new(Ipv4Addr::new(192, 168, 80, i), 4500),
    }
}

fn now(s: u64) -> Now {
    Now::new(Instant::from_secs(s), WALL + s)
}

/// A cathedral at `public` where member i's identity owns peer id i.
fn cathedral_at(public: SocketAddrV4, extra: &str, members: &[&Member]) -> Cathedral {
    let allows: String = members
        .iter()
        .map(|m| format!("allow {:x} spi {:02x} 0\n", m.identity, m.peer))
        .collect();
    let (settings, problems) = parse_settings(&format!("{extra}flock cafe0000 {{\n{allows}}}\n"));
    assert!(problems.is_empty(), "{problems:?}");
    let mut dir = MemoryDirectory::new();
    for m in members {
        dir.add_client(FLOCK, m.identity, m.cs.clone(), m.cosk.public_key());
    }
    Cathedral::new(public, settings, Box::new(dir))
}

/// A signed LITURGY from `m` claiming peer id `id`, for `flock_dst`.
fn liturgy(m: &Member, id: u8, group: u16, hidden: bool, flags: u32, flock_dst: u64) -> Vec<u8> {
    let seed = [0x22u8; 64];
    let header = OfferHeader::new(Magic::Katedral, FLOCK, flock_dst, m.identity, seed);
    let body = LiturgyBody {
        id,
        group,
        peers: [0; 255],
        hidden: u8::from(hidden),
        flags,
    };
    let mut o = Offer::new(header, WALL, &OfferBody::Liturgy(body), [0; 64]);
    m.cosk.sign_offer(&mut o);
    let key = kdf::offer_key(&m.cs, OfferLabel::Cathedral, &seed, FLOCK, 0);
    o.seal(&key).to_vec()
}

fn join(c: &mut Cathedral, t: u64, m: &Member, group: u16, hidden: bool) {
    c.handle_datagram(
        now(t),
        m.addr,
        &liturgy(m, m.peer, group, hidden, 0, 0),
        &mut rng(),
    )
    .unwrap();
}

fn rng() -> SeededEntropy {
    SeededEntropy::from_u64(11)
}

/// The replies queued for `m`, opened with its cathedral secret.
fn replies_to(c: &mut Cathedral, m: &Member) -> Vec<OfferBody> {
    let mut v = Vec::new();
    while let Some((to, pkt)) = c.poll_transmit() {
        assert_eq!(to, m.addr, "a reply to someone else");
        let o = open_from_cathedral(&pkt, &m.cs, FLOCK, m.identity, WALL).unwrap();
        v.push(o.body().unwrap());
    }
    v
}

fn peers_in(body: &OfferBody) -> (u16, Vec<u8>) {
    let OfferBody::Liturgy(l) = body else {
        panic!("not a LITURGY: {body:?}")
    };
    assert_eq!((l.id, l.hidden, l.flags), (0, 0, 0));
    (
        l.group,
        (0..=254u8)
            .filter(|&i| l.peers[usize::from(i)] == 1)
            .collect(),
    )
}

#[test]
fn members_are_told_the_visible_members_of_their_group() {
    let ms: Vec<Member> = (1..=5).map(member).collect();
    let refs: Vec<&Member> = ms.iter().collect();
    let mut c = cathedral_at(C1, "", &refs);
    join(&mut c, 0, &ms[0], 7, false);
    assert_eq!(
        replies_to(&mut c, &ms[0])
            .iter()
            .map(peers_in)
            .collect::<Vec<_>>(),
        vec![(7, vec![])]
    );
    join(&mut c, 0, &ms[1], 7, false);
    join(&mut c, 0, &ms[2], 7, true);
    join(&mut c, 0, &ms[3], 7, true);
    join(&mut c, 0, &ms[4], 9, false);
    while c.poll_transmit().is_some() {}
    // Three seconds on, each may ask again.
    join(&mut c, 3, &ms[0], 7, false);
    assert_eq!(peers_in(&replies_to(&mut c, &ms[0])[0]), (7, vec![2, 3, 4]));
    join(&mut c, 3, &ms[2], 7, true);
    assert_eq!(peers_in(&replies_to(&mut c, &ms[2])[0]), (7, vec![1, 2]));
    join(&mut c, 3, &ms[4], 9, false);
    assert_eq!(peers_in(&replies_to(&mut c, &ms[4])[0]), (9, vec![]));
    let k = c.counters();
    assert_eq!((k.liturgy, k.liturgy_replies, k.dropped), (8, 8, 0));
    assert_eq!(c.liturgy_entries(), (5, 0));
}

#[test]
fn fast_updates_are_recorded_but_not_answered_and_remembrance_is_sent() {
    let m = member(1);
    let mut c = cathedral_at(C1, "federate 10.0.0.2 4500\n", &[&m]);
    let with_remembrance = liturgy(&m, 1, 7, false, LITURGY_FLAG_REMEMBRANCE, 0);
    c.handle_datagram(now(0), m.addr, &with_remembrance, &mut rng())
        .unwrap();
    let bodies: Vec<OfferBody> = std::iter::from_fn(|| c.poll_transmit())
        .filter(|(to, _)| *to == m.addr)
        .map(|(_, p)| {
            open_from_cathedral(&p, &m.cs, FLOCK, m.identity, WALL)
                .unwrap()
                .body()
                .unwrap()
        })
        .collect();
    assert!(matches!(bodies[0], OfferBody::Remembrance(_)), "{bodies:?}");
    assert!(matches!(bodies[1], OfferBody::Liturgy(_)), "{bodies:?}");
    c.handle_datagram(now(1), m.addr, &with_remembrance, &mut rng())
        .unwrap();
    assert_eq!(c.poll_transmit(), None, "too fast: nothing");
    assert_eq!(c.counters().liturgy_too_fast, 1);
}

#[test]
fn hostile_liturgy_offers_are_dropped_and_counted() {
    let (a, b) = (member(1), member(2));
    let mut c = cathedral_at(C1, "", &[&a, &b]);
    let mut r = rng();
    // A client LITURGY must name flock 0 as its destination.
    assert_eq!(
        c.handle_datagram(now(0), a.addr, &liturgy(&a, 1, 7, false, 0, FLOCK), &mut r),
        Err(Dropped::LiturgyFlock(FLOCK))
    );
    // Identity 0x31 owns peer id 1, not 2.
    assert_eq!(
        c.handle_datagram(now(0), a.addr, &liturgy(&a, 2, 7, false, 0, 0), &mut r),
        Err(Dropped::LiturgyNotAllowed {
            identity: a.identity,
            id: 2
        })
    );
    // A bad signature, a stale timestamp, a truncated offer.
    let mut forged = liturgy(&a, 1, 7, false, 0, 0);
    let n = forged.len();
    forged[n - 20] ^= 1;
    assert!(matches!(
        c.handle_datagram(now(0), a.addr, &forged, &mut r),
        Err(Dropped::Offer(_))
    ));
    assert!(matches!(
        c.handle_datagram(now(11), a.addr, &liturgy(&a, 1, 7, false, 0, 0), &mut r),
        Err(Dropped::Offer(_))
    ));
    let whole = liturgy(&a, 1, 7, false, 0, 0);
    assert!(
        c.handle_datagram(now(0), a.addr, &whole[..400], &mut r)
            .is_err()
    );
    let k = c.counters();
    assert_eq!((k.dropped, k.liturgy, c.liturgy_entries()), (5, 0, (0, 0)));
    assert_eq!(c.poll_transmit(), None);
}

#[test]
fn liturgy_federates_so_members_at_two_cathedrals_see_each_other() {
    let (a, b) = (member(1), member(2));
    let sync = Key32::new([0x77; 32]);
    let mut c1 = cathedral_at(C1, "federate 10.0.0.2 4500\n", &[&a, &b]);
    let mut c2 = cathedral_at(C2, "federate 10.0.0.1 4500\n", &[&a, &b]);
    c1.set_federation(sync.clone(), false);
    c2.set_federation(sync, false);
    let mut r = rng();
    c1.handle_datagram(now(0), a.addr, &liturgy(&a, 1, 7, false, 0, 0), &mut r)
        .unwrap();
    let out: Vec<_> = std::iter::from_fn(|| c1.poll_transmit()).collect();
    let to_c2: Vec<_> = out.iter().filter(|(to, _)| *to == C2).collect();
    assert_eq!(to_c2.len(), 1, "one CATACOMB to the peer");
    // C2 takes it (the client's signature checked), answers nobody.
    c2.handle_datagram(now(0), C1, &to_c2[0].1, &mut r).unwrap();
    assert_eq!(c2.poll_transmit(), None);
    assert_eq!(c2.liturgy_entries(), (0, 1));
    // B, at C2, is told of A.
    c2.handle_datagram(now(0), b.addr, &liturgy(&b, 2, 7, false, 0, 0), &mut r)
        .unwrap();
    let replies: Vec<_> = std::iter::from_fn(|| c2.poll_transmit())
        .filter(|(to, _)| *to == b.addr)
        .collect();
    let o = open_from_cathedral(&replies[0].1, &b.cs, FLOCK, b.identity, WALL).unwrap();
    assert_eq!(peers_in(&o.body().unwrap()), (7, vec![1]));
    // The same CATACOMB from a stranger is refused.
    let stranger = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 4500);
    assert!(
        c2.handle_datagram(now(0), stranger, &to_c2[0].1, &mut r)
            .is_err()
    );
}

#[test]
fn a_reload_forgets_members_no_longer_allowed() {
    let (a, b) = (member(1), member(2));
    let mut c = cathedral_at(C1, "", &[&a, &b]);
    join(&mut c, 0, &a, 7, false);
    join(&mut c, 0, &b, 7, false);
    assert_eq!(c.liturgy_entries(), (2, 0));
    let (settings, _) = parse_settings(&format!(
        "flock cafe0000 {{\nallow {:x} spi 01 0\n}}\n",
        a.identity
    ));
    let mut dir = MemoryDirectory::new();
    dir.add_client(FLOCK, a.identity, a.cs.clone(), a.cosk.public_key());
    c.set_settings(settings, Box::new(dir));
    assert_eq!(c.liturgy_entries(), (1, 0));
    // And the sweep forgets the silent ones.
    c.handle_timeout(now(200));
    assert_eq!(c.liturgy_entries(), (0, 0));
}
