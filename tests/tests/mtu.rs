//! MTU discovery (behaviour.md §5) between two chantryd whose path is
//! narrower than the tunnel MTU they start with: with `tunnel ... auto`
//! both sides probe downwards and settle on the first size the path
//! carries, the guardians set it on their TUN devices, and full-size
//! packets with don't-fragment then cross the tunnel.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chantry_e2e::{Conf, Daemon, INNER_B, Netns, Pair, TempDir};

/// The veth MTU: smaller than 1500, so the first three probes (1422,
/// 1422, 1344 bytes of tunnel MTU, 78 more on the wire) cannot pass.
const PATH_MTU: u32 = 1300;
/// The fourth probe, 1280 - 78, is the first that fits.
const EXPECTED_TUN_MTU: u32 = 1202;

fn conf(side: u32) -> Conf {
    Conf {
        mtu: "auto".into(),
        ..Conf::for_side(side, "tunnel")
    }
}

/// Sets the MTU of the namespace's veth end.
fn narrow_path(ns: &Netns) {
    let out = ns.run(&["ip", "-o", "link", "show", "type", "veth"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let name = text
        .split(": ")
        .nth(1)
        .and_then(|n| n.split('@').next())
        .expect("a veth in the namespace");
    let set = ns.run(&[
        "ip",
        "link",
        "set",
        "dev",
        name,
        "mtu",
        &PATH_MTU.to_string(),
    ]);
    assert!(set.status.success(), "setting the veth MTU failed");
}

fn tun_mtu(ns: &Netns, instance: &str) -> Option<u32> {
    let out = ns.run(&["cat", &format!("/sys/class/net/{instance}/mtu")]);
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[test]
fn discovery_settles_on_what_the_path_carries() {
    let pair = Pair::new();
    narrow_path(&pair.a);
    narrow_path(&pair.b);
    let dir = TempDir::new();
    let (ca, cb) = (conf(0), conf(1));
    let (pa, pb) = (ca.write(&dir), cb.write(&dir));
    let b = Daemon::start(&pair.b, &pb, dir.join("b.log"), &[]);
    assert!(
        b.wait_log("all roles sandboxed and running", Duration::from_secs(10)),
        "side b did not start\n{}",
        b.log_text()
    );
    let a = Daemon::start(&pair.a, &pa, dir.join("a.log"), &[]);
    let logs = || format!("--- a ---\n{}\n--- b ---\n{}", a.log_text(), b.log_text());
    assert!(
        a.wait_log("all roles sandboxed and running", Duration::from_secs(10)),
        "side a did not start\n{}",
        logs()
    );

    assert_eq!(
        tun_mtu(&pair.a, &ca.instance),
        Some(1422),
        "auto starts at 1500 - 78"
    );
    // Probes go out every 5 s once keyed; the fourth fits: about 15 s.
    let start = Instant::now();
    let settled = |ns: &Netns, c: &Conf| tun_mtu(ns, &c.instance) == Some(EXPECTED_TUN_MTU);
    while start.elapsed() < Duration::from_secs(45)
        && !(settled(&pair.a, &ca) && settled(&pair.b, &cb))
    {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        (
            tun_mtu(&pair.a, &ca.instance),
            tun_mtu(&pair.b, &cb.instance)
        ),
        (Some(EXPECTED_TUN_MTU), Some(EXPECTED_TUN_MTU)),
        "TUN MTUs did not settle within 45 s\n{}",
        logs()
    );
    assert!(
        a.log_text().contains("MTU discovery: peer acked"),
        "{}",
        logs()
    );

    // A packet of exactly the tunnel MTU, don't-fragment, crosses; one
    // byte more is refused by the sender's own stack.
    let payload = (EXPECTED_TUN_MTU - 28).to_string();
    let ping = |size: &str| {
        let dst = INNER_B.to_string();
        let args = ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", size, &dst];
        pair.a
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(ping(&payload), "full-size DF ping failed\n{}", logs());
    assert!(!ping(&(EXPECTED_TUN_MTU - 27).to_string()));
}
