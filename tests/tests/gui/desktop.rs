//! A desktop for the app under test: an Xvfb display, a session bus, and
//! trayer (an XEmbed system tray) in a corner; X screenshots, the colour
//! of the tray icon, and xdotool to click it. Every process is the
//! test's own and is stopped on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
#[derive(Debug)]
pub struct Proc(pub Option<Child>);

impl Proc {
    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let begin = Instant::now();
            while begin.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Panics naming the Debian package when a program is missing: the test
/// must fail, not skip, where its tools are absent.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{program} is missing: install Debian's {package} (scripts/test-gui.sh does)")
    })
}

/// The X display, with trayer on it.
#[derive(Debug)]
pub struct Desktop {
    /// `:N`.
    pub display: String,
    _xvfb: Proc,
    trayer: Proc,
    /// Trayer's window id.
    pub tray_window: String,
}

/// Tray geometry: trayer sits in the top right corner.
pub const TRAY_W: u32 = 96;
/// Height of the tray (icons are squares of this size).
pub const TRAY_H: u32 = 32;
/// Screen size.
pub const SCREEN: (u32, u32) = (1280, 800);

impl Desktop {
    /// Starts Xvfb on a free display and trayer on it.
    pub fn start(dir: &Path) -> Desktop {
        require("Xvfb", "xvfb");
        require("trayer", "trayer");
        require("xdotool", "xdotool");
        require("import", "imagemagick");
        // Xvfb picks a free display and writes its number when it is
        // ready to take clients.
        let log = fs::File::create(dir.join("xvfb.log")).expect("log");
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{}x{}x24", SCREEN.0, SCREEN.1),
                "-nolisten",
                "tcp",
                "-ac",
            ])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("Xvfb");
        let out = xvfb.stdout.take().expect("Xvfb stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
            let _ = tx.send(line);
        });
        let xvfb = Proc(Some(xvfb));
        let n: u32 = rx
            .recv_timeout(Duration::from_secs(15))
            .ok()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "Xvfb did not start: {}",
                    fs::read_to_string(dir.join("xvfb.log")).unwrap_or_default()
                )
            });
        let display = format!(":{n}");
        let log = fs::File::create(dir.join("trayer.log")).expect("log");
        let trayer = Command::new("trayer")
            .args([
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "pixel",
                "--width",
                &TRAY_W.to_string(),
                "--heighttype",
                "pixel",
                "--height",
                &TRAY_H.to_string(),
                "--SetDockType",
                "true",
                "--transparent",
                "false",
                "--tint",
                "0xffffff",
                "--expand",
                "false",
            ])
            .env("DISPLAY", &display)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("trayer");
        let mut d = Desktop {
            display,
            _xvfb: xvfb,
            trayer: Proc(Some(trayer)),
            tray_window: String::new(),
        };
        let begin = Instant::now();
        loop {
            let out = d
                .xdotool(&["search", "--onlyvisible", "--class", "trayer"])
                .unwrap_or_default();
            if let Some(id) = out.lines().next() {
                d.tray_window = id.trim().to_owned();
                break;
            }
            assert!(
                d.trayer.alive(),
                "trayer exited: {}",
                fs::read_to_string(dir.join("trayer.log")).unwrap_or_default()
            );
            assert!(
                begin.elapsed() < Duration::from_secs(10),
                "no trayer window"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// Runs xdotool on the display; its stdout if it succeeded.
    pub fn xdotool(&self, args: &[&str]) -> Option<String> {
        let o = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Trayer's window position and size on the screen.
    pub fn tray_geometry(&self) -> (i32, i32, u32, u32) {
        let out = self
            .xdotool(&["getwindowgeometry", "--shell", &self.tray_window])
            .expect("trayer geometry");
        let get = |k: &str| -> i64 {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (
            get("X") as i32,
            get("Y") as i32,
            get("WIDTH") as u32,
            get("HEIGHT") as u32,
        )
    }

    /// A PNG of the whole screen at `path`.
    pub fn screenshot(&self, path: &Path) {
        let o = Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(path)
            .output()
            .expect("import");
        assert!(
            o.status.success(),
            "screenshot: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// A PNG of the visible window whose name matches `name` (a regular
    /// expression) at `path`.
    pub fn window_shot(&self, name: &str, path: &Path) {
        let id = self
            .xdotool(&["search", "--onlyvisible", "--name", name])
            .and_then(|o| o.lines().next().map(str::to_owned))
            .unwrap_or_else(|| panic!("no visible window named {name}"));
        let o = Command::new("import")
            .args(["-display", &self.display, "-window", id.trim()])
            .arg(path)
            .output()
            .expect("import");
        assert!(
            o.status.success(),
            "screenshot: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// The RGB pixels of the tray area (width, height, bytes).
    pub fn tray_pixels(&self, dir: &Path) -> (u32, u32, Vec<u8>) {
        let (x, y, w, h) = self.tray_geometry();
        let shot = dir.join("tray-grab.png");
        self.screenshot(&shot);
        let o = Command::new("convert")
            .arg(&shot)
            .args([
                "-crop",
                &format!("{w}x{h}+{x}+{y}"),
                "+repage",
                "-depth",
                "8",
                "rgb:-",
            ])
            .output()
            .expect("convert");
        assert!(o.status.success(), "crop of the tray failed");
        (w, h, o.stdout)
    }
}

/// A tray icon's look, by the fill of the disc (app-ui/src-tauri/icons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayLook {
    /// Grey.
    Disconnected,
    /// Amber.
    Connecting,
    /// Green.
    Connected,
    /// Red.
    Error,
    /// No icon (none of the fills).
    Empty,
}

/// The state fills of the tray icons (app-ui/src-tauri/icons).
const FILLS: [(TrayLook, [u8; 3]); 4] = [
    (TrayLook::Disconnected, [0x7a, 0x7a, 0x7a]),
    (TrayLook::Connecting, [0xe0, 0xa0, 0x00]),
    (TrayLook::Connected, [0x2e, 0x9d, 0x4f]),
    (TrayLook::Error, [0xd0, 0x30, 0x30]),
];

/// Which fill a pixel has, if any.
fn fill_of(px: &[u8]) -> Option<usize> {
    FILLS.iter().position(|(_, c)| {
        px.iter()
            .zip(c)
            .all(|(a, b)| (i32::from(*a) - i32::from(*b)).abs() <= 24)
    })
}

/// The centre of the icon's coloured pixels in an RGB image `w` wide.
pub fn icon_centre(w: u32, rgb: &[u8]) -> Option<(u32, u32)> {
    let (mut sx, mut sy, mut n) = (0u64, 0u64, 0u64);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        if fill_of(px).is_some() {
            sx += i as u64 % u64::from(w);
            sy += i as u64 / u64::from(w);
            n += 1;
        }
    }
    (n >= 40).then(|| ((sx / n) as u32, (sy / n) as u32))
}

/// The look of the tray from its pixels: the state fill with the most
/// pixels, if at least 40 of them (an icon is tens of pixels across).
pub fn classify(rgb: &[u8]) -> (TrayLook, [usize; 4]) {
    let mut counts = [0usize; 4];
    for px in rgb.chunks_exact(3) {
        if let Some(i) = fill_of(px) {
            counts[i] += 1;
        }
    }
    let (i, n) = counts
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .map(|(i, n)| (i, *n))
        .unwrap_or((0, 0));
    if n < 40 {
        (TrayLook::Empty, counts)
    } else {
        (FILLS[i].0, counts)
    }
}

/// The session bus of the test user's session (the app's tray registers
/// on it, and finds no StatusNotifierWatcher there: it falls back to an
/// XEmbed icon, which trayer shows).
#[derive(Debug)]
pub struct SessionBus {
    /// `unix:path=...`.
    pub address: String,
    _daemon: Proc,
}

impl SessionBus {
    /// Starts `dbus-daemon --session` as `user` with its socket in `dir`.
    pub fn start(user: &str, dir: &Path) -> SessionBus {
        require("dbus-daemon", "dbus");
        let sock = dir.join("bus");
        let address = format!("unix:path={}", sock.display());
        let child = Command::new("runuser")
            .args([
                "-u",
                user,
                "--",
                "dbus-daemon",
                "--session",
                "--nofork",
                "--nopidfile",
            ])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let begin = Instant::now();
        while !sock.exists() {
            assert!(begin.elapsed() < Duration::from_secs(10), "no session bus");
            std::thread::sleep(Duration::from_millis(50));
        }
        SessionBus {
            address,
            _daemon: Proc(Some(child)),
        }
    }
}
