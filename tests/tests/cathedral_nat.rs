//! NAT traversal through a chantryd cathedral: two chantryd tunnel
//! clients, each behind its own NAT router, register at a cathedral on
//! the "internet" and probe its NAT port.
//!
//! Five namespaces. `inet` is the internet: it holds the cathedral
//! (192.168.79.1, main port 4500, NAT port 4501) and routes between the
//! routers' public sides, `ra` (192.168.79.2) and `rb` (192.168.79.18).
//! Each router masquerades its LAN (192.168.80.0/28 with client `a` at .2,
//! 192.168.80.16/28 with `b` at .18) behind its public address with
//! nftables and, like a home router, drops new connections arriving on its
//! public side. The tunnel is 10.79.0.1 <-> 10.79.0.2. `inet`'s own
//! nftables table plays the network's moods: it can drop the NAT probes,
//! or the traffic between the two routers.
//!
//! * `relay_then_direct_then_relay_again`: with the NAT port unreachable
//!   the tunnel comes up through the relay (ping, TCP, relayed data
//!   counted, both peers are the cathedral). Once the probes get through,
//!   the cathedral names each client the other's NAT-tested address, the
//!   clients punch through both NATs and move there (the peer each control
//!   socket reports is the other router's public side); ping and TCP work
//!   and the cathedral relays no more data. Then the routers can no longer
//!   reach each other: both clients fall back to the relay, where ping and
//!   TCP work again; once the routers can talk again, the clients return
//!   to the direct path after their back-off.
//! * `symmetric_nats_stay_on_the_relay`: both routers pick a random port
//!   per destination (`masquerade fully-random`), so the NAT probe arrives
//!   from another port than the registration; the cathedral counts the
//!   port-changing NATs, never names a direct path, and the tunnel keeps
//!   working through the relay.
//!
//! With `SANCTUM` set, client `b` is the C reference daemon (tests/README.md).
//! It has no fallback of its own: it returns to the relay when the
//! cathedral stops naming the direct path, 20 s after chantryd's client
//! stopped probing (docs/architecture.md).

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use chantry_e2e::cathedral::*;
use chantry_e2e::*;

const PORT: u16 = 4500;
const NAT_PORT: u16 = 4501;
const INET_A: Ipv4Addr = Ipv4Addr::new(192, 168, 79, 1);
const WAN_A: Ipv4Addr = Ipv4Addr::new(192, 168, 79, 2);
const INET_B: Ipv4Addr = Ipv4Addr::new(192, 168, 79, 17);
const WAN_B: Ipv4Addr = Ipv4Addr::new(192, 168, 79, 18);
const GW_A: Ipv4Addr = Ipv4Addr::new(192, 168, 80, 1);
const LAN_A: Ipv4Addr = Ipv4Addr::new(192, 168, 80, 2);
const GW_B: Ipv4Addr = Ipv4Addr::new(192, 168, 80, 17);
const LAN_B: Ipv4Addr = Ipv4Addr::new(192, 168, 80, 18);
const IN_A: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
const IN_B: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);
const CATHEDRAL: SocketAddrV4 = SocketAddrV4::new(INET_A, PORT);
/// Where each client's traffic goes once direct: the other NAT's public
/// side (masquerade keeps the source port when it is free).
const DIRECT_TO_B: SocketAddrV4 = SocketAddrV4::new(WAN_B, PORT);
const DIRECT_TO_A: SocketAddrV4 = SocketAddrV4::new(WAN_A, PORT);

/// The five namespaces, the cathedral and the two clients. Fields drop
/// in this order: the daemons stop before their namespaces and files go.
struct World {
    cat: Daemon,
    da: Daemon,
    db: Daemon,
    inet: Netns,
    a: Netns,
    b: Netns,
    _routers: [Netns; 2],
    spec_a: ClientSpec,
    spec_b: ClientSpec,
    dir: TempDir,
}

impl World {
    /// Builds the network, starts the cathedral (with NAT port) and both
    /// clients. `fully_random`: the routers pick a random port per
    /// destination. `block_probes`: the cathedral's NAT port starts
    /// unreachable.
    fn new(fully_random: bool, block_probes: bool) -> World {
        let inet = Netns::new("in");
        let ra = Netns::new("ra");
        let rb = Netns::new("rb");
        let a = Netns::new("a");
        let b = Netns::new("b");
        let dir = TempDir::new();
        let (_, wan_a) = link(&inet, INET_A, &ra, WAN_A, 28, "ia");
        let (_, wan_b) = link(&inet, INET_B, &rb, WAN_B, 28, "ib");
        link(&ra, GW_A, &a, LAN_A, 28, "la");
        link(&rb, GW_B, &b, LAN_B, 28, "lb");
        for ns in [&inet, &ra, &rb] {
            ns.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        }
        ra.run(&["ip", "route", "add", "default", "via", &INET_A.to_string()]);
        rb.run(&["ip", "route", "add", "default", "via", &INET_B.to_string()]);
        a.run(&["ip", "route", "add", "default", "via", &GW_A.to_string()]);
        b.run(&["ip", "route", "add", "default", "via", &GW_B.to_string()]);
        for (ns, wan) in [(&ra, &wan_a), (&rb, &wan_b)] {
            let random = if fully_random { " fully-random" } else { "" };
            nft(
                &dir,
                ns,
                &format!(
                    "table ip chnat {{\n\
                     chain post {{ type nat hook postrouting priority srcnat; policy accept;\n\
                     oifname \"{wan}\" masquerade{random}\n}}\n}}\n\
                     table inet chfw {{\n\
                     chain input {{ type filter hook input priority filter; policy accept;\n\
                     iifname \"{wan}\" ct state new drop\n}}\n}}\n"
                ),
            );
        }
        nft(
            &dir,
            &inet,
            "table inet chctl {\n\
             chain input { type filter hook input priority filter; policy accept; }\n\
             chain forward { type filter hook forward priority filter; policy accept; }\n}\n",
        );
        if block_probes {
            inet.run(&[
                "nft", "add", "rule", "inet", "chctl", "input", "udp", "dport", "4501", "drop",
            ]);
        }

        let (ia, ib) = (identity(1), identity(2));
        let mut cs = CathedralSpec::new(CATHEDRAL);
        cs.nat_port = Some(NAT_PORT);
        let cc = cathedral_conf(&dir, &cs, &[&ia, &ib]);
        let client = |side, lan, inner| {
            let mut s = ClientSpec::new(side, SocketAddrV4::new(lan, PORT), inner, CATHEDRAL);
            s.nat_port = Some(NAT_PORT);
            s
        };
        let (spec_a, spec_b) = (client(0, LAN_A, IN_A), client(1, LAN_B, IN_B));
        let ca = client_conf(&dir, &spec_a, &ia);
        let cb = client_conf_for(Impl::side_b(), &dir, &spec_b, &ib);
        let cat = Daemon::start(&inet, &cc, dir.join("cathedral.log"), &[]);
        assert!(
            cat.wait_ready(Duration::from_secs(20)),
            "cathedral did not start:\n{}",
            cat.log_text()
        );
        assert!(
            cat.log_text().contains("nat_port=Some(4501)"),
            "no NAT port:\n{}",
            cat.log_text()
        );
        let da = Daemon::start(&a, &ca.conf, dir.join("a.log"), &[]);
        let db = Daemon::start_for(Impl::side_b(), &b, &cb.conf, dir.join("b.log"), &[]);
        for d in [&da, &db] {
            assert!(
                d.wait_ready(Duration::from_secs(20)),
                "client did not start:\n{}",
                d.log_text()
            );
        }
        World {
            cat,
            da,
            db,
            inet,
            a,
            b,
            _routers: [ra, rb],
            spec_a,
            spec_b,
            dir,
        }
    }

    /// Every log, for failure messages.
    fn logs(&self) -> String {
        format!(
            "--- cathedral:\n{}\n--- a:\n{}\n--- b:\n{}",
            self.cat.log_text(),
            self.da.log_text(),
            self.db.log_text()
        )
    }

    /// The peer each client's control socket reports.
    fn peers(&self) -> (Option<SocketAddrV4>, Option<SocketAddrV4>) {
        let q = |s: &ClientSpec| {
            chantry_service::control::query(&s.control(&self.dir), Duration::from_secs(2))
                .ok()
                .and_then(|st| st.peer)
        };
        (q(&self.spec_a), q(&self.spec_b))
    }

    /// Waits (bounded) until a reports `want_a` and b `want_b` as peer.
    fn wait_peers(&self, want_a: SocketAddrV4, want_b: SocketAddrV4, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.peers() == (Some(want_a), Some(want_b)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    /// Ping both ways and a 2 s TCP run a -> b through the tunnel.
    fn traffic_works(&self, phase: &str) {
        assert!(
            self.a.ping_until(IN_B, Duration::from_secs(10)).is_some(),
            "{phase}: no ping a -> b\n{}",
            self.logs()
        );
        assert!(
            self.b.ping_until(IN_A, Duration::from_secs(10)).is_some(),
            "{phase}: no ping b -> a\n{}",
            self.logs()
        );
        if let Err(e) = tcp_transfer(&self.a, &self.b, IN_B, 2) {
            panic!("{phase}: TCP a -> b: {e}\n{}", self.logs());
        }
    }

    /// The cathedral's `data_relayed` once every packet sent so far is
    /// counted: the value of the second status line from now (each covers
    /// 5 s).
    fn settled_relayed(&self) -> u64 {
        let seen = status_lines(&self.cat);
        let first = next_status(&self.cat, seen, "data_relayed", Duration::from_secs(15));
        let second = next_status(&self.cat, seen + 1, "data_relayed", Duration::from_secs(15));
        match (first, second) {
            (Some(_), Some(v)) => v,
            _ => panic!("the cathedral logged no status for 15 s\n{}", self.logs()),
        }
    }

    /// Runs one nft command in `inet`.
    fn inet_nft(&self, args: &[&str]) {
        let mut cmd = vec!["nft"];
        cmd.extend_from_slice(args);
        self.inet.run(&cmd);
    }
}

/// Loads `ruleset` into `ns` with `nft -f`.
fn nft(dir: &TempDir, ns: &Netns, ruleset: &str) {
    let path = dir.join(&format!("{}.nft", ns.name));
    fs::write(&path, ruleset).expect("nft ruleset");
    ns.run(&["nft", "-f", path.to_str().expect("utf-8 path")]);
}

#[test]
fn relay_then_direct_then_relay_again() {
    let w = World::new(false, true);

    // 1. The NAT port is unreachable: no NAT test, relay only.
    assert!(
        w.a.ping_until(IN_B, Duration::from_secs(60)).is_some(),
        "no ping a -> b through the relay within 60 s\n{}",
        w.logs()
    );
    assert_eq!(
        w.peers(),
        (Some(CATHEDRAL), Some(CATHEDRAL)),
        "relay phase\n{}",
        w.logs()
    );
    let before = last_status(&w.cat.log_text(), "data_relayed");
    w.traffic_works("relay");
    let relayed = w.settled_relayed();
    assert!(
        relayed >= before + 100,
        "the relay phase's traffic was not relayed ({before} -> {relayed})\n{}",
        w.logs()
    );
    let log = w.cat.log_text();
    assert_eq!(last_status(&log, "nat_probes"), 0, "{log}");
    assert_eq!(last_status(&log, "info_p2p"), 0, "{log}");
    assert_eq!(
        w.peers(),
        (Some(CATHEDRAL), Some(CATHEDRAL)),
        "still relayed\n{}",
        w.logs()
    );

    // 2. Probes get through: the cathedral names the direct path, both
    // clients punch through their NATs and move there.
    w.inet_nft(&["flush", "chain", "inet", "chctl", "input"]);
    assert!(
        w.wait_peers(DIRECT_TO_B, DIRECT_TO_A, Duration::from_secs(45)),
        "the clients did not move to the direct path: peers {:?}\n{}",
        w.peers(),
        w.logs()
    );
    let (p2p, _) = wait_status(&w.cat, "info_p2p", |v| v >= 2, Duration::from_secs(10));
    assert!(p2p >= 2, "info_p2p={p2p}\n{}", w.logs());
    assert_eq!(last_status(&w.cat.log_text(), "nat_changed"), 0);
    let direct_start = w.settled_relayed();
    w.traffic_works("direct");
    let direct_end = w.settled_relayed();
    assert_eq!(
        direct_start,
        direct_end,
        "data went through the cathedral on the direct path\n{}",
        w.logs()
    );
    assert_eq!(
        w.peers(),
        (Some(DIRECT_TO_B), Some(DIRECT_TO_A)),
        "still direct\n{}",
        w.logs()
    );

    // 3. The routers can no longer reach each other (the cathedral still
    // can): the direct path goes silent and both fall back to the relay.
    for (s, d) in [(WAN_A, WAN_B), (WAN_B, WAN_A)] {
        let (s, d) = (s.to_string(), d.to_string());
        w.inet_nft(&[
            "add", "rule", "inet", "chctl", "forward", "ip", "saddr", &s, "ip", "daddr", &d, "drop",
        ]);
    }
    // chantryd gives up after 30 s of silence; the C daemon follows when
    // the cathedral names the relay, some 25 s later.
    assert!(
        w.wait_peers(CATHEDRAL, CATHEDRAL, Duration::from_secs(90)),
        "no fallback to the relay: peers {:?}\n{}",
        w.peers(),
        w.logs()
    );
    for d in [&w.da, &w.db]
        .into_iter()
        .filter(|d| d.which == Impl::Chantryd)
    {
        assert!(
            d.log_text()
                .contains("direct path silent: back to the cathedral's relay"),
            "{}",
            w.logs()
        );
    }
    let before = w.settled_relayed();
    w.traffic_works("relay after the direct path died");
    let after = w.settled_relayed();
    assert!(
        after >= before + 100,
        "the fallback's traffic was not relayed ({before} -> {after})\n{}",
        w.logs()
    );

    // 4. The routers can talk again: after the back-off (60 s) the
    // clients probe again and return to the direct path.
    w.inet_nft(&["flush", "chain", "inet", "chctl", "forward"]);
    assert!(
        w.wait_peers(DIRECT_TO_B, DIRECT_TO_A, Duration::from_secs(100)),
        "the clients did not return to the direct path: peers {:?}\n{}",
        w.peers(),
        w.logs()
    );
    assert!(
        w.a.ping_until(IN_B, Duration::from_secs(10)).is_some(),
        "no ping on the direct path again\n{}",
        w.logs()
    );
}

#[test]
fn symmetric_nats_stay_on_the_relay() {
    let w = World::new(true, false);
    assert!(
        w.a.ping_until(IN_B, Duration::from_secs(60)).is_some(),
        "no ping a -> b through the relay within 60 s\n{}",
        w.logs()
    );
    // Past the 15 s p2p cooldown, with five rounds of probes from each
    // client judged port-changing.
    let (changed, ok) = wait_status(&w.cat, "nat_changed", |v| v >= 10, Duration::from_secs(60));
    assert!(ok, "nat_changed={changed}\n{}", w.logs());
    let log = w.cat.log_text();
    assert_eq!(last_status(&log, "info_p2p"), 0, "{log}");
    assert!(last_status(&log, "info_replies") >= 4, "{log}");
    assert_eq!(
        w.peers(),
        (Some(CATHEDRAL), Some(CATHEDRAL)),
        "a port-changing NAT must keep the tunnel on the relay\n{}",
        w.logs()
    );
    let before = last_status(&w.cat.log_text(), "data_relayed");
    w.traffic_works("symmetric NATs");
    let after = w.settled_relayed();
    assert!(
        after >= before + 100,
        "the traffic was not relayed ({before} -> {after})\n{}",
        w.logs()
    );
    assert_eq!(
        w.peers(),
        (Some(CATHEDRAL), Some(CATHEDRAL)),
        "still relayed\n{}",
        w.logs()
    );
}
