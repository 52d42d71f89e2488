//! Arbitrary datagrams into a running cathedral (registry, INFO replies,
//! NAT probes, relay) and arbitrary text into its settings parser.
//! Nothing may panic.
//!
//! The input is split into steps at 0xff bytes; each goes to the same
//! cathedral in turn, so registrations made by one step can be exercised
//! by the next. The first one is also parsed as a settings file. A step's
//! first byte picks what it is:
//!
//! - 0: the rest, raw, as a datagram;
//! - 1: a correctly signed INFO (KATEDRAL) of client 1 or 2, with the
//!   fuzzer's instance and RX SPIs, from a fuzzer-chosen address;
//! - 2: the same as a CIBORIUM NAT probe (from the client's last INFO
//!   address or another one: p2p set, or a port-changing NAT);
//! - 3 with bit 6 clear: time passes (up to 255 s), so cooldowns, p2p
//!   ages and liturgy entries run out;
//! - 3 with bit 6 set: a correctly signed LITURGY of client 1 or 2 with a
//!   fuzzer-chosen peer id (often one its identity does not own), group,
//!   hidden flag and, with bit 5, a signalling wish list from the rest.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::cathedral::server::Cathedral;
use chantry_core::cathedral::settings::parse_settings;
use chantry_core::cathedral::client::{LITURGY_PEERS, LiturgySettings};
use chantry_core::cathedral::{CathedralClient, ClientConfig, InfoPath, MemoryDirectory};
use chantry_core::entropy::SeededEntropy;
use chantry_core::secret::{Key32, Secret};
use chantry_core::time::{Instant, Now};
use libfuzzer_sys::fuzz_target;

const PUBLIC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 254), 4500);
const FLOCK: u64 = 0xcafe_ba00;
const WALL: u64 = 1_767_225_600;
const IDS: [u32; 2] = [0x0bad_f00d, 0x0bad_f00e];
const TUNNELS: [u16; 2] = [0x0102, 0x0201];
const CS: [[u8; 32]; 2] = [[0x3d; 32], [0x3e; 32]];

/// A libsodium-layout COSK: RFC 8032 §7.1 TEST 1 (seed || public key),
/// shared by both identities.
const COSK: [u8; 64] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fn client(i: usize, rng: &mut SeededEntropy) -> CathedralClient {
    let cfg = ClientConfig::new(
        IDS[i],
        Key32::new(CS[i]),
        Secret::new(COSK),
        FLOCK,
        TUNNELS[i],
        PUBLIC,
    );
    match CathedralClient::new(cfg, Now::new(Instant::ZERO, WALL), rng) {
        Ok(c) => c,
        Err(e) => panic!("fixed configuration refused: {e}"),
    }
}

/// An address from two fuzzer bytes: four hosts, two ports each.
fn addr(b: u8) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 0, b & 3),
        5000 + u16::from((b >> 2) & 1),
    )
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, x) in b.iter_mut().enumerate() {
        *x = bytes.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_settings(&String::from_utf8_lossy(data));
    let (settings, _) =
        parse_settings("flock cafeba00 {\nallow 0badf00d spi 01 0\nallow 0badf00e spi 02 0\n}\n");
    let mut dir = MemoryDirectory::new();
    let mut public = [0u8; 32];
    public.copy_from_slice(&COSK[32..]);
    for i in 0..2 {
        dir.add_client(FLOCK, IDS[i], Key32::new(CS[i]), public);
    }
    let mut c = Cathedral::new(PUBLIC, settings, Box::new(dir));
    let mut rng = SeededEntropy::from_u64(1);
    let mut clients = [client(0, &mut rng), client(1, &mut rng)];
    let mut last_main = [addr(0), addr(1)];
    let mut secs = 0u64;
    for step in data.split(|b| *b == 0xff) {
        let now = Now::new(Instant::from_secs(secs), WALL + secs);
        let (&op, rest) = step.split_first().unwrap_or((&0, &[]));
        let pick = usize::from(op >> 7);
        let from = addr(rest.first().copied().unwrap_or(0));
        let _ = match op & 3 {
            0 => c.handle_datagram(now, from, rest, &mut rng),
            1 | 2 => {
                let cl = &mut clients[pick];
                cl.set_rx_spis(u32_at(rest, 1), u32_at(rest, 5));
                cl.set_instance(u64::from(u32_at(rest, 9) & 3));
                let path = if op & 3 == 1 {
                    last_main[pick] = from;
                    InfoPath::Main
                } else {
                    InfoPath::NatProbe
                };
                // A probe from the main address (p2p) or from another
                // port (a port-changing NAT), as the byte says.
                let src = if op & 4 != 0 || path == InfoPath::Main {
                    from
                } else {
                    last_main[pick]
                };
                let pkt = cl.info_offer(path, &[op; 64], now.wall);
                c.handle_datagram(now, src, &pkt, &mut rng)
            }
            _ if op & 0x40 != 0 => {
                let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
                let mut wish = [0u8; LITURGY_PEERS];
                for (w, b) in wish.iter_mut().zip(rest.iter().skip(4)) {
                    *w = b & 1;
                }
                let settings = LiturgySettings {
                    id: byte(1),
                    group: u16::from(byte(2) & 1),
                    hidden: byte(3) & 1 != 0,
                    signaling: (op & 0x20 != 0).then_some(wish),
                };
                let pkt = clients[pick].liturgy_offer(&settings, &[op; 64], now.wall);
                c.handle_datagram(now, from, &pkt, &mut rng)
            }
            _ => {
                secs += u64::from(rest.first().copied().unwrap_or(1));
                Ok(())
            }
        };
        c.handle_timeout(now);
        while c.poll_transmit().is_some() {}
    }
});
