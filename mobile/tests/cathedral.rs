//! Cathedral profiles: two engines that know only their cathedral (one made
//! from a vicar file and its passphrase, one from a sanctum.conf with key
//! bytes) register with a simulated cathedral, receive their shared secret
//! as ambries wrapped under their KEKs, exchange keys through the
//! cathedral's relay and pass traffic.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::ambry::{self, BundleHead};
use chantry_core::entropy::SeededEntropy;
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::secret::{Key32, Secret};
use chantry_core::vicar::{self, VicarProfile};
use chantry_core::wire::offer::{
    AmbryBody, InfoBody, Magic, Offer, OfferBody, OfferHeader, PacketKind, classify,
};
use chantry_mobile::{Endpoint, EngineEvent, Profile, ProfileKeys, TunnelState, Verdict};
use common::*;

const CATHEDRAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 50), 4600);
const FLOCK: u64 = 0xcafe01;
const PASSPHRASE: &str = "correct horse battery";

/// One device as the cathedral knows it.
struct Device {
    addr: SocketAddrV4,
    id: u32,
    tunnel: u16,
    kek: Key32,
    cs: Key32,
}

fn device(i: u8) -> Device {
    Device {
        addr: addr(i),
        id: 0x2a + u32::from(i),
        tunnel: if i == 1 { 0x0102 } else { 0x0201 },
        kek: Key32::new([0x10 + i; 32]),
        cs: Key32::new([0x20 + i; 32]),
    }
}

fn cosk(i: u8) -> Secret<64> {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[0x30 + i; 32]);
    Secret::new(sk.to_keypair_bytes())
}

/// A KATEDRAL offer from the cathedral to `d`.
fn from_cathedral(d: &Device, body: &OfferBody, wall: u64) -> Vec<u8> {
    let seed = [0x77u8; 64];
    let header = OfferHeader::new(Magic::Katedral, FLOCK, FLOCK, d.id, seed);
    let key = kdf::offer_key(&d.cs, OfferLabel::Cathedral, &seed, FLOCK, 0);
    Offer::new(header, wall, body, [0; 64]).seal(&key).to_vec()
}

/// The shared secret of the pair, wrapped for `d` (generation 7).
fn ambry_for(d: &Device, secret: &Key32, wall: u64) -> AmbryBody {
    let head = BundleHead {
        expires: ambry::expires_for(wall, 30).expect("30 days fit"),
        generation: 7,
        seed: [0x55; 64],
    };
    let dkek = kdf::derived_kek(&d.kek, FLOCK, FLOCK);
    let e = ambry::wrap(&dkek, &head, FLOCK, FLOCK, d.tunnel, secret);
    AmbryBody {
        tunnel: d.tunnel,
        expires: head.expires,
        generation: head.generation,
        seed: head.seed,
        key: e.key,
        tag: e.tag,
    }
}

/// A cathedral that answers every INFO with an INFO reply (relay) and, the
/// first time, the device's ambry, and relays everything else to the
/// other device.
fn cathedral(devices: [Device; 2]) -> Relay {
    let secret = Key32::new([0x99; 32]);
    let mut sent_ambry = [false; 2];
    Box::new(move |from, bytes| {
        let Some(i) = devices.iter().position(|d| d.addr == from) else {
            return Vec::new();
        };
        let other = devices[1 - i].addr;
        if classify(bytes) != Some(PacketKind::Offer(Magic::Katedral)) {
            return vec![(other, bytes.to_vec())];
        }
        let d = &devices[i];
        let wall = WALL0 + 5;
        let info = InfoBody {
            peer_ip: *CATHEDRAL.ip(),
            peer_port: CATHEDRAL.port(),
            ..InfoBody::default()
        };
        let mut out = vec![(from, from_cathedral(d, &OfferBody::Info(info), wall))];
        if !sent_ambry[i] {
            sent_ambry[i] = true;
            let body = OfferBody::Ambry(ambry_for(d, &secret, wall));
            out.push((from, from_cathedral(d, &body, wall)));
        }
        out
    })
}

fn vicar_profile(d: &Device) -> Profile {
    let v = VicarProfile {
        cathedral_id: d.id,
        cathedral_ip: *CATHEDRAL.ip(),
        cathedral_port: CATHEDRAL.port(),
        flock: FLOCK,
        tunnel: d.tunnel,
        kek: d.kek.clone(),
        cosk: cosk(1),
        cathedral_secret: d.cs.clone(),
    };
    let file = vicar::encrypt(PASSPHRASE.as_bytes(), &v, &mut SeededEntropy::from_u64(3))
        .expect("a valid passphrase");
    Profile::Vicar {
        file: file.to_vec(),
        passphrase: PASSPHRASE.into(),
        tunnel: "10.9.0.1/30 1400".into(),
    }
}

fn conf_profile(d: &Device) -> Profile {
    let text = format!(
        "instance phone\nspi {:#06x}\ncathedral {CATHEDRAL}\ncathedral_id {:#x}\n\
         cathedral_flock {FLOCK:#x}\ncathedral_secret /x/cs\ncathedral_cosk /x/cosk\n\
         kek /x/kek\ntunnel 10.9.0.2/30 1400\n",
        d.tunnel, d.id
    );
    Profile::Conf {
        text,
        keys: ProfileKeys {
            secret: None,
            kek: Some(d.kek.expose().to_vec()),
            cathedral_secret: Some(d.cs.expose().to_vec()),
            cathedral_cosk: Some(cosk(2).expose().to_vec()),
        },
    }
}

#[test]
fn relayed_tunnel_keyed_by_ambries() {
    let (a, b) = (device(1), device(2));
    let mut net = Net::new();
    net.add(a.addr, vicar_profile(&a));
    net.add(b.addr, conf_profile(&b));
    for n in net.nodes.values() {
        assert_eq!(n.engine.state(), TunnelState::WaitingForSecret);
        assert_eq!(n.engine.settings().peer, Some(Endpoint::from(CATHEDRAL)));
        assert_eq!(
            n.engine
                .send_packet(ip_packet(80, [10, 9, 0, 1], [10, 9, 0, 2], 1)),
            Verdict::NoKey
        );
    }
    net.relay = Some((CATHEDRAL, cathedral([device(1), device(2)])));
    assert!(net.until_up(200), "keys through the cathedral within 20 s");
    for d in [&a, &b] {
        let n = net.node(d.addr);
        let s = n.engine.stats();
        assert_eq!(s.ambry_generation, 7);
        assert!(s.relayed, "{s:?}");
        assert_eq!(s.peer, Some(Endpoint::from(CATHEDRAL)));
        let events = n.take_events();
        assert!(events.contains(&EngineEvent::AmbryInstalled { generation: 7 }));
        assert!(events.contains(&EngineEvent::PeerDiscovered {
            peer: Endpoint::from(CATHEDRAL),
            relayed: true
        }));
    }
    let p = ip_packet(300, [10, 9, 0, 1], [10, 9, 0, 2], 42);
    assert_eq!(
        net.node(a.addr).engine.send_packet(p.clone()),
        Verdict::Accepted
    );
    let q = ip_packet(200, [10, 9, 0, 2], [10, 9, 0, 1], 43);
    assert_eq!(
        net.node(b.addr).engine.send_packet(q.clone()),
        Verdict::Accepted
    );
    // Two hops: to the cathedral, then on to the peer.
    net.step(10, &mut |_| {});
    net.step(10, &mut |_| {});
    assert!(net.node(b.addr).take_packets().contains(&p));
    assert!(net.node(a.addr).take_packets().contains(&q));
}

#[test]
fn an_ambry_for_another_kek_is_refused() {
    let (a, b) = (device(1), device(2));
    let mut net = Net::new();
    net.add(b.addr, conf_profile(&b));
    // The cathedral wraps B's ambry under A's KEK.
    let wrong = Device {
        kek: a.kek.clone(),
        ..device(2)
    };
    net.relay = Some((CATHEDRAL, cathedral([a, wrong])));
    for _ in 0..20 {
        net.step(100, &mut |_| {});
    }
    let n = net.node(b.addr);
    assert_eq!(n.engine.state(), TunnelState::WaitingForSecret);
    assert!(
        n.take_events().iter().any(
            |e| matches!(e, EngineEvent::Error { message } if message.contains("ambry refused"))
        ),
    );
}
