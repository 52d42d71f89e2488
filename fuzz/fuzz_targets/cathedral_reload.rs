//! A cathedral's reload path with hostile files (behaviour.md §8.11): two
//! clients register with valid signed INFO, then the fuzzer's settings
//! text replaces the settings of the live registry, its bytes are offered
//! as a bundle (same flock and xflock) and as a remembrance file, the
//! clients send INFO again (ambry, remembrance, federation paths) and the
//! rest of the input arrives as datagrams. Nothing may panic.
//!
//! Input: segments split at 0xff. Segment 0 is the settings text, segment
//! 1 the bundle and remembrance bytes, the rest datagrams.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::ambry::Bundle;
use chantry_core::cathedral::server::Cathedral;
use chantry_core::cathedral::settings::parse_settings;
use chantry_core::cathedral::{
    CathedralClient, ClientConfig, InfoPath, MemoryDirectory, parse_remembrance_file,
};
use chantry_core::entropy::SeededEntropy;
use chantry_core::secret::{Key32, Secret};
use chantry_core::time::{Instant, Now};
use libfuzzer_sys::fuzz_target;

const PUBLIC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4500);
const FLOCK: u64 = 0xcafe_ba00;
const WALL: u64 = 1_767_225_600;

/// RFC 8032 §7.1 TEST 1 as a libsodium secret key (seed || public).
const COSK: [u8; 64] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fn client(id: u32, tunnel: u16, rng: &mut SeededEntropy) -> Option<CathedralClient> {
    let mut cfg = ClientConfig::new(id, Key32::new([id as u8; 32]), Secret::new(COSK), FLOCK, tunnel, PUBLIC);
    cfg.has_kek = true;
    cfg.remembrance = true;
    CathedralClient::new(cfg, Now::new(Instant::ZERO, WALL), rng).ok()
}

fn directory() -> MemoryDirectory {
    let mut d = MemoryDirectory::new();
    let mut public = [0u8; 32];
    public.copy_from_slice(&COSK[32..]);
    for id in [0x2b, 0x2c] {
        d.add_client(FLOCK, id, Key32::new([id as u8; 32]), public);
    }
    d
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xff);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let file = parts.next().unwrap_or_default();
    let _ = parse_remembrance_file(file);
    let mut rng = SeededEntropy::from_u64(7);
    let (Some(a), Some(b)) = (client(0x2b, 0x0102, &mut rng), client(0x2c, 0x0201, &mut rng)) else {
        return;
    };
    let (start, _) = parse_settings(
        "federate 10.99.0.1 4500\nflock cafeba00 {\nallow 2b spi 01 0\nallow 2c spi 02 9\n}\n",
    );
    let mut c = Cathedral::new(PUBLIC, start, Box::new(directory()));
    c.set_federation(Key32::new([5; 32]), true);
    let from = |i: u8| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, i), 5000);
    let info = |cl: &CathedralClient, t: u64| cl.info_offer(InfoPath::Main, &[t as u8; 64], WALL + t);
    for (t, (cl, addr)) in [(&a, from(1)), (&b, from(2))].into_iter().enumerate() {
        let _ = c.handle_datagram(Now::new(Instant::from_secs(t as u64), WALL + t as u64), addr, &info(cl, t as u64), &mut rng);
    }
    // The reload: hostile settings on a live registry, hostile bundles.
    let (settings, _) = parse_settings(&text);
    let flocks: Vec<u64> = settings.flocks.keys().copied().collect();
    c.set_settings(settings, Box::new(directory()));
    for (x, y) in [(FLOCK, FLOCK), (FLOCK, 0xaaaa_aa00)] {
        let bundle = Bundle::parse(file).ok().or_else(|| Bundle::parse_for_pair(file, x, y).ok());
        c.set_bundle(x, y, bundle);
    }
    for f in flocks.into_iter().take(4) {
        c.set_bundle(f, f, Bundle::parse(file).ok());
    }
    for t in 2..6u64 {
        let now = Now::new(Instant::from_secs(t * 4), WALL + t * 4);
        let _ = c.handle_datagram(now, from(1), &info(&a, t), &mut rng);
        let _ = c.handle_datagram(now, from(2), &info(&b, t), &mut rng);
        while c.poll_transmit().is_some() {}
    }
    for (i, d) in parts.enumerate() {
        let now = Now::new(Instant::from_secs(30 + i as u64), WALL + 30 + i as u64);
        let src = if i % 3 == 0 { SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 1), 4500) } else { from((i % 4) as u8) };
        let _ = c.handle_datagram(now, src, d, &mut rng);
        c.handle_timeout(now);
        while c.poll_transmit().is_some() {}
    }
});
