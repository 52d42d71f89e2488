//! Liturgy groups at a chantryd cathedral (behaviour.md §8.7): five
//! members send signed LITURGY offers over UDP, as liturgy-mode clients
//! do, and each reply names exactly the members it may see. Members 1 and
//! 2 are visible in group 7, 3 and 4 hidden in group 7, 5 alone in group
//! 9. A member claiming a peer id its identity does not own is dropped
//! and counted.
//!
//! Two namespaces: the cathedral `c` (192.168.78.1) and the members `a`
//! (192.168.78.2, one UDP port each), joined by a veth pair.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chantry_core::cathedral::Cosk;
use chantry_core::cathedral::client::open_from_cathedral;
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::secret::{Key32, Secret};
use chantry_core::wire::offer::{LiturgyBody, Magic, Offer, OfferBody, OfferHeader};
use chantry_e2e::cathedral::*;
use chantry_e2e::*;

const CATHEDRAL: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 1);
const MEMBERS: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 2);
const PORT: u16 = 4500;

/// Member `i`: identity 0x40 + i, which owns peer id `i` (its `spi` is
/// `i << 8`).
fn member(i: u8) -> Identity {
    Identity {
        id: 0x40 + u32::from(i),
        spi: u16::from(i) << 8,
        cs: [0x60 + i; 32],
        cosk: ed25519_dalek::SigningKey::from_bytes(&[0x70 + i; 32]),
    }
}

fn wall() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A signed LITURGY from `m` for peer id `id` (discovery, flock_dst 0).
fn liturgy(m: &Identity, id: u8, group: u16, hidden: bool) -> Vec<u8> {
    let mut seed = [0u8; 64];
    seed[0] = id;
    seed[1] = u8::from(hidden);
    let header = OfferHeader::new(Magic::Katedral, FLOCK, 0, m.id, seed);
    let body = LiturgyBody {
        id,
        group,
        peers: [0; 255],
        hidden: u8::from(hidden),
        flags: 0,
    };
    let mut o = Offer::new(header, wall(), &OfferBody::Liturgy(body), [0; 64]);
    let cosk = Cosk::from_secret_key(&Secret::new(m.cosk.to_keypair_bytes())).expect("cosk");
    cosk.sign_offer(&mut o);
    let key = kdf::offer_key(&Key32::new(m.cs), OfferLabel::Cathedral, &seed, FLOCK, 0);
    o.seal(&key).to_vec()
}

/// Sends `m`'s offer and returns the peer ids of the cathedral's LITURGY
/// reply (bounded wait).
fn ask(sock: &UdpSocket, m: &Identity, id: u8, group: u16, hidden: bool) -> Vec<u8> {
    let to = SocketAddr::V4(SocketAddrV4::new(CATHEDRAL, PORT));
    sock.send_to(&liturgy(m, id, group, hidden), to)
        .expect("send");
    let mut buf = [0u8; 2048];
    for _ in 0..5 {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let o = open_from_cathedral(&buf[..n], &Key32::new(m.cs), FLOCK, m.id, wall())
            .expect("a reply sealed for this member");
        if let Ok(OfferBody::Liturgy(l)) = o.body() {
            assert_eq!(l.group, group, "the reply names the member's group");
            return (0..=254u8)
                .filter(|&i| l.peers[usize::from(i)] == 1)
                .collect();
        }
    }
    panic!("no LITURGY reply for member {id}");
}

#[test]
fn liturgy_members_see_their_group_and_hidden_ones_never_each_other() {
    let c = Netns::new("c");
    let a = Netns::new("a");
    link(&c, CATHEDRAL, &a, MEMBERS, 28, "a");
    let dir = TempDir::new();
    let ms: Vec<Identity> = (1..=5).map(member).collect();
    let refs: Vec<&Identity> = ms.iter().collect();
    let cc = cathedral_conf(
        &dir,
        &CathedralSpec::new(SocketAddrV4::new(CATHEDRAL, PORT)),
        &refs,
    );
    let cat = Daemon::start(&c, &cc, dir.join("cathedral.log"), &[]);
    assert!(
        cat.wait_ready(Duration::from_secs(20)),
        "cathedral did not start:\n{}",
        cat.log_text()
    );
    let socks: Vec<UdpSocket> = (1..=5u16)
        .map(|i| a.udp_bind(SocketAddr::V4(SocketAddrV4::new(MEMBERS, 5000 + i))))
        .collect();
    // (group, hidden) of members 1..=5.
    let roles = [(7, false), (7, false), (7, true), (7, true), (9, false)];
    let join = |i: usize| {
        let (group, hidden) = roles[i];
        ask(&socks[i], &ms[i], ms[i].spi.to_be_bytes()[0], group, hidden)
    };
    // The first round fills the group; every member asks again once the
    // cathedral's 3 s reply limit has passed.
    for i in 0..5 {
        join(i);
    }
    std::thread::sleep(Duration::from_millis(3200));
    let seen: Vec<Vec<u8>> = (0..5).map(join).collect();
    let log = cat.log_text();
    assert_eq!(seen[0], vec![2, 3, 4], "{log}");
    assert_eq!(seen[1], vec![1, 3, 4], "{log}");
    assert_eq!(seen[2], vec![1, 2], "hidden 3 must not see hidden 4\n{log}");
    assert_eq!(seen[3], vec![1, 2], "hidden 4 must not see hidden 3\n{log}");
    assert!(seen[4].is_empty(), "group 9 is alone: {:?}", seen[4]);

    // Member 1 claiming peer id 2, which its identity does not own:
    // dropped, counted, never answered.
    socks[0]
        .send_to(
            &liturgy(&ms[0], 2, 7, false),
            SocketAddr::V4(SocketAddrV4::new(CATHEDRAL, PORT)),
        )
        .expect("send");
    let (dropped, ok) = wait_status(&cat, "dropped", |d| d >= 1, Duration::from_secs(15));
    assert!(ok, "dropped stayed {dropped}:\n{}", cat.log_text());
    let mut buf = [0u8; 2048];
    assert!(
        socks[0].recv_from(&mut buf).is_err(),
        "the refused offer was answered"
    );
    let log = cat.log_text();
    assert_eq!(last_status(&log, "liturgy"), 10, "{log}");
    assert_eq!(last_status(&log, "liturgy_replies"), 10, "{log}");
}
