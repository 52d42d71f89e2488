//! A chantryd cathedral between two chantryd tunnel clients: each client
//! registers with signed INFO offers, the cathedral relays the key
//! exchange and the data packets, and ping works both ways through the
//! relay. The cathedral's status log shows what it relayed.
//!
//! Three namespaces: the cathedral `c` in the middle, joined by one veth
//! pair to each client (192.168.78.0/28 to `a`, 192.168.78.16/28 to `b`).
//! The cathedral listens on 192.168.78.1; `b` reaches it through a route
//! via the cathedral's address on its own link.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chantry_e2e::*;

const CATHEDRAL: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 1);
const CAT_B_SIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 17);
const OUT_A: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 2);
const OUT_B: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 18);
const IN_A: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const IN_B: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const FLOCK: u64 = 0xcafe_0000;

/// Joins `x` and `y` with a veth pair and gives each end its address.
fn link(x: &Netns, xa: Ipv4Addr, y: &Netns, ya: Ipv4Addr, tag: &str) {
    let (vx, vy) = (
        format!("chv{tag}x{}", std::process::id() % 10000),
        format!("chv{tag}y{}", std::process::id() % 10000),
    );
    sh(&[
        "ip", "link", "add", &vx, "netns", &x.name, "type", "veth", "peer", "name", &vy, "netns",
        &y.name,
    ]);
    x.run(&["ip", "addr", "add", &format!("{xa}/28"), "dev", &vx]);
    y.run(&["ip", "addr", "add", &format!("{ya}/28"), "dev", &vy]);
    x.run(&["ip", "link", "set", &vx, "up"]);
    y.run(&["ip", "link", "set", &vy, "up"]);
}

fn write_key(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).expect("key file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A client identity: id, tunnel id, cathedral secret, COSK.
struct Identity {
    id: u32,
    spi: u16,
    cs: [u8; 32],
    cosk: ed25519_dalek::SigningKey,
}

fn identity(i: u8) -> Identity {
    Identity {
        id: 0x2a + u32::from(i),
        spi: if i == 1 { 0x0102 } else { 0x0201 },
        cs: [0x20 + i; 32],
        cosk: ed25519_dalek::SigningKey::from_bytes(&[0x30 + i; 32]),
    }
}

fn run_lines(mode: &str, side: u32) -> String {
    roles(mode)
        .into_iter()
        .map(|r| format!("run {r} as {}\n", uid_of(r, side)))
        .collect()
}

fn cathedral_conf(dir: &TempDir, ids: &[&Identity]) -> PathBuf {
    let secrets = dir.join("secrets");
    let fdir = secrets.join(format!("flock-{FLOCK:x}"));
    fs::create_dir_all(&fdir).expect("secretdir");
    let mut settings = format!("flock {FLOCK:x} {{\n");
    for d in ids {
        write_key(&fdir.join(format!("{:08x}.key", d.id)), &d.cs);
        write_key(
            &fdir.join(format!("{:08x}.pub", d.id)),
            d.cosk.verifying_key().as_bytes(),
        );
        settings += &format!("allow {:x} spi {:02x} 0\n", d.id, d.spi >> 8);
    }
    settings += "}\n";
    fs::write(dir.join("settings"), settings).expect("settings");
    write_secret(&dir.join("sync.secret"), 9);
    let text = format!(
        "mode cathedral\ninstance chcat\nsecret {}\nlocal {CATHEDRAL}:4500\ncathedral_mtu 1422\n\
         secretdir {}\nsettings {}\ncontrol {} root\n{}",
        dir.join("sync.secret").display(),
        secrets.display(),
        dir.join("settings").display(),
        dir.join("chcat.control").display(),
        run_lines("cathedral", 2),
    );
    let path = dir.join("chcat.conf");
    fs::write(&path, text).expect("config");
    path
}

fn client_conf(
    dir: &TempDir,
    side: u32,
    d: &Identity,
    local: Ipv4Addr,
    inner: Ipv4Addr,
) -> PathBuf {
    let name = format!("chcl{side}");
    write_secret(&dir.join("shared.secret"), 42);
    let cs = dir.join(&format!("{name}.cs"));
    write_key(&cs, &d.cs);
    let cosk = dir.join(&format!("{name}.cosk"));
    write_key(&cosk, &d.cosk.to_keypair_bytes());
    let text = format!(
        "mode tunnel\ninstance {name}\nspi {:#06x}\nsecret {}\nlocal {local}:4500\n\
         tunnel {inner}/30 1422\ncathedral {CATHEDRAL}:4500\ncathedral_id {:x}\n\
         cathedral_flock {FLOCK:x}\ncathedral_secret {}\ncathedral_cosk {}\ncontrol {} root\n{}",
        d.spi,
        dir.join("shared.secret").display(),
        d.id,
        cs.display(),
        cosk.display(),
        dir.join(&format!("{name}.control")).display(),
        run_lines("tunnel", side),
    );
    let path = dir.join(&format!("{name}.conf"));
    fs::write(&path, text).expect("config");
    path
}

/// The value of `key=N` in the last cathedral status line of `log`.
fn last_status(log: &str, key: &str) -> u64 {
    log.lines()
        .rfind(|l| l.contains("cathedral status"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn two_clients_talk_through_the_cathedral_relay() {
    let c = Netns::new("c");
    let a = Netns::new("a");
    let b = Netns::new("b");
    link(&c, CATHEDRAL, &a, OUT_A, "a");
    link(&c, CAT_B_SIDE, &b, OUT_B, "b");
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
    let cc = cathedral_conf(&dir, &[&ia, &ib]);
    let ca = client_conf(&dir, 0, &ia, OUT_A, IN_A);
    let cb = client_conf(&dir, 1, &ib, OUT_B, IN_B);

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
    let da = Daemon::start(&a, &ca, dir.join("a.log"), &[]);
    let db = Daemon::start(&b, &cb, dir.join("b.log"), &[]);
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
