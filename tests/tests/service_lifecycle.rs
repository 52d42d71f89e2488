//! The life of the service's tunnels: auto-connect at start (also after a
//! restart), a guardian that exits on its own comes back, guardians die
//! with a SIGKILLed service (and take their roles and TUN device with
//! them), a resume restarts every wanted tunnel, a network change retries
//! a failed one at once, and a disconnect ends every retry. Also checks
//! the packaging files against the code.

use std::net::Ipv4Addr;
use std::time::Duration;

use chantry_e2e::service::*;
use chantry_e2e::*;

fn conf(side: u32) -> Conf {
    Conf {
        instance: format!("chlc{side}"),
        ..Conf::for_side(side, "tunnel")
    }
}

fn links(ns: &Netns) -> String {
    String::from_utf8_lossy(&ns.run(&["ip", "-o", "link", "show"]).stdout).into_owned()
}

/// Waits (bounded) until `name` is up with a guardian other than `not`.
fn up_again(sock: &std::path::Path, name: &str, not: Option<u32>, limit: Duration) -> Option<u32> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let s = status_of(sock, name);
        if s["state"] == "up" {
            let pid = s["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
            if pid.is_some() && pid != not {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn auto_connect_restart_and_guardians_that_die_with_the_service() {
    let pair = Pair::new();
    let dir = TempDir::new();
    let conf_a = conf(0).write(&dir);
    let conf_b = conf(1).write(&dir);
    let _peer = Daemon::start(&pair.b, &conf_b, dir.join("b.log"), &[]);
    let mut service = Service::start(&pair.a, &dir);
    let sock = service.socket.clone();
    ctl_ok(
        &sock,
        &[
            "import",
            "-c",
            conf_a.to_str().expect("utf-8"),
            "--name",
            "auto",
            "--auto-connect",
        ],
    );
    // Importing connects nothing; the next start does.
    assert_eq!(state_of(&sock, "auto"), "down");

    // Restart (SIGTERM, start): up again within 10 s, traffic flows.
    let st = service.stop().expect("exit");
    assert!(st.success(), "{}", service.log_text());
    let mut service = Service::start(&pair.a, &dir);
    let first = up_again(&sock, "auto", None, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("auto-connect not up within 10 s\n{}", service.log_text()));
    assert!(
        pair.a
            .ping_until(INNER_B, Duration::from_secs(10))
            .is_some(),
        "no ping through the auto-connected tunnel\n{}",
        service.log_text()
    );

    // A guardian that exits on its own is started again (1 s backoff).
    sh(&["kill", "-TERM", &first.to_string()]);
    let second = up_again(&sock, "auto", Some(first), Duration::from_secs(15))
        .unwrap_or_else(|| panic!("not restarted\n{}", service.log_text()));
    assert!(
        service.log_text().contains("next try in 1 s"),
        "{}",
        service.log_text()
    );

    // A resume (the test hook SIGUSR1 stands in for the clock jump)
    // restarts every wanted tunnel.
    sh(&["kill", "-USR1", &service.pid().to_string()]);
    let third = up_again(&sock, "auto", Some(second), Duration::from_secs(15))
        .unwrap_or_else(|| panic!("not restarted after resume\n{}", service.log_text()));
    assert!(
        service.log_text().contains("resumed from sleep"),
        "{}",
        service.log_text()
    );

    // SIGKILL of the service: the guardian gets SIGTERM from the kernel
    // (PR_SET_PDEATHSIG) and stops as on any SIGTERM: roles stopped, TUN
    // device removed, exit status 0. The test adopts the orphan to read
    // that status: a guardian that only died later of its broken stderr
    // pipe would end otherwise.
    let roles: Vec<u32> = role_children(third).into_iter().map(|(_, p)| p).collect();
    assert!(!roles.is_empty(), "no roles under guardian {third}");
    become_subreaper();
    service.kill();
    let ended = reap(third, Duration::from_secs(10));
    assert_eq!(
        ended,
        Some(nix::sys::wait::WaitStatus::Exited(
            nix::unistd::Pid::from_raw(i32::try_from(third).expect("pid")),
            0
        )),
        "guardian {third} did not stop cleanly with the killed service"
    );
    for r in roles {
        assert!(
            wait_gone(r, Duration::from_secs(5)),
            "role {r} outlived its guardian"
        );
    }
    assert!(!links(&pair.a).contains("chlc0"), "TUN device left behind");

    // And the next start brings the auto-connect profile back.
    let mut service = Service::start(&pair.a, &dir);
    assert!(
        up_again(&sock, "auto", None, Duration::from_secs(10)).is_some(),
        "auto-connect not up after the killed service\n{}",
        service.log_text()
    );
    let st = service.stop().expect("exit");
    assert!(st.success(), "{}", service.log_text());
    assert!(!links(&pair.a).contains("chlc0"), "TUN device left behind");
}

#[test]
fn a_network_change_retries_at_once_and_a_disconnect_ends_retries() {
    // The client's address does not exist yet: its guardian cannot bind.
    let late = Ipv4Addr::new(192, 168, 77, 9);
    let pair = Pair::new();
    let dir = TempDir::new();
    let conf_a = Conf {
        local: late,
        ..conf(0)
    }
    .write(&dir);
    let conf_b = Conf {
        peer: Some(late),
        ..conf(1)
    }
    .write(&dir);
    let _peer = Daemon::start(&pair.b, &conf_b, dir.join("b.log"), &[]);
    // A first retry 600 s away: only a network change can bring it up
    // within the test's bounds.
    let opts = ServiceOptions::default().env("CHANTRY_TEST_RETRY_SECS", "600");
    let service = Service::start_with(&pair.a, &dir, &opts);
    let sock = service.socket.clone();
    ctl_ok(
        &sock,
        &[
            "import",
            "-c",
            conf_a.to_str().expect("utf-8"),
            "--name",
            "late",
        ],
    );
    ctl_ok(&sock, &["up", "late"]);
    let failed = wait_state(&sock, "late", "failed", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("did not fail\n{}", service.log_text()));
    let detail = failed["detail"].as_str().unwrap_or("");
    assert!(detail.contains("next try in 600 s"), "{failed}");

    // The address appears: the netlink event retries now.
    let veth = links(&pair.a)
        .lines()
        .find_map(|l| l.split_whitespace().nth(1).filter(|n| n.starts_with('v')))
        .map(|n| {
            n.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .expect("a's veth");
    pair.a
        .run(&["ip", "addr", "add", &format!("{late}/24"), "dev", &veth]);
    assert!(
        wait_state(&sock, "late", "up", Duration::from_secs(20)).is_some(),
        "not up after the address came\n{}",
        service.log_text()
    );
    assert!(
        service.log_text().contains("network changed"),
        "{}",
        service.log_text()
    );
    assert!(
        pair.a
            .ping_until(INNER_B, Duration::from_secs(10))
            .is_some(),
        "no ping through the tunnel\n{}",
        service.log_text()
    );

    // Fail it again, disconnect while it waits: a network change then
    // starts nothing.
    ctl_ok(&sock, &["down", "late"]);
    pair.a
        .run(&["ip", "addr", "del", &format!("{late}/24"), "dev", &veth]);
    ctl_ok(&sock, &["up", "late"]);
    assert!(
        wait_state(&sock, "late", "failed", Duration::from_secs(10)).is_some(),
        "did not fail again\n{}",
        service.log_text()
    );
    ctl_ok(&sock, &["down", "late"]);
    assert_eq!(state_of(&sock, "late"), "down");
    let starts = service.log_text().matches("state=connecting").count();
    pair.a
        .run(&["ip", "addr", "add", &format!("{late}/24"), "dev", &veth]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state_of(&sock, "late"), "down", "{}", service.log_text());
    assert_eq!(
        service.log_text().matches("state=connecting").count(),
        starts,
        "a disconnected tunnel was started again\n{}",
        service.log_text()
    );
}

/// The unit and the users file, checked by systemd's own tools where they
/// are installed, and the users file against the roles chantryd knows.
#[test]
fn packaging_files_match_the_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("packaging/systemd/chantryd.service"))
        .expect("chantryd.service");
    let users = root.join("packaging/sysusers/chantry.conf");
    let users_text = std::fs::read_to_string(&users).expect("chantry.conf");

    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/chantryd service",
        "RuntimeDirectory=chantry",
        "StateDirectory=chantry",
        "KillMode=mixed",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line}");
    }
    // The service's defaults live where the unit puts them.
    assert_eq!(
        chantry_service::service::DEFAULT_SOCKET,
        "/run/chantry/chantryd.sock"
    );
    assert_eq!(
        chantry_service::service::DEFAULT_STATE_DIR,
        "/var/lib/chantry"
    );

    let entries: Vec<Vec<&str>> = users_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let has = |kind: &str, name: &str| entries.iter().any(|e| e[0] == kind && e[1] == name);
    assert!(has("g", chantry_service::service::DEFAULT_GROUP));
    assert!(has("g", chantry_service::service::DEFAULT_ADMIN_GROUP));
    for role in chantry_service::role::Role::ALL {
        let user = format!("chantry-{}", role.as_str());
        assert!(has("u", &user), "no user {user} for role {role:?}");
    }

    let dir = TempDir::new();
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        // verify wants the ExecStart binary to exist: point it at ours.
        let copy = dir.join("chantryd.service");
        std::fs::write(
            &copy,
            unit.replace("/usr/bin/chantryd", chantryd().to_str().expect("utf-8")),
        )
        .expect("unit copy");
        let o = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .expect("systemd-analyze");
        assert!(
            o.status.success(),
            "systemd-analyze verify: {}",
            describe(&o)
        );
        // Problems with the unit (unknown keys, bad values) are warnings
        // naming its file, with exit status 0.
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains("chantryd.service"),
            "systemd-analyze verify: {}",
            describe(&o)
        );
    } else {
        eprintln!("systemd-analyze not installed: unit not verified");
    }
    if std::process::Command::new("systemd-sysusers")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        // Into an empty root of its own: the machine's accounts stay.
        let etc = dir.join("root/etc");
        std::fs::create_dir_all(&etc).expect("root");
        let o = std::process::Command::new("systemd-sysusers")
            .arg(format!("--root={}", dir.join("root").display()))
            .arg(&users)
            .output()
            .expect("systemd-sysusers");
        assert!(o.status.success(), "systemd-sysusers: {}", describe(&o));
        let passwd = std::fs::read_to_string(etc.join("passwd")).expect("passwd");
        let group = std::fs::read_to_string(etc.join("group")).expect("group");
        for role in chantry_service::role::Role::ALL {
            let user = format!("chantry-{}:", role.as_str());
            assert!(passwd.lines().any(|l| l.starts_with(&user)), "{passwd}");
        }
        assert!(group.lines().any(|l| l.starts_with("chantry:")), "{group}");
        assert!(
            group.lines().any(|l| l.starts_with("chantry-admin:")),
            "{group}"
        );
    } else {
        eprintln!("systemd-sysusers not installed: users file not applied");
    }
}
