//! cathedral_offer.json: INFO offers a reference client sent to its
//! cathedral (KATEDRAL and the CIBORIUM NAT probe) and an INFO reply a
//! reference cathedral builds, accepted by the reference client.

use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::aead::FIXED_NONCE;
use chantry_core::cathedral::{
    CathedralClient, CathedralEvent, ClientConfig, ClientRxError, InfoPath, MemoryDirectory,
    OfferSource, Rejection, check_offer, open_from_cathedral, verify_offer_signature,
};
use chantry_core::entropy::SeededEntropy;
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::secret::{Key32, Secret};
use chantry_core::time::{Instant, Now};
use chantry_core::wire::offer::{
    DATA_LEN, EXTRA_OFFSET, Magic, OFFER_LEN, Offer, OfferBody, OfferHeader, TAG_OFFSET,
};
use serde_json::Value;

use crate::common::{arr, hexa, hexv, key32, load_json, num};

/// Where the client believes its cathedral is (not recorded in the vector).
const CATHEDRAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4500);

/// Offsets of the INFO fields inside the 451 data bytes (wire.md §5.5).
const INFO_FIELDS: &[(&str, usize, usize)] = &[
    ("info_flags_raw", 9, 4),
    ("info_peer_ip_raw", 13, 4),
    ("info_peer_port_raw", 17, 2),
    ("info_local_ip_raw", 19, 4),
    ("info_local_port_raw", 23, 2),
    ("info_rx_active_raw", 31, 4),
    ("info_rx_pending_raw", 35, 4),
];

/// The recorded client as a [`ClientConfig`].
struct Recorded {
    cs: Key32,
    cosk: [u8; 64],
    public: [u8; 32],
    now: u64,
    cathedral_id: u32,
    flock: u64,
    flock_dst: u64,
    tunnel: u16,
    instance: u64,
}

impl Recorded {
    fn load(v: &Value) -> Self {
        let cfg = &v["client_config"];
        let cosk = hexa::<64>(v, "cosk_secret_key");
        let public = hexa::<32>(v, "cosk_public_key");
        assert_eq!(
            cosk[32..],
            public,
            "cosk secret key ends with its public key"
        );
        assert_eq!(cosk[..32], hexa::<32>(v, "cosk_seed"));
        assert!(
            cfg["kek"].as_str().unwrap_or("").starts_with("none"),
            "vector client has no KEK"
        );
        Recorded {
            cs: key32(v, "cathedral_secret"),
            cosk,
            public,
            now: num(v, "clock_realtime"),
            cathedral_id: u32::try_from(num(cfg, "cathedral_id")).expect("u32 cathedral_id"),
            flock: num(cfg, "cathedral_flock"),
            flock_dst: num(cfg, "cathedral_flock_dst"),
            tunnel: u16::try_from(num(cfg, "tun_spi")).expect("u16 tunnel id"),
            instance: num(cfg, "instance_id"),
        }
    }

    fn client(&self, cathedral_id: u32) -> CathedralClient {
        let mut cfg = ClientConfig::new(
            cathedral_id,
            self.cs.clone(),
            Secret::new(self.cosk),
            self.flock,
            self.tunnel,
            CATHEDRAL,
        );
        cfg.flock_dst = self.flock_dst;
        cfg.instance = self.instance;
        cfg.has_kek = false;
        cfg.nat_port = Some(4501);
        let now = Now::new(Instant::ZERO, self.now);
        CathedralClient::new(cfg, now, &mut SeededEntropy::from_u64(1)).expect("client config")
    }

    fn directory(&self) -> MemoryDirectory {
        let mut d = MemoryDirectory::new();
        d.add_client(self.flock, self.cathedral_id, self.cs.clone(), self.public);
        d
    }
}

/// Decrypts a recorded offer with our derivation and compares every field
/// the vector records. Returns the opened offer.
fn decode_and_compare(o: &Value, cs: &Key32) -> Offer {
    let wire = hexv(o, "wire");
    assert_eq!(wire.len() as u64, num(o, "wire_length"));
    assert_eq!(wire.len(), OFFER_LEN);
    let hp = &o["header_plaintext"];
    let header = OfferHeader::parse(&wire).expect("offer header");
    assert_eq!(header.magic.value(), num(hp, "magic"));
    assert_eq!(header.flock_src, num(hp, "flock_src"));
    assert_eq!(header.flock_dst, num(hp, "flock_dst"));
    assert_eq!(u64::from(header.spi), num(hp, "spi"));
    assert_eq!(header.seed, hexa::<64>(hp, "seed"));
    assert_eq!(hexv(o, "aad"), wire[..92]);
    assert_eq!(hexa::<12>(o, "nonce"), FIXED_NONCE);
    assert_eq!(hexv(o, "tag"), wire[TAG_OFFSET..]);

    let label = OfferLabel::from_label(
        o["offer_kdf_label"]
            .as_str()
            .expect("label string")
            .as_bytes(),
    )
    .expect("known offer label");
    assert_eq!(label, OfferLabel::Cathedral);
    let key = kdf::offer_key(
        cs,
        label,
        &header.seed,
        num(o, "offer_kdf_flock_a"),
        num(o, "offer_kdf_flock_b"),
    );
    assert_eq!(key, key32(o, "offer_key"), "offer key");
    let offer = Offer::open(&wire, &key).expect("recorded offer opens");
    let plain = hexv(o, "plaintext_data_and_extra");
    assert_eq!(plain[..DATA_LEN], offer.data()[..]);
    assert_eq!(plain[DATA_LEN..], offer.extra()[..]);

    let d = &o["data"];
    assert_eq!(u64::from(offer.data()[0]), num(d, "type"));
    assert_eq!(d["type_name"], "INFO");
    assert_eq!(offer.timestamp(), num(d, "timestamp"));
    for (field, at, len) in INFO_FIELDS {
        assert_eq!(hexv(d, field), offer.data()[*at..at + len], "{field}");
    }
    assert_eq!(hexv(d, "extra_sig"), offer.extra()[..]);
    assert_eq!(hexv(d, "signed_message_offer_data"), offer.data()[..]);
    let Ok(OfferBody::Info(info)) = offer.body() else {
        panic!("recorded offer is not INFO")
    };
    let raw_flags = hexa::<4>(d, "info_flags_raw");
    assert_eq!(info.flags, u32::from_le_bytes(raw_flags));
    assert_eq!(
        u64::from(u32::from_be_bytes(raw_flags)),
        num(d, "info_flags")
    );
    assert_eq!(info.peer_ip.octets(), hexa::<4>(d, "info_peer_ip_raw"));
    assert_eq!(
        info.peer_port.to_be_bytes(),
        hexa::<2>(d, "info_peer_port_raw")
    );
    assert_eq!(u64::from(info.tunnel), num(d, "info_tunnel"));
    assert_eq!(
        u64::from(info.ambry_generation),
        num(d, "info_ambry_generation")
    );
    assert_eq!(
        info.rx_active.to_le_bytes(),
        hexa::<4>(d, "info_rx_active_raw")
    );
    assert_eq!(
        info.rx_pending.to_le_bytes(),
        hexa::<4>(d, "info_rx_pending_raw")
    );
    assert_eq!(info.instance, num(d, "info_instance"));
    offer
}

/// Reseals `offer` with a changed extra byte (the AEAD passes, the
/// signature must not).
fn with_bad_signature(offer: &Offer, key: &Key32) -> [u8; OFFER_LEN] {
    let mut extra = *offer.extra();
    extra[17] ^= 0x01;
    Offer::from_parts(*offer.header(), *offer.data(), extra).seal(key)
}

/// Every cathedral-side rejection a recorded client offer must produce
/// when mutated. Returns the number of cases.
fn mutations(rec: &Recorded, wire: &[u8], offer: &Offer, path: InfoPath) -> usize {
    let dir = rec.directory();
    let now = rec.now;
    let ts = offer.timestamp();
    let mut n = 0;
    let reject = |pkt: &[u8], at: u64| {
        check_offer(pkt, at, &dir, None)
            .map(|_| ())
            .expect_err("mutated offer rejected")
    };

    let key = kdf::offer_key(
        &rec.cs,
        OfferLabel::Cathedral,
        &offer.header().seed,
        rec.flock,
        0,
    );
    assert_eq!(
        reject(&with_bad_signature(offer, &key), now),
        Rejection::BadSignature
    );
    n += 1;

    // Wrong flock: an unconfigured flock id, then the right id in another
    // domain (the key no longer matches).
    let mut other = wire.to_vec();
    other[8..16].copy_from_slice(&0x0000_0000_0bad_ba01u64.to_be_bytes());
    assert_eq!(reject(&other, now), Rejection::UnknownFlock(0x0bad_ba00));
    let mut domain = wire.to_vec();
    domain[15] ^= 0x03;
    assert_eq!(reject(&domain, now), Rejection::Auth);
    n += 2;

    // ±11 s is stale (our own rebuild with a shifted timestamp), ±10 s is not.
    let client = rec.client(rec.cathedral_id);
    let seed = offer.header().seed;
    for (shift, ok) in [(11i64, false), (-11, false), (10, true), (-10, true)] {
        let t = ts.checked_add_signed(shift).expect("timestamp in range");
        let pkt = client.info_offer(path, &seed, t);
        match check_offer(&pkt, now, &dir, None) {
            Ok(_) => assert!(ok, "timestamp shift {shift} accepted"),
            Err(e) => {
                assert!(!ok, "timestamp shift {shift} rejected: {e}");
                assert_eq!(e, Rejection::Stale { timestamp: t, now });
            }
        }
        n += 1;
    }
    // The recorded packet itself, with the cathedral's clock off by 11 s.
    assert_eq!(
        reject(wire, now + 11),
        Rejection::Stale {
            timestamp: ts,
            now: now + 11
        }
    );
    n += 1;

    // Unknown identity: a client of the same flock with another id.
    let stranger = rec.client(rec.cathedral_id ^ 0x100);
    let pkt = stranger.info_offer(path, &seed, ts);
    assert_eq!(
        reject(&pkt, now),
        Rejection::UnknownIdentity {
            flock: rec.flock & !0xff,
            identity: rec.cathedral_id ^ 0x100
        }
    );
    n += 1;

    for len in [0usize, 92, 622] {
        assert_eq!(reject(&wire[..len], now), Rejection::TooShort(len));
        n += 1;
    }
    let mut tag = wire.to_vec();
    tag[EXTRA_OFFSET] ^= 0x80;
    assert_eq!(reject(&tag, now), Rejection::Auth);
    n + 1
}

pub fn cathedral_offer() -> usize {
    let v = load_json("cathedral_offer.json");
    let rec = Recorded::load(&v);
    let client = rec.client(rec.cathedral_id);
    let dir = rec.directory();
    let mut cases = 0;

    for o in arr(&v, "client_to_cathedral") {
        let wire = hexv(o, "wire");
        let offer = decode_and_compare(o, &rec.cs);
        let header = offer.header();
        assert_eq!(header.spi, rec.cathedral_id);
        assert_eq!(
            (header.flock_src, header.flock_dst),
            (rec.flock, rec.flock_dst)
        );
        verify_offer_signature(&rec.public, &offer).expect("client signature verifies");
        cases += 1;

        // Our client builds the same bytes from the recorded seed/timestamp.
        let path = match header.magic {
            Magic::Katedral => InfoPath::Main,
            Magic::Ciborium => InfoPath::NatProbe,
            m => panic!("client offer with magic {m:?}"),
        };
        let ours = client.info_offer(path, &header.seed, offer.timestamp());
        assert_eq!(ours[..], wire[..], "rebuilt {path:?} offer differs");
        cases += 1;

        let verified = check_offer(&wire, rec.now, &dir, None).expect("cathedral accepts");
        let source = match path {
            InfoPath::Main => OfferSource::Client,
            InfoPath::NatProbe => OfferSource::NatProbe,
        };
        assert_eq!(verified.source(), source);
        assert_eq!(verified.identity(), rec.cathedral_id);
        assert_eq!(verified.flock(), rec.flock);
        assert_eq!(verified.body(), &offer.body().expect("typed body"));
        cases += 1;

        cases += mutations(&rec, &wire, &offer, path);
    }

    for o in arr(&v, "cathedral_to_client") {
        let wire = hexv(o, "wire");
        let offer = decode_and_compare(o, &rec.cs);
        assert_eq!(offer.header().spi, rec.cathedral_id);
        assert_eq!(num(o, "offer_kdf_flock_a"), rec.flock);
        cases += 1;

        let opened = open_from_cathedral(&wire, &rec.cs, rec.flock, rec.cathedral_id, rec.now)
            .expect("client opens the reply");
        assert_eq!(opened.data(), offer.data());

        let d = &o["data"];
        let peer = SocketAddrV4::new(
            Ipv4Addr::from(hexa::<4>(d, "info_peer_ip_raw")),
            u16::from_be_bytes(hexa::<2>(d, "info_peer_port_raw")),
        );
        let mut c = rec.client(rec.cathedral_id);
        let now = Now::new(Instant::from_secs(1), rec.now);
        let elsewhere = SocketAddrV4::new(*CATHEDRAL.ip(), 4501);
        assert_eq!(
            c.handle_datagram(now, elsewhere, &wire),
            Err(ClientRxError::NotFromCathedral(elsewhere))
        );
        let late = Now::new(Instant::from_secs(1), rec.now + 11);
        assert!(matches!(
            c.handle_datagram(late, CATHEDRAL, &wire),
            Err(ClientRxError::Stale { .. })
        ));
        assert!(c.poll_event().is_none());
        c.handle_datagram(now, CATHEDRAL, &wire)
            .expect("client accepts the reply");
        let Some(CathedralEvent::PeerInfo(info)) = c.poll_event() else {
            panic!("no peer event from the INFO reply")
        };
        assert_eq!(info.peer, Some(peer), "peer = info_peer_ip:info_peer_port");
        assert!(!info.relayed);
        assert!(info.holepunch(CATHEDRAL));
        assert_eq!(
            c.own_public_raw(),
            Some((
                hexa::<4>(d, "info_local_ip_raw"),
                hexa::<2>(d, "info_local_port_raw")
            ))
        );
        assert_eq!(c.last_heard(), Instant::from_secs(1));
        cases += 1;
    }
    cases
}
