//! What the cathedral tests share: veth links and routes between
//! namespaces, client identities with their keys, the configuration of a
//! chantryd cathedral (with its bundle and federation peers) and of its
//! tunnel clients (with a KEK and remembrance), the operator tool
//! (`chantry-cathedral`, built beside chantryd), the cathedral's status
//! counters, and a TCP transfer through a tunnel.
//!
//! Every identity belongs to flock [`FLOCK`]; identity `i` has id
//! `0x2a + i`, cathedral secret `[0x20 + i; 32]` and a COSK from the seed
//! `[0x30 + i; 32]`. Identity 1 registers tunnel 0x0102, every other one
//! 0x0201, so identities 1 and 2 are the two ends of one tunnel.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{
    Daemon, Impl, Netns, TempDir, roles, sanctum_user, sh, uid_of, user_ids, write_secret,
};

/// The flock every identity registers in.
pub const FLOCK: u64 = 0xcafe_0000;

/// Joins `x` and `y` with a veth pair, gives each end its address with
/// `prefix`, and brings both up. Returns the interface names (in `x`, in
/// `y`); `tag` (at most 6 characters) keeps them apart within a test.
pub fn link(
    x: &Netns,
    xa: Ipv4Addr,
    y: &Netns,
    ya: Ipv4Addr,
    prefix: u8,
    tag: &str,
) -> (String, String) {
    let (vx, vy) = (
        format!("chv{tag}x{}", std::process::id() % 10000),
        format!("chv{tag}y{}", std::process::id() % 10000),
    );
    sh(&[
        "ip", "link", "add", &vx, "netns", &x.name, "type", "veth", "peer", "name", &vy, "netns",
        &y.name,
    ]);
    x.run(&["ip", "addr", "add", &format!("{xa}/{prefix}"), "dev", &vx]);
    y.run(&["ip", "addr", "add", &format!("{ya}/{prefix}"), "dev", &vy]);
    x.run(&["ip", "link", "set", &vx, "up"]);
    y.run(&["ip", "link", "set", &vy, "up"]);
    (vx, vy)
}

/// A host route in `ns` to `to` via `via`.
pub fn route(ns: &Netns, to: &str, via: Ipv4Addr) {
    ns.run(&["ip", "route", "add", to, "via", &via.to_string()]);
}

/// Lets `ns` forward between its links.
pub fn forwarding(ns: &Netns) {
    ns.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
}

/// The operator tool beside the chantryd under test.
pub fn tool() -> PathBuf {
    let p = crate::chantryd().with_file_name("chantry-cathedral");
    assert!(
        p.exists(),
        "no {}: build the e2e binaries (scripts/test.sh)",
        p.display()
    );
    p
}

/// Runs the operator tool in `dir`; panics with its output on failure.
pub fn run_tool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(tool())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running chantry-cathedral");
    assert!(
        out.status.success(),
        "chantry-cathedral {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The generation in a bundle file's header.
pub fn bundle_generation(path: &Path) -> u32 {
    let b = fs::read(path).expect("bundle");
    u32::from_be_bytes([b[2], b[3], b[4], b[5]])
}

/// The operator's KEK directory `dir/keks` with the KEKs of [`FLOCK`]
/// (`chantry-cathedral ambry generate`).
pub fn generate_keks(dir: &TempDir) -> PathBuf {
    let keks = dir.join("keks");
    fs::create_dir_all(&keks).expect("keks dir");
    run_tool(&keks, &["ambry", "generate", &format!("{FLOCK:x}")]);
    keks
}

/// Device `id`'s base KEK in the KEK directory `keks`.
pub fn kek_of(keks: &Path, id: u8) -> PathBuf {
    keks.join(format!("{FLOCK:016x}/kek-data/kek-0x{id:02x}"))
}

/// Writes the next bundle generation of [`FLOCK`] (30 days) from `keks`
/// to `bundle` (`chantry-cathedral ambry bundle`); returns its
/// generation.
pub fn write_bundle(keks: &Path, bundle: &Path) -> u32 {
    let flock = format!("{FLOCK:x}");
    let out = bundle.to_str().expect("utf-8 path");
    run_tool(keks, &["ambry", "bundle", &flock, &flock, "30", out]);
    bundle_generation(bundle)
}

/// Writes a 0600 key file.
pub fn write_key(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).expect("key file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A client identity at the cathedral: its id, the tunnel id it
/// registers, its cathedral secret and its COSK.
#[derive(Debug)]
pub struct Identity {
    /// `cathedral_id`.
    pub id: u32,
    /// The tunnel id (`spi`).
    pub spi: u16,
    /// The cathedral secret (CS).
    pub cs: [u8; 32],
    /// The offer signing key (COSK).
    pub cosk: ed25519_dalek::SigningKey,
}

/// Identity `i` (see the module documentation).
pub fn identity(i: u8) -> Identity {
    Identity {
        id: 0x2a + u32::from(i),
        spi: if i == 1 { 0x0102 } else { 0x0201 },
        cs: [0x20 + i; 32],
        cosk: ed25519_dalek::SigningKey::from_bytes(&[0x30 + i; 32]),
    }
}

fn run_lines(mode: &str, side: u32) -> String {
    roles(mode)
        .into_iter()
        .map(|r| format!("run {r} as {}\n", uid_of(r, side)))
        .collect()
}

/// A chantryd cathedral's configuration.
#[derive(Debug, Clone)]
pub struct CathedralSpec {
    /// Its instance name, which also names its files in the directory.
    pub name: String,
    /// The side whose uids its roles run as.
    pub side: u32,
    /// `local`: where it listens (and the relay address it advertises).
    pub listen: SocketAddrV4,
    /// `cathedral_nat_port`.
    pub nat_port: Option<u16>,
    /// Extra lines inside the `flock` block of the settings file (after
    /// the `allow` lines), e.g. `ambry PATH`.
    pub flock_lines: String,
    /// Extra lines after the flock block (`xflock`, `federate`).
    pub settings_lines: String,
    /// Extra lines at the end of the configuration.
    pub extra: String,
}

impl CathedralSpec {
    /// `chcat` on side 2, listening on `listen`, no NAT port, nothing
    /// extra.
    pub fn new(listen: SocketAddrV4) -> Self {
        CathedralSpec {
            name: "chcat".to_owned(),
            side: 2,
            listen,
            nat_port: None,
            flock_lines: String::new(),
            settings_lines: String::new(),
            extra: String::new(),
        }
    }

    /// Named `name`, its roles running as the uids of `side`.
    pub fn named(mut self, name: &str, side: u32) -> Self {
        self.name = name.to_owned();
        self.side = side;
        self
    }

    /// With `federate` lines for `peers`.
    pub fn federate(mut self, peers: &[SocketAddrV4]) -> Self {
        for p in peers {
            self.settings_lines += &format!("federate {} {}\n", p.ip(), p.port());
        }
        self
    }

    /// Distributing the flock's bundle `path` (`ambry`).
    pub fn ambry(mut self, path: &Path) -> Self {
        self.flock_lines += &format!("ambry {}\n", path.display());
        self
    }
}

/// Writes a cathedral's configuration, settings file, secret directory
/// (each identity's `.key` and `.pub`, all allowed in [`FLOCK`]) and the
/// sync secret (shared by every cathedral of `dir`) into `dir`; returns the
/// configuration's path.
pub fn cathedral_conf(dir: &TempDir, spec: &CathedralSpec, ids: &[&Identity]) -> PathBuf {
    let name = &spec.name;
    let secrets = dir.join(&format!("{name}.secrets"));
    let fdir = secrets.join(format!("flock-{FLOCK:x}"));
    fs::create_dir_all(&fdir).expect("secretdir");
    let mut settings = format!("flock {FLOCK:x} {{\n");
    for d in ids {
        write_key(&fdir.join(format!("{:08x}.key", d.id)), &d.cs);
        write_key(
            &fdir.join(format!("{:08x}.pub", d.id)),
            d.cosk.verifying_key().as_bytes(),
        );
        settings += &format!("allow {:x} spi {:02x} 0\n", d.id, d.spi >> 8);
    }
    settings += &spec.flock_lines;
    settings += "}\n";
    settings += &spec.settings_lines;
    let settings_path = dir.join(&format!("{name}.settings"));
    fs::write(&settings_path, settings).expect("settings");
    let sync = dir.join("sync.secret");
    if !sync.exists() {
        write_secret(&sync, 9);
    }
    let nat = spec
        .nat_port
        .map_or(String::new(), |p| format!("cathedral_nat_port {p}\n"));
    let text = format!(
        "mode cathedral\ninstance {name}\nsecret {}\nlocal {}\ncathedral_mtu 1422\n{nat}\
         secretdir {}\nsettings {}\ncontrol {} root\n{}{}",
        sync.display(),
        spec.listen,
        secrets.display(),
        settings_path.display(),
        dir.join(&format!("{name}.control")).display(),
        run_lines("cathedral", spec.side),
        spec.extra,
    );
    let path = dir.join(&format!("{name}.conf"));
    fs::write(&path, text).expect("config");
    path
}

/// A chantryd tunnel client of a cathedral (no `peer` line: it starts on
/// the relay).
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// 0 or 1: the uids of its roles, and its name `chcl<side>`.
    pub side: u32,
    /// `local`: the address its UDP socket binds.
    pub local: SocketAddrV4,
    /// Its tunnel address (a /30).
    pub inner: Ipv4Addr,
    /// `cathedral`.
    pub cathedral: SocketAddrV4,
    /// `cathedral_nat_port`.
    pub nat_port: Option<u16>,
    /// `kek FILE` (copied beside its other keys): then no `secret` file
    /// is written, the first ambry brings it.
    pub kek: Option<PathBuf>,
    /// `cathedral_remembrance FILE`.
    pub remembrance: bool,
    /// Extra lines at the end of the configuration.
    pub extra: String,
}

impl ClientSpec {
    /// Side `side` binding `local`, inner address `inner`, registering at
    /// `cathedral` without a NAT port.
    pub fn new(side: u32, local: SocketAddrV4, inner: Ipv4Addr, cathedral: SocketAddrV4) -> Self {
        ClientSpec {
            side,
            local,
            inner,
            cathedral,
            nat_port: None,
            kek: None,
            remembrance: false,
            extra: String::new(),
        }
    }

    /// Its instance name (and TUN device).
    pub fn name(&self) -> String {
        format!("chcl{}", self.side)
    }

    /// Its control socket in `dir`.
    pub fn control(&self, dir: &TempDir) -> PathBuf {
        dir.join(&format!("{}.control", self.name()))
    }
}

/// The files of a written client.
#[derive(Debug)]
pub struct ClientFiles {
    /// The configuration.
    pub conf: PathBuf,
    /// Its `secret` file (not written if a `kek` was given).
    pub secret: PathBuf,
    /// Its remembrance file (written by the daemon, if configured).
    pub remembrance: PathBuf,
}

/// Writes a chantryd client's configuration with identity `d`'s keys (and
/// the shared secret unless a KEK is configured) into `dir`.
pub fn client_conf(dir: &TempDir, spec: &ClientSpec, d: &Identity) -> ClientFiles {
    client_conf_for(Impl::Chantryd, dir, spec, d)
}

/// [`client_conf`] for `which` daemon. For the C reference the roles run
/// as its system users ([`sanctum_user`]) and the control socket belongs
/// to its control role's user. Its chapel opens the key files after
/// dropping privileges and writes `<secret>.new` beside `secret` from an
/// ambry, so every key file lives in a directory of the chapel's user
/// (0700), with `dir` made traversable (0711), as
/// [`crate::Conf::write_sanctum`] does.
pub fn client_conf_for(which: Impl, dir: &TempDir, spec: &ClientSpec, d: &Identity) -> ClientFiles {
    let name = spec.name();
    let keydir = match which {
        Impl::Chantryd => dir.0.clone(),
        Impl::Sanctum => {
            let k = dir.join(&format!("{name}.keys"));
            fs::create_dir_all(&k).expect("key dir");
            k
        }
    };
    let secret = keydir.join(format!("{name}.secret"));
    let remembrance = keydir.join(format!("{name}.remembrance"));
    let cs = keydir.join(format!("{name}.cs"));
    write_key(&cs, &d.cs);
    let cosk = keydir.join(format!("{name}.cosk"));
    write_key(&cosk, &d.cosk.to_keypair_bytes());
    let kek = spec.kek.as_ref().map(|k| {
        let own = keydir.join(format!("{name}.kek"));
        write_key(&own, &fs::read(k).expect("kek file"));
        own
    });
    let mut text = format!("mode tunnel\ninstance {name}\nspi {:#06x}\n", d.spi);
    match &kek {
        // `kek` before `secret`: the secret file need not exist.
        Some(k) => text += &format!("kek {}\n", k.display()),
        None => write_secret(&secret, 42),
    }
    let nat = spec
        .nat_port
        .map_or(String::new(), |p| format!("cathedral_nat_port {p}\n"));
    let (control_owner, runs) = match which {
        Impl::Chantryd => ("root".to_owned(), run_lines("tunnel", spec.side)),
        Impl::Sanctum => {
            let runs = roles("tunnel")
                .into_iter()
                .map(|r| format!("run {r} as {}\n", sanctum_user(r)))
                .collect();
            (sanctum_user("control"), runs)
        }
    };
    text += &format!(
        "secret {}\nlocal {}\ntunnel {}/30 1422\ncathedral {}\ncathedral_id {:x}\n\
         cathedral_flock {FLOCK:x}\ncathedral_secret {}\ncathedral_cosk {}\n{nat}control {} {control_owner}\n",
        secret.display(),
        spec.local,
        spec.inner,
        spec.cathedral,
        d.id,
        cs.display(),
        cosk.display(),
        spec.control(dir).display(),
    );
    if spec.remembrance {
        text += &format!("cathedral_remembrance {}\n", remembrance.display());
    }
    text += &runs;
    text += &spec.extra;
    if which == Impl::Sanctum {
        let (uid, gid) = user_ids(&sanctum_user("chapel")).expect("chapel user");
        for p in std::iter::once(&keydir)
            .chain([&cs, &cosk])
            .chain(kek.iter())
            .chain([&secret].into_iter().filter(|p| p.exists()))
        {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
        }
        fs::set_permissions(&keydir, fs::Permissions::from_mode(0o700)).expect("chmod");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711)).expect("chmod");
    }
    let conf = dir.join(&format!("{name}.conf"));
    fs::write(&conf, text).expect("config");
    ClientFiles {
        conf,
        secret,
        remembrance,
    }
}

/// What `which` daemon logs once an ambry of `generation` is in force
/// (chantryd's guardian after writing the secret file; the reference's
/// chapel after renaming it into place).
pub fn ambry_active(which: Impl, generation: u32) -> String {
    match which {
        Impl::Chantryd => format!("ambry generation {generation:08x} written"),
        Impl::Sanctum => format!("ambry generation {generation:08x} active"),
    }
}

/// What `which` daemon logs when it installs a TX key.
pub fn tx_installed(which: Impl) -> &'static str {
    match which {
        Impl::Chantryd => "TX key installed",
        Impl::Sanctum => "TX SA active",
    }
}

/// The value of `key=N` in the last cathedral status line of `log` (0 if
/// there is none yet).
pub fn last_status(log: &str, key: &str) -> u64 {
    log.lines()
        .rfind(|l| l.contains("cathedral status"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        })
        .unwrap_or(0)
}

/// How many status lines the cathedral has logged so far.
pub fn status_lines(cathedral: &Daemon) -> usize {
    cathedral.log_text().matches("cathedral status").count()
}

/// Waits (bounded) for a status line logged after the first `seen` ones,
/// and returns the value of `key` in the newest line; `None` if no new
/// line came within `limit`. The cathedral logs its status every 5 s
/// while anything changes (INFO alone keeps it changing).
pub fn next_status(cathedral: &Daemon, seen: usize, key: &str, limit: Duration) -> Option<u64> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let log = cathedral.log_text();
        if log.matches("cathedral status").count() > seen {
            return Some(last_status(&log, key));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// Waits (bounded) until `key` in the cathedral's last status line
/// satisfies `ok`; returns the last value seen and whether it did.
pub fn wait_status(
    cathedral: &Daemon,
    key: &str,
    ok: impl Fn(u64) -> bool,
    limit: Duration,
) -> (u64, bool) {
    let start = Instant::now();
    let mut v = 0;
    while start.elapsed() < limit {
        v = last_status(&cathedral.log_text(), key);
        if ok(v) {
            return (v, true);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    (v, false)
}

/// Polls `f` every 100 ms until it is true or `limit` passed.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills a child process on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `secs`-second iperf3 TCP run from `client` to an iperf3 server that
/// this starts in `server` on `addr` (a tunnel address). Returns the bits
/// per second received, or what went wrong. Both ends run under
/// `timeout`, so a dead tunnel fails the run instead of hanging it.
pub fn tcp_transfer(
    client: &Netns,
    server: &Netns,
    addr: Ipv4Addr,
    secs: u32,
) -> Result<f64, String> {
    let a = addr.to_string();
    let limit = (secs + 30).to_string();
    let srv = server
        .cmd(&["timeout", "-k", "5", &limit, "iperf3", "-s", "-1", "-B", &a])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("iperf3 server: {e}"))?;
    let mut srv = KillOnDrop(srv);
    std::thread::sleep(Duration::from_millis(500));
    let t = secs.to_string();
    let out = client
        .cmd(&[
            "timeout",
            "-k",
            "5",
            &limit,
            "iperf3",
            "-c",
            &a,
            "-t",
            &t,
            "-J",
            "--connect-timeout",
            "3000",
        ])
        .output()
        .map_err(|e| format!("iperf3 client: {e}"))?;
    let _ = srv.0.wait();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let bits = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    if !out.status.success() || report.get("error").is_some() || bits <= 0.0 {
        return Err(format!(
            "iperf3 failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bits)
}
