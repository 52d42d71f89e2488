//! The main job at this stage: two Chantry tunnel engines, "left" and
//! "right", wired back to back through an in-memory link with a simulated
//! clock. They run the full hybrid X25519 + ML-KEM-1024 key exchange, pass
//! IPv4 packets both ways, rekey, and print what happens as it happens.
//!
//! Run with `scripts/demo.sh` (or `cargo run --release -p app-core --example demo`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use chantry_core::entropy::{Entropy, OsEntropy};
use chantry_core::secret::Key32;
use chantry_core::time::{Instant, Now};
use chantry_core::tunnel::{Transmit, Tunnel, TunnelConfig, TunnelEvent};

const LEFT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 2333);
const RIGHT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 2333);

fn ping(id: u16, seq: u16, from: [u8; 4], to: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0u8; 84];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&84u16.to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&from);
    p[16..20].copy_from_slice(&to);
    p[20] = 8;
    p[24..26].copy_from_slice(&id.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    p
}

/// What an observer on the wire sees: with shroud on, only a length.
fn describe(d: &[u8]) -> String {
    format!("shrouded datagram, {} bytes", d.len())
}

struct Node {
    name: &'static str,
    tunnel: Tunnel,
    rng: OsEntropy,
}

fn drain(
    node: &mut Node,
    t: f64,
    wire: &mut Vec<(SocketAddrV4, Transmit)>,
    from: SocketAddrV4,
    verbose: bool,
) {
    while let Some(e) = node.tunnel.poll_event() {
        println!("[{t:7.1}s] {:5}: {}", node.name, event_text(&e));
    }
    while let Some(tx) = node.tunnel.poll_transmit() {
        if verbose {
            println!(
                "[{t:7.1}s] {:5} -> {}: {}",
                node.name,
                tx.dst,
                describe(&tx.datagram)
            );
        }
        wire.push((from, tx));
    }
    while let Some(p) = node.tunnel.poll_clear() {
        let seq = u16::from_be_bytes([p[26], p[27]]);
        println!(
            "[{t:7.1}s] {:5}: decrypted ICMP echo seq {seq} from {}.{}.{}.{}",
            node.name, p[12], p[13], p[14], p[15]
        );
    }
}

fn event_text(e: &TunnelEvent) -> String {
    match e {
        TunnelEvent::Exchange(x) => format!("key exchange: {x:?}"),
        TunnelEvent::TxKeyInstalled { spi } => format!("TX key installed, spi {spi:08x}"),
        TunnelEvent::RxKeyInstalled { spi } => format!("RX key installed, spi {spi:08x}"),
        TunnelEvent::PeerAddress(a) => format!("peer address learned: {a}"),
        other => format!("{other:?}"),
    }
}

fn main() {
    let mut os = OsEntropy;
    let secret = Key32::random(&mut os);
    println!("Chantry demo: two sanctum tunnel engines, hybrid X25519 + ML-KEM-1024, shroud on");
    println!("left {LEFT} (peer configured), right {RIGHT} (learns its peer)\n");
    let mut cfg_left = TunnelConfig::new(secret.clone(), Some(RIGHT), 1373);
    let mut cfg_right = TunnelConfig::new(secret, None, 1373);
    cfg_left.shroud = true;
    cfg_right.shroud = true;
    let mut left = Node {
        name: "left",
        tunnel: Tunnel::new(cfg_left, &mut os),
        rng: OsEntropy,
    };
    let mut right = Node {
        name: "right",
        tunnel: Tunnel::new(cfg_right, &mut os),
        rng: OsEntropy,
    };

    let wall0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1_767_225_600, |d| d.as_secs());
    let mut now = Now::new(Instant::from_secs(1), wall0);
    let step = Duration::from_millis(100);
    let mut wire: Vec<(SocketAddrV4, Transmit)> = Vec::new();
    let mut seq = 0u16;
    // Simulated 2 hours: the 3500 s SA lifetime forces a rekey on the way.
    let end = Instant::from_secs(7300);
    while now.mono < end {
        let t = now.mono.since_origin().as_secs_f64();
        let verbose = t < 12.0;
        for (from, tx) in std::mem::take(&mut wire) {
            let node = if tx.dst == RIGHT {
                &mut right
            } else {
                &mut left
            };
            let _ = node.tunnel.receive(from, &tx.datagram, now, &mut node.rng);
        }
        for node in [&mut left, &mut right] {
            if node.tunnel.poll_timeout().is_some_and(|d| d <= now.mono) {
                node.tunnel.handle_timeout(now, &mut node.rng);
            }
        }
        // One ping each way every 10 simulated seconds once keyed.
        if left.tunnel.is_keyed()
            && right.tunnel.is_keyed()
            && (now.mono.since_origin().as_millis() % 10_000) < 100
        {
            seq += 1;
            let _ = left.tunnel.send(
                &ping(1, seq, [10, 98, 0, 1], [10, 98, 0, 2]),
                now,
                &mut left.rng,
            );
            let _ = right.tunnel.send(
                &ping(2, seq, [10, 98, 0, 2], [10, 98, 0, 1]),
                now,
                &mut right.rng,
            );
        }
        drain(&mut left, t, &mut wire, LEFT, verbose);
        drain(&mut right, t, &mut wire, RIGHT, verbose);
        // Skip ahead quickly through quiet stretches after the first minute.
        now = now.advance(if t > 60.0 {
            Duration::from_secs(1)
        } else {
            step
        });
        let _ = os.next_u32();
    }
    for node in [&left, &right] {
        let s = node.tunnel.stats();
        println!(
            "\n{}: tx spi {:08x} rx spi {:08x}, {} packets / {} bytes out, {} packets / {} bytes in, {} key installs, {} dropped",
            node.name,
            s.tx_spi,
            s.rx_spi,
            s.tx_packets,
            s.tx_bytes,
            s.rx_packets,
            s.rx_bytes,
            s.rekeys,
            s.dropped
        );
    }
}
