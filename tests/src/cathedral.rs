//! What the cathedral tests share: veth links between namespaces, client
//! identities with their keys, the configuration of a chantryd cathedral
//! and of its tunnel clients, the cathedral's status counters, and a TCP
//! transfer through a tunnel.
//!
//! Every identity belongs to flock [`FLOCK`]; identity `i` has id
//! `0x2a + i`, cathedral secret `[0x20 + i; 32]` and a COSK from the seed
//! `[0x30 + i; 32]`. Identity 1 registers tunnel 0x0102, every other one
//! 0x0201, so identities 1 and 2 are the two ends of one tunnel.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::{
    Daemon, Impl, Netns, TempDir, key_role, roles, sanctum_user, sh, uid_of, user_ids, write_secret,
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

fn write_key(path: &Path, bytes: &[u8]) {
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

/// A chantryd cathedral's configuration. Its roles run as the uids of
/// side 2.
#[derive(Debug, Clone)]
pub struct CathedralSpec {
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
    /// Listening on `listen`, no NAT port, nothing extra.
    pub fn new(listen: SocketAddrV4) -> Self {
        CathedralSpec {
            listen,
            nat_port: None,
            flock_lines: String::new(),
            settings_lines: String::new(),
            extra: String::new(),
        }
    }
}

/// Writes a cathedral's configuration, settings file, secret directory
/// (each identity's `.key` and `.pub`, all allowed in [`FLOCK`]) and sync
/// secret into `dir`; returns the configuration's path.
pub fn cathedral_conf(dir: &TempDir, spec: &CathedralSpec, ids: &[&Identity]) -> PathBuf {
    let secrets = dir.join("secrets");
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
    fs::write(dir.join("settings"), settings).expect("settings");
    write_secret(&dir.join("sync.secret"), 9);
    let nat = spec
        .nat_port
        .map_or(String::new(), |p| format!("cathedral_nat_port {p}\n"));
    let text = format!(
        "mode cathedral\ninstance chcat\nsecret {}\nlocal {}\ncathedral_mtu 1422\n{nat}\
         secretdir {}\nsettings {}\ncontrol {} root\n{}{}",
        dir.join("sync.secret").display(),
        spec.listen,
        secrets.display(),
        dir.join("settings").display(),
        dir.join("chcat.control").display(),
        run_lines("cathedral", 2),
        spec.extra,
    );
    let path = dir.join("chcat.conf");
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

/// Writes a chantryd client's configuration with identity `d`'s keys and
/// the shared secret into `dir`; returns the configuration's path.
pub fn client_conf(dir: &TempDir, spec: &ClientSpec, d: &Identity) -> PathBuf {
    client_conf_for(Impl::Chantryd, dir, spec, d)
}

/// [`client_conf`] for `which` daemon. For the C reference the roles run
/// as its system users ([`sanctum_user`]), the control socket belongs to
/// its control role's user, and the key files (which its chapel opens
/// after dropping privileges) to its chapel's user, with `dir` made
/// traversable (0711), as [`crate::Conf::write_sanctum`] does.
pub fn client_conf_for(which: Impl, dir: &TempDir, spec: &ClientSpec, d: &Identity) -> PathBuf {
    let name = spec.name();
    let secret = dir.join(&format!("{name}.secret"));
    write_secret(&secret, 42);
    let cs = dir.join(&format!("{name}.cs"));
    write_key(&cs, &d.cs);
    let cosk = dir.join(&format!("{name}.cosk"));
    write_key(&cosk, &d.cosk.to_keypair_bytes());
    let nat = spec
        .nat_port
        .map_or(String::new(), |p| format!("cathedral_nat_port {p}\n"));
    let (control_owner, runs) = match which {
        Impl::Chantryd => ("root".to_owned(), run_lines("tunnel", spec.side)),
        Impl::Sanctum => {
            let (uid, gid) = user_ids(&sanctum_user(key_role("tunnel"))).expect("chapel user");
            for f in [&secret, &cs, &cosk] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid)).expect("chown key");
            }
            fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o711)).expect("chmod");
            let runs = roles("tunnel")
                .into_iter()
                .map(|r| format!("run {r} as {}\n", sanctum_user(r)))
                .collect();
            (sanctum_user("control"), runs)
        }
    };
    let text = format!(
        "mode tunnel\ninstance {name}\nspi {:#06x}\nsecret {}\nlocal {}\n\
         tunnel {}/30 1422\ncathedral {}\ncathedral_id {:x}\n\
         cathedral_flock {FLOCK:x}\ncathedral_secret {}\ncathedral_cosk {}\n{nat}control {} {control_owner}\n{runs}{}",
        d.spi,
        secret.display(),
        spec.local,
        spec.inner,
        spec.cathedral,
        d.id,
        cs.display(),
        cosk.display(),
        spec.control(dir).display(),
        spec.extra,
    );
    let path = dir.join(&format!("{name}.conf"));
    fs::write(&path, text).expect("config");
    path
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
