//! The service in-process with everything it reports: a fake guardian (a
//! shell script that prints guardian lines and sleeps) and a fake control
//! socket that answers a fixed status stand in for `chantryd run`, so the
//! numbers, the log lines, the event log, the history and the settings
//! can be checked exactly, on the subscription stream and in answers.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chantry_core::ipc::{
    Counters, ErrorCode, Event, PathKind, Request, Response, Settings, Stage, TunnelState,
    TunnelStatus,
};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::client::{Client, ClientError};
use super::store::{Profile, Store};
use super::{auth, endpoint, logbook, settings, stats, tunnels};
use crate::control::{self, SaStats, Status};

/// A running in-process service.
struct Harness {
    dir: PathBuf,
    socket: PathBuf,
    store_dir: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The fake guardian: the lines `chantryd run` prints when its roles are
/// up and an exchange starts, then a sleep that SIGTERM ends.
const GUARDIAN: &str = "#!/bin/sh\n\
echo '2026-11-05T08:31:02.000000Z  INFO all roles sandboxed and running' >&2\n\
echo '2026-11-05T08:31:03.000000Z  INFO chantry_service::roles::chapel: exchange event=ExchangeStarted { reason: SaAgeLimit, spi: 7 }' >&2\n\
echo '2026-11-05T08:31:03.000000Z  WARN chantry_service::roles::chapel: something odd' >&2\n\
exec sleep 60\n";

/// Starts a service (wired as `serve` wires it) on its own thread, with
/// `guardian` as the chantryd it runs tunnels with.
fn start(tag: &str) -> Harness {
    let dir = std::env::temp_dir().join(format!("chantry-stream-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let guardian = dir.join("guardian.sh");
    std::fs::write(&guardian, GUARDIAN).unwrap();
    std::fs::set_permissions(&guardian, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("s.sock");
    let store_dir = dir.join("state");
    let (tx, rx) = std::sync::mpsc::channel();
    let (sock, state) = (socket.clone(), store_dir.clone());
    std::thread::spawn(move || {
        let logs = logbook::LogBook::new(logbook::RING_LINES);
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(logs.layer().with_filter(logbook::layer_filter())),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = Store::open(&state).await.unwrap();
            let tunnels = tunnels::Tunnels::new(guardian, store.clone());
            settings::apply_stored(&store, &logs, &tunnels)
                .await
                .unwrap();
            let events = tunnels.event_sender();
            store.record_to(events.clone());
            logs.stream_to(events.clone());
            let stats = stats::Stats::default();
            tokio::spawn(
                stats
                    .clone()
                    .run(tunnels.clone(), store.clone(), logs.clone(), events),
            );
            let service = Arc::new(endpoint::Service {
                groups: auth::Groups::resolve("chtest-nogroup-a", "chtest-nogroup-b"),
                tunnels,
                store,
                logs,
                stats,
            });
            let listener = endpoint::bind(&sock, &service.groups).unwrap();
            tx.send(()).unwrap();
            let _ = endpoint::accept_loop(listener, service).await;
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Harness {
        dir,
        socket,
        store_dir,
    }
}

/// A control socket at `path` that answers `status` until dropped.
struct FakeControl {
    stop: Arc<AtomicBool>,
}

impl FakeControl {
    fn serve(path: &Path, status: Status) -> FakeControl {
        let sock = control::bind_control_socket(path, None).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Ok(control::Served::Idle) = control::serve_one(&sock, || status) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        FakeControl { stop }
    }
}

impl Drop for FakeControl {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Calls until `pick` likes the answer (bounded).
fn wait_for<T>(what: &str, mut pick: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = pick() {
            return t;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_of(c: &mut Client, name: &str) -> TunnelStatus {
    match c.call(Request::Status {
        name: Some(name.into()),
    }) {
        Ok(Response::Status { mut tunnels }) if tunnels.len() == 1 => tunnels.remove(0),
        other => panic!("{other:?}"),
    }
}

fn refused(r: Result<Response, ClientError>) -> chantry_core::ipc::ErrorReply {
    match r {
        Err(ClientError::Refused(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_running_tunnel_reports_numbers_logs_events_and_history() {
    if !is_root() {
        eprintln!("skipped: needs root (the only caller a group-less service admits)");
        return;
    }
    let h = start("tunnel");
    let mut watcher = Client::connect(&h.socket).unwrap();
    assert_eq!(watcher.call(Request::Subscribe).unwrap(), Response::Done);
    let mut c = Client::connect(&h.socket).unwrap();

    // A profile with a cathedral, stored directly (the fake guardian
    // reads nothing, so the files it names need not exist).
    let mut config = String::from(
        "instance fake1\nmode tunnel\nspi 0x0102\nsecret /nonexistent/s\nlocal 0.0.0.0:0\n\
         tunnel 10.9.0.1/30 1400\ncathedral_id 0badf00d\ncathedral_flock 1122334455667700\n\
         cathedral_secret /nonexistent/c\ncathedral_cosk /nonexistent/o\n\
         cathedral 127.0.0.1:4600\ncontrol /tmp/x root\n",
    );
    for r in chantry_core::config::Mode::Tunnel.roles() {
        config.push_str(&format!("run {} as nobody\n", r.as_str()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(&h.store_dir)).unwrap();
    let profile = Profile {
        name: "fake".into(),
        instance: "fake1".into(),
        mode: "tunnel".into(),
        config,
        auto_connect: false,
        always_on: false,
    };
    assert!(rt.block_on(store.insert(&profile)).unwrap());
    let cathedral = "127.0.0.1:4600".parse().unwrap();
    let mono = stats::monotonic_now();
    let _control = FakeControl::serve(
        &store.control_path("fake"),
        Status {
            tx: SaStats {
                spi: 0x11,
                age: mono - 42,
                pkt: 5,
                last: mono,
                bytes: 500,
            },
            rx: SaStats {
                spi: 0x22,
                age: mono - 40,
                pkt: 6,
                last: mono,
                bytes: 600,
            },
            peer: Some(cathedral),
            mtu: 1400,
        },
    );

    assert_eq!(
        c.call(Request::Connect {
            name: "fake".into()
        })
        .unwrap(),
        Response::Done
    );
    // The run configuration points at the service's socket for it.
    let run = std::fs::read_to_string(store.run_config_path("fake")).unwrap();
    assert!(
        run.contains(&format!(
            "control {} root\n",
            store.control_path("fake").display()
        )),
        "{run}"
    );
    let st = wait_for("stats", || {
        let st = status_of(&mut c, "fake");
        (st.state == TunnelState::Up && st.stats.is_some()).then_some(st)
    });
    let s = st.stats.unwrap();
    assert_eq!(s.stage, Stage::Rekeying, "{s:?}");
    assert_eq!(s.path, Some(PathKind::Relay));
    assert_eq!(s.peer.as_deref(), Some("127.0.0.1:4600"));
    assert_eq!(s.cathedral.as_deref(), Some("127.0.0.1:4600"));
    assert_eq!(s.mtu, 1400);
    assert_eq!(
        (s.tx, s.rx),
        (
            Counters {
                packets: 5,
                bytes: 500
            },
            Counters {
                packets: 6,
                bytes: 600
            }
        )
    );
    let since = s.since_key_exchange_s.unwrap();
    assert!((42..60).contains(&since), "{since}");

    // The stream saw the state change, the guardian's lines, the stats
    // and the event log entries.
    let (mut up, mut log, mut stat, mut recorded) = (false, false, false, false);
    wait_for("every kind of event", || {
        let ev = watcher.next_event().unwrap();
        match ev {
            Event::State(t) if t.name == "fake" && t.state == TunnelState::Up => up = true,
            Event::Log(l)
                if l.profile.as_deref() == Some("fake")
                    && l.message == "all roles sandboxed and running" =>
            {
                assert_eq!(l.level, "info");
                log = true;
            }
            Event::Stats { name, stats, .. } if name == "fake" => {
                assert_eq!(stats.tx.packets, 5);
                stat = true;
            }
            Event::Recorded(r) if r.profile.as_deref() == Some("fake") && r.kind == "connect" => {
                recorded = true;
            }
            _ => {}
        }
        (up && log && stat && recorded).then_some(())
    });

    match c.call(Request::Logs {
        name: Some("fake".into()),
        limit: 10,
    }) {
        Ok(Response::Logs { lines }) => {
            let got: Vec<(&str, &str)> = lines
                .iter()
                .map(|l| (l.level.as_str(), l.message.as_str()))
                .collect();
            // The service's own lines about the profile, and the
            // guardian's without their time and level word.
            assert_eq!(
                got,
                [
                    ("info", "connect uid=0"),
                    ("info", "tunnel state state=connecting"),
                    ("info", "tunnel state state=up"),
                    ("info", "all roles sandboxed and running"),
                    (
                        "info",
                        "chantry_service::roles::chapel: exchange event=ExchangeStarted { reason: SaAgeLimit, spi: 7 }"
                    ),
                    ("warn", "chantry_service::roles::chapel: something odd"),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    match c.call(Request::Events {
        name: Some("fake".into()),
        limit: 10,
    }) {
        Ok(Response::Events { events }) => {
            assert_eq!(events[0].kind, "connect");
            assert_eq!(events[0].detail, "connecting");
        }
        other => panic!("{other:?}"),
    }
    let samples = wait_for("a sample", || {
        match c.call(Request::History {
            name: "fake".into(),
            seconds: 3600,
        }) {
            Ok(Response::History { samples }) if !samples.is_empty() => Some(samples),
            _ => None,
        }
    });
    assert_eq!(samples[0].tx.bytes, 500);
    assert_eq!(samples[0].rx.packets, 6);

    // Down: no numbers any more, and the exchange is forgotten.
    assert_eq!(
        c.call(Request::Disconnect {
            name: "fake".into()
        })
        .unwrap(),
        Response::Done
    );
    let st = status_of(&mut c, "fake");
    assert_eq!((st.state, st.stats), (TunnelState::Down, None));
    let e = refused(c.call(Request::History {
        name: "nope".into(),
        seconds: 10,
    }));
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[test]
fn settings_are_checked_stored_applied_and_recorded() {
    if !is_root() {
        eprintln!("skipped: needs root (the only caller a group-less service admits)");
        return;
    }
    let h = start("settings");
    let mut watcher = Client::connect(&h.socket).unwrap();
    assert_eq!(watcher.call(Request::Subscribe).unwrap(), Response::Done);
    let mut c = Client::connect(&h.socket).unwrap();
    assert_eq!(
        c.call(Request::GetSettings).unwrap(),
        Response::Settings(Settings::default())
    );
    let bad = Settings {
        log_level: "loud".into(),
        ..Settings::default()
    };
    let e = refused(c.call(Request::SetSettings(bad)));
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            ErrorCode::Invalid,
            "log level \"loud\": use error, warn, info or debug"
        )
    );
    // A hostile frame on another connection closes that one only: the
    // subscriber keeps its stream (the record below still reaches it).
    {
        use std::io::{Read as _, Write as _};
        let mut raw = std::os::unix::net::UnixStream::connect(&h.socket).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hello = chantry_core::ipc::ClientHello {
            version: chantry_core::ipc::PROTOCOL_VERSION,
            client: "hostile".into(),
        };
        raw.write_all(&chantry_core::ipc::encode_message(&hello).unwrap())
            .unwrap();
        raw.write_all(&[0x00, 0x10, 0x00, 0x00]).unwrap();
        let mut all = Vec::new();
        raw.read_to_end(&mut all).unwrap();
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.contains("\"hello\"") && text.contains("larger than the limit"),
            "{text}"
        );
    }
    let new = Settings {
        reconnect_on_network_change: false,
        log_level: "warn".into(),
    };
    assert_eq!(
        c.call(Request::SetSettings(new.clone())).unwrap(),
        Response::Done
    );
    assert_eq!(
        c.call(Request::GetSettings).unwrap(),
        Response::Settings(new)
    );
    let rec = wait_for("the record", || match watcher.next_event().unwrap() {
        Event::Recorded(r) if r.kind == "settings" => Some(r),
        _ => None,
    });
    assert_eq!(
        rec.detail,
        "settings changed by uid 0: log level warn, reconnect on network change off"
    );
    // The change itself was logged at info, before the level went to warn.
    match c.call(Request::Logs {
        name: None,
        limit: 1000,
    }) {
        Ok(Response::Logs { lines }) => {
            assert!(
                lines
                    .iter()
                    .any(|l| l.message.starts_with("settings changed")),
                "{lines:?}"
            );
            assert!(lines.iter().all(|l| l.level != "debug"), "{lines:?}");
        }
        other => panic!("{other:?}"),
    }
    // A vicar import with a bad name is refused before any KDF.
    let e = refused(c.call(Request::ImportVicar(
        chantry_core::ipc::VicarImportRequest {
            name: "a b".into(),
            vicar: chantry_core::ipc::KeyMaterial::new(vec![0; 216]),
            passphrase: chantry_core::ipc::Passphrase::new("x".into()),
            config: String::new(),
            auto_connect: false,
            always_on: false,
        },
    )));
    assert_eq!(e.code, ErrorCode::Invalid);
}
