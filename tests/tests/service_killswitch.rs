//! The kill switch of an always-on profile, end to end. The client
//! namespace `a` runs the service; its profile's peer (in `b`) never
//! answers, so the tunnel stays unusable. A third namespace `c`, joined
//! to `a` by a second veth pair, listens for a UDP probe from `a`: the
//! probe must not arrive while the profile is wanted, and must arrive
//! after a disconnect, after a service stop, and after the start that
//! follows a SIGKILL of the service (which left the rules in place).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use chantry_e2e::service::*;
use chantry_e2e::*;

/// `a`'s end of the second veth.
const SIDE_A: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 1);
/// `c`'s end: outside any tunnel.
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 2);
const PROBE_PORT: u16 = 9999;

/// A veth pair between `a` (`addr_a`/24) and `c` (`addr_c`/24).
fn join(a: &Netns, c: &Netns, addr_a: Ipv4Addr, addr_c: Ipv4Addr) {
    let name = |ns: &Netns, end: &str| {
        let n = format!("k{}", ns.name);
        format!("{}{end}", &n[..n.len().min(13)])
    };
    let (va, vc) = (name(c, "a"), name(c, "c"));
    sh(&[
        "ip", "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vc, "netns",
        &c.name,
    ]);
    a.run(&["ip", "addr", "add", &format!("{addr_a}/24"), "dev", &va]);
    c.run(&["ip", "addr", "add", &format!("{addr_c}/24"), "dev", &vc]);
    a.run(&["ip", "link", "set", &va, "up"]);
    c.run(&["ip", "link", "set", &vc, "up"]);
}

/// Sends one datagram from `a` to the listener in `c`; what `c` received
/// within a second (payload and source), if anything.
fn probe(a: &Netns, c: &Netns, payload: &[u8]) -> Option<(Vec<u8>, SocketAddr)> {
    let listener = c.udp_bind(SocketAddr::V4(SocketAddrV4::new(OUTSIDE, PROBE_PORT)));
    let sender = a.udp_bind("0.0.0.0:0".parse().expect("address"));
    // Dropped by the output hook, the send itself fails (EPERM); that is
    // the expected way for it to fail, and what c receives decides.
    let _ = sender.send_to(payload, SocketAddrV4::new(OUTSIDE, PROBE_PORT));
    let mut buf = [0u8; 1500];
    listener
        .recv_from(&mut buf)
        .ok()
        .map(|(n, from)| (buf[..n].to_vec(), from))
}

fn assert_passes(a: &Netns, c: &Netns, payload: &[u8], when: &str) {
    match probe(a, c, payload) {
        Some((got, from)) => {
            assert_eq!(got, payload, "{when}: another datagram arrived");
            assert_eq!(from.ip(), SIDE_A, "{when}: probe from {from}");
        }
        None => panic!("{when}: the probe did not arrive"),
    }
}

fn assert_dropped(a: &Netns, c: &Netns, payload: &[u8], when: &str) {
    assert_eq!(probe(a, c, payload), None, "{when}: the probe leaked");
}

/// True if `a` holds the service's table.
fn table_present(a: &Netns) -> bool {
    a.cmd(&["nft", "list", "table", "inet", "chantry"])
        .output()
        .expect("nft")
        .status
        .success()
}

fn ruleset(a: &Netns) -> String {
    String::from_utf8_lossy(&a.run(&["nft", "list", "ruleset"]).stdout).into_owned()
}

/// Waits (bounded) for a datagram from `from` at `listener`.
fn datagram_from(listener: &std::net::UdpSocket, from: SocketAddrV4, limit: Duration) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while start.elapsed() < limit {
        if let Ok((_, src)) = listener.recv_from(&mut buf)
            && src == SocketAddr::V4(from)
        {
            return true;
        }
    }
    false
}

/// Changes the flags of the profile `lock` with `chantryctl edit`.
fn edit(sock: &std::path::Path, auto_connect: Option<bool>, always_on: Option<bool>) {
    let flag = |name: &str, v: Option<bool>| v.map(|v| format!("--{name}={v}"));
    let args: Vec<String> = ["edit".to_owned(), "lock".to_owned()]
        .into_iter()
        .chain(flag("auto-connect", auto_connect))
        .chain(flag("always-on", always_on))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ctl_ok(sock, &args);
}

/// Waits (bounded) until the table is `present` or not.
fn table_settles(a: &Netns, present: bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if table_present(a) == present {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn always_on_fails_closed_until_disconnect_and_survives_a_killed_service() {
    let pair = Pair::new();
    let c = Netns::new("c");
    join(&pair.a, &c, SIDE_A, OUTSIDE);
    let dir = TempDir::new();
    let conf = Conf {
        instance: "chks0".into(),
        ..Conf::for_side(0, "tunnel")
    }
    .write(&dir);
    let mut service = Service::start(&pair.a, &dir);
    let sock = service.socket.clone();

    // Nothing is locked yet: the probe passes, no table.
    assert_passes(&pair.a, &c, b"before", "before any profile");
    ctl_ok(
        &sock,
        &[
            "import",
            "-c",
            conf.to_str().expect("utf-8"),
            "--name",
            "lock",
            "--always-on",
        ],
    );
    assert!(!table_present(&pair.a), "a table before any connect");

    // Wanted: the table is loaded before the guardian starts; the probe
    // is dropped, the tunnel's own datagrams to its peer still leave.
    let peer = pair
        .b
        .udp_bind(SocketAddr::V4(SocketAddrV4::new(OUTER_B, 4500)));
    ctl_ok(&sock, &["up", "lock"]);
    assert!(
        table_present(&pair.a),
        "no table while wanted\n{}",
        service.log_text()
    );
    assert!(
        wait_state(&sock, "lock", "up", Duration::from_secs(15)).is_some(),
        "guardian not running\n{}",
        service.log_text()
    );
    assert_dropped(&pair.a, &c, b"locked", "while wanted");
    assert!(
        datagram_from(
            &peer,
            SocketAddrV4::new(OUTER_A, 4500),
            Duration::from_secs(10)
        ),
        "the tunnel's datagrams to its peer did not get out\n{}",
        ruleset(&pair.a)
    );
    drop(peer);
    // A ping outside the tunnel is blocked as well.
    assert!(!pair.a.ping_once(OUTSIDE), "ICMP leaked");

    // Disconnect: the table goes, the probe passes.
    ctl_ok(&sock, &["down", "lock"]);
    assert!(!table_present(&pair.a), "table left after disconnect");
    assert_passes(&pair.a, &c, b"after down", "after disconnect");

    // The flag follows an edit while the profile is wanted.
    ctl_ok(&sock, &["up", "lock"]);
    assert!(table_present(&pair.a));
    edit(&sock, None, Some(false));
    assert!(
        table_settles(&pair.a, false),
        "table kept after always-on was cleared"
    );
    assert_passes(&pair.a, &c, b"not always-on", "after always-on was cleared");
    edit(&sock, None, Some(true));
    assert!(
        table_settles(&pair.a, true),
        "table not back with always-on"
    );

    // Service stop while wanted: nothing of the service's stays.
    assert_dropped(&pair.a, &c, b"locked again", "while wanted again");
    let st = service.stop().expect("service exit");
    assert!(st.success(), "service exit {st:?}\n{}", service.log_text());
    assert!(
        !ruleset(&pair.a).contains("chantry"),
        "rules left after stop:\n{}",
        ruleset(&pair.a)
    );
    assert_passes(&pair.a, &c, b"after stop", "after service stop");

    // SIGKILL while wanted: the rules stay (fail closed while no service
    // runs), the next start removes them (the profile is not
    // auto-connect).
    let mut service = Service::start(&pair.a, &dir);
    ctl_ok(&sock, &["up", "lock"]);
    assert!(
        wait_state(&sock, "lock", "up", Duration::from_secs(15)).is_some(),
        "guardian not running\n{}",
        service.log_text()
    );
    service.kill();
    assert!(
        table_present(&pair.a),
        "the table went with the killed service"
    );
    assert_dropped(&pair.a, &c, b"no service", "after SIGKILL of the service");
    let mut service = Service::start(&pair.a, &dir);
    assert!(
        service
            .log_text()
            .contains("the kill switch a previous run left behind was removed"),
        "{}",
        service.log_text()
    );
    assert!(!table_present(&pair.a), "stale table kept at start");
    assert_eq!(state_of(&sock, "lock"), "down");
    assert_passes(
        &pair.a,
        &c,
        b"restarted",
        "after the start that followed SIGKILL",
    );

    // Always-on and auto-connect: after a SIGKILL the next start replaces
    // the stale table by its own in one transaction (never open in
    // between) and connects the profile.
    edit(&sock, Some(true), None);
    ctl_ok(&sock, &["up", "lock"]);
    service.kill();
    assert!(table_present(&pair.a));
    let mut service = Service::start(&pair.a, &dir);
    let log = service.log_text();
    assert!(
        log.contains("the kill switch a previous run left behind was replaced")
            && log.contains("auto-connect")
            && log.contains("kill switch on"),
        "{log}"
    );
    assert!(table_present(&pair.a), "auto-connect did not lock again");
    assert!(
        wait_state(&sock, "lock", "up", Duration::from_secs(15)).is_some(),
        "auto-connect did not start the guardian\n{}",
        service.log_text()
    );
    assert_dropped(&pair.a, &c, b"auto locked", "after auto-connect");
    ctl_ok(&sock, &["down", "lock"]);
    assert!(!table_present(&pair.a));
    assert_passes(&pair.a, &c, b"finally", "after the last disconnect");
    let st = service.stop().expect("service exit");
    assert!(st.success(), "service exit {st:?}\n{}", service.log_text());
    assert!(!ruleset(&pair.a).contains("chantry"));
}
