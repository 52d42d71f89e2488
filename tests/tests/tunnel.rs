//! Two daemons in two namespaces joined by veth: keys, ping both ways,
//! TCP through the tunnel with rekeys during the transfer, a killed role,
//! and pilgrim to shrine.
//!
//! Side `a` is always chantryd. Side `b` is chantryd too, or the C
//! reference daemon when `SANCTUM` names one ([`Impl::side_b`]); pilgrim to
//! shrine then runs twice, with the C daemon as the shrine and as the
//! pilgrim. Checks that only make sense for chantryd (its role processes
//! in /proc) are made only on a side that runs it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chantry_e2e::*;

fn conf(side: u32, mode: &'static str) -> Conf {
    Conf::for_side(side, mode)
}

struct Tunnel {
    pair: Pair,
    dir: TempDir,
    a: Daemon,
    b: Daemon,
    conf_a: Conf,
    conf_b: Conf,
}

/// chantryd on side `a`, [`Impl::side_b`] on side `b`.
fn start(mode_a: &'static str, mode_b: &'static str, shroud: bool, env: &[(&str, &str)]) -> Tunnel {
    start_impls(
        (Impl::Chantryd, mode_a),
        (Impl::side_b(), mode_b),
        shroud,
        env,
    )
}

/// Starts the daemon and mode given for each side; `env` reaches only
/// chantryd. Side `b` is started first and `a` only once `b` is ready
/// (its UDP socket bound): a pilgrim sends its first offer as soon as it
/// is up and the next one 30 s later (behaviour.md §6), so a shrine that
/// is not listening yet would miss it.
fn start_impls(
    (impl_a, mode_a): (Impl, &'static str),
    (impl_b, mode_b): (Impl, &'static str),
    shroud: bool,
    env: &[(&str, &str)],
) -> Tunnel {
    let pair = Pair::new();
    let dir = TempDir::new();
    let mut conf_a = conf(0, mode_a);
    let mut conf_b = conf(1, mode_b);
    conf_a.shroud = shroud;
    conf_b.shroud = shroud;
    if shroud {
        // The largest MTU a shrouded tunnel allows (1500 - 127).
        conf_a.mtu = "1373".into();
        conf_b.mtu = "1373".into();
    }
    let (pa, pb) = (
        conf_a.write_for(impl_a, &dir),
        conf_b.write_for(impl_b, &dir),
    );
    let b = Daemon::start_for(impl_b, &pair.b, &pb, dir.join("b.log"), env);
    assert!(
        b.wait_ready(Duration::from_secs(10)),
        "side b did not start\n{}",
        b.log_text()
    );
    let a = Daemon::start_for(impl_a, &pair.a, &pa, dir.join("a.log"), env);
    Tunnel {
        pair,
        dir,
        a,
        b,
        conf_a,
        conf_b,
    }
}

impl Tunnel {
    fn logs(&self) -> String {
        format!(
            "--- a ({:?}) ---\n{}\n--- b ({:?}) ---\n{}",
            self.a.which,
            self.a.log_text(),
            self.b.which,
            self.b.log_text()
        )
    }
}

#[test]
fn ping_both_ways_then_tcp_across_rekeys() {
    if Impl::side_b() == Impl::Chantryd {
        ping_both_ways_then_tcp();
        return;
    }
    // Against the reference: one more attempt, with fresh namespaces and
    // daemons, only if the first failed while the reference had logged
    // its dead-peer reset. Its real threshold is 120 s without a decrypted
    // packet, far longer than this test lives, so the line can only come
    // from its unsigned heartbeat comparison (see tests/README.md).
    for attempt in 1..=SANCTUM_ATTEMPTS {
        let Err(panic) = std::panic::catch_unwind(ping_both_ways_then_tcp) else {
            return;
        };
        let text = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if attempt < SANCTUM_ATTEMPTS && text.contains(SANCTUM_SPURIOUS_RESET) {
            eprintln!(
                "attempt {attempt} failed after the reference's spurious \
                 `{SANCTUM_SPURIOUS_RESET}`; trying once more"
            );
            continue;
        }
        std::panic::resume_unwind(panic);
    }
}

/// How many times the TCP test may run against the reference.
const SANCTUM_ATTEMPTS: u32 = 2;

/// The reference's log line when it declares its peer dead.
const SANCTUM_SPURIOUS_RESET: &str = "our peer is unresponsive, resetting";

/// Ping both ways, then 10 s of TCP with forced rekeys, the control
/// socket, and a clean SIGTERM of side `a`.
fn ping_both_ways_then_tcp() {
    let t = start(
        "tunnel",
        "tunnel",
        false,
        &[("CHANTRY_TEST_REKEY_EVERY", "3")],
    );
    let up = t.pair.a.ping_until(INNER_B, Duration::from_secs(5));
    assert!(up.is_some(), "no ping a->b within 5 s\n{}", t.logs());
    assert!(
        t.pair
            .b
            .ping_until(INNER_A, Duration::from_secs(5))
            .is_some(),
        "no ping b->a\n{}",
        t.logs()
    );

    let server = t
        .pair
        .b
        .cmd(&[
            "timeout",
            "-k",
            "5",
            "60",
            "iperf3",
            "-s",
            "-1",
            "-B",
            &INNER_B.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    let mut server = KillOnDrop(server);
    std::thread::sleep(Duration::from_millis(500));
    let installs_before = t.a.tx_key_installs();
    let b_installs_before = t.b.tx_key_installs();
    let inner_b = INNER_B.to_string();
    // `timeout` bounds a client whose connection died mid-run.
    let mut client = vec![
        "timeout",
        "-k",
        "5",
        "40",
        "iperf3",
        "-c",
        &inner_b,
        "-t",
        "10",
        "-J",
        "--connect-timeout",
        "3000",
    ];
    if t.b.which == Impl::Sanctum {
        // Against the reference the rate is capped: at full speed on two
        // shared cores its receive path drops a sixth of the packets, and
        // its chapel can then declare a live peer dead (see README).
        client.extend(["-b", SANCTUM_IPERF_RATE]);
    }
    let out = t.pair.a.cmd(&client).output().expect("iperf3 client");
    let _ = server.0.wait();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    assert!(
        out.status.success() && report.get("error").is_none(),
        "iperf3 failed: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        t.logs()
    );
    let bits = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    let secs = report["end"]["sum_received"]["seconds"]
        .as_f64()
        .unwrap_or(0.0);
    eprintln!(
        "iperf3 through chantryd (debug-ish e2e build): {:.0} Mbit/s over {secs:.1} s",
        bits / 1e6
    );
    assert!(
        secs >= 9.5,
        "the TCP run did not last 10 s: {secs}\n{}",
        t.logs()
    );
    assert!(bits > 0.0);
    let installs_after = t.a.tx_key_installs();
    assert!(
        installs_after >= installs_before + 2,
        "no rekey during the TCP run ({installs_before} -> {installs_after})\n{}",
        t.logs()
    );
    if t.b.which == Impl::Sanctum {
        // The C daemon answers each exchange chantryd forces with a new
        // TX SA of its own.
        let b_installs_after = t.b.tx_key_installs();
        assert!(
            b_installs_after >= b_installs_before + 2,
            "the C side installed no new TX key during the TCP run \
             ({b_installs_before} -> {b_installs_after})\n{}",
            t.logs()
        );
    }
    // The control socket reports the live SAs.
    let status = chantry_service::control::query(&t.conf_a.control(&t.dir), Duration::from_secs(2))
        .expect("status from a");
    assert_ne!(status.tx.spi, 0);
    assert_ne!(status.rx.spi, 0);
    assert!(status.rx.pkt > 0);
    assert_eq!(
        status.peer,
        Some(std::net::SocketAddrV4::new(OUTER_B, 4500))
    );

    // SIGTERM is a clean shutdown that removes the TUN device.
    let mut t = t;
    let st = t.a.stop().expect("a was running");
    assert!(st.success(), "chantryd exited with {st}\n{}", t.logs());
    let links = t.pair.a.run(&["ip", "-o", "link"]);
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("chtun0"),
        "the TUN device outlived chantryd"
    );
    assert!(t.a.role_pids().is_empty());
}

#[test]
fn shrouded_tunnel_passes_traffic() {
    let t = start("tunnel", "tunnel", true, &[]);
    assert!(
        t.pair
            .a
            .ping_until(INNER_B, Duration::from_secs(5))
            .is_some(),
        "no ping through a shrouded tunnel\n{}",
        t.logs()
    );
}

/// Kills chantryd's roles on side `a` (also when side `b` is the C daemon,
/// which must then accept the restarted roles' new key exchange).
#[test]
fn sigkill_of_any_role_recovers_within_10_s() {
    let t = start("tunnel", "tunnel", false, &[]);
    assert!(
        t.pair
            .a
            .ping_until(INNER_B, Duration::from_secs(5))
            .is_some(),
        "{}",
        t.logs()
    );
    for role in roles("tunnel") {
        let pids = t.a.role_pids();
        let pid = pids
            .iter()
            .find(|(r, _)| r == role)
            .unwrap_or_else(|| panic!("no {role} in {pids:?}\n{}", t.logs()))
            .1;
        chantry_e2e::sh(&["kill", "-KILL", &pid.to_string()]);
        let start = Instant::now();
        // Wait for the set to be replaced, then for traffic.
        while start.elapsed() < Duration::from_secs(10)
            && t.a.role_pids().iter().any(|(_, p)| *p == pid)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = Duration::from_secs(10).saturating_sub(start.elapsed());
        assert!(
            t.pair.a.ping_until(INNER_B, left).is_some(),
            "ping did not resume within 10 s after SIGKILL of {role}\n{}",
            t.logs()
        );
        eprintln!(
            "SIGKILL {role}: ping back after {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    assert!(t.a.log_text().contains("killed by SIGKILL"));
}

/// chantryd to chantryd; with `SANCTUM` set, chantryd to the C shrine and
/// the C pilgrim to chantryd.
#[test]
fn pilgrim_to_shrine_one_way() {
    let cases: &[(Impl, Impl)] = if sanctum().is_some() {
        &[
            (Impl::Chantryd, Impl::Sanctum),
            (Impl::Sanctum, Impl::Chantryd),
        ]
    } else {
        &[(Impl::Chantryd, Impl::Chantryd)]
    };
    for &(pilgrim, shrine) in cases {
        eprintln!("pilgrim {pilgrim:?} -> shrine {shrine:?}");
        pilgrim_to_shrine(pilgrim, shrine);
    }
}

fn pilgrim_to_shrine(pilgrim: Impl, shrine: Impl) {
    // The shrine (side b) is started first (see start_impls).
    let t = start_impls((pilgrim, "pilgrim"), (shrine, "shrine"), false, &[]);
    if shrine == Impl::Chantryd {
        shrine_cannot_send(&t);
    }
    // Traffic flows one way: pings from the pilgrim reach the shrine's
    // TUN device (no reply can come back). The shrine's control socket
    // (chantryd's or the reference's) counts what it decrypted.
    let control = t.conf_b.control(&t.dir);
    let start = Instant::now();
    // Both are polled: the first packet decrypted may be a heartbeat,
    // counted before any ping reached the TUN device.
    let tun_written = || -> u64 {
        t.pair
            .b
            .cmd(&["cat", "/sys/class/net/chtun1/statistics/rx_packets"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    let (mut got, mut written) = (0, 0);
    while start.elapsed() < Duration::from_secs(10) && (got == 0 || written == 0) {
        let _ = t.pair.a.ping_once(INNER_B);
        got = chantry_service::control::query(&control, Duration::from_secs(1))
            .map(|s| s.rx.pkt)
            .unwrap_or(0);
        written = tun_written();
    }
    assert!(got > 0, "the shrine decrypted nothing\n{}", t.logs());
    assert!(
        written > 0,
        "nothing written to the shrine's TUN device\n{}",
        t.logs()
    );
}

/// A chantryd shrine (side `b`) has no process that could send.
fn shrine_cannot_send(t: &Tunnel) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut shrine_roles = Vec::new();
    while Instant::now() < deadline {
        shrine_roles = t.b.role_pids();
        if shrine_roles.len() == roles("shrine").len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let names: Vec<&str> = shrine_roles.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        names,
        vec!["confess", "control", "heaven-tx", "purgatory-rx", "shrine"],
        "{}",
        t.logs()
    );
    for forbidden in ["bless", "purgatory-tx", "heaven-rx", "chapel"] {
        assert!(!names.contains(&forbidden));
    }
}

/// iperf3's `-b` when side `b` is the C daemon.
const SANCTUM_IPERF_RATE: &str = "200M";

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
