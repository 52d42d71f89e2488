//! Arbitrary datagrams into a running cathedral (registry, INFO replies,
//! relay) and arbitrary text into its settings parser. Nothing may panic.
//!
//! The input is split into datagrams at 0xff bytes; each goes to the
//! same cathedral in turn, so registrations made by one datagram can be
//! exercised by the next. The first one is also parsed as a settings file.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::cathedral::MemoryDirectory;
use chantry_core::cathedral::server::Cathedral;
use chantry_core::cathedral::settings::parse_settings;
use chantry_core::entropy::SeededEntropy;
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use libfuzzer_sys::fuzz_target;

const PUBLIC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4500);
const FLOCK: u64 = 0xcafe_ba00;

fuzz_target!(|data: &[u8]| {
    let _ = parse_settings(&String::from_utf8_lossy(data));
    let (settings, _) =
        parse_settings("flock cafeba00 {\nallow 0badf00d spi 01 0\nallow 0badf00e spi 02 0\n}\n");
    let mut dir = MemoryDirectory::new();
    dir.add_client(FLOCK, 0x0bad_f00d, Key32::new([0x3d; 32]), [0x11; 32]);
    let mut c = Cathedral::new(PUBLIC, settings, Box::new(dir));
    let mut rng = SeededEntropy::from_u64(1);
    for (i, d) in data.split(|b| *b == 0xff).enumerate() {
        let now = Now::new(Instant::from_secs(i as u64), 1_767_225_600 + i as u64);
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, (i % 4) as u8), 5000);
        let _ = c.handle_datagram(now, from, d, &mut rng);
        c.handle_timeout(now);
        while c.poll_transmit().is_some() {}
    }
});
