//! The desktop app in a real window against a real service: Xvfb, a
//! session bus and trayer make a desktop; tauri-driver and
//! WebKitWebDriver drive `chantry` (app-ui), run as an unprivileged user,
//! against `chantryd service` in a network namespace whose profile
//! tunnels to a second chantryd in another.
//!
//! 1. Before the user is in the service's group: the app says the service
//!    is not running, then (once it runs) which group to join.
//! 2. In the users' group: importing is refused, naming the admin group;
//!    in that group too (after a service restart the app rides out), a
//!    file with a bad line is named with its line, and the good one is
//!    imported.
//! 3. Connect with the switch: "connected", the byte counters of the
//!    tunnel detail rise while a ping runs, disconnect: "disconnected".
//! 4. The tray icon (an XEmbed icon in trayer, checked by the colour of
//!    its pixels) follows each state, and its menu connects and
//!    disconnects the tunnel and quits the app (driven with xdotool).
//!
//! A screenshot of every screen is saved in `CHANTRY_GUI_SHOTS` (default
//! `<target>/gui-shots`); docs/screenshots holds a copy of them.
//!
//! Needs root, the packages scripts/test-gui.sh installs, the app built
//! (`CHANTRY_APP`, default `<target>/debug/chantry`) and tauri-driver
//! (`TAURI_DRIVER`, default from PATH). A missing piece fails the test.

mod desktop;
mod webdriver;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chantry_core::entropy::SeededEntropy;
use chantry_core::secret::Secret;
use chantry_core::vicar::{self, VicarProfile};
use chantry_e2e::service::{Service, ServiceOptions};
use chantry_e2e::*;
use desktop::{Desktop, Proc, SessionBus, TrayLook, classify, require};
use serde_json::{Value, json};
use webdriver::Session;

const GROUP: &str = "chtest-gui-users";
const ADMIN_GROUP: &str = "chtest-gui-admins";

/// The service started with this test's own groups.
fn gui_groups() -> ServiceOptions {
    ServiceOptions {
        group: GROUP.into(),
        admin_group: ADMIN_GROUP.into(),
        ..ServiceOptions::default()
    }
}
const USER: &str = "chtest-gui";

/// The test's groups and user (no groups at first); removed on drop.
struct Accounts;

impl Accounts {
    fn create() -> Accounts {
        for g in [GROUP, ADMIN_GROUP] {
            sh(&["groupadd", "-f", g]);
        }
        let _ = Command::new("pkill").args(["-KILL", "-u", USER]).output();
        let _ = Command::new("userdel").arg(USER).output();
        sh(&[
            "useradd",
            "-M",
            "-N",
            "-s",
            "/usr/sbin/nologin",
            "-d",
            "/nonexistent",
            USER,
        ]);
        Accounts
    }

    fn join(group: &str) {
        sh(&["usermod", "-aG", group, USER]);
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        // What the app's session left running (the accessibility bus that
        // GTK starts) would keep userdel from removing the user.
        let _ = Command::new("pkill").args(["-KILL", "-u", USER]).output();
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("userdel").arg(USER).output();
        for g in [GROUP, ADMIN_GROUP] {
            let _ = Command::new("groupdel").arg(g).output();
        }
    }
}

/// `<target>/debug/<name>` next to this test's executable.
fn beside_target(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/gui-HASH -> target/<profile>/<name>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name)
}

fn app_binary() -> PathBuf {
    let p = std::env::var_os("CHANTRY_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| beside_target("chantry"));
    assert!(
        p.is_file(),
        "no app at {}: build it with `cargo build -p chantry-app` after `npm ci && npm run build` in app-ui (scripts/test-gui.sh does this), or set CHANTRY_APP",
        p.display()
    );
    p
}

fn shots_dir() -> PathBuf {
    let d = std::env::var_os("CHANTRY_GUI_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            beside_target("gui-shots")
                .parent()
                .and_then(Path::parent)
                .map(|t| t.join("gui-shots"))
                .expect("target")
        });
    fs::create_dir_all(&d).expect("screenshot dir");
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn chown_user(path: &Path) {
    sh(&["chown", &format!("{USER}:"), path.to_str().expect("utf-8")]);
}

/// What the user's session looks like: a home, a runtime dir, the
/// display and the bus.
struct UserEnv {
    vars: Vec<(String, String)>,
}

impl UserEnv {
    /// The session of the test user: its home and runtime dir, the
    /// display and bus, no GPU, the service's socket.
    fn new(
        home: &Path,
        runtime: &Path,
        desk: &Desktop,
        bus: &SessionBus,
        socket: &Path,
    ) -> UserEnv {
        UserEnv {
            vars: vec![
                ("HOME".into(), home.display().to_string()),
                ("USER".into(), USER.into()),
                ("LOGNAME".into(), USER.into()),
                ("XDG_RUNTIME_DIR".into(), runtime.display().to_string()),
                ("DISPLAY".into(), desk.display.clone()),
                ("DBUS_SESSION_BUS_ADDRESS".into(), bus.address.clone()),
                ("GDK_BACKEND".into(), "x11".into()),
                ("WEBKIT_DISABLE_DMABUF_RENDERER".into(), "1".into()),
                ("WEBKIT_DISABLE_COMPOSITING_MODE".into(), "1".into()),
                ("LIBGL_ALWAYS_SOFTWARE".into(), "1".into()),
                ("NO_AT_BRIDGE".into(), "1".into()),
                ("CHANTRY_SOCKET".into(), socket.display().to_string()),
                ("RUST_LOG".into(), "info".into()),
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ],
        }
    }

    /// `runuser -u USER -- env VARS program`.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", USER, "--", "env"]);
        for (k, v) in &self.vars {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(program);
        cmd
    }
}

/// A home and a runtime dir of the test user's in `dir`.
fn user_dirs(dir: &TempDir) -> (PathBuf, PathBuf) {
    let home = dir.join("home");
    let runtime = dir.join("xdg");
    for d in [&home, &runtime] {
        fs::create_dir_all(d).expect("dir");
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).expect("chmod");
        chown_user(d);
    }
    (home, runtime)
}

/// tauri-driver (and through it WebKitWebDriver and the app) as the test
/// user, with its log.
struct Driver {
    port: u16,
    log: PathBuf,
    _proc: Proc,
}

impl Driver {
    fn start(env: &UserEnv, dir: &Path, n: u32) -> Driver {
        let tauri_driver = std::env::var_os("TAURI_DRIVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!("set TAURI_DRIVER to tauri-driver (`cargo install tauri-driver --locked`; scripts/test-gui.sh does)")
            });
        assert!(
            tauri_driver.is_file(),
            "TAURI_DRIVER={} is not a file",
            tauri_driver.display()
        );
        let webkit = require("WebKitWebDriver", "webkit2gtk-driver");
        let port = free_port();
        let native = free_port();
        let log = dir.join(format!("driver{n}.log"));
        let file = fs::File::create(&log).expect("log");
        let mut cmd = env.command(&tauri_driver);
        cmd.args(["--port", &port.to_string()])
            .args(["--native-port", &native.to_string()])
            .arg("--native-driver")
            .arg(&webkit)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        let child = cmd.spawn().expect("tauri-driver");
        Driver {
            port,
            log,
            _proc: Proc(Some(child)),
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- app and driver ({}) ---\n{}",
                self.log.display(),
                lines[lines.len().saturating_sub(80)..].join("\n")
            );
        }
    }
}

/// Everything the assertions print when they fail.
struct Logs<'a> {
    driver: &'a Driver,
    service: Option<&'a Service>,
    peer: &'a Daemon,
}

impl Logs<'_> {
    fn dump(&self) -> String {
        let tail = |s: String| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        format!(
            "\n--- app and driver ---\n{}\n--- service ---\n{}\n--- peer ---\n{}",
            tail(self.driver.log_text()),
            tail(self.service.map(Service::log_text).unwrap_or_default()),
            tail(self.peer.log_text())
        )
    }
}

/// JS: the `data-shown` of a profile's card (null if absent).
fn shown_js(name: &str) -> String {
    format!(
        "const c = document.querySelector('[data-profile=\"{name}\"]'); return c ? c.dataset.shown : null;"
    )
}

/// JS: the id of the error box shown, and its text.
const ERROR_JS: &str = "const e = document.querySelector('.error-box'); return e ? [e.dataset.error, e.textContent] : null;";

fn wait_error(s: &Session, id: &str, limit: Duration, logs: &Logs) -> String {
    let (v, ok) = s.wait_for(ERROR_JS, limit, |v| v[0] == id);
    assert!(
        ok,
        "no `{id}` error box within {limit:?}: {v}{}",
        logs.dump()
    );
    v[1].as_str().unwrap_or_default().to_owned()
}

fn wait_shown(s: &Session, name: &str, want: &str, limit: Duration, logs: &Logs) {
    let (v, ok) = s.wait_for(&shown_js(name), limit, |v| v == want);
    if !ok {
        let shown = s
            .run(
                "return [document.getElementById('screen').textContent, document.getElementById('notice').textContent];",
                json!([]),
            )
            .unwrap_or_default();
        panic!(
            "{name} is not `{want}` within {limit:?}: {v}; the window shows {shown}{}",
            logs.dump()
        );
    }
}

/// Saves the app's window as `shots/NAME.png` (an X screenshot of the
/// real window; WebKitWebDriver's own screenshot does not return under
/// Xvfb without compositing).
fn shot(d: &Desktop, shots: &Path, name: &str) {
    let path = shots.join(format!("{name}.png"));
    // WebKit paints a moment after the DOM changed.
    std::thread::sleep(Duration::from_millis(600));
    d.window_shot("^Chantry$", &path);
    let png = fs::read(&path).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG"),
        "screenshot {name} is not a PNG"
    );
}

/// Waits (bounded) for the tray to look `want`; returns the looks seen
/// on the way.
fn wait_tray(
    d: &Desktop,
    dir: &Path,
    want: TrayLook,
    limit: Duration,
    logs: &Logs,
) -> Vec<TrayLook> {
    let begin = Instant::now();
    let mut seen = Vec::new();
    loop {
        let (_, _, px) = d.tray_pixels(dir);
        let (look, counts) = classify(&px);
        if seen.last() != Some(&look) {
            seen.push(look);
        }
        if look == want {
            return seen;
        }
        assert!(
            begin.elapsed() < limit,
            "tray is {look:?} (pixels per fill: {counts:?}), not {want:?}, after {limit:?}; seen {seen:?}{}",
            logs.dump()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Where the tray icon is on the screen: the centre of its coloured
/// pixels.
fn tray_icon_centre(d: &Desktop, dir: &Path) -> (i32, i32) {
    let (x, y, _, _) = d.tray_geometry();
    let (w, _, px) = d.tray_pixels(dir);
    let (cx, cy) = desktop::icon_centre(w, &px).expect("no tray icon to click");
    (x + cx as i32, y + cy as i32)
}

/// Opens the tray menu and activates the item `downs` steps below the
/// first (negative: from the bottom, with Up).
fn tray_menu(d: &Desktop, dir: &Path, shots: Option<&Path>, downs: i32) {
    let (x, y) = tray_icon_centre(d, dir);
    d.xdotool(&["mousemove", &x.to_string(), &y.to_string()])
        .expect("move to the tray icon");
    d.xdotool(&["click", "1"]).expect("click the tray icon");
    std::thread::sleep(Duration::from_millis(700));
    if let Some(shots) = shots {
        let full = dir.join("screen.png");
        d.screenshot(&full);
        let (sw, _) = desktop::SCREEN;
        let o = Command::new("convert")
            .arg(&full)
            .args(["-crop", &format!("420x240+{}+0", sw - 420), "+repage"])
            .arg(shots.join("tray-menu.png"))
            .output()
            .expect("convert");
        assert!(o.status.success(), "crop of the tray menu");
    }
    let key = if downs >= 0 { "Down" } else { "Up" };
    for _ in 0..downs.unsigned_abs() {
        d.xdotool(&["key", key]).expect("menu key");
        std::thread::sleep(Duration::from_millis(150));
    }
    d.xdotool(&["key", "Return"])
        .expect("activate the menu item");
}

#[test]
fn the_app_imports_connects_and_follows_the_tunnel_with_its_tray() {
    let app = app_binary();
    let shots = shots_dir();
    let _accounts = Accounts::create();
    let pair = Pair::new();
    let dir = TempDir::new();
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711)).expect("chmod");

    // The user's session: a home and a runtime dir of its own.
    let (home, runtime) = user_dirs(&dir);

    // The tunnel: the service's profile (side a) and its peer (side b).
    let conf_a = Conf {
        instance: "chgui0".into(),
        ..Conf::for_side(0, "tunnel")
    }
    .write(&dir);
    let conf_b = Conf {
        instance: "chgui1".into(),
        ..Conf::for_side(1, "tunnel")
    }
    .write(&dir);
    let peer = Daemon::start(&pair.b, &conf_b, dir.join("peer.log"), &[]);
    // What the user imports: their copy of the configuration and key, and
    // a configuration with a bad third line.
    let user_conf = home.join("home.conf");
    let user_key = home.join("home.secret");
    write_secret(&user_key, 42);
    let text: String = fs::read_to_string(&conf_a)
        .expect("conf")
        .lines()
        .map(|l| {
            if l.starts_with("secret ") {
                format!("secret {}\n", user_key.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(&user_conf, &text).expect("conf");
    let bad_conf = home.join("bad.conf");
    let mut bad: Vec<&str> = text.lines().collect();
    bad.insert(2, "frobnicate yes");
    fs::write(&bad_conf, bad.join("\n") + "\n").expect("bad conf");
    for f in [&user_conf, &user_key, &bad_conf] {
        chown_user(f);
    }
    assert_eq!(
        fs::read_to_string(&bad_conf).expect("bad").lines().nth(2),
        Some("frobnicate yes"),
        "the bad file's third line"
    );

    // A vicar profile for the same user, sealed with a passphrase.
    let passphrase = "correct horse battery staple";
    let sealed = vicar::encrypt(
        passphrase.as_bytes(),
        &VicarProfile {
            cathedral_id: 0x0bad_f00d,
            cathedral_ip: OUTER_B,
            cathedral_port: 4500,
            flock: 0x1122_3344_5566_7700,
            tunnel: 0x0102,
            kek: Secret::new([0x11; 32]),
            cosk: Secret::new([0x22; 64]),
            cathedral_secret: Secret::new([0x33; 32]),
        },
        &mut SeededEntropy::from_u64(6),
    )
    .expect("vicar file");
    let user_vicar = home.join("work.vicar");
    fs::write(&user_vicar, sealed).expect("vicar");
    chown_user(&user_vicar);
    let mut vicar_lines =
        String::from("instance chgui9\nlocal 0.0.0.0:0\ntunnel 10.77.9.1/30 1422\n");
    for r in roles("tunnel") {
        vicar_lines.push_str(&format!("run {r} as {}\n", uid_of(r, 0)));
    }

    let desk = Desktop::start(&dir.0);
    let bus = SessionBus::start(USER, &runtime);
    let socket = dir.join("run/chantryd.sock");
    let env = UserEnv::new(&home, &runtime, &desk, &bus, &socket);
    // The user's keyring: GNOME Keyring's Secret Service, its login
    // keyring created and unlocked as at a graphical login.
    require("gnome-keyring-daemon", "gnome-keyring");
    let o = env
        .command(Path::new("/bin/sh"))
        .args([
            "-c",
            "printf 'login password' | gnome-keyring-daemon --unlock --components=secrets",
        ])
        .output()
        .expect("gnome-keyring-daemon");
    assert!(
        o.status.success(),
        "gnome-keyring-daemon: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // 1. Not in the group yet, and no service: the app says what to do.
    let mut service;
    {
        let drv = Driver::start(&env, &dir.0, 1);
        let logs = Logs {
            driver: &drv,
            service: None,
            peer: &peer,
        };
        let s = Session::start(drv.port, &app, &[])
            .unwrap_or_else(|e| panic!("session: {e}{}", logs.dump()));
        let text = wait_error(&s, "not-running", Duration::from_secs(30), &logs);
        assert!(text.contains("sudo systemctl start chantryd"), "{text}");
        assert!(text.contains(socket.to_str().expect("utf-8")), "{text}");
        shot(&desk, &shots, "error-not-running");
        wait_tray(
            &desk,
            &dir.0,
            TrayLook::Error,
            Duration::from_secs(20),
            &logs,
        );

        service = Service::start_with(&pair.a, &dir, &gui_groups());
        let logs = Logs {
            driver: &drv,
            service: Some(&service),
            peer: &peer,
        };
        // The app tries again by itself (at most 5 s apart).
        let text = wait_error(&s, "permission", Duration::from_secs(20), &logs);
        assert!(
            text.contains(&format!("sudo usermod -aG {GROUP} {USER}")),
            "{text}"
        );
        shot(&desk, &shots, "error-permission");
        s.end().expect("end session 1");
    }

    // 2. In the users' group (a new login session: a new driver and app).
    Accounts::join(GROUP);
    let drv = Driver::start(&env, &dir.0, 2);
    let s = {
        let logs = Logs {
            driver: &drv,
            service: Some(&service),
            peer: &peer,
        };
        let s = Session::start(drv.port, &app, &[])
            .unwrap_or_else(|e| panic!("session: {e}{}", logs.dump()));
        let (v, ok) = s.wait_for(
            "const e = document.querySelector('.profiles .empty'); return e ? e.textContent : null;",
            Duration::from_secs(30),
            |v| v.as_str().is_some_and(|t| t.contains("No profiles yet")),
        );
        assert!(ok, "no empty profile list: {v}{}", logs.dump());
        shot(&desk, &shots, "profiles-empty");
        wait_tray(
            &desk,
            &dir.0,
            TrayLook::Disconnected,
            Duration::from_secs(20),
            &logs,
        );

        // Importing needs the admin group: the refusal names it.
        s.click("#nav-import").expect("import screen");
        s.type_into("#conf-path", user_conf.to_str().expect("utf-8"))
            .expect("type");
        s.type_into("#conf-name", "home").expect("type");
        shot(&desk, &shots, "import");
        s.click("#import-conf-go").expect("import");
        let text = wait_error(&s, "forbidden", Duration::from_secs(20), &logs);
        assert!(
            text.contains(&format!("`{ADMIN_GROUP}`"))
                && text.contains(&format!("sudo usermod -aG {ADMIN_GROUP} {USER}")),
            "{text}"
        );
        shot(&desk, &shots, "error-forbidden");
        s
    };

    // The admin group is read by the service per connection: after a
    // restart of the service the app reconnects with the new privilege.
    Accounts::join(ADMIN_GROUP);
    service.stop();
    service = Service::start_with(&pair.a, &dir, &gui_groups());
    let logs = Logs {
        driver: &drv,
        service: Some(&service),
        peer: &peer,
    };
    let (v, ok) = s.wait_for(
        "return document.getElementById('summary').textContent;",
        Duration::from_secs(30),
        |v| v.as_str().is_some_and(|t| t.contains("admin")),
    );
    assert!(ok, "the app did not reconnect as admin: {v}{}", logs.dump());

    // A bad line is named, with its number and text.
    s.type_into("#conf-path", bad_conf.to_str().expect("utf-8"))
        .expect("type");
    s.click("#import-conf-go").expect("import");
    let text = wait_error(&s, "bad-file", Duration::from_secs(20), &logs);
    assert!(
        text.contains("problem on line 3") && text.contains("frobnicate yes"),
        "{text}"
    );
    shot(&desk, &shots, "error-bad-line");

    // The good file is imported, and listed.
    s.type_into("#conf-path", user_conf.to_str().expect("utf-8"))
        .expect("type");
    s.click("#import-conf-go").expect("import");
    wait_shown(&s, "home", "disconnected", Duration::from_secs(20), &logs);

    // A vicar profile: a wrong passphrase is named as such; the right one
    // imports it and, asked to, the keyring keeps it.
    s.click("#nav-import").expect("import screen");
    s.click("#tab-vicar").expect("vicar tab");
    s.type_into("#vicar-path", user_vicar.to_str().expect("utf-8"))
        .expect("type");
    s.type_into("#vicar-name", "work").expect("type");
    s.type_into("#vicar-pass", "not it").expect("type");
    // WebDriver's Enter key makes the line breaks.
    s.type_into("#vicar-conf", &vicar_lines.replace('\n', "\u{E007}"))
        .expect("type");
    s.click("#import-vicar-go").expect("import");
    let text = wait_error(&s, "passphrase", Duration::from_secs(60), &logs);
    assert!(text.contains("Wrong passphrase"), "{text}");
    shot(&desk, &shots, "error-passphrase");
    s.type_into("#vicar-pass", passphrase).expect("type");
    s.click("#vicar-remember").expect("remember");
    s.click("#import-vicar-go").expect("import");
    wait_shown(&s, "work", "disconnected", Duration::from_secs(60), &logs);
    let (v, ok) = s.wait_for(
        "return document.getElementById('notice').textContent;",
        Duration::from_secs(10),
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("remembered in your keyring"))
        },
    );
    assert!(ok, "the passphrase was not remembered: {v}{}", logs.dump());
    // The import form now knows it: leave the field empty to use it.
    s.click("#nav-import").expect("import screen");
    s.click("#tab-vicar").expect("vicar tab");
    s.type_into("#vicar-name", "work").expect("type");
    s.click("#vicar-pass").expect("leave the name field");
    let (v, ok) = s.wait_for(
        "return [document.getElementById('vicar-pass').placeholder, document.getElementById('vicar-remembered').textContent];",
        Duration::from_secs(10),
        |v| v[0].as_str().is_some_and(|t| t.starts_with("remembered")),
    );
    assert!(ok, "no remembered passphrase for work: {v}{}", logs.dump());
    s.click("#nav-profiles").expect("profiles");
    shot(&desk, &shots, "profiles");

    // 3. Connect: "connected", and the tray goes green.
    s.click("[data-profile=\"home\"] .switch").expect("connect");
    let seen = wait_tray(
        &desk,
        &dir.0,
        TrayLook::Connected,
        Duration::from_secs(40),
        &logs,
    );
    println!("tray looks while connecting: {seen:?}");
    // Roles starting and the first key exchange take over a second (the
    // service polls the stage once a second): the amber icon shows.
    assert!(
        seen.contains(&TrayLook::Connecting),
        "the tray never showed connecting: {seen:?}"
    );
    wait_shown(&s, "home", "connected", Duration::from_secs(20), &logs);
    shot(&desk, &shots, "profiles-connected");

    // The detail: stage, peer, and byte counters that rise with a ping.
    s.click("[data-profile=\"home\"] .open").expect("detail");
    let ping_ns = pair.a.name.clone();
    let ping = std::thread::spawn(move || {
        Command::new("ip")
            .args([
                "netns", "exec", &ping_ns, "ping", "-c", "40", "-i", "0.25", "-W", "1",
            ])
            .arg(INNER_B.to_string())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    });
    let counters = "const d = (id) => document.querySelector('#fact-' + id + ' dd'); const v = (id, k) => d(id) ? Number(d(id).dataset[k]) : null; return [v('rx', 'value'), v('tx', 'value'), v('rx', 'packets'), v('tx', 'packets')];";
    let (first, ok) = s.wait_for(counters, Duration::from_secs(20), |v| {
        v[0].as_u64().is_some_and(|n| n > 0)
    });
    assert!(
        ok,
        "the detail shows no received bytes (the service's stats events): {first}{}",
        logs.dump()
    );
    let mut last = first.clone();
    for round in 0..2 {
        let prev = last.clone();
        let (v, ok) = s.wait_for(counters, Duration::from_secs(15), |v| {
            (0..4).all(|i| v[i].as_u64() > prev[i].as_u64())
        });
        assert!(
            ok,
            "counters did not rise (round {round}): {prev} then {v}{}",
            logs.dump()
        );
        last = v;
    }
    let facts = s
        .run(
            "const d = (id) => document.querySelector('#fact-' + id + ' dd'); return [d('stage')?.textContent, d('peer')?.textContent, d('rekey')?.textContent, d('mode')?.dataset.value];",
            json!([]),
        )
        .expect("facts");
    assert_eq!(facts[0], "online · direct", "stage: {facts}");
    assert_eq!(facts[1], format!("{OUTER_B}:4500"), "peer: {facts}");
    assert!(
        facts[2].as_str().is_some_and(|t| t.ends_with(" ago")),
        "last key exchange: {facts}"
    );
    assert_eq!(facts[3], "1422", "mtu: {facts}");
    let (v, ok) = s.wait_for(
        "const l = document.querySelector('polyline[data-dir=rx]'); return l ? l.getAttribute('points') : null;",
        Duration::from_secs(10),
        |v| v.as_str().is_some_and(|p| p.split(' ').count() >= 2),
    );
    assert!(ok, "no throughput line: {v}");
    shot(&desk, &shots, "detail");
    let out = ping.join().expect("ping thread");
    assert!(
        out.contains(" 0% packet loss") || out.contains("received"),
        "ping: {out}"
    );

    // Liturgy peers: an honest empty screen.
    s.click("#to-peers").expect("peers");
    let (v, ok) = s.wait_for(
        "const e = document.getElementById('peers-empty'); return e ? e.textContent : null;",
        Duration::from_secs(10),
        |v| v.as_str().is_some_and(|t| t.contains("No liturgy peers")),
    );
    assert!(ok, "peers screen: {v}");
    shot(&desk, &shots, "peers");

    // Logs: the service's lines, filtered.
    s.click("#nav-logs").expect("logs");
    let (v, ok) = s.wait_for(
        "return document.querySelectorAll('#log-list .log-line').length;",
        Duration::from_secs(15),
        |v| v.as_u64().is_some_and(|n| n > 0),
    );
    assert!(ok, "no log lines: {v}{}", logs.dump());
    s.type_into("#log-filter", "home").expect("filter");
    let (v, ok) = s.wait_for(
        "return [...document.querySelectorAll('#log-list .log-line')].map(l => l.textContent);",
        Duration::from_secs(10),
        |v| {
            v.as_array().is_some_and(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|l| l.as_str().is_some_and(|t| t.contains("home")))
            })
        },
    );
    assert!(ok, "filtered log lines: {v}");
    shot(&desk, &shots, "logs");
    s.click("#tab-events").expect("events");
    let (v, ok) = s.wait_for(
        "return [...document.querySelectorAll('#log-list .log-line .level')].map(l => l.textContent);",
        Duration::from_secs(10),
        |v| v.as_array().is_some_and(|a| a.iter().any(|k| k == "import")),
    );
    assert!(ok, "no import in the event log: {v}");

    // Settings.
    s.click("#nav-settings").expect("settings");
    let (v, ok) = s.wait_for(
        "return !!document.getElementById('auto-home') && !!document.getElementById('autostart');",
        Duration::from_secs(10),
        |v| *v == Value::Bool(true),
    );
    assert!(ok, "settings screen: {v}");
    shot(&desk, &shots, "settings");
    // Start at login: an XDG autostart entry of the user's, starting the
    // app hidden in the tray.
    let entry = home.join(".config/autostart/Chantry.desktop");
    s.click("#autostart").expect("start at login");
    let begin = Instant::now();
    while !entry.exists() {
        assert!(
            begin.elapsed() < Duration::from_secs(10),
            "no autostart entry at {}{}",
            entry.display(),
            logs.dump()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let desktop_entry = fs::read_to_string(&entry).expect("autostart entry");
    assert!(
        desktop_entry.contains(&format!("Exec={} --hidden", app.display()))
            || desktop_entry.contains("--hidden"),
        "{desktop_entry}"
    );
    s.click("#autostart").expect("no start at login");
    let begin = Instant::now();
    while entry.exists() {
        assert!(
            begin.elapsed() < Duration::from_secs(10),
            "the autostart entry stays after unticking"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Disconnect with the switch.
    s.click("#nav-profiles").expect("profiles");
    s.click("[data-profile=\"home\"] .switch")
        .expect("disconnect");
    wait_shown(&s, "home", "disconnected", Duration::from_secs(20), &logs);
    wait_tray(
        &desk,
        &dir.0,
        TrayLook::Disconnected,
        Duration::from_secs(20),
        &logs,
    );
    assert!(!pair.a.ping_once(INNER_B), "the tunnel still carries pings");

    // 4. The tray menu: its toggle connects and disconnects.
    tray_menu(&desk, &dir.0, Some(&shots), 1);
    wait_tray(
        &desk,
        &dir.0,
        TrayLook::Connected,
        Duration::from_secs(40),
        &logs,
    );
    wait_shown(&s, "home", "connected", Duration::from_secs(20), &logs);
    assert!(
        pair.a
            .ping_until(INNER_B, Duration::from_secs(10))
            .is_some(),
        "no ping after connecting from the tray{}",
        logs.dump()
    );
    desk.screenshot(&dir.join("screen.png"));
    let _ = Command::new("convert")
        .arg(dir.join("screen.png"))
        .args(["-crop", "1280x760+0+0", "+repage", "-resize", "50%"])
        .arg(shots.join("desktop.png"))
        .output();
    tray_menu(&desk, &dir.0, None, 1);
    wait_tray(
        &desk,
        &dir.0,
        TrayLook::Disconnected,
        Duration::from_secs(20),
        &logs,
    );
    wait_shown(&s, "home", "disconnected", Duration::from_secs(20), &logs);

    // Quit from the tray: the app goes away.
    tray_menu(&desk, &dir.0, None, -1);
    let begin = Instant::now();
    loop {
        let (_, _, px) = desk.tray_pixels(&dir.0);
        if classify(&px).0 == TrayLook::Empty {
            break;
        }
        assert!(
            begin.elapsed() < Duration::from_secs(15),
            "the tray icon is still there after Quit{}",
            logs.dump()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = s.end();
    drop(drv);
    drop(bus);
    drop(desk);
}

/// Where a StatusNotifierWatcher is on the session bus (KDE, GNOME with
/// the AppIndicator extension), the app's tray registers a
/// StatusNotifierItem with it instead of an XEmbed icon, and the icon it
/// names is the state's picture (red: here the service does not run).
#[test]
fn the_tray_is_a_status_notifier_item_where_a_watcher_runs() {
    let app = app_binary();
    let python = PathBuf::from("/usr/bin/python3");
    let gi = Command::new(&python)
        .args(["-c", "import gi"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        gi,
        "/usr/bin/python3 cannot import gi: install Debian's python3-gi (scripts/test-gui.sh does)"
    );
    let _accounts = Accounts::create();
    let dir = TempDir::new();
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711)).expect("chmod");
    let (home, runtime) = user_dirs(&dir);
    let desk = Desktop::start(&dir.0);
    let bus = SessionBus::start(USER, &runtime);
    let env = UserEnv::new(&home, &runtime, &desk, &bus, &dir.join("no-service.sock"));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gui/sni_watcher.py");
    let watcher_log = dir.join("watcher.log");
    let file = fs::File::create(&watcher_log).expect("log");
    let mut cmd = env.command(&python);
    cmd.arg(&script)
        .stdout(file.try_clone().expect("log"))
        .stderr(file);
    let watcher = Proc(Some(cmd.spawn().expect("watcher")));
    let app_log = dir.join("app.log");
    let wait_log = |needle: &str, what: &str| -> String {
        let begin = Instant::now();
        loop {
            let text = fs::read_to_string(&watcher_log).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            // Started this way (not through WebKitWebDriver) the app
            // sometimes spends one D-Bus timeout (25 s) before its tray.
            assert!(
                begin.elapsed() < Duration::from_secs(60),
                "{what}: the watcher printed {text:?}; the app: {}",
                fs::read_to_string(&app_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_log("watcher ready", "no StatusNotifierWatcher");

    let file = fs::File::create(&app_log).expect("log");
    let mut cmd = env.command(&app);
    cmd.stdout(file.try_clone().expect("log")).stderr(file);
    let app_proc = Proc(Some(cmd.spawn().expect("the app")));
    let text = wait_log("registered ", "the app registered no StatusNotifierItem");
    assert!(
        text.contains("/org/ayatana/NotificationItem/"),
        "registration: {text}"
    );

    // No XEmbed icon while the watcher is there.
    for _ in 0..10 {
        let (_, _, px) = desk.tray_pixels(&dir.0);
        let (look, counts) = classify(&px);
        assert_eq!(
            look,
            TrayLook::Empty,
            "an XEmbed icon beside the SNI one: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The item's icon: the error picture (no service at that socket).
    let begin = Instant::now();
    while !fs::read_to_string(&app_log)
        .unwrap_or_default()
        .contains("the service is not running")
    {
        assert!(
            begin.elapsed() < Duration::from_secs(20),
            "the app never showed the error: {}",
            fs::read_to_string(&app_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = wait_log("watcher ready pid=", "no watcher pid")
        .lines()
        .find_map(|l| l.strip_prefix("watcher ready pid="))
        .map(str::to_owned)
        .expect("pid");
    let icon = {
        let begin = Instant::now();
        loop {
            let before = fs::read_to_string(&watcher_log).unwrap_or_default().len();
            let _ = Command::new("kill").args(["-USR1", &pid]).status();
            std::thread::sleep(Duration::from_millis(300));
            let text = fs::read_to_string(&watcher_log).unwrap_or_default();
            let fresh = text.get(before..).unwrap_or_default();
            let status = fresh.lines().find_map(|l| l.strip_prefix("Status="));
            let icon = fresh.lines().find_map(|l| l.strip_prefix("IconName="));
            if let (Some("Active"), Some(icon)) = (status, icon) {
                break PathBuf::from(icon);
            }
            assert!(
                begin.elapsed() < Duration::from_secs(20),
                "no active item with an icon: {text}"
            );
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    let o = Command::new("convert")
        .arg(&icon)
        .args(["-depth", "8", "rgb:-"])
        .output()
        .expect("convert");
    assert!(
        o.status.success(),
        "icon {} is not an image",
        icon.display()
    );
    let (look, counts) = classify(&o.stdout);
    assert_eq!(
        look,
        TrayLook::Error,
        "the item's icon {}: {counts:?}",
        icon.display()
    );
    drop(app_proc);
    drop(watcher);
}
