//! sanctum.conf (files.md §1), key files (§2) and the remembrance file (§6):
//! the reference's own test configurations from ../shared/vectors, the
//! spec's example, every class of malformed line with its exact message,
//! the derived values the daemon uses, and the file checks.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use chantry_core::config::{
    Config, ErrorKind, InitialPeer, KeyFileError, Keyword, Mode, Mtu, PeerSetting, Remembrance,
    Role, load_key_file, load_remembrance_file, store_remembrance_file,
};
use serde_json::Value;

const P: &str = "/etc/x.conf";

/// The vectors directory: `$CHANTRY_VECTORS`, else `<repo>/../shared/vectors`
/// (as in tests/vectors/common.rs).
fn vectors_dir() -> PathBuf {
    let dir = match std::env::var_os("CHANTRY_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    };
    assert!(
        dir.join("index.json").is_file(),
        "known-answer vectors not found at {}",
        dir.display()
    );
    dir
}

fn ok(text: &str) -> Config {
    Config::parse(P, text)
        .unwrap_or_else(|e| panic!("unexpected error: {e}\n--- config ---\n{text}"))
}

fn err(text: &str) -> String {
    match Config::parse(P, text) {
        Ok(c) => panic!("accepted a bad configuration: {c:?}\n--- config ---\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

const RUN_TUNNEL: &str = "run heaven-rx as u\nrun heaven-tx as u\nrun purgatory-rx as u\nrun purgatory-tx as u\n\
                          run bless as u\nrun confess as u\nrun chapel as u\nrun control as u\n";
const RUN_ALL: &str = "run heaven-rx as u\nrun heaven-tx as u\nrun purgatory-rx as u\nrun purgatory-tx as u\n\
                       run bless as u\nrun confess as u\nrun chapel as u\nrun control as u\nrun pilgrim as u\n\
                       run shrine as u\nrun cathedral as u\nrun liturgy as u\nrun bishop as u\n";

/// A tunnel-mode configuration: `head` then the run lines.
fn with_runs(head: &str) -> String {
    format!("{head}{RUN_ALL}")
}

/// Lines 1-3 of a minimal valid tunnel, then `rest`, then run lines.
fn tunnel(rest: &str) -> String {
    with_runs(&format!(
        "instance t\nsecret /k/s\ntunnel 10.0.0.1/30 1422\n{rest}"
    ))
}

/// Cathedral client lines (1-8) before `rest`.
fn client(rest: &str) -> String {
    with_runs(&format!(
        "spi 0x0102\ninstance t\ntunnel 10.0.0.1/30 auto\ncathedral 1.2.3.4:4500\ncathedral_id 0badf00d\n\
         cathedral_secret /k/cs\ncathedral_cosk /k/cosk\nsecret /k/s\n{rest}"
    ))
}

/// A cathedral (lines 1-6) before `rest`.
fn cathedral(rest: &str) -> String {
    with_runs(&format!(
        "mode cathedral\ninstance c\nsecret /k/sync\nsecretdir /k/dir\ncathedral_mtu 1422\nlocal 10.0.0.254:4500\n{rest}"
    ))
}

/// A liturgy (lines 1-10) before `rest`.
fn liturgy(rest: &str) -> String {
    with_runs(&format!(
        "mode liturgy\nspi 0xca\ninstance l\ncathedral 1.2.3.4:4500\ncathedral_id 0badf00d\ncathedral_secret /k/cs\n\
         cathedral_cosk /k/cosk\ncathedral_flock cafeba00\nliturgy_prefix 10.15.0.0\nkek /k/kek\n{rest}"
    ))
}

// ---------------------------------------------------------------------------
// Configurations that parse.

#[test]
fn every_capture_config_parses() {
    let mut parsed = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(vectors_dir().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 3, "capture metadata files");
    for path in paths {
        let meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let shroud = meta["shroud"].as_bool().unwrap();
        for (name, text) in meta["configs"].as_object().unwrap() {
            let text = text.as_str().unwrap();
            if name.ends_with("-settings.conf") {
                continue; // a cathedral settings file (files.md §4), not a sanctum.conf
            }
            let c = Config::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.shroud(), shroud, "{name}");
            assert!(c.missing_run_lines().is_empty(), "{name}");
            if c.mode() != Mode::Cathedral {
                assert_eq!(
                    c.instance(),
                    if name.contains("left") {
                        "sxleft"
                    } else {
                        "sxright"
                    },
                    "{name}"
                );
            }
            check_capture_config(name, &meta, &c);
            parsed += 1;
        }
    }
    assert_eq!(parsed, 7);
}

fn check_capture_config(name: &str, meta: &Value, c: &Config) {
    let flock =
        |v: &Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    match name {
        "cathedral-p2p-cathedral.conf" => {
            assert_eq!(c.mode(), Mode::Cathedral);
            assert_eq!(c.instance(), "sxcath");
            assert_eq!(c.local(), addr("10.99.0.254:4500"));
            assert_eq!(c.advertised_address(), addr("10.99.0.254:4500"));
            assert_eq!(c.cathedral_mtu(), Some(1422));
            assert_eq!(c.tun_mtu(), 1422);
            assert_eq!(c.cathedral_nat_port(), Some(4501));
            assert_eq!(
                c.secretdir(),
                Some(Path::new("/var/lib/sanctum-test/cath/secrets"))
            );
            assert_eq!(
                c.settings(),
                Some(Path::new("/var/lib/sanctum-test/cath/settings.conf"))
            );
            assert_eq!(
                c.secret(),
                Some(Path::new("/var/lib/sanctum-test/cath/sync.key"))
            );
            assert_eq!(
                c.roles_needed(),
                &[
                    Role::Control,
                    Role::PurgatoryRx,
                    Role::PurgatoryTx,
                    Role::Cathedral
                ]
            );
            assert_eq!(
                c.control().path,
                Path::new("/var/lib/sanctum-test/cath/cathedral.ctl")
            );
            assert_eq!(c.control().user, "root");
        }
        "cathedral-p2p-left.conf" | "cathedral-p2p-right.conf" => {
            let left = name.contains("left");
            assert_eq!(c.mode(), Mode::Tunnel);
            assert_eq!(c.spi(), if left { 0xcafe } else { 0xfeca });
            let id = if left { 0x0badf00d } else { 0xfe };
            assert_eq!(c.cathedral_id(), Some(id));
            assert!(
                meta["cathedral_secrets"]
                    .get(format!("{id:#010x}"))
                    .is_some(),
                "id {id:#x} in the vectors"
            );
            assert_eq!(c.cathedral_flock(), Some(flock(&meta["cathedral_flock"])));
            assert_eq!(c.cathedral_flock_dst(), Some(0xcafeba00));
            assert_eq!(c.cathedral().unwrap().to_string(), "10.99.0.254:4500");
            assert_eq!(
                c.cathedral().unwrap().literal(),
                Some(addr("10.99.0.254:4500"))
            );
            assert_eq!(c.effective_peer(), InitialPeer::Cathedral);
            assert!(!c.peer_configured());
            assert!(!c.peer_auto());
            assert_eq!(c.tunnel().unwrap().mtu, Mtu::Fixed(1350));
            assert_eq!(
                c.tunnel().unwrap().net.to_string(),
                if left { "10.98.0.1/30" } else { "10.98.0.2/30" }
            );
            assert!(!c.mtu_discovery());
            assert!(
                c.kek()
                    .unwrap()
                    .ends_with(if left { "kek-0xca" } else { "kek-0xfe" })
            );
            assert!(!c.secret_must_exist(), "kek precedes secret");
            assert_eq!(c.cathedral_nat_port(), Some(4501));
            assert_eq!(
                c.local(),
                if left {
                    addr("10.99.0.1:2333")
                } else {
                    addr("10.99.0.2:2333")
                }
            );
        }
        "tunnel-plain-left.conf"
        | "tunnel-plain-right.conf"
        | "tunnel-shroud-left.conf"
        | "tunnel-shroud-right.conf" => {
            let left = name.contains("left");
            let (me, them) = if left {
                ("10.99.0.1:2333", "10.99.0.2:2333")
            } else {
                ("10.99.0.2:2333", "10.99.0.1:2333")
            };
            assert_eq!(c.mode(), Mode::Tunnel);
            assert_eq!(c.spi(), 0);
            assert_eq!(c.local(), addr(me));
            assert_eq!(c.peer(), Some(PeerSetting::Addr(addr(them))));
            assert_eq!(c.effective_peer(), InitialPeer::Fixed(addr(them)));
            assert!(c.peer_configured());
            assert!(c.secret_must_exist());
            let mtu = if name.contains("shroud") { 1300 } else { 1422 };
            assert_eq!(c.tun_mtu(), mtu);
            assert_eq!(c.overhead(), if c.shroud() { 127 } else { 78 });
            assert_eq!(c.run_as(Role::Chapel), Some("root"));
            assert_eq!(
                c.pidfile(),
                Some(Path::new(if left {
                    "/var/lib/sanctum-test/left.pidfile"
                } else {
                    "/var/lib/sanctum-test/right.pidfile"
                }))
            );
        }
        other => panic!("no expectations for {other}"),
    }
}

#[test]
fn spec_example_parses() {
    // files.md §1.4, with the remaining run lines written out.
    let text = "spi 0x0102\n\
                instance hymn-01-02\n\
                tunnel 10.0.0.1/30 auto\n\
                shroud yes\n\
                kek /etc/hymn/kek-0x01\n\
                secret /etc/hymn/1122334455667700-1122334455667700-01-02.secret\n\
                local 0.0.0.0:0\n\
                cathedral_id 0badf00d\n\
                cathedral_flock 1122334455667700\n\
                cathedral_secret /etc/hymn/id-badf00d\n\
                cathedral_cosk /etc/hymn/cosk-badf00d\n\
                cathedral_nat_port 4501\n\
                cathedral 1.2.3.4:4500\n\
                run heaven-rx as _sanctum\n\
                run heaven-tx as _sanctum\n\
                run purgatory-rx as _sanctum\n\
                run purgatory-tx as _sanctum\n\
                run bless as root\nrun confess as root\nrun chapel as root\nrun control as root\n";
    let c = ok(text);
    assert_eq!(c.mode(), Mode::Tunnel);
    assert_eq!(c.spi(), 0x0102);
    assert_eq!(c.instance(), "hymn-01-02");
    assert_eq!(c.tunnel().unwrap().net.addr(), Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(
        c.tunnel().unwrap().net.netmask(),
        Ipv4Addr::new(255, 255, 255, 252)
    );
    assert_eq!(c.mtu(), Mtu::Auto);
    assert!(c.mtu_discovery());
    assert_eq!(c.overhead(), 127);
    assert_eq!(c.tun_mtu(), 1373);
    assert!(c.shroud());
    assert!(!c.secret_must_exist());
    assert_eq!(c.cathedral_id(), Some(0x0badf00d));
    assert_eq!(c.cathedral_flock(), Some(0x1122334455667700));
    assert_eq!(c.cathedral_flock_dst(), Some(0x1122334455667700));
    assert_eq!(c.cathedral_nat_port(), Some(4501));
    assert_eq!(c.effective_peer(), InitialPeer::Cathedral);
    assert!(c.cathedral_client());
    assert_eq!(c.run_as(Role::HeavenRx), Some("_sanctum"));
    assert_eq!(c.control().path, Path::new("/tmp/sanctum-control"));
    assert_eq!(c.line_of(Keyword::Cathedral), Some(13));
}

#[test]
fn every_keyword_in_tunnel_mode() {
    let c = ok(&with_runs(
        "# all of them\n\
         mode default\n\
         \tinstance  full-1 \n\
         descr Some-Description\n\
         pidfile /run/x.pid\n\
         kek /k/kek\n\
         secret /k/with space\n\
         spi 0X0a0B\n\
         tunnel 172.16.0.1/24 1300\n\
         route 10.1.0.0/16\n\
         route 10.2.0.0/16\n\
         accept 192.168.7.9/24\n\
         peer 203.0.113.5:2333\n\
         local 0.0.0.0:2333\n\
         tap no\n\
         tfc on\n\
         shroud no\n\
         control /run/sanctum ctl\tsock  _ctl\n\
         cathedral cathedral.example.org:4500\n\
         cathedral_id 0x1\n\
         cathedral_secret /k/cs\n\
         cathedral_cosk /k/cosk\n\
         cathedral_flock 0xcafeba00\n\
         cathedral_flock_dst 0xbeefba01\n\
         cathedral_nat_port 0\n\
         cathedral_remembrance /var/lib/r\n\
         cathedral_p2p_sync yes\n\
         liturgy_group 0xdead\n\
         liturgy_prefix 10.15.0.0\n\
         liturgy_discoverable no\n",
    ));
    assert_eq!(c.mode(), Mode::Tunnel);
    assert_eq!(c.instance(), "full-1");
    assert_eq!(c.descr(), Some("Some-Description"));
    assert_eq!(c.pidfile(), Some(Path::new("/run/x.pid")));
    assert_eq!(c.secret(), Some(Path::new("/k/with space")));
    assert!(!c.secret_must_exist());
    assert_eq!(c.spi(), 0x0a0b);
    assert_eq!(c.mtu(), Mtu::Fixed(1300));
    assert_eq!(
        c.routes().iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        ["10.1.0.0/16", "10.2.0.0/16"]
    );
    assert_eq!(
        c.accepts()
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>(),
        ["192.168.7.0/24"]
    );
    assert_eq!(
        c.effective_peer(),
        InitialPeer::Fixed(addr("203.0.113.5:2333"))
    );
    assert_eq!(c.local(), addr("0.0.0.0:2333"));
    assert!(!c.tap() && c.tfc() && !c.shroud());
    assert_eq!(c.control().path, Path::new("/run/sanctum ctl sock"));
    assert_eq!(c.control().user, "_ctl");
    assert_eq!(c.cathedral().unwrap().host, "cathedral.example.org");
    assert_eq!(c.cathedral().unwrap().literal(), None);
    assert_eq!(c.cathedral_id(), Some(1));
    assert_eq!(c.cathedral_flock_dst(), Some(0xbeefba01));
    assert_eq!(c.cathedral_nat_port(), None);
    assert_eq!(c.cathedral_remembrance(), Some(Path::new("/var/lib/r")));
    assert!(c.cathedral_p2p_sync());
    assert_eq!(c.liturgy_group(), 0xdead);
    assert_eq!(c.liturgy_prefix(), Some(Ipv4Addr::new(10, 15, 0, 0)));
    assert!(!c.liturgy_discoverable());
    assert_eq!(c.line_of(Keyword::Instance), Some(3));
    assert_eq!(c.run_lines().len(), 13);
}

#[test]
fn cathedral_mode() {
    let c = ok(&cathedral(
        "cathedral_ip 198.51.100.1:4500\ntfc on\nsettings /k/settings\ncathedral_p2p_sync yes\n",
    ));
    assert_eq!(c.mode(), Mode::Cathedral);
    assert_eq!(c.advertised_address(), addr("198.51.100.1:4500"));
    assert_eq!(c.local(), addr("10.0.0.254:4500"));
    assert_eq!(
        (c.mtu(), c.tun_mtu(), c.mtu_discovery()),
        (Mtu::Fixed(1422), 1422, false)
    );
    assert!(c.tfc() && c.cathedral_p2p_sync());
    assert_eq!(c.settings(), Some(Path::new("/k/settings")));
    assert_eq!(c.secretdir(), Some(Path::new("/k/dir")));
    assert!(!c.cathedral_client());
    let shrouded =
        ok(&cathedral("").replace("cathedral_mtu 1422", "cathedral_mtu 1373\nshroud yes"));
    assert_eq!((shrouded.tun_mtu(), shrouded.overhead()), (1373, 127));
}

#[test]
fn liturgy_mode() {
    let c = ok(&liturgy("liturgy_group 0x0001\ntap yes\nbridge br-mesh\n"));
    assert_eq!(c.mode(), Mode::Liturgy);
    assert_eq!(c.spi(), 0xca);
    assert_eq!(
        c.roles_needed(),
        &[
            Role::PurgatoryRx,
            Role::PurgatoryTx,
            Role::Bishop,
            Role::Liturgy
        ]
    );
    assert_eq!(c.bridge(), Some("br-mesh"));
    assert_eq!(c.effective_peer(), InitialPeer::Learn);
    assert!(c.liturgy_discoverable());
    assert_eq!(c.secret(), None);
    // Liturgy needs neither control nor the data-path run lines.
    let only = "mode liturgy\nspi 1\ninstance l\ncathedral h:1\ncathedral_id 1\ncathedral_secret a\ncathedral_cosk b\n\
                cathedral_flock 1\nliturgy_prefix 10.1.0.0\nkek k\nrun purgatory-rx as u\nrun purgatory-tx as u\n\
                run bishop as root\nrun liturgy as u\n";
    assert_eq!(ok(only).missing_run_lines(), []);
}

#[test]
fn pilgrim_and_shrine() {
    let pilgrim = ok(&with_runs(
        "mode pilgrim\ninstance p\nsecret s\ntunnel 10.0.0.1/30 1422\npeer 1.1.1.2:2333\n",
    ));
    assert_eq!(
        pilgrim.roles_needed(),
        &[
            Role::Control,
            Role::PurgatoryTx,
            Role::HeavenRx,
            Role::Bless,
            Role::Pilgrim
        ]
    );
    let shrine = ok(&with_runs(
        "mode shrine\ninstance s\nsecret s\ntap yes\ntunnel 0.0.0.0/0 1400\n",
    ));
    assert_eq!(
        shrine.roles_needed(),
        &[
            Role::Control,
            Role::PurgatoryRx,
            Role::HeavenTx,
            Role::Confess,
            Role::Shrine
        ]
    );
    assert!(shrine.peer_auto());
    assert_eq!(shrine.tun_mtu(), 1400);
}

#[test]
fn peers_and_mtus() {
    // No peer, no cathedral: learn.
    let c = ok(&tunnel(""));
    assert_eq!(
        (c.effective_peer(), c.peer_auto(), c.peer_configured()),
        (InitialPeer::Learn, true, false)
    );
    // peer 0.0.0.0:0 learns but counts as configured (the reference's flag).
    let c = ok(&tunnel("peer 0.0.0.0:0\n"));
    assert_eq!(
        (c.effective_peer(), c.peer_auto(), c.peer_configured()),
        (InitialPeer::Learn, true, true)
    );
    // peer auto with a cathedral: starts at the cathedral but stays auto.
    let c = ok(&client("cathedral_flock 1\npeer auto\n"));
    assert_eq!(
        (c.effective_peer(), c.peer_auto(), c.peer_configured()),
        (InitialPeer::Cathedral, true, false)
    );
    // A configured peer wins over the cathedral.
    let c = ok(&client("cathedral_flock 1\npeer 9.9.9.9:9\n"));
    assert_eq!(c.effective_peer(), InitialPeer::Fixed(addr("9.9.9.9:9")));
    // Tap without a tunnel line in tunnel mode: auto MTU and discovery.
    let c = ok(&with_runs("instance t\nsecret s\ntap yes\n"));
    assert_eq!(
        (c.mtu(), c.tun_mtu(), c.mtu_discovery(), c.tunnel()),
        (Mtu::Auto, 1422, true, None)
    );
    // Bounds.
    assert_eq!(
        ok(&with_runs("instance t\nsecret s\ntunnel 10.0.0.1/30 623\n")).tun_mtu(),
        623
    );
    assert_eq!(
        ok(&with_runs(
            "instance t\nsecret s\nshroud yes\ntunnel 10.0.0.1/30 1373\n"
        ))
        .tun_mtu(),
        1373
    );
}

#[test]
fn crlf_and_odd_whitespace() {
    let text = tunnel("peer\t1.2.3.4:5\t \r\n").replace('\n', "\r\n");
    let c = ok(&text);
    assert_eq!(c.peer(), Some(PeerSetting::Addr(addr("1.2.3.4:5"))));
    assert_eq!(c.instance(), "t");
    // No newline at the end of the last line.
    ok(tunnel("").trim_end());
}

#[test]
fn secret_readability_order() {
    assert!(ok(&tunnel("")).secret_must_exist());
    let c =
        ok(&client("cathedral_flock 1\n").replace("secret /k/s\n", "kek /k/kek\nsecret /k/s\n"));
    assert!(!c.secret_must_exist());
    let c = ok(&client("cathedral_flock 1\nkek /k/kek\n"));
    assert!(
        c.secret_must_exist(),
        "kek after secret does not excuse the secret"
    );
}

// ---------------------------------------------------------------------------
// Errors: each class of malformed line with its exact message.

#[test]
fn lexical_errors() {
    assert_eq!(
        err("frobnicate 1\n"),
        "/etc/x.conf:1: frobnicate: unknown keyword"
    );
    assert_eq!(
        err("\n\nMode tunnel\n"),
        "/etc/x.conf:3: Mode: unknown keyword (did you mean `mode`?)"
    );
    assert_eq!(
        err("cathedral_ids 1\n"),
        "/etc/x.conf:1: cathedral_ids: unknown keyword (did you mean `cathedral_id`?)"
    );
    assert_eq!(err("mode\n"), "/etc/x.conf:1: mode: missing value");
    assert_eq!(err("  mode \t \r\n"), "/etc/x.conf:1: mode: missing value");
    let long = format!("descr {}\n", "a".repeat(9000));
    assert_eq!(
        err(&long),
        "/etc/x.conf:1: descr: line is 9006 bytes long (at most 8191 fit the reference's line buffer)"
    );
    assert_eq!(
        err("instance a\u{0}b\n"),
        "/etc/x.conf:1: instance: line contains a NUL byte"
    );
    let huge = "x".repeat(10_000_000);
    assert_eq!(
        err(&format!("instance t\n{huge}")),
        format!(
            "/etc/x.conf:2: {}...: line is 10000000 bytes long (at most 8191 fit the reference's line buffer)",
            "x".repeat(32)
        )
    );
    let e = Config::parse_bytes(P, b"# ok \xff\ninstance \xff\xfe\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/x.conf:2: instance: line is not valid UTF-8"
    );
    assert_eq!(e.kind, ErrorKind::Lexical);
    assert_eq!(e.line, Some(2));
    let e = Config::parse(P, "a\u{7}b x\n").unwrap_err();
    assert_eq!(e.to_string(), "/etc/x.conf:1: a\\u{7}b: unknown keyword");
    assert_eq!(e.kind, ErrorKind::UnknownKeyword);
}

#[test]
fn value_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "mode tunel\n",
            "4: mode: unknown mode \"tunel\" (expected tunnel, default, pilgrim, shrine, cathedral or liturgy)",
        ),
        (
            "descr abcdefghijklmnopqrstuvwxyz0123456\n",
            "4: descr: \"abcdefghijklmnopqrstuvwxyz0123456\" is 33 characters long (at most 31)",
        ),
        (
            "spi 0xzz\n",
            "4: spi: \"0xzz\" is not a hex number (expected a 16-bit hex value, 0x optional)",
        ),
        (
            "spi 0x10000\n",
            "4: spi: \"0x10000\" does not fit in 16 bits (at most 0xffff)",
        ),
        (
            "spi 0x0102 trailing\n",
            "4: spi: unexpected text \"trailing\" after \"0x0102\"",
        ),
        (
            "route 10.0.0.1/24\n",
            "4: route: 10.0.0.1/24 has host bits set (the network is 10.0.0.0/24)",
        ),
        (
            "route 10.0.0.0\n",
            "4: route: \"10.0.0.0\" has no /prefix (expected <ipv4>/<prefix>)",
        ),
        (
            "route 10.0.0.0/33\n",
            "4: route: prefix length 33 out of range (0..=32)",
        ),
        (
            "route 10.0.0.0/288\n",
            "4: route: prefix length 288 out of range (0..=32)",
        ),
        (
            "accept 10.0.0.256/24\n",
            "4: accept: invalid IPv4 address \"10.0.0.256\"",
        ),
        (
            "accept 10.0.0.0/x\n",
            "4: accept: prefix length \"x\" is not a decimal number",
        ),
        (
            "peer 1.2.3.4\n",
            "4: peer: \"1.2.3.4\" has no :port (expected <ipv4>:<port>)",
        ),
        ("peer 1.2.3.4:0\n", "4: peer: 1.2.3.4:0 has port 0"),
        (
            "peer 1.2.3.4:65536\n",
            "4: peer: port 65536 out of range (0..=65535)",
        ),
        ("peer ::1:5\n", "4: peer: invalid IPv4 address \"\""),
        (
            "peer localhost:5\n",
            "4: peer: invalid IPv4 address \"localhost\"",
        ),
        (
            "local 1.2.3.4:x\n",
            "4: local: port \"x\" is not a decimal number",
        ),
        ("tap maybe\n", "4: tap: \"maybe\" is neither `yes` nor `no`"),
        ("tfc yes\n", "4: tfc: \"yes\" is neither `on` nor `off`"),
        ("shroud on\n", "4: shroud: \"on\" is neither `yes` nor `no`"),
        (
            "bridge this-name-is-too-long\n",
            "4: bridge: interface name \"this-name-is-too-long\" is 21 bytes long (at most 15)",
        ),
        (
            "bridge br/0\n",
            "4: bridge: invalid interface name \"br/0\"",
        ),
        (
            "control /tmp/x\n",
            "4: control: \"/tmp/x\" is not `<path> <user>`",
        ),
        (
            "control /tmp/x bad:user\n",
            "4: control: invalid user name \"bad:user\"",
        ),
        (
            "run bless root\n",
            "4: run: \"bless root\" is not `<process> as <user>`",
        ),
        (
            "run bless as root extra\n",
            "4: run: \"bless as root extra\" is not `<process> as <user>`",
        ),
        (
            "run heaven as root\n",
            "4: run: unknown process \"heaven\" (expected one of heaven-rx, heaven-tx, purgatory-rx, purgatory-tx, chapel, bless, confess, control, pilgrim, shrine, cathedral, liturgy, bishop)",
        ),
        (
            "run bless as abcdefghijklmnopqrstuvwxyz0123456\n",
            "4: run: user name \"abcdefghijklmnopqrstuvwxyz0123456\" is 33 bytes long (at most 31)",
        ),
        (
            "cathedral_flock 0\n",
            "4: cathedral_flock: 0 is not a valid flock",
        ),
        (
            "cathedral_flock 0x11223344556677889\n",
            "4: cathedral_flock: \"0x11223344556677889\" does not fit in 64 bits (at most 0xffffffffffffffff)",
        ),
        (
            "cathedral_flock_dst 0x\n",
            "4: cathedral_flock_dst: \"0x\" is not a hex number (expected a 64-bit hex value, 0x optional)",
        ),
        (
            "cathedral_nat_port 70000\n",
            "4: cathedral_nat_port: port 70000 out of range (0..=65535)",
        ),
        (
            "cathedral_nat_port 0x10\n",
            "4: cathedral_nat_port: port \"0x10\" is not a decimal number",
        ),
        (
            "cathedral_p2p_sync 1\n",
            "4: cathedral_p2p_sync: \"1\" is neither `yes` nor `no`",
        ),
        (
            "liturgy_group 0x1ffff\n",
            "4: liturgy_group: \"0x1ffff\" does not fit in 16 bits (at most 0xffff)",
        ),
        (
            "liturgy_prefix 10.15.1.0\n",
            "4: liturgy_prefix: 10.15.1.0 must end in .0.0 (e.g. 10.15.0.0)",
        ),
        (
            "liturgy_prefix 0.0.0.0\n",
            "4: liturgy_prefix: 0.0.0.0 is not a usable prefix",
        ),
        (
            "liturgy_discoverable hidden\n",
            "4: liturgy_discoverable: \"hidden\" is neither `yes` nor `no`",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(
            err(&tunnel(line)),
            format!("/etc/x.conf:{want}"),
            "line {line:?}"
        );
    }
    assert_eq!(
        err(&with_runs(
            "secret s\ntunnel 10.0.0.1/30 1422\n\ninstance a_b\n"
        )),
        "/etc/x.conf:4: instance: \"a_b\" contains '_'; only letters, digits and '-' are allowed"
    );
    let long_path = format!("control /{} root\n", "a".repeat(107));
    assert_eq!(
        err(&tunnel(&long_path)),
        "/etc/x.conf:4: control: socket path is 108 bytes long (a UNIX socket path holds at most 107)"
    );
}

#[test]
fn tunnel_line_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "tunnel 10.0.0.1/30 400",
            "mtu 400 out of range (623..=1422)",
        ),
        (
            "tunnel 10.0.0.1/30 622",
            "mtu 622 out of range (623..=1422)",
        ),
        (
            "tunnel 10.0.0.1/30 1423",
            "mtu 1423 out of range (623..=1422)",
        ),
        (
            "tunnel 10.0.0.1/30 99999999999",
            "mtu 99999999999 out of range (623..=1422)",
        ),
        (
            "tunnel 10.0.0.1/30 abc",
            "mtu \"abc\" is not a number or `auto`",
        ),
        (
            "tunnel 10.0.0.1/30 -1",
            "mtu \"-1\" is not a number or `auto`",
        ),
        (
            "tunnel 10.0.0.1/30",
            "\"10.0.0.1/30\" is not `<ipv4>/<prefix> <mtu>` or `<ipv4>/<prefix> auto`",
        ),
        (
            "tunnel 10.0.0.1/30 1422 extra",
            "unexpected text \"extra\" after the mtu",
        ),
        (
            "tunnel 10.0.0.300/30 1422",
            "invalid IPv4 address \"10.0.0.300\"",
        ),
        (
            "tunnel 10.0.0.1 1422",
            "\"10.0.0.1\" has no /prefix (expected <ipv4>/<prefix>)",
        ),
        (
            "tunnel 10.0.0.1/33 auto",
            "prefix length 33 out of range (0..=32)",
        ),
    ];
    for (line, want) in cases {
        let text = with_runs(&format!("instance t\nsecret s\n\n{line}\n"));
        assert_eq!(
            err(&text),
            format!("/etc/x.conf:4: tunnel: {want}"),
            "line {line:?}"
        );
    }
    // Shroud lowers the maximum once the whole file is known; the tunnel's
    // line is named even though shroud comes later.
    let text = with_runs("instance t\nsecret s\ntunnel 10.0.0.1/30 1400\nshroud yes\n");
    assert_eq!(
        err(&text),
        "/etc/x.conf:3: tunnel: mtu 1400 out of range (623..=1373 with shroud)"
    );
}

#[test]
fn repeated_keywords() {
    assert_eq!(
        err(&tunnel("secret /k/other\n")),
        "/etc/x.conf:4: secret: given more than once (first on line 2)"
    );
    assert_eq!(
        err(&tunnel("tunnel 10.0.0.1/30 1300\n")),
        "/etc/x.conf:4: tunnel: given more than once (first on line 3)"
    );
    assert_eq!(
        err(&tunnel("instance t\n")),
        "/etc/x.conf:4: instance: given more than once (first on line 1)"
    );
    assert_eq!(
        err(&tunnel("tap yes\ntap no\n")),
        "/etc/x.conf:5: tap: given more than once (first on line 4)"
    );
    assert_eq!(
        err(&tunnel("mode tunnel\nmode pilgrim\n")),
        "/etc/x.conf:5: mode: given more than once (first on line 4)"
    );
    assert_eq!(
        err(&tunnel("spi 1\nspi 2\n")),
        "/etc/x.conf:5: spi: given more than once (first on line 4)"
    );
    let e = Config::parse(
        P,
        &format!("instance t\nsecret s\ntunnel 10.0.0.1/30 1422\n{RUN_TUNNEL}run chapel as x\n"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/x.conf:12: run: process chapel already has a user (line 10)"
    );
    assert_eq!(e.kind, ErrorKind::Repeated);
    // route and accept repeat freely.
    assert_eq!(
        ok(&tunnel(
            "route 10.1.0.0/16\nroute 10.1.0.0/16\naccept 1.0.0.0/8\naccept 2.0.0.0/8\n"
        ))
        .routes()
        .len(),
        2
    );
}

#[test]
fn order_errors() {
    let want = "needs a non-zero `spi` on an earlier line";
    for kw in [
        "cathedral 1.2.3.4:4500",
        "cathedral_id 0badf00d",
        "cathedral_secret /k/cs",
        "cathedral_cosk /k/c",
    ] {
        let name = kw.split(' ').next().unwrap();
        let e = Config::parse(P, &tunnel(&format!("{kw}\nspi 0x0102\n"))).unwrap_err();
        assert_eq!(e.to_string(), format!("/etc/x.conf:4: {name}: {want}"));
        assert_eq!(e.kind, ErrorKind::Order);
        assert_eq!(
            err(&tunnel(&format!("spi 0\n{kw}\n"))),
            format!("/etc/x.conf:5: {name}: {want}")
        );
    }
    for kw in [
        "cathedral_ip 1.2.3.4:4500",
        "cathedral_mtu 1422",
        "secretdir /k/d",
        "settings /k/s",
    ] {
        let name = kw.split(' ').next().unwrap();
        let e = Config::parse(P, &format!("instance c\n{kw}\nmode cathedral\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "/etc/x.conf:2: {name}: only valid in cathedral mode, and `mode cathedral` must come before `{name}`"
            )
        );
        assert_eq!(e.kind, ErrorKind::Order);
        let e = Config::parse(P, &format!("mode shrine\n{kw}\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("/etc/x.conf:2: {name}: only valid in cathedral mode, not shrine")
        );
        assert_eq!(e.kind, ErrorKind::WrongMode);
    }
}

#[test]
fn required_keywords() {
    assert_eq!(
        err(&with_runs("secret s\ntunnel 10.0.0.1/30 1422\n")),
        "/etc/x.conf: instance: missing (every configuration needs an instance name)"
    );
    assert_eq!(
        err(&with_runs("instance t\ntunnel 10.0.0.1/30 1422\n")),
        "/etc/x.conf: secret: missing (tunnel mode needs the path of its 32-byte shared secret)"
    );
    assert_eq!(
        err(&with_runs("instance t\nsecret s\n")),
        "/etc/x.conf: tunnel: missing (tunnel mode needs `tunnel <ipv4>/<prefix> <mtu>` unless `tap yes`)"
    );
    assert_eq!(
        err(&with_runs("instance t\nsecret s\ntunnel 0.0.0.0/0 1422\n")),
        "/etc/x.conf:3: tunnel: address 0.0.0.0 is only valid with `tap yes`"
    );
    let e = Config::parse(P, "instance t\nsecret s\ntunnel 10.0.0.1/30 1422\nrun heaven-rx as u\nrun heaven-tx as u\nrun purgatory-rx as u\nrun purgatory-tx as u\nrun bless as u\nrun control as u\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/x.conf: run: no `run <process> as <user>` line for confess, chapel (tunnel mode starts them)"
    );
    assert_eq!(
        (e.kind, e.line, e.keyword.as_deref()),
        (ErrorKind::Missing, None, Some("run"))
    );
    let e = Config::parse(P, "mode cathedral\ninstance c\nsecret s\nsecretdir d\ncathedral_mtu 1400\nlocal 1.1.1.1:1\nrun control as u\nrun purgatory-rx as u\nrun purgatory-tx as u\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/x.conf: run: no `run <process> as <user>` line for cathedral (cathedral mode starts it)"
    );
    assert_eq!(
        err(""),
        "/etc/x.conf: instance: missing (every configuration needs an instance name)"
    );
}

#[test]
fn cross_keyword_errors() {
    // tfc needs a numeric MTU.
    let e = Config::parse(
        P,
        &with_runs("instance t\nsecret s\ntunnel 10.0.0.1/30 auto\ntfc on\n"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/x.conf:4: tfc: `tfc on` needs a numeric MTU, but the tunnel on line 3 uses `auto`"
    );
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(
        err(&with_runs("instance t\nsecret s\ntap yes\ntfc on\n")),
        "/etc/x.conf:4: tfc: `tfc on` needs a numeric MTU, but there is no `tunnel` line"
    );
    // kek needs a cathedral, and only tunnel/liturgy use it.
    assert_eq!(
        err(&tunnel("kek /k/kek\n")),
        "/etc/x.conf:4: kek: needs `cathedral` (the KEK unwraps ambries sent by a cathedral)"
    );
    assert_eq!(
        err(&with_runs(
            "mode shrine\ninstance s\nsecret s\ntunnel 10.0.0.1/30 1400\nkek /k/kek\n"
        )),
        "/etc/x.conf:5: kek: only used in tunnel and liturgy mode"
    );
    // Cathedral client completeness, in the reference's order.
    assert_eq!(
        err(&with_runs(
            "spi 1\ninstance t\nsecret s\ntunnel 10.0.0.1/30 1422\ncathedral 1.2.3.4:4500\n"
        )),
        "/etc/x.conf: cathedral_secret: missing (required with `cathedral`)"
    );
    assert_eq!(
        err(&client("")),
        "/etc/x.conf: cathedral_flock: missing (required with `cathedral`)"
    );
    assert_eq!(
        err(&client("").replace("cathedral_cosk /k/cosk\n", "")),
        "/etc/x.conf: cathedral_cosk: missing (required with `cathedral`)"
    );
    // Tap and bridge.
    assert_eq!(
        err(&tunnel("bridge br0\n")),
        "/etc/x.conf:4: bridge: needs `tap yes`"
    );
    assert_eq!(
        err(&tunnel("tap yes\n")),
        "/etc/x.conf:3: tunnel: address must be 0.0.0.0 with `tap yes`"
    );
    // Pilgrim and shrine.
    assert_eq!(
        err(&with_runs(
            "mode pilgrim\ninstance p\nsecret s\ntunnel 10.0.0.1/30 auto\npeer 1.1.1.1:1\n"
        )),
        "/etc/x.conf:4: tunnel: mtu `auto` is only available in tunnel mode, not pilgrim"
    );
    assert_eq!(
        err(&with_runs("mode shrine\ninstance s\nsecret s\ntap yes\n")),
        "/etc/x.conf: tunnel: missing (shrine mode needs a numeric MTU; with `tap yes` write `tunnel 0.0.0.0/0 <mtu>`)"
    );
    assert_eq!(
        err(&with_runs(
            "mode pilgrim\ninstance p\nsecret s\ntunnel 10.0.0.1/30 1400\n"
        )),
        "/etc/x.conf: peer: missing (pilgrim mode needs a fixed peer address; the shrine never sends, so it cannot be learnt)"
    );
    assert_eq!(
        err(&with_runs(
            "mode pilgrim\ninstance p\nsecret s\ntunnel 10.0.0.1/30 1400\npeer auto\n"
        )),
        "/etc/x.conf:5: peer: pilgrim mode needs a fixed peer address; the shrine never sends, so it cannot be learnt"
    );
    assert_eq!(
        err(&with_runs(
            "mode shrine\nspi 1\ninstance s\nsecret s\ntunnel 10.0.0.1/30 1400\ncathedral 1.2.3.4:1\n"
        )),
        "/etc/x.conf:6: cathedral: not used in shrine mode (only tunnel and liturgy mode have a cathedral client)"
    );
    // Cathedral address syntax.
    assert_eq!(
        err(&tunnel("spi 1\ncathedral 1.2.3.4\n")),
        "/etc/x.conf:5: cathedral: \"1.2.3.4\" has no :port (expected <host>:<port>)"
    );
    assert_eq!(
        err(&tunnel("spi 1\ncathedral 1.2.3.4:0\n")),
        "/etc/x.conf:5: cathedral: port 0 is not a cathedral port"
    );
    assert_eq!(
        err(&tunnel("spi 1\ncathedral 0.0.0.0:1\n")),
        "/etc/x.conf:5: cathedral: 0.0.0.0 is not a cathedral address"
    );
    assert_eq!(
        err(&tunnel("spi 1\ncathedral bad host:1\n")),
        "/etc/x.conf:5: cathedral: unexpected text \"host:1\" after \"bad\""
    );
    assert_eq!(
        err(&tunnel("spi 1\ncathedral_id 0\n")),
        "/etc/x.conf:5: cathedral_id: 0 is not a valid identity"
    );
}

#[test]
fn cathedral_errors() {
    assert_eq!(
        err(&cathedral("shroud yes\n")),
        "/etc/x.conf:5: cathedral_mtu: mtu 1422 out of range (623..=1373 with shroud)"
    );
    assert_eq!(
        err(&cathedral("tap yes\n")),
        "/etc/x.conf:7: tap: a cathedral cannot use a tap device"
    );
    assert_eq!(
        err(&cathedral("tunnel 10.0.0.1/30 1300\n")),
        "/etc/x.conf:7: tunnel: a cathedral has no tunnel device (its padding MTU is `cathedral_mtu`)"
    );
    assert_eq!(
        err(&cathedral("spi 1\ncathedral 1.2.3.4:4500\n")),
        "/etc/x.conf:8: cathedral: not used in cathedral mode (the advertised address is `cathedral_ip`)"
    );
    assert_eq!(
        err(&cathedral("kek /k/kek\n")),
        "/etc/x.conf:7: kek: only used in tunnel and liturgy mode"
    );
    assert_eq!(
        err(&cathedral("cathedral_ip 0.0.0.0:4500\n")),
        "/etc/x.conf:7: cathedral_ip: 0.0.0.0:4500 needs a non-zero address and port"
    );
    assert_eq!(
        err(&cathedral("cathedral_mtu 1300\n")),
        "/etc/x.conf:7: cathedral_mtu: given more than once (first on line 5)"
    );
    assert_eq!(
        err(&cathedral("").replace("cathedral_mtu 1422", "cathedral_mtu auto")),
        "/etc/x.conf:5: cathedral_mtu: mtu \"auto\" is not a number"
    );
    let no = |line: &str| cathedral("").replace(&format!("{line}\n"), "");
    assert_eq!(
        err(&no("secretdir /k/dir")),
        "/etc/x.conf: secretdir: missing (a cathedral needs the directory of its clients' secrets)"
    );
    assert_eq!(
        err(&no("cathedral_mtu 1422")),
        "/etc/x.conf: cathedral_mtu: missing (a cathedral needs the MTU used for TFC and shroud padding)"
    );
    assert_eq!(
        err(&no("local 10.0.0.254:4500")),
        "/etc/x.conf: local: missing (a cathedral needs the non-zero address it listens on)"
    );
    assert_eq!(
        err(&no("secret /k/sync")),
        "/etc/x.conf: secret: missing (a cathedral needs the path of its 32-byte federation sync secret)"
    );
    // The non-zero local check does not depend on the order of `mode`.
    let late_mode = "local 0.0.0.0:4500\nmode cathedral\ninstance c\nsecret s\nsecretdir d\ncathedral_mtu 1400\n";
    assert_eq!(
        err(&with_runs(late_mode)),
        "/etc/x.conf:1: local: a cathedral needs a non-zero address and port, not 0.0.0.0:4500"
    );
    assert_eq!(
        err(&cathedral("").replace("local 10.0.0.254:4500", "local 10.0.0.254:0")),
        "/etc/x.conf:6: local: a cathedral needs a non-zero address and port, not 10.0.0.254:0"
    );
}

#[test]
fn liturgy_errors() {
    let no = |line: &str| liturgy("").replace(&format!("{line}\n"), "");
    assert_eq!(
        err(&no("liturgy_prefix 10.15.0.0")),
        "/etc/x.conf: liturgy_prefix: missing (liturgy mode needs the address pool, e.g. 10.15.0.0)"
    );
    assert_eq!(
        err(&no("kek /k/kek")),
        "/etc/x.conf: kek: missing (liturgy mode needs the device's base KEK)"
    );
    assert_eq!(
        err(&no("cathedral 1.2.3.4:4500")),
        "/etc/x.conf: cathedral: missing (required in liturgy mode)"
    );
    assert_eq!(
        err(&no("cathedral_flock cafeba00")),
        "/etc/x.conf: cathedral_flock: missing (required in liturgy mode)"
    );
    assert_eq!(
        err(&liturgy("").replace("spi 0xca", "spi 0x0102")),
        "/etc/x.conf:2: spi: 0x0102 is too large for liturgy mode (only the own id, at most 0xff)"
    );
    assert_eq!(
        err(&liturgy("bridge br0\n")),
        "/etc/x.conf:11: bridge: needs `tap yes`"
    );
    assert_eq!(
        err(&liturgy("tfc on\n")),
        "/etc/x.conf:11: tfc: `tfc on` needs a numeric MTU, but there is no `tunnel` line"
    );
}

#[test]
fn error_fields_for_callers() {
    let e = Config::parse(
        "/etc/x.conf",
        &with_runs("instance t\nsecret s\n\n\n\n\ntunnel 10.0.0.1/30 400\n"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/x.conf:7: tunnel: mtu 400 out of range (623..=1422)"
    );
    assert_eq!(e.path, Path::new("/etc/x.conf"));
    assert_eq!(e.line, Some(7));
    assert_eq!(e.keyword.as_deref(), Some("tunnel"));
    assert_eq!(e.kind, ErrorKind::OutOfRange);
    assert_eq!(e.message, "mtu 400 out of range (623..=1422)");
}

// ---------------------------------------------------------------------------
// Hostile input never panics.

#[test]
fn mangled_configs_never_panic() {
    let seeds: Vec<String> = vec![
        tunnel(""),
        client("cathedral_flock 1\n"),
        cathedral(""),
        liturgy(""),
    ];
    let tokens: &[&[u8]] = &[
        b" ",
        b"\t",
        b"\n",
        b"\r",
        b"\0",
        b"\xff",
        b"#",
        b":",
        b"/",
        b"0x",
        b"auto",
        b"yes",
        b"mode cathedral\n",
        b"spi 0\n",
        b"tap yes\n",
        b"99999999999999999999999",
        b"\xe2\x82",
        b"run bless as root\n",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut accepted = 0;
    for round in 0..4000 {
        let mut bytes = seeds[round % seeds.len()].clone().into_bytes();
        for _ in 0..(next() % 6 + 1) {
            let at = (next() as usize) % (bytes.len() + 1);
            match next() % 4 {
                0 if at < bytes.len() => bytes[at] = next() as u8,
                1 => {
                    let t = tokens[(next() as usize) % tokens.len()];
                    bytes.splice(at..at, t.iter().copied());
                }
                2 => bytes.truncate(at),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        if let Ok(c) = Config::parse_bytes(P, &bytes) {
            accepted += 1;
            let _ = (
                c.tun_mtu(),
                c.effective_peer(),
                c.peer_auto(),
                c.advertised_address(),
                c.missing_run_lines(),
            );
            assert!(c.missing_run_lines().is_empty());
            assert!((623..=1422).contains(&c.tun_mtu()) || c.mode() == Mode::Liturgy);
        }
        let _ = Config::parse(P, &String::from_utf8_lossy(&bytes));
    }
    assert!(accepted > 0, "some mutations keep the configuration valid");
    // Every prefix of a valid file.
    let full = client("cathedral_flock 1\n");
    for end in 0..=full.len() {
        let _ = Config::parse_bytes(P, &full.as_bytes()[..end]);
    }
    // A huge file of long lines.
    let big = format!("{}\n", "x".repeat(8191)).repeat(200);
    assert!(Config::parse(P, &big).is_err());
}

// ---------------------------------------------------------------------------
// Files.

/// A fresh directory under the system temp dir for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chantry-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn key_files() {
    let dir = scratch("keys");
    let key = dir.join("key");
    let bytes: Vec<u8> = (0..40u8).collect();
    std::fs::write(&key, &bytes).unwrap();
    assert_eq!(load_key_file::<32>(&key).unwrap().expose(), &bytes[..32]);
    assert_eq!(
        load_key_file::<40>(&key).unwrap().expose().as_slice(),
        bytes.as_slice()
    );
    let e = load_key_file::<64>(&key).unwrap_err();
    assert!(matches!(
        e,
        KeyFileError::TooShort {
            have: 40,
            need: 64,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        format!("{}: too short: has 40 bytes, needs 64", key.display())
    );

    let missing = dir.join("missing");
    assert_eq!(
        load_key_file::<32>(&missing).unwrap_err().to_string(),
        format!("{}: does not exist", missing.display())
    );
    assert_eq!(
        load_key_file::<32>(&dir).unwrap_err().to_string(),
        format!("{}: is a directory, not a regular file", dir.display())
    );
    #[cfg(unix)]
    {
        let link = dir.join("link");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        let e = load_key_file::<32>(&link).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: is a symbolic link (key files are never read through links)",
                link.display()
            )
        );
        let e = load_key_file::<32>(Path::new("/dev/null")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/null: is a character device, not a regular file"
        );
    }
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        load_key_file::<32>(&empty).unwrap_err().to_string(),
        format!("{}: too short: has 0 bytes, needs 32", empty.display())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_files_and_load() {
    let dir = scratch("check");
    let d = dir.display();
    std::fs::write(dir.join("secret"), [7u8; 32]).unwrap();
    std::fs::write(dir.join("short"), [7u8; 31]).unwrap();
    std::fs::write(dir.join("kek"), [1u8; 32]).unwrap();
    std::fs::write(dir.join("cs"), [2u8; 32]).unwrap();
    std::fs::write(dir.join("cosk"), [3u8; 64]).unwrap();
    std::fs::write(dir.join("settings"), b"").unwrap();

    let conf = dir.join("t.conf");
    std::fs::write(
        &conf,
        tunnel("").replace("secret /k/s", &format!("secret {d}/secret")),
    )
    .unwrap();
    let c = Config::load(&conf).unwrap();
    assert_eq!(c.load_secret().unwrap().unwrap().expose(), &[7u8; 32]);
    assert!(c.load_kek().unwrap().is_none());

    let c = Config::parse(
        P,
        &tunnel("").replace("secret /k/s", &format!("secret {d}/short")),
    )
    .unwrap();
    let e = c.check_files().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("/etc/x.conf:2: secret: {d}/short: too short: has 31 bytes, needs 32")
    );
    assert_eq!(e.kind, ErrorKind::File);
    let c = Config::parse(
        P,
        &tunnel("").replace("secret /k/s", &format!("secret {d}/nope")),
    )
    .unwrap();
    assert_eq!(
        c.check_files().unwrap_err().to_string(),
        format!("/etc/x.conf:2: secret: {d}/nope: does not exist")
    );

    // With kek first the secret need not exist yet; the client's keys must.
    let text = format!(
        "spi 0x0102\ninstance t\ntunnel 10.0.0.1/30 auto\nkek {d}/kek\nsecret {d}/not-yet\ncathedral 1.2.3.4:4500\n\
         cathedral_id 1\ncathedral_secret {d}/cs\ncathedral_cosk {d}/cosk\ncathedral_flock 1\n{RUN_TUNNEL}"
    );
    let c = Config::parse(P, &text).unwrap();
    c.check_files().unwrap();
    assert_eq!(
        c.load_cathedral_cosk().unwrap().unwrap().expose(),
        &[3u8; 64]
    );
    assert_eq!(
        c.load_cathedral_secret().unwrap().unwrap().expose(),
        &[2u8; 32]
    );
    assert_eq!(c.load_kek().unwrap().unwrap().expose(), &[1u8; 32]);
    assert!(c.load_secret().is_err());
    let short_cosk = text.replace(&format!("{d}/cosk"), &format!("{d}/cs"));
    let e = Config::parse(P, &short_cosk)
        .unwrap()
        .check_files()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("/etc/x.conf:9: cathedral_cosk: {d}/cs: too short: has 32 bytes, needs 64")
    );

    // Cathedral: secretdir must be a directory, settings a readable file.
    let cath = |secretdir: &str, settings: &str| {
        format!(
            "mode cathedral\ninstance c\nsecret {d}/secret\nsecretdir {secretdir}\nsettings {settings}\n\
             cathedral_mtu 1400\nlocal 1.1.1.1:1\n{RUN_ALL}"
        )
    };
    Config::parse(P, &cath(&d.to_string(), &format!("{d}/settings")))
        .unwrap()
        .check_files()
        .unwrap();
    let e = Config::parse(P, &cath(&format!("{d}/settings"), &format!("{d}/settings")))
        .unwrap()
        .check_files()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("/etc/x.conf:4: secretdir: {d}/settings: is not a directory")
    );
    let e = Config::parse(P, &cath(&d.to_string(), &d.to_string()))
        .unwrap()
        .check_files()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("/etc/x.conf:5: settings: {d}: is a directory, not a regular file")
    );

    // load() reports read errors without a keyword.
    let e = Config::load(dir.join("absent.conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{d}/absent.conf: cannot read the configuration: does not exist")
    );
    assert_eq!((e.kind, e.line, e.keyword), (ErrorKind::Read, None, None));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn remembrance_file() {
    let dir = scratch("remembrance");
    let path = dir.join("r");
    let list = [addr("198.51.100.1:4500"), addr("198.51.100.2:4501")];
    let r = Remembrance::new(&list).unwrap();
    store_remembrance_file(&path, &r.encode()).unwrap();
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(raw.len(), 192);
    assert_eq!(&raw[..8], &[198, 51, 100, 1, 198, 51, 100, 2]);
    assert_eq!(&raw[128..132], &[0x11, 0x94, 0x11, 0x95]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o400
        );
    }
    assert_eq!(load_remembrance_file(&path).unwrap().cathedrals(), &list);
    let short = dir.join("short");
    std::fs::write(&short, [1u8; 100]).unwrap();
    assert_eq!(
        load_remembrance_file(&short).unwrap_err().to_string(),
        format!("{}: too short: has 100 bytes, needs 192", short.display())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
