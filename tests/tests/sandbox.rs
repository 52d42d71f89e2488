//! The sandbox as it is applied to real role processes of a running
//! chantryd: every role under its own uid, crypto roles without network
//! interfaces, and a syscall outside a role's list killing it.

use std::time::{Duration, Instant};

use chantry_e2e::*;

fn single(mode: &'static str, env: &[(&str, &str)]) -> (Netns, TempDir, Daemon) {
    let ns = Netns::new("s");
    let dir = TempDir::new();
    let conf = Conf {
        mode,
        instance: "chsbx".into(),
        local: std::net::Ipv4Addr::LOCALHOST,
        peer: Some(std::net::Ipv4Addr::new(127, 0, 0, 2)),
        inner: INNER_A,
        mtu: "1422".into(),
        shroud: false,
        side: 0,
    };
    let path = conf.write(&dir);
    let d = Daemon::start(&ns, &path, dir.join("d.log"), env);
    (ns, dir, d)
}

fn wait_roles(d: &Daemon, n: usize) -> Vec<(String, u32)> {
    let start = Instant::now();
    loop {
        let r = d.role_pids();
        if r.len() == n && d.log_text().contains("all roles sandboxed and running") {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "roles did not start: {r:?}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn each_role_has_its_own_uid_and_crypto_roles_see_only_lo() {
    for mode in ["tunnel", "pilgrim", "shrine"] {
        let (_ns, _dir, d) = single(mode, &[]);
        let roles_running = wait_roles(&d, roles(mode).len());
        for (role, pid) in &roles_running {
            assert_eq!(uid_of_pid(*pid), Some(uid_of(role, 0)), "{mode}: {role}");
            let ifs = interfaces_of_pid(*pid);
            if matches!(
                role.as_str(),
                "bless" | "confess" | "chapel" | "pilgrim" | "shrine"
            ) {
                assert_eq!(ifs, vec!["lo".to_string()], "{mode}: {role} sees {ifs:?}");
            } else {
                assert!(
                    ifs.contains(&"chsbx".to_string()),
                    "{mode}: {role} sees {ifs:?}"
                );
            }
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            assert!(status.contains("NoNewPrivs:\t1"), "{role}");
            assert!(status.contains("Seccomp:\t2"), "{role}: no seccomp filter");
        }
    }
}

#[test]
fn a_forbidden_syscall_kills_each_role() {
    for mode in ["tunnel", "pilgrim", "shrine"] {
        for role in roles(mode) {
            let (_ns, _dir, d) = single(mode, &[("CHANTRY_TEST_FORBIDDEN_SYSCALL", role)]);
            let needle = format!("role={role} exit=killed by SIGSYS");
            assert!(
                d.wait_log(&needle, Duration::from_secs(10)),
                "{mode}: {role} was not killed by SIGSYS\n{}",
                d.log_text()
            );
        }
    }
}
