//! The harness of the end-to-end tests: network namespaces joined by a veth
//! pair that the test creates and removes itself, sanctum.conf files in a
//! temporary directory, and chantryd processes run inside the namespaces.
//! Every wait is bounded; nothing here talks to any address but the ones
//! it created.
//!
//! The chantryd under test is the one built with the `test-hooks` feature
//! by scripts/test.sh (`CHANTRYD` names it; see tests/README.md).
//!
//! When `SANCTUM` names a build of the C reference daemon, the tunnel
//! tests put it on one side ([`Impl::Sanctum`]): it gets a configuration
//! of the same sanctum.conf family, written by [`Conf::write_sanctum`], and
//! its roles run as system users this harness creates ([`sanctum_user`]).

pub mod cathedral;
pub mod service;

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The chantryd binary under test.
pub fn chantryd() -> PathBuf {
    if let Ok(p) = std::env::var("CHANTRYD") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test> -> target/e2e/chantryd
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target dir");
    let p = target.join("e2e").join("chantryd");
    assert!(
        p.exists(),
        "no chantryd at {}: build it with `cargo build --profile e2e -p chantry-service \
         --features test-hooks --bins` or set CHANTRYD (scripts/test.sh does this)",
        p.display()
    );
    p
}

/// The C reference daemon (`sanctum`) named by the `SANCTUM` environment
/// variable, if it is set and not empty.
pub fn sanctum() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("SANCTUM").filter(|v| !v.is_empty())?);
    assert!(
        p.is_file(),
        "SANCTUM={} is not a file: build the reference as tests/README.md says",
        p.display()
    );
    Some(p)
}

/// Which daemon runs one side of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// chantryd, the daemon under test.
    Chantryd,
    /// The C reference daemon named by `SANCTUM`.
    Sanctum,
}

impl Impl {
    /// Side `b` of the tunnel tests: the C daemon when `SANCTUM` is set,
    /// chantryd otherwise.
    pub fn side_b() -> Impl {
        if sanctum().is_some() {
            Impl::Sanctum
        } else {
            Impl::Chantryd
        }
    }
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short unique tag for names of namespaces and links.
fn tag() -> String {
    format!(
        "{:x}{:x}",
        std::process::id() % 0xffff,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// Creates a namespace with `lo` up.
    pub fn new(prefix: &str) -> Netns {
        let name = format!("ch{prefix}{}", tag());
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The argument vector running `args` inside the namespace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` inside the namespace; panics on failure.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("ip netns exec");
        assert!(
            out.status.success(),
            "{} in {}: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// True if one ping to `addr` is answered within a second.
    pub fn ping_once(&self, addr: Ipv4Addr) -> bool {
        self.cmd(&["ping", "-c", "1", "-W", "1", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A UDP socket bound to `addr` inside the namespace (created on a
    /// short-lived thread that entered it; the socket stays there), with a
    /// one-second read timeout.
    pub fn udp_bind(&self, addr: std::net::SocketAddr) -> std::net::UdpSocket {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let sock = std::net::UdpSocket::bind(addr).expect("udp bind in namespace");
            sock.set_read_timeout(Some(Duration::from_secs(1)))
                .expect("read timeout");
            sock
        })
        .join()
        .expect("namespace thread")
    }

    /// Pings `addr` once a second until it answers or `limit` passes;
    /// returns how long it took.
    pub fn ping_until(&self, addr: Ipv4Addr, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.ping_once(addr) {
                return Some(start.elapsed());
            }
        }
        None
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two namespaces joined by a veth pair: `a` is 192.168.77.1, `b` .2.
#[derive(Debug)]
pub struct Pair {
    /// Left side.
    pub a: Netns,
    /// Right side.
    pub b: Netns,
}

/// The outer (veth) address of each side.
pub const OUTER_A: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// See [`OUTER_A`].
pub const OUTER_B: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
/// The inner (tunnel) address of each side.
pub const INNER_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// See [`INNER_A`].
pub const INNER_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

impl Pair {
    /// Creates both namespaces and the veth pair between them.
    pub fn new() -> Pair {
        let a = Netns::new("a");
        let b = Netns::new("b");
        let (va, vb) = (format!("v{}a", a.name), format!("v{}b", b.name));
        let (va, vb) = (&va[..va.len().min(15)], &vb[..vb.len().min(15)]);
        sh(&[
            "ip", "link", "add", va, "netns", &a.name, "type", "veth", "peer", "name", vb, "netns",
            &b.name,
        ]);
        a.run(&["ip", "addr", "add", &format!("{OUTER_A}/24"), "dev", va]);
        b.run(&["ip", "addr", "add", &format!("{OUTER_B}/24"), "dev", vb]);
        a.run(&["ip", "link", "set", va, "up"]);
        b.run(&["ip", "link", "set", vb, "up"]);
        Pair { a, b }
    }
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

/// A temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates one under the system temp dir.
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("chantry-e2e-{}", tag()));
        fs::create_dir_all(&p).expect("temp dir");
        // Roles drop to unprivileged uids; nothing of theirs lives here,
        // but the guardian reads configs and secrets as root.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).expect("chmod");
        TempDir(p)
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes a 32-byte shared secret file (mode 0600).
pub fn write_secret(path: &Path, seed: u8) {
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect();
    let mut f = fs::File::create(path).expect("secret");
    f.write_all(&bytes).expect("secret");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Base uid of the test's role users: every role runs under its own
/// numeric uid (no /etc/passwd entries needed).
pub const UID_BASE: u32 = 61000;

/// The uid a role runs under in these tests.
pub fn uid_of(role: &str, side: u32) -> u32 {
    use chantry_service::role::Role;
    let role: Role = role.parse().expect("role name");
    let i = Role::ALL
        .iter()
        .position(|r| *r == role)
        .expect("in Role::ALL") as u32;
    UID_BASE + side * 100 + i
}

/// One side's sanctum.conf.
#[derive(Debug, Clone)]
pub struct Conf {
    /// `mode`.
    pub mode: &'static str,
    /// `instance` (also the TUN name).
    pub instance: String,
    /// Own outer address.
    pub local: Ipv4Addr,
    /// Peer outer address (None: learn).
    pub peer: Option<Ipv4Addr>,
    /// Own inner address.
    pub inner: Ipv4Addr,
    /// `tunnel` MTU (a number or `auto`).
    pub mtu: String,
    /// `shroud yes`.
    pub shroud: bool,
    /// Index for uids (0 or 1).
    pub side: u32,
}

/// Prefix of the system users the C daemon's roles run as.
pub const SANCTUM_USER_PREFIX: &str = "chsanctum-";

/// Serialises the creation of system users between test threads.
static USERS: Mutex<()> = Mutex::new(());

/// The system user a role of the C daemon runs as (`chsanctum-<role>`),
/// created if it does not exist yet: the reference resolves `run ROLE as
/// USER` with getpwnam(3), so it needs real accounts. They have no home
/// and no login shell, and are left in place for the next run.
pub fn sanctum_user(role: &str) -> String {
    let name = format!("{SANCTUM_USER_PREFIX}{role}");
    let _guard = USERS.lock().unwrap_or_else(|e| e.into_inner());
    if user_ids(&name).is_none() {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ])
            .output()
            .unwrap_or_else(|e| panic!("useradd {name}: {e}"));
        // Another test run may have created it in between.
        assert!(
            out.status.success() || user_ids(&name).is_some(),
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    name
}

/// The uid and primary gid of a user, if it exists.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// The role that holds the shared secret in a mode (the reference's key
/// role opens the secret file each time it needs it, after dropping to
/// its user).
pub fn key_role(mode: &str) -> &'static str {
    match mode {
        "pilgrim" => "pilgrim",
        "shrine" => "shrine",
        _ => "chapel",
    }
}

/// The roles of a mode.
pub fn roles(mode: &str) -> Vec<&'static str> {
    let mode: chantry_core::config::Mode = mode.parse().expect("a mode name");
    mode.roles().iter().map(|r| r.as_str()).collect()
}

impl Conf {
    /// Side `side` (0 = a, 1 = b) of a [`Pair`] in `mode`: own and peer
    /// veth addresses, the inner address, TUN `chtun{side}`, MTU 1422.
    pub fn for_side(side: u32, mode: &'static str) -> Conf {
        let (local, peer, inner) = if side == 0 {
            (OUTER_A, OUTER_B, INNER_A)
        } else {
            (OUTER_B, OUTER_A, INNER_B)
        };
        Conf {
            mode,
            instance: format!("chtun{side}"),
            local,
            peer: Some(peer),
            inner,
            mtu: "1422".into(),
            shroud: false,
            side,
        }
    }

    /// Writes the configuration and its secret into `dir`; returns the
    /// config path.
    pub fn write(&self, dir: &TempDir) -> PathBuf {
        let secret = dir.join(&format!("{}.secret", self.instance));
        write_secret(&secret, 42);
        let text = self.text(&secret, dir, "root", |r| uid_of(r, self.side).to_string());
        let path = dir.join(&format!("{}.conf", self.instance));
        fs::write(&path, text).expect("config");
        path
    }

    /// The configuration text: `control_owner` owns the control socket,
    /// `user_of` names the user each role runs as.
    fn text(
        &self,
        secret: &Path,
        dir: &TempDir,
        control_owner: &str,
        user_of: impl Fn(&str) -> String,
    ) -> String {
        let mut s = String::new();
        s += &format!("mode {}\ninstance {}\n", self.mode, self.instance);
        s += &format!("secret {}\n", secret.display());
        s += &format!("local {}:4500\n", self.local);
        if let Some(p) = self.peer {
            s += &format!("peer {p}:4500\n");
        }
        s += &format!("tunnel {}/30 {}\n", self.inner, self.mtu);
        if self.shroud {
            s += "shroud yes\n";
        }
        s += &format!("control {} {control_owner}\n", self.control(dir).display());
        for r in roles(self.mode) {
            s += &format!("run {r} as {}\n", user_of(r));
        }
        s
    }

    /// Writes the configuration of the C reference daemon and its secret
    /// into `dir`; returns the config path.
    ///
    /// The same settings as [`Conf::write`], with these differences the
    /// reference needs: every role runs as its own system user
    /// ([`sanctum_user`]); the secret belongs to the key role's user and
    /// `dir` becomes traversable (0711) so that role can open it after
    /// dropping privileges (nothing in `dir` becomes listable); the control
    /// socket is owned by the control role's user, as hymn writes it, so
    /// that role may send its reply to a client socket that
    /// [`chantry_service::control::query`] hands to that same user.
    pub fn write_sanctum(&self, dir: &TempDir) -> PathBuf {
        let secret = dir.join(&format!("{}.secret", self.instance));
        write_secret(&secret, 42);
        let key_user = sanctum_user(key_role(self.mode));
        let (uid, gid) = user_ids(&key_user).expect("key role user exists");
        std::os::unix::fs::chown(&secret, Some(uid), Some(gid)).expect("chown secret");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o400)).expect("chmod");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711)).expect("chmod");
        let text = self.text(&secret, dir, &sanctum_user("control"), sanctum_user);
        let path = dir.join(&format!("{}.sanctum.conf", self.instance));
        fs::write(&path, text).expect("config");
        path
    }

    /// Writes the configuration for `which` daemon ([`Conf::write`] or
    /// [`Conf::write_sanctum`]).
    pub fn write_for(&self, which: Impl, dir: &TempDir) -> PathBuf {
        match which {
            Impl::Chantryd => self.write(dir),
            Impl::Sanctum => self.write_sanctum(dir),
        }
    }

    /// The control socket path the config names.
    pub fn control(&self, dir: &TempDir) -> PathBuf {
        dir.join(&format!("{}.control", self.instance))
    }
}

/// A running daemon (chantryd or the C reference), stopped with SIGTERM
/// on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    /// Which daemon this is.
    pub which: Impl,
    /// Its log file.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `chantryd run -c conf` in `ns` with extra environment.
    pub fn start(ns: &Netns, conf: &Path, log: PathBuf, env: &[(&str, &str)]) -> Daemon {
        let bin = chantryd();
        let file = fs::File::create(&log).expect("log");
        let mut cmd = ns.cmd(&[
            bin.to_str().expect("utf-8 path"),
            "run",
            "-c",
            conf.to_str().expect("utf-8 path"),
        ]);
        cmd.stdout(file.try_clone().expect("log"))
            .stderr(file)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("chantryd");
        Daemon {
            child: Some(child),
            which: Impl::Chantryd,
            log,
        }
    }

    /// Starts the C reference daemon (`$SANCTUM -c conf`, in the
    /// foreground, logging to stdout) in `ns`. It reads no test settings
    /// from the environment.
    pub fn start_sanctum(ns: &Netns, conf: &Path, log: PathBuf) -> Daemon {
        let bin = sanctum().expect("SANCTUM is set");
        let file = fs::File::create(&log).expect("log");
        let mut cmd = ns.cmd(&[
            bin.to_str().expect("utf-8 path"),
            "-c",
            conf.to_str().expect("utf-8 path"),
        ]);
        cmd.stdout(file.try_clone().expect("log")).stderr(file);
        let child = cmd.spawn().expect("sanctum");
        Daemon {
            child: Some(child),
            which: Impl::Sanctum,
            log,
        }
    }

    /// Starts `which` daemon; `env` only reaches chantryd (the test hooks
    /// are chantryd's).
    pub fn start_for(
        which: Impl,
        ns: &Netns,
        conf: &Path,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> Daemon {
        match which {
            Impl::Chantryd => Daemon::start(ns, conf, log, env),
            Impl::Sanctum => Daemon::start_sanctum(ns, conf, log),
        }
    }

    /// Waits (bounded) until the daemon has bound its UDP socket and
    /// started every role: chantryd logs `all roles sandboxed and
    /// running`, the reference `sanctum started`. False if it did not
    /// within `limit`.
    pub fn wait_ready(&self, limit: Duration) -> bool {
        let needle = match self.which {
            Impl::Chantryd => "all roles sandboxed and running",
            Impl::Sanctum => "sanctum started",
        };
        self.wait_log(needle, limit)
    }

    /// How many TX keys the daemon has installed so far, counted in its
    /// log (chantryd's bless logs `TX key installed`, the reference's
    /// `TX SA active`).
    pub fn tx_key_installs(&self) -> usize {
        let needle = match self.which {
            Impl::Chantryd => "TX key installed",
            Impl::Sanctum => "TX SA active",
        };
        self.log_text().matches(needle).count()
    }

    /// The guardian's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The role processes of this daemon: (role, pid). Only chantryd's
    /// roles can be told apart this way (panics for the C daemon).
    pub fn role_pids(&self) -> Vec<(String, u32)> {
        assert_eq!(
            self.which,
            Impl::Chantryd,
            "role processes are only listed for chantryd"
        );
        role_children(self.pid())
    }

    /// SIGTERM and wait (bounded, then SIGKILL); returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The reference's roles are forks of its guardian that outlive it
        // if it is killed: kill them too.
        let orphans = match self.which {
            Impl::Chantryd => Vec::new(),
            Impl::Sanctum => child_pids(child.id()),
        };
        let _ = child.kill();
        for pid in orphans {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        child.wait().ok()
    }
}

/// The pids of the processes whose parent is `ppid` (from /proc).
pub fn child_pids(ppid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(ppid))
        .collect()
}

/// The parent pid of a process (from /proc/PID/stat).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // ppid is the 2nd field after the ")" that closes the name.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Children of `ppid` (through `ip netns exec`, which execs in place) that
/// are chantryd roles: (role, pid), from /proc.
pub fn role_children(ppid: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if parent_of(pid) != Some(ppid) {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.get(1).map(String::as_str) == Some("role")
            && let Some(name) = args.get(2)
        {
            out.push((name.clone(), pid));
        }
    }
    out.sort();
    out
}

/// The uid a process runs under (real uid from /proc/PID/status).
pub fn uid_of_pid(pid: u32) -> Option<u32> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Network interfaces a process sees (from /proc/PID/net/dev, which shows
/// the process's own network namespace).
pub fn interfaces_of_pid(pid: u32) -> Vec<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    s.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_owned()))
        .collect()
}
