//! `chantryd service` with a connected profile (a real tunnel to a second
//! chantryd across a veth pair): what it reports through chantryctl
//! (stats, logs, events, history, settings, `-f` streams, vicar import
//! and the export that re-imports), and a soak of 100 concurrent
//! subscribers asking for the status in a loop for 30 s, after which no
//! connection saw an error and the service's memory stayed within a
//! stated bound.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chantry_core::entropy::SeededEntropy;
use chantry_core::ipc::{Event, Request, Response, TunnelState};
use chantry_core::secret::Secret;
use chantry_core::vicar::{self, VicarProfile};
use chantry_e2e::service::*;
use chantry_e2e::*;
use chantry_service::service::client::Client;

/// Groups that do not exist: only root (the test) may use the service.
const NO_GROUP: &str = "chtest-nogroup";
const NO_ADMIN_GROUP: &str = "chtest-nogroup-admin";

/// Concurrent connections of the soak.
const CONNECTIONS: usize = 100;
/// How long the soak runs.
const SOAK: Duration = Duration::from_secs(30);
/// How long the warm-up runs (the same load, before the baseline).
const WARM_UP: Duration = Duration::from_secs(5);
/// How much the service's resident memory may grow from the baseline
/// (measured after the warm-up) to the end of the soak: 16 MiB. The
/// warm-up has already made everything that grows with the number of
/// connections (connection tasks and buffers, the allocator's arenas,
/// SQLite's page cache) reach its size for 100 connections; what could
/// still grow during the soak is what grows with the number of requests,
/// and the soak makes hundreds of thousands of them, so a leak of even a
/// few tens of bytes per request crosses this bound (the test prints the
/// per-request size it would catch).
const RSS_MARGIN_KIB: u64 = 16 * 1024;

fn conf(side: u32) -> Conf {
    Conf {
        instance: format!("chsoak{side}"),
        ..Conf::for_side(side, "tunnel")
    }
}

/// A pair, a peer chantryd on side b, the service on side a with the
/// profile `home` imported and up (keys installed both ways).
struct Setup {
    pair: Pair,
    dir: TempDir,
    _peer: Daemon,
    service: Service,
}

impl Setup {
    fn new() -> Setup {
        let pair = Pair::new();
        let dir = TempDir::new();
        let conf_a = conf(0).write(&dir);
        let conf_b = conf(1).write(&dir);
        let peer = Daemon::start(&pair.b, &conf_b, dir.join("b.log"), &[]);
        let service = Service::start_with(
            &pair.a,
            &dir,
            &ServiceOptions {
                group: NO_GROUP.into(),
                admin_group: NO_ADMIN_GROUP.into(),
                env: Vec::new(),
            },
        );
        let sock = service.socket.clone();
        let o = ctl(
            None,
            &sock,
            &[
                "import",
                "-c",
                conf_a.to_str().expect("utf-8"),
                "--name",
                "home",
            ],
        );
        assert!(o.status.success(), "import: {}", describe(&o));
        let o = ctl(None, &sock, &["up", "home"]);
        assert!(o.status.success(), "up: {}", describe(&o));
        let online = wait_status(&sock, "home", Duration::from_secs(20), |s| {
            s["stats"]["stage"] == "online"
        });
        assert!(
            online.is_some(),
            "not online: {}\n{}\n{}",
            status_of(&sock, "home"),
            service.log_text(),
            peer.log_text()
        );
        assert!(
            pair.a
                .ping_until(INNER_B, Duration::from_secs(10))
                .is_some(),
            "no ping through the service's tunnel\n{}",
            service.log_text()
        );
        Setup {
            pair,
            dir,
            _peer: peer,
            service,
        }
    }

    fn sock(&self) -> &Path {
        &self.service.socket
    }
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", describe(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(o)))
}

/// Runs `chantryctl ARGS` (a `-f` follower) and hands its stdout lines to
/// the returned channel; the child is killed on drop.
struct Follower {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(sock: &Path, args: &[&str]) -> Follower {
        let mut child = ctl_command(None, sock)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chantryctl");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// Waits (bounded) for a line containing all of `needles`.
    fn wait_for(&self, needles: &[&str]) -> Option<String> {
        let start = Instant::now();
        while let Some(left) = Duration::from_secs(15).checked_sub(start.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if needles.iter().all(|n| l.contains(n)) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_connected_profile_reports_through_chantryctl() {
    let s = Setup::new();
    let sock = s.sock();

    // Status: the numbers of a direct tunnel that carried the pings.
    let st = json(&ctl(None, sock, &["status", "home", "--json"]));
    let stats = &st["tunnels"][0]["stats"];
    assert_eq!(st["tunnels"][0]["state"], "up", "{st}");
    assert_eq!(stats["stage"], "online", "{st}");
    assert_eq!(stats["path"], "direct", "{st}");
    assert_eq!(stats["peer"], format!("{OUTER_B}:4500"), "{st}");
    assert_eq!(stats["cathedral"], serde_json::Value::Null, "{st}");
    assert_eq!(stats["mtu"], 1422, "{st}");
    assert!(stats["since_key_exchange_s"].is_u64(), "{st}");
    let sent = wait_status(sock, "home", Duration::from_secs(5), |v| {
        v["stats"]["tx"]["packets"].as_u64() > Some(0)
            && v["stats"]["rx"]["packets"].as_u64() > Some(0)
    });
    assert!(
        sent.is_some(),
        "no traffic counted: {}",
        status_of(sock, "home")
    );
    let o = ctl(None, sock, &["status", "home"]);
    let human = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        human.starts_with("home                 up (pid "),
        "{human}"
    );
    for line in [
        "    stage      online, direct\n",
        &format!("    peer       {OUTER_B}:4500\n"),
        "    mtu        1422\n",
    ] {
        assert!(human.contains(line), "{line:?} not in\n{human}");
    }

    // Logs and events of the profile.
    let logs = json(&ctl(None, sock, &["logs", "home", "--json"]));
    let lines = logs["lines"].as_array().expect("lines");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "all roles sandboxed and running"
                && l["profile"] == "home"
                && l["level"] == "info"),
        "{logs}"
    );
    let o = ctl(None, sock, &["events", "home"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && text.contains(" home         connect    connecting"),
        "{}",
        describe(&o)
    );

    // History: the first sample is taken at the first answer.
    let h = json(&ctl(None, sock, &["history", "home", "--json"]));
    assert!(!h["samples"].as_array().expect("samples").is_empty(), "{h}");
    let o = ctl(None, sock, &["history", "nope"]);
    assert_eq!(o.status.code(), Some(5), "{}", describe(&o));

    // Settings.
    let v = json(&ctl(None, sock, &["settings", "--json"]));
    assert_eq!(v["log_level"], "info", "{v}");
    assert_eq!(v["reconnect_on_network_change"], true, "{v}");
    let o = ctl(None, sock, &["settings", "set", "--log-level", "loud"]);
    assert_eq!(o.status.code(), Some(6), "{}", describe(&o));
    let v = json(&ctl(
        None,
        sock,
        &[
            "settings",
            "set",
            "--reconnect-on-network-change",
            "no",
            "--json",
        ],
    ));
    assert_eq!(v["reconnect_on_network_change"], false, "{v}");
    assert_eq!(v["log_level"], "info", "{v}");

    // Followers see the disconnect as it happens.
    let logs_f = Follower::start(sock, &["logs", "-f", "home", "-n", "1"]);
    let events_f = Follower::start(sock, &["events", "-f", "--json", "-n", "1"]);
    // Both have subscribed once they printed their history.
    assert!(
        logs_f.wait_for(&["home"]).is_some(),
        "logs -f printed nothing"
    );
    assert!(
        events_f.wait_for(&["\"kind\""]).is_some(),
        "events -f printed nothing"
    );
    let o = ctl(None, sock, &["down", "home"]);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        logs_f
            .wait_for(&["home: tunnel state state=down"])
            .is_some(),
        "logs -f did not show the tunnel going down"
    );
    let rec = events_f
        .wait_for(&["\"kind\":\"disconnect\""])
        .expect("events -f did not show the disconnect");
    assert!(rec.contains("\"profile\":\"home\""), "{rec}");
    let st = status_of(sock, "home");
    assert_eq!(
        (st["state"].as_str(), &st["stats"]),
        (Some("down"), &serde_json::Value::Null)
    );

    let o = ctl(None, sock, &["completions", "bash"]);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("chantryctl"),
        "{}",
        describe(&o)
    );
    let _ = &s.pair;
}

#[test]
fn vicar_profiles_import_and_export_through_chantryctl() {
    let pair = Pair::new();
    let dir = TempDir::new();
    let service = Service::start_with(
        &pair.a,
        &dir,
        &ServiceOptions {
            group: NO_GROUP.into(),
            admin_group: NO_ADMIN_GROUP.into(),
            env: Vec::new(),
        },
    );
    let sock = &service.socket;
    let profile = VicarProfile {
        cathedral_id: 0x0bad_f00d,
        cathedral_ip: OUTER_B,
        cathedral_port: 4500,
        flock: 0x1122_3344_5566_7700,
        tunnel: 0x0102,
        kek: Secret::new([0x11; 32]),
        cosk: Secret::new([0x22; 64]),
        cathedral_secret: Secret::new([0x33; 32]),
    };
    let passphrase = "a passphrase for the e2e test";
    let file = vicar::encrypt(
        passphrase.as_bytes(),
        &profile,
        &mut SeededEntropy::from_u64(9),
    )
    .expect("vicar file");
    let vicar_path = dir.join("home.vicar");
    fs::write(&vicar_path, file).unwrap();
    let mut lines = String::from("instance chvic0\nlocal 0.0.0.0:0\ntunnel 10.77.0.1/30 1422\n");
    for r in roles("tunnel") {
        lines.push_str(&format!("run {r} as {}\n", uid_of(r, 0)));
    }
    let lines_path = dir.join("lines.conf");
    fs::write(&lines_path, &lines).unwrap();
    let wrong = dir.join("wrong.pass");
    fs::write(&wrong, "not it\n").unwrap();
    let (v, l, w) = (
        vicar_path.to_str().unwrap(),
        lines_path.to_str().unwrap(),
        wrong.to_str().unwrap(),
    );

    // A wrong passphrase: exit 7, nothing stored.
    let o = ctl(
        None,
        sock,
        &[
            "import-vicar",
            "home",
            v,
            "--config",
            l,
            "--passphrase-file",
            w,
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"),
        "{}",
        describe(&o)
    );
    // No passphrase at all (no terminal, no variable): a usage error.
    let o = ctl_command(None, sock)
        .args(["import-vicar", "home", v, "--config", l])
        .env_remove("CHANTRY_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    // A line the vicar file provides: exit 6, the caller's file and line.
    let bad = dir.join("bad.conf");
    fs::write(&bad, format!("{lines}spi 0x0102\n")).unwrap();
    let o = ctl_command(None, sock)
        .args(["import-vicar", "home", v, "--config", bad.to_str().unwrap()])
        .env("CHANTRY_PASSPHRASE", passphrase)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", describe(&o));
    let line = lines.lines().count() + 1;
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("{}:{line}: spi:", bad.display())),
        "{}",
        describe(&o)
    );
    assert_eq!(state_of(sock, "home"), "");

    // The right passphrase from the environment.
    let o = ctl_command(None, sock)
        .args(["import-vicar", "home", v, "--config", l])
        .env("CHANTRY_PASSPHRASE", passphrase)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(state_of(sock, "home"), "down");
    for (suffix, bytes) in [
        ("kek", vec![0x11; 32]),
        ("cosk", vec![0x22; 64]),
        ("cs", vec![0x33; 32]),
    ] {
        let p = service.state.join(format!("keys/home.{suffix}"));
        assert_eq!(fs::read(&p).unwrap(), bytes, "{}", p.display());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let events = String::from_utf8_lossy(&ctl(None, sock, &["events", "home"]).stdout).into_owned();
    assert!(
        events.contains("imported from a vicar file by uid 0"),
        "{events}"
    );
    assert!(
        !service.log_text().contains(passphrase),
        "passphrase in the service's log"
    );

    // Export writes the configuration and the key files; importing that
    // gives the same profile under another name.
    let out = dir.join("export");
    fs::create_dir_all(&out).unwrap();
    let o = ctl(
        None,
        sock,
        &["export", "home", "--dir", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", describe(&o));
    let conf = fs::read_to_string(out.join("home.conf")).unwrap();
    assert!(
        conf.contains(&format!("\nkek {}\n", out.join("home.kek").display())),
        "{conf}"
    );
    assert!(conf.contains("\ncathedral 192.168.77.2:4500\n"), "{conf}");
    assert_eq!(fs::read(out.join("home.cs")).unwrap(), vec![0x33; 32]);
    assert!(
        !out.join("home.secret").exists(),
        "no secret before an ambry"
    );
    let o = ctl(
        None,
        sock,
        &[
            "import",
            "-c",
            out.join("home.conf").to_str().unwrap(),
            "--name",
            "again",
        ],
    );
    assert!(o.status.success(), "{}", describe(&o));
    let a = json(&ctl(None, sock, &["export", "home", "--json"]));
    let b = json(&ctl(None, sock, &["export", "again", "--json"]));
    for key in ["kek", "cathedral_secret", "cathedral_cosk", "secret"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(
        a["config"].as_str().unwrap().replace("/home.", "/again."),
        b["config"].as_str().unwrap()
    );
}

/// What one soak connection did.
#[derive(Debug, Default)]
struct Tally {
    answers: u64,
    stats_events: u64,
}

/// One connection: subscribe, then ask for the status of every profile
/// until `until`, checking each answer exactly.
fn hammer(socket: &Path, until: Instant) -> Result<Tally, String> {
    let mut c = Client::connect(socket).map_err(|e| format!("connect: {e}"))?;
    match c.call(Request::Subscribe) {
        Ok(Response::Done) => {}
        other => return Err(format!("subscribe: {other:?}")),
    }
    let mut t = Tally::default();
    while Instant::now() < until {
        match c.call(Request::Status { name: None }) {
            Ok(Response::Status { tunnels })
                if tunnels.len() == 1
                    && tunnels[0].name == "home"
                    && tunnels[0].state == TunnelState::Up => {}
            other => return Err(format!("status: {other:?}")),
        }
        t.answers += 1;
        t.stats_events += c
            .take_events()
            .iter()
            .filter(|e| matches!(e, Event::Stats { name, .. } if name == "home"))
            .count() as u64;
    }
    Ok(t)
}

/// `CONNECTIONS` threads running [`hammer`] for `span`.
fn load(socket: &Path, span: Duration) -> Vec<Result<Tally, String>> {
    let until = Instant::now() + span;
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let socket = socket.to_owned();
            std::thread::spawn(move || hammer(&socket, until))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap_or_else(|_| Err("thread panicked".into())))
        .collect()
}

#[test]
fn a_hundred_subscribers_for_thirty_seconds() {
    let s = Setup::new();
    let pid = s.service.pid();

    // Warm-up with the same load, then the baseline once it is over.
    for r in load(s.sock(), WARM_UP) {
        r.expect("warm-up connection");
    }
    std::thread::sleep(Duration::from_secs(1));
    let baseline = rss_kib(pid).expect("VmRSS");

    let results = load(s.sock(), SOAK);
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{} of {CONNECTIONS} connections failed: {errors:?}\n{}",
        errors.len(),
        s.service.log_text()
    );
    let tallies: Vec<&Tally> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let answers: u64 = tallies.iter().map(|t| t.answers).sum();
    // Every subscriber was sent the tunnel's numbers while it asked.
    for (i, t) in tallies.iter().enumerate() {
        assert!(t.answers > 0 && t.stats_events > 0, "connection {i}: {t:?}");
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid).expect("VmRSS");
    eprintln!(
        "soak: {answers} answers on {CONNECTIONS} connections in {SOAK:?}; VmRSS {baseline} KiB \
         after the warm-up, {after} KiB after the soak (bound {} KiB: a leak of {} bytes per \
         request would cross it)",
        baseline + RSS_MARGIN_KIB,
        RSS_MARGIN_KIB * 1024 / answers.max(1)
    );
    assert!(
        after <= baseline + RSS_MARGIN_KIB,
        "VmRSS grew from {baseline} KiB to {after} KiB over the soak"
    );
    // The tunnel itself is still up and answering.
    assert_eq!(state_of(s.sock(), "home"), "up");
    assert!(s.pair.a.ping_once(INNER_B), "tunnel broken after the soak");
    let _ = &s.dir;
}
