//! `chantryd service` and chantryctl across uids: a caller outside the
//! service's groups is refused at connect, a member of the users' group
//! lists, connects (a real tunnel to a second chantryd) and disconnects
//! but is refused an import with a message naming the admin group, and
//! root imports and removes. The groups and users are the test's own
//! (`chtest-*`), created idempotently and removed at the end.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use chantry_e2e::service::*;
use chantry_e2e::*;

fn conf(side: u32) -> Conf {
    Conf {
        instance: format!("chsvc{side}"),
        ..Conf::for_side(side, "tunnel")
    }
}

#[test]
fn groups_decide_who_may_do_what() {
    let _accounts = Accounts::create();
    let pair = Pair::new();
    let dir = TempDir::new();
    // Other users must reach the socket inside.
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711)).expect("chmod");
    let conf_a = conf(0).write(&dir);
    let conf_b = conf(1).write(&dir);
    let peer = Daemon::start(&pair.b, &conf_b, dir.join("b.log"), &[]);
    let mut service = Service::start(&pair.a, &dir);
    let sock = service.socket.clone();

    // Root imports.
    let o = ctl(
        None,
        &sock,
        &["import", "-c", conf_a.to_str().unwrap(), "--name", "home"],
    );
    assert!(o.status.success(), "root import: {}", describe(&o));
    let mode = fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let key = dir.join("state/keys/home.secret");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Outside the group: the socket itself is closed to it (exit 3), and
    // the message names the group it is open to.
    let o = ctl(Some(OUTSIDER), &sock, &["list"]);
    assert_eq!(o.status.code(), Some(3), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("`{GROUP}`")),
        "{}",
        describe(&o)
    );
    // Even with the socket open to everyone, the peer credentials refuse
    // it at the handshake (exit 4), naming the group.
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).expect("chmod");
    let o = ctl(Some(OUTSIDER), &sock, &["list"]);
    assert_eq!(o.status.code(), Some(4), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("may not use chantryd") && err.contains(&format!("`{GROUP}`")),
        "{err}"
    );
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o660)).expect("chmod");

    // A member lists, connects and disconnects, but may not import.
    let o = ctl(Some(MEMBER), &sock, &["list"]);
    assert!(o.status.success(), "member list: {}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("home"),
        "{}",
        describe(&o)
    );
    let o = ctl(
        Some(MEMBER),
        &sock,
        &["import", "-c", "/dev/null", "--name", "x"],
    );
    // /dev/null is not a configuration: the client fails before asking.
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let readable = dir.join("member.conf");
    let secret = dir.join("member.secret");
    write_secret(&secret, 9);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).expect("chmod");
    let body = fs::read_to_string(&conf_a)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("secret ") {
                format!("secret {}\n", secret.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>();
    fs::write(&readable, body).unwrap();
    fs::set_permissions(&readable, fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = ctl(
        Some(MEMBER),
        &sock,
        &["import", "-c", readable.to_str().unwrap(), "--name", "x"],
    );
    assert_eq!(o.status.code(), Some(4), "member import: {}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("`{ADMIN_GROUP}`")),
        "{}",
        describe(&o)
    );
    let o = ctl(Some(MEMBER), &sock, &["remove", "home"]);
    assert_eq!(o.status.code(), Some(4), "member remove: {}", describe(&o));

    let o = ctl(Some(MEMBER), &sock, &["up", "home"]);
    assert!(o.status.success(), "member up: {}", describe(&o));
    let start = Instant::now();
    while state_of(&sock, "home") != "up" {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not up\n{}\n{}",
            service.log_text(),
            peer.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        pair.a
            .ping_until(INNER_B, Duration::from_secs(10))
            .is_some(),
        "no ping through the service's tunnel\n{}",
        service.log_text()
    );
    let o = ctl(Some(MEMBER), &sock, &["down", "home"]);
    assert!(o.status.success(), "member down: {}", describe(&o));
    assert_eq!(state_of(&sock, "home"), "down");
    assert!(!pair.a.ping_once(INNER_B));

    // Root removes; the key file goes with the profile.
    let o = ctl(None, &sock, &["remove", "home"]);
    assert!(o.status.success(), "root remove: {}", describe(&o));
    assert!(!key.exists());
    let o = ctl(None, &sock, &["status", "home"]);
    assert_eq!(o.status.code(), Some(5), "{}", describe(&o));

    // A tunnel still up when the service stops is taken down with it.
    let o = ctl(
        None,
        &sock,
        &["import", "-c", conf_a.to_str().unwrap(), "--name", "again"],
    );
    assert!(o.status.success(), "root import: {}", describe(&o));
    let o = ctl(None, &sock, &["up", "again"]);
    assert!(o.status.success(), "root up: {}", describe(&o));
    let start = Instant::now();
    let pid = loop {
        let o = ctl(None, &sock, &["status", "again", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v["tunnels"][0]["state"] == "up" {
            break v["tunnels"][0]["pid"].as_u64().expect("a pid while up");
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not up again\n{}",
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let st = service.stop().expect("service exit");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "guardian {pid} outlived the service"
    );
    let links = pair.a.run(&["ip", "-o", "link", "show"]);
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("chsvc0"),
        "TUN device left behind"
    );
    assert!(st.success(), "service exit {st:?}\n{}", service.log_text());
    assert!(!sock.exists(), "socket left behind");
}
