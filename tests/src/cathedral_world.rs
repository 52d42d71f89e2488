//! Cathedrals and their clients for the ambry and federation tests
//! (tests/tests/cathedral_ambry.rs, cathedral_federation.rs): veth links,
//! client identities, cathedral and client configurations with bundles,
//! federation, KEKs and remembrance, and the operator tool
//! (`chantry-cathedral`, built beside chantryd).
//!
//! (tests/tests/cathedral.rs has its own copies of the first helpers; they
//! can merge once the shared cathedral helpers land in one module.)

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Impl, Netns, TempDir, roles, sanctum_user, sh, uid_of, user_ids, write_secret};

/// The flock of these tests.
pub const FLOCK: u64 = 0xcafe_0000;

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

/// Joins `x` and `y` with a veth pair (/28 each end) and brings it up.
pub fn link(x: &Netns, xa: Ipv4Addr, y: &Netns, ya: Ipv4Addr, tag: &str) {
    let (vx, vy) = (
        format!("chv{tag}x{}", std::process::id() % 10000),
        format!("chv{tag}y{}", std::process::id() % 10000),
    );
    sh(&[
        "ip", "link", "add", &vx, "netns", &x.name, "type", "veth", "peer", "name", &vy, "netns",
        &y.name,
    ]);
    x.run(&["ip", "addr", "add", &format!("{xa}/28"), "dev", &vx]);
    y.run(&["ip", "addr", "add", &format!("{ya}/28"), "dev", &vy]);
    x.run(&["ip", "link", "set", &vx, "up"]);
    y.run(&["ip", "link", "set", &vy, "up"]);
}

/// A host route in `ns` to `to` via `via`.
pub fn route(ns: &Netns, to: &str, via: Ipv4Addr) {
    ns.run(&["ip", "route", "add", to, "via", &via.to_string()]);
}

/// Lets `ns` forward between its links.
pub fn forwarding(ns: &Netns) {
    ns.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
}

/// Writes a 0600 key file.
pub fn write_key(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).expect("key file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A client identity: id, tunnel id, cathedral secret, COSK.
#[allow(missing_debug_implementations)]
pub struct Identity {
    /// Cathedral identity.
    pub id: u32,
    /// Tunnel id.
    pub spi: u16,
    /// Cathedral secret.
    pub cs: [u8; 32],
    /// COSK.
    pub cosk: ed25519_dalek::SigningKey,
}

/// Device 1 (tunnel 0x0102) or 2 (0x0201).
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

/// A cathedral: its name, address, federation peers and bundle.
#[derive(Debug)]
pub struct CathedralSpec<'a> {
    /// Instance name (also names its files in the directory).
    pub name: &'a str,
    /// Listening (and advertised) address.
    pub local: SocketAddrV4,
    /// `federate` peers.
    pub federate: &'a [SocketAddrV4],
    /// The flock's own bundle, if any.
    pub ambry: Option<&'a Path>,
    /// The side number its roles' uids come from.
    pub side: u32,
}

/// Writes a cathedral's configuration, secret directory and settings for
/// `ids` into `dir`; the sync secret is shared by every cathedral of the
/// directory. Returns (config, settings file).
pub fn cathedral_conf(
    dir: &TempDir,
    spec: &CathedralSpec<'_>,
    ids: &[&Identity],
) -> (PathBuf, PathBuf) {
    let name = spec.name;
    let secrets = dir.join(&format!("{name}.secrets"));
    let fdir = secrets.join(format!("flock-{FLOCK:x}"));
    fs::create_dir_all(&fdir).expect("secretdir");
    let mut settings = String::new();
    for p in spec.federate {
        settings += &format!("federate {} {}\n", p.ip(), p.port());
    }
    settings += &format!("flock {FLOCK:x} {{\n");
    for d in ids {
        write_key(&fdir.join(format!("{:08x}.key", d.id)), &d.cs);
        write_key(
            &fdir.join(format!("{:08x}.pub", d.id)),
            d.cosk.verifying_key().as_bytes(),
        );
        settings += &format!("allow {:x} spi {:02x} 0\n", d.id, d.spi >> 8);
    }
    if let Some(b) = spec.ambry {
        settings += &format!("ambry {}\n", b.display());
    }
    settings += "}\n";
    let settings_path = dir.join(&format!("{name}.settings"));
    fs::write(&settings_path, settings).expect("settings");
    let sync = dir.join("sync.secret");
    if !sync.exists() {
        write_secret(&sync, 9);
    }
    let text = format!(
        "mode cathedral\ninstance {name}\nsecret {}\nlocal {}\ncathedral_mtu 1422\n\
         secretdir {}\nsettings {}\ncontrol {} root\n{}",
        sync.display(),
        spec.local,
        secrets.display(),
        settings_path.display(),
        dir.join(&format!("{name}.control")).display(),
        run_lines("cathedral", spec.side),
    );
    let path = dir.join(&format!("{name}.conf"));
    fs::write(&path, text).expect("config");
    (path, settings_path)
}

/// A client: its side, identity, addresses and the optional `kek` and
/// `cathedral_remembrance`.
#[allow(missing_debug_implementations)]
pub struct ClientSpec<'a> {
    /// Side number (instance name `chclN`, role uids).
    pub side: u32,
    /// Its identity.
    pub id: &'a Identity,
    /// Its outer address.
    pub local: Ipv4Addr,
    /// Its tunnel address.
    pub inner: Ipv4Addr,
    /// Its cathedral.
    pub cathedral: SocketAddrV4,
    /// `kek FILE`: then the `secret` file is not written (the first ambry
    /// brings it).
    pub kek: Option<&'a Path>,
    /// `cathedral_remembrance FILE`.
    pub remembrance: bool,
}

/// The files of a written client.
#[derive(Debug)]
pub struct ClientFiles {
    /// The configuration.
    pub conf: PathBuf,
    /// Its `secret` file.
    pub secret: PathBuf,
    /// Its remembrance file.
    pub remembrance: PathBuf,
}

/// Writes a client's configuration and keys into `dir` for chantryd.
pub fn client_conf(dir: &TempDir, spec: &ClientSpec<'_>) -> ClientFiles {
    client_conf_for(Impl::Chantryd, dir, spec)
}

/// Writes a client's configuration and keys for `which` daemon. For the
/// C reference, whose chapel opens its key files after dropping to its
/// user and writes `<secret>.new` beside `secret` from an ambry, every key
/// file belongs to the chapel role's system user and the secret lives in a
/// directory of that user's own.
pub fn client_conf_for(which: Impl, dir: &TempDir, spec: &ClientSpec<'_>) -> ClientFiles {
    let name = format!("chcl{}", spec.side);
    let d = spec.id;
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
    let kek = spec.kek.map(|k| {
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
    let side = spec.side;
    let user_of = |r: &str| match which {
        Impl::Chantryd => uid_of(r, side).to_string(),
        Impl::Sanctum => sanctum_user(r),
    };
    let control_owner = match which {
        Impl::Chantryd => "root".to_owned(),
        Impl::Sanctum => sanctum_user("control"),
    };
    text += &format!(
        "secret {}\nlocal {}:4500\ntunnel {}/30 1422\ncathedral {}\ncathedral_id {:x}\n\
         cathedral_flock {FLOCK:x}\ncathedral_secret {}\ncathedral_cosk {}\ncontrol {} {control_owner}\n",
        secret.display(),
        spec.local,
        spec.inner,
        spec.cathedral,
        d.id,
        cs.display(),
        cosk.display(),
        dir.join(&format!("{name}.control")).display(),
    );
    if spec.remembrance {
        text += &format!("cathedral_remembrance {}\n", remembrance.display());
    }
    for r in roles("tunnel") {
        text += &format!("run {r} as {}\n", user_of(r));
    }
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

/// The value of `key=N` in the last cathedral status line of `log`.
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

/// Polls `f` every 100 ms until it is true or `limit` passed.
pub fn wait_for(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
