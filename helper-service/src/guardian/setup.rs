//! From a sanctum.conf to what the guardian needs: the mode, the users of
//! each role, the TUN shape, the settings roles read. Every problem is
//! reported before anything is created.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use chantry_core::cathedral::COSK_LEN;
use chantry_core::config::{self, Config, InitialPeer};
use chantry_core::secret::{Key32, Secret};

use crate::platform::TunSpec;
use crate::role::Role;
use crate::sandbox::User;
use crate::wiring::{CathedralPaths, ClientSettings, Mode, RoleSettings};

/// A configuration chantryd cannot run, with the message to print. The
/// process exits with status 2 and nothing is started.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// Everything `chantryd run` needs, checked.
#[derive(Debug)]
pub struct Setup {
    /// The parsed configuration.
    pub config: Config,
    /// The shared secret (only the keying role will get it). `None` only
    /// for a cathedral client with a `kek` whose secret file does not
    /// exist yet: its first ambry brings it (behaviour.md §7.2).
    pub secret: Option<Key32>,
    /// The base KEK of a cathedral client (`kek`, chapel only).
    pub kek: Option<Key32>,
    /// Where the guardian writes what chapel reports (new secrets from
    /// ambries, remembrance lists).
    pub report_files: crate::report::ReportFiles,
    /// The cathedral secret and COSK of a cathedral client (chapel only).
    pub cathedral_keys: Option<(Key32, Secret<COSK_LEN>)>,
    /// The mode.
    pub mode: Mode,
    /// Settings every role reads.
    pub settings: RoleSettings,
    /// The user of each role.
    pub users: BTreeMap<Role, User>,
    /// The TUN device; none in cathedral mode (no heaven roles).
    pub tun: Option<TunSpec>,
    /// The control socket path and its owner.
    pub control: (PathBuf, User),
}

/// Loads and checks `path`.
pub fn load(path: &Path) -> Result<Setup, SetupError> {
    let config = Config::load(path).map_err(|e| SetupError(e.to_string()))?;
    config
        .check_files()
        .map_err(|e| SetupError(e.to_string()))?;
    let mode = match config.mode() {
        config::Mode::Tunnel => Mode::Tunnel,
        config::Mode::Pilgrim => Mode::Pilgrim,
        config::Mode::Shrine => Mode::Shrine,
        config::Mode::Cathedral => Mode::Cathedral,
        other => {
            return Err(SetupError(format!(
                "{}: mode {other} is not supported by chantryd yet (tunnel, pilgrim, shrine and cathedral are)",
                path.display()
            )));
        }
    };
    let at = |kw: config::Keyword| {
        config.line_of(kw).map_or_else(
            || path.display().to_string(),
            |l| format!("{}:{l}", path.display()),
        )
    };
    if config.cathedral_client() && mode != Mode::Tunnel {
        return Err(SetupError(format!(
            "{}: cathedral: only a tunnel registers at a cathedral",
            at(config::Keyword::Cathedral)
        )));
    }
    if config.cathedral_client() && config.shroud() {
        return Err(SetupError(format!(
            "{}: shroud: chantryd's cathedral client does not shroud yet",
            at(config::Keyword::Shroud)
        )));
    }
    if mode == Mode::Cathedral && config.shroud() {
        return Err(SetupError(format!(
            "{}: shroud: chantryd's cathedral does not shroud yet",
            at(config::Keyword::Shroud)
        )));
    }
    if config.tap() {
        return Err(SetupError(format!(
            "{}: tap: chantryd supports tun devices only",
            at(config::Keyword::Tap)
        )));
    }
    let kek = config
        .load_kek()
        .map_err(|e| SetupError(format!("{}: kek: {e}", at(config::Keyword::Kek))))?;
    let secret = match config.load_secret() {
        Ok(Some(s)) => Some(s),
        // As the reference: with a `kek` the secret file need not exist;
        // chapel keys only after the first ambry wrote it.
        Err(_)
            if kek.is_some()
                && config
                    .secret()
                    .is_some_and(|p| std::fs::symlink_metadata(p).is_err()) =>
        {
            tracing::info!(
                secret = %config.secret().map(|p| p.display().to_string()).unwrap_or_default(),
                "no secret file yet: waiting for the first ambry from the cathedral"
            );
            None
        }
        Ok(None) => {
            return Err(SetupError(format!(
                "{}: no `secret` line: a tunnel without a cathedral needs the shared secret file",
                path.display()
            )));
        }
        Err(e) => {
            return Err(SetupError(format!(
                "{}: secret: {e}",
                at(config::Keyword::Secret)
            )));
        }
    };
    let tunnel = config.tunnel();
    if tunnel.is_none() && mode != Mode::Cathedral {
        return Err(SetupError(format!("{}: no `tunnel` line", path.display())));
    }
    let mut users = BTreeMap::new();
    for &role in config.roles_needed() {
        let name = config.run_as(role).ok_or_else(|| {
            SetupError(format!("{}: no `run {role} as USER` line", path.display()))
        })?;
        let user = resolve_user(name).ok_or_else(|| {
            SetupError(format!(
                "{}: run {role} as {name}: no such user",
                at(config::Keyword::Run)
            ))
        })?;
        users.insert(role, user);
    }
    // The reference chowns the socket to the `control` line's user; that
    // user must exist. chantryd gives the socket to the control role's
    // user instead, the only one that must answer through it (a root
    // client's reply socket follows the socket's owner, see control::query).
    resolve_user(&config.control().user).ok_or_else(|| {
        SetupError(format!(
            "{}: control: no such user `{}`",
            at(config::Keyword::Control),
            config.control().user
        ))
    })?;
    let control_user = users
        .get(&Role::Control)
        .copied()
        .ok_or_else(|| SetupError(format!("{}: no `run control as USER` line", path.display())))?;
    let client = cathedral_client(&config, path)?;
    let peer = match config.effective_peer() {
        InitialPeer::Fixed(a) => Some(a),
        InitialPeer::Cathedral => client.as_ref().map(|c| c.cathedral),
        InitialPeer::Learn => None,
    };
    let cathedral_keys = match (
        &client,
        config.load_cathedral_secret(),
        config.load_cathedral_cosk(),
    ) {
        (None, _, _) => None,
        (Some(_), Ok(Some(cs)), Ok(Some(cosk))) => Some((cs, cosk)),
        (Some(_), Err(e), _) | (Some(_), _, Err(e)) => {
            return Err(SetupError(format!(
                "{}: cathedral keys: {e}",
                path.display()
            )));
        }
        (Some(_), _, _) => {
            return Err(SetupError(format!(
                "{}: a cathedral client needs `cathedral_secret` and `cathedral_cosk`",
                path.display()
            )));
        }
    };
    if mode == Mode::Pilgrim && peer.is_none() {
        return Err(SetupError(format!(
            "{}: a pilgrim needs a `peer` address: the shrine never sends",
            path.display()
        )));
    }
    let mut accept: Vec<(Ipv4Addr, u8)> = tunnel
        .iter()
        .map(|t| (t.net.network(), t.net.prefix()))
        .collect();
    accept.extend(config.accepts().iter().map(|n| (n.network(), n.prefix())));
    accept.extend(config.routes().iter().map(|n| (n.network(), n.prefix())));
    let settings = RoleSettings {
        mode,
        instance: config.instance().to_owned(),
        tun_mtu: config.tun_mtu(),
        tun_offload: false,
        mtu_discovery: config.mtu_discovery(),
        tfc: config.tfc(),
        shroud: config.shroud(),
        flock_src: client.as_ref().map_or(0, |c| c.flock_src),
        flock_dst: client.as_ref().map_or(0, |c| c.flock_dst),
        tunnel_id: config.spi(),
        peer,
        peer_configured: config.peer_configured(),
        accept,
        cathedral: cathedral_paths(&config, path)?,
        cathedral_client: client,
        test_rekey_every: test_env("CHANTRY_TEST_REKEY_EVERY").and_then(|v| v.parse().ok()),
        test_forbidden_syscall: test_env("CHANTRY_TEST_FORBIDDEN_SYSCALL"),
    };
    let tun = tunnel.map(|tunnel| TunSpec {
        name: config.instance().to_owned(),
        addr: tunnel.net.addr(),
        prefix: tunnel.net.prefix(),
        mtu: config.tun_mtu(),
        routes: config
            .routes()
            .iter()
            .map(|n| (n.network(), n.prefix()))
            .collect(),
    });
    let control = (config.control().path.clone(), control_user);
    let report_files = crate::report::ReportFiles {
        secret: config.secret().map(Path::to_owned),
        remembrance: config.cathedral_remembrance().map(Path::to_owned),
    };
    Ok(Setup {
        config,
        secret,
        kek,
        report_files,
        cathedral_keys,
        mode,
        settings,
        users,
        tun,
        control,
    })
}

/// Cathedral mode: the secret directory, settings file and advertised
/// address (`cathedral_ip`, else `local`).
fn cathedral_paths(config: &Config, path: &Path) -> Result<Option<CathedralPaths>, SetupError> {
    if config.mode() != config::Mode::Cathedral {
        return Ok(None);
    }
    let secretdir = config
        .secretdir()
        .ok_or_else(|| SetupError(format!("{}: a cathedral needs `secretdir`", path.display())))?;
    Ok(Some(CathedralPaths {
        secretdir: secretdir.to_owned(),
        settings: config.settings().map(Path::to_owned),
        public: config.cathedral_ip().unwrap_or(config.local()),
        p2p_sync: config.cathedral_p2p_sync(),
        nat_port: config.cathedral_nat_port(),
    }))
}

/// Tunnel mode with `cathedral`: the cathedral's address (its host
/// resolved once, first IPv4 result, behaviour.md §7.3) and identity.
fn cathedral_client(config: &Config, path: &Path) -> Result<Option<ClientSettings>, SetupError> {
    let Some(hp) = config.cathedral() else {
        return Ok(None);
    };
    let cathedral = match hp.literal() {
        Some(a) => a,
        None => {
            use std::net::ToSocketAddrs;
            (hp.host.as_str(), hp.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut it| {
                    it.find_map(|a| match a {
                        std::net::SocketAddr::V4(v4) => Some(v4),
                        std::net::SocketAddr::V6(_) => None,
                    })
                })
                .ok_or_else(|| {
                    SetupError(format!(
                        "{}: cathedral {}: no IPv4 address",
                        path.display(),
                        hp.host
                    ))
                })?
        }
    };
    let missing = |what: &str| {
        SetupError(format!(
            "{}: a cathedral client needs `{what}`",
            path.display()
        ))
    };
    let flock_src = config
        .cathedral_flock()
        .ok_or_else(|| missing("cathedral_flock"))?;
    Ok(Some(ClientSettings {
        cathedral,
        cathedral_id: config
            .cathedral_id()
            .ok_or_else(|| missing("cathedral_id"))?,
        flock_src,
        flock_dst: config.cathedral_flock_dst().unwrap_or(flock_src),
        nat_port: config.cathedral_nat_port(),
        kek: config.kek().is_some(),
        remembrance: config.cathedral_remembrance().is_some(),
        failover: Vec::new(),
    }))
}

/// A user name from the system's user database, or a plain number (uid,
/// with the same number as gid) for service accounts that exist only as
/// ids.
pub fn resolve_user(name: &str) -> Option<User> {
    if let Ok(Some(u)) = nix::unistd::User::from_name(name) {
        return Some(User {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        });
    }
    name.parse::<u32>().ok().map(|id| User { uid: id, gid: id })
}

/// A test-only setting from the environment: read only by test builds.
fn test_env(name: &str) -> Option<String> {
    if cfg!(feature = "test-hooks") {
        std::env::var(name).ok()
    } else {
        None
    }
}

/// The cathedral list in the `cathedral_remembrance` file, read before
/// every start of the roles (files.md §6: a missing or short file is an
/// empty list).
pub fn load_remembrance(config: &Config) -> Vec<std::net::SocketAddrV4> {
    match config.cathedral_remembrance() {
        Some(p) if p.exists() => match config::load_remembrance_file(p) {
            Ok(r) => r.cathedrals().to_vec(),
            Err(e) => {
                tracing::warn!(error = %e, "remembrance file ignored");
                Vec::new()
            }
        },
        _ => Vec::new(),
    }
}
