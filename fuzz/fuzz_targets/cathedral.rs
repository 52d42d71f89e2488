//! Arbitrary bytes into both sides of the cathedral protocol: a client's
//! packet handler (plain and shrouded) and the checks a cathedral applies
//! to client and federation offers. Neither may panic, whatever arrives.
//!
//! The first byte picks the path. Besides raw bytes, the target also seals
//! the fuzzer's bytes under the right keys so that the paths after
//! authentication (type dispatch, body decoding, signature checks,
//! CATACOMB re-encryption) see arbitrary plaintexts too.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::cathedral::{
    CathedralClient, ClientConfig, LiturgySettings, MemoryDirectory, catacomb_reencrypt,
    check_offer,
};
use chantry_core::entropy::SeededEntropy;
use chantry_core::kdf::{self, OfferLabel};
use chantry_core::secret::{Key32, Secret};
use chantry_core::time::{Instant, Now};
use chantry_core::wire::offer::{DATA_LEN, EXTRA_LEN, Magic, OFFER_LEN, Offer, OfferHeader};
use chantry_core::wire::shroud;
use libfuzzer_sys::fuzz_target;

const CATHEDRAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4500);
const FLOCK: u64 = 0xcafe_ba01;
const ID: u32 = 0x0bad_f00d;
const CS: [u8; 32] = [0x3d; 32];
const SYNC: [u8; 32] = [0x20; 32];
const WALL: u64 = 1_767_225_600;

/// A libsodium-layout COSK: RFC 8032 §7.1 TEST 1 (seed || public key).
const COSK: [u8; 64] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fn cosk() -> Secret<64> {
    Secret::new(COSK)
}

fn client(shroud_on: bool, rng: &mut SeededEntropy) -> CathedralClient {
    let mut cfg = ClientConfig::new(ID, Key32::new(CS), cosk(), FLOCK, 0x0102, CATHEDRAL);
    cfg.has_kek = true;
    cfg.remembrance = true;
    cfg.nat_port = Some(4501);
    cfg.liturgy = Some(LiturgySettings {
        id: 1,
        group: 0,
        hidden: false,
        signaling: None,
    });
    if shroud_on {
        cfg.shroud_mtu = Some(1422);
    }
    let now = Now::new(Instant::ZERO, WALL);
    match CathedralClient::new(cfg, now, rng) {
        Ok(c) => c,
        Err(e) => panic!("fixed configuration refused: {e}"),
    }
}

fn directory() -> MemoryDirectory {
    let mut d = MemoryDirectory::new();
    let mut public = [0u8; 32];
    public.copy_from_slice(&COSK[32..]);
    d.add_client(FLOCK, ID, Key32::new(CS), public);
    d
}

/// Seals the fuzzer's bytes as data+extra of an offer under `label`, with
/// the timestamp forced into the window so the checks after it run.
fn sealed(
    magic: Magic,
    label: OfferLabel,
    secret: &[u8; 32],
    spi: u32,
    bytes: &[u8],
) -> [u8; OFFER_LEN] {
    let mut data = [0u8; DATA_LEN];
    let mut extra = [0u8; EXTRA_LEN];
    for (d, b) in data.iter_mut().chain(extra.iter_mut()).zip(bytes) {
        *d = *b;
    }
    data[1..9].copy_from_slice(&WALL.to_be_bytes());
    let seed = [0x11; 64];
    let header = OfferHeader::new(magic, FLOCK, FLOCK, spi, seed);
    let key = kdf::offer_key(&Key32::new(*secret), label, &seed, FLOCK, 0);
    Offer::from_parts(header, data, extra).seal(&key)
}

fn drain(c: &mut CathedralClient) {
    while c.poll_event().is_some() {}
    while c.poll_transmit().is_some() {}
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, bytes)) = input.split_first() else {
        return;
    };
    let mut rng = SeededEntropy::from_u64(u64::from(mode));
    let now = Now::new(Instant::from_secs(1), WALL);
    let dir = directory();
    let sync = Key32::new(SYNC);
    match mode % 6 {
        0 => {
            let mut c = client(false, &mut rng);
            let _ = c.handle_datagram(now, CATHEDRAL, bytes);
            c.handle_timeout(now, &mut rng);
            drain(&mut c);
        }
        1 => {
            let mut c = client(false, &mut rng);
            let pkt = sealed(Magic::Katedral, OfferLabel::Cathedral, &CS, ID, bytes);
            let _ = c.handle_datagram(now, CATHEDRAL, &pkt);
            drain(&mut c);
        }
        2 => {
            let mut c = client(true, &mut rng);
            let _ = c.handle_datagram(now, CATHEDRAL, bytes);
            let pkt = sealed(Magic::Katedral, OfferLabel::Cathedral, &CS, ID, bytes);
            let header = shroud::ShroudHeader::random(&mut rng);
            let datagram = shroud::shroud(c.shroud_key(), &header, &pkt, 1422, &mut rng);
            let _ = c.handle_datagram(now, CATHEDRAL, &datagram);
            drain(&mut c);
        }
        3 => {
            let _ = check_offer(bytes, WALL, &dir, Some(&sync));
            let _ = check_offer(bytes, WALL, &dir, None);
        }
        4 => {
            for magic in [Magic::Katedral, Magic::Ciborium] {
                let pkt = sealed(magic, OfferLabel::Cathedral, &CS, ID, bytes);
                if let Ok(v) = check_offer(&pkt, WALL, &dir, None) {
                    let _ = catacomb_reencrypt(&v, FLOCK, &sync, &[0x22; 64]);
                }
            }
        }
        _ => {
            let pkt = sealed(Magic::Catacomb, OfferLabel::Catacomb, &SYNC, ID, bytes);
            if let Ok(v) = check_offer(&pkt, WALL, &dir, Some(&sync))
                && let Ok(fed) = catacomb_reencrypt(&v, FLOCK, &sync, &[0x22; 64])
            {
                let _ = check_offer(&fed, WALL, &dir, Some(&sync));
            }
        }
    }
});
