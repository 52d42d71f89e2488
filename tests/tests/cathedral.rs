//! A chantryd cathedral between two chantryd tunnel clients: each client
//! registers with signed INFO offers, the cathedral relays the key
//! exchange and the data packets, and ping works both ways through the
//! relay. The cathedral's status log shows what it relayed.
//!
//! Three namespaces: the cathedral `c` in the middle, joined by one veth
//! pair to each client (192.168.78.0/28 to `a`, 192.168.78.16/28 to `b`).
//! The cathedral listens on 192.168.78.1; `b` reaches it through a route
//! via the cathedral's address on its own link.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use chantry_e2e::cathedral::*;
use chantry_e2e::*;

const CATHEDRAL: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 1);
const CAT_B_SIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 17);
const OUT_A: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 2);
const OUT_B: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 18);
const IN_A: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const IN_B: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const PORT: u16 = 4500;

#[test]
fn two_clients_talk_through_the_cathedral_relay() {
    let c = Netns::new("c");
    let a = Netns::new("a");
    let b = Netns::new("b");
    link(&c, CATHEDRAL, &a, OUT_A, 28, "a");
    link(&c, CAT_B_SIDE, &b, OUT_B, 28, "b");
    b.run(&[
        "ip",
        "route",
        "add",
        &format!("{CATHEDRAL}/32"),
        "via",
        &CAT_B_SIDE.to_string(),
    ]);
    let dir = TempDir::new();
    let (ia, ib) = (identity(1), identity(2));
    let cathedral = SocketAddrV4::new(CATHEDRAL, PORT);
    let cc = cathedral_conf(&dir, &CathedralSpec::new(cathedral), &[&ia, &ib]);
    let spec =
        |side, out, inner| ClientSpec::new(side, SocketAddrV4::new(out, PORT), inner, cathedral);
    let ca = client_conf(&dir, &spec(0, OUT_A, IN_A), &ia);
    let cb = client_conf(&dir, &spec(1, OUT_B, IN_B), &ib);

    let cat = Daemon::start(&c, &cc, dir.join("cathedral.log"), &[]);
    assert!(
        cat.wait_ready(Duration::from_secs(20)),
        "cathedral did not start:\n{}",
        cat.log_text()
    );
    // Its roles, each under its own uid; the cathedral role sees no
    // network at all (purgatory-rx/tx hold the socket).
    let pids = cat.role_pids();
    assert_eq!(pids.len(), roles("cathedral").len(), "{pids:?}");
    for (role, pid) in &pids {
        assert_eq!(uid_of_pid(*pid), Some(uid_of(role, 2)), "{role}");
        if role == "cathedral" {
            assert_eq!(interfaces_of_pid(*pid), vec!["lo".to_string()]);
        }
    }
    let da = Daemon::start(&a, &ca.conf, dir.join("a.log"), &[]);
    let db = Daemon::start(&b, &cb.conf, dir.join("b.log"), &[]);
    for d in [&da, &db] {
        assert!(
            d.wait_ready(Duration::from_secs(20)),
            "client did not start:\n{}",
            d.log_text()
        );
    }
    // a and b have no route to each other: every packet is relayed.
    let up = a.ping_until(IN_B, Duration::from_secs(60));
    assert!(
        up.is_some(),
        "no ping a -> b through the relay within 60 s\ncathedral:\n{}\na:\n{}\nb:\n{}",
        cat.log_text(),
        da.log_text(),
        db.log_text()
    );
    assert!(
        b.ping_until(IN_A, Duration::from_secs(10)).is_some(),
        "no ping b -> a"
    );
    let mut relayed = 0;
    for _ in 0..150 {
        relayed = last_status(&cat.log_text(), "data_relayed");
        if relayed >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        relayed >= 4,
        "cathedral status shows {relayed} relayed packets:\n{}",
        cat.log_text()
    );
    let log = cat.log_text();
    let dropped = last_status(&log, "dropped");
    assert!(last_status(&log, "offers_relayed") >= 2, "{log}");
    assert!(last_status(&log, "info_replies") >= 1, "{log}");
    assert_eq!(last_status(&log, "tunnels"), 2, "{log}");

    // Hostile input: a forged KATEDRAL offer, a data packet for nobody,
    // a truncated offer. Dropped and counted; the relay keeps working.
    let forged = "import socket,os\n\
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
        for p in [b'KATEDRAL'+os.urandom(700), os.urandom(120), b'KATEDRAL'+os.urandom(100)]:\n\
        \x20s.sendto(p,('192.168.78.1',4500))\n";
    a.run(&["python3", "-c", forged]);
    let mut now_dropped = dropped;
    for _ in 0..150 {
        now_dropped = last_status(&cat.log_text(), "dropped");
        if now_dropped >= dropped + 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        now_dropped >= dropped + 3,
        "dropped went from {dropped} to {now_dropped}:\n{}",
        cat.log_text()
    );
    assert!(
        b.ping_until(IN_A, Duration::from_secs(10)).is_some(),
        "no ping after hostile input"
    );
}
