//! sanctum.conf (files.md §1), key files (§2) and the remembrance file (§6).
//!
//! [`Config::parse`] is pure: it reads text and touches no file. The
//! reference also checks at parse time that some files named in the
//! configuration are readable; that is the separate, explicit
//! [`Config::check_files`] step ([`Config::load`] does read, parse and
//! check in one go). Key material is read with [`load_key_file`] (regular
//! file, no symlink, at least N bytes, the first N used) and comes back as a
//! [`Secret`].
//!
//! Every error names the file, the line (when one line is to blame), the
//! keyword and the problem: `/etc/x.conf:7: tunnel: mtu 400 out of range
//! (623..=1422)`, or `/etc/x.conf: instance: missing (...)`.
//!
//! # Keywords, repeats and order
//!
//! Syntax and meaning are those of files.md §1.2. Every keyword is fatal
//! when repeated except `route` and `accept` (any number) and `run` (once
//! per process). The reference is fatal for a repeated `kek`, `secret`,
//! `pidfile`, `bridge`, `cathedral`, `cathedral_secret`, `cathedral_cosk`,
//! `cathedral_remembrance`, `secretdir`, `settings` and `run <process>`; it
//! lets a later line silently overwrite `mode`, `instance`, `descr`, `spi`,
//! `tunnel`, `peer`, `local`, `tap`, `tfc`, `shroud`, `control`,
//! `cathedral_id`, `cathedral_flock`, `cathedral_flock_dst`,
//! `cathedral_nat_port`, `cathedral_ip`, `cathedral_mtu`,
//! `cathedral_p2p_sync`, `liturgy_group`, `liturgy_prefix` and
//! `liturgy_discoverable`. Chantry rejects those repeats too: a second value
//! for a single setting is always a mistake, and with the order rules below
//! a silently changed `mode` or `spi` would even change which earlier lines
//! were valid. (The reference's `tap no` after `tap yes` keeps the tap, for
//! instance.)
//!
//! Order rules (each fatal, as in the reference):
//! * `spi` (non-zero) must come before `cathedral`, `cathedral_id`,
//!   `cathedral_secret` and `cathedral_cosk`;
//! * `mode cathedral` must come before `cathedral_ip`, `cathedral_mtu`,
//!   `secretdir` and `settings`;
//! * the secret file must be readable at start unless `kek` came on an
//!   earlier line ([`Config::secret_must_exist`]).
//!
//! The reference checks a cathedral's non-zero `local` address only if
//! `mode cathedral` came first; Chantry checks it whatever the order.
//!
//! # Where Chantry is stricter than the reference
//!
//! All of these are configurations the reference accepts but that cannot
//! work or silently do something else than they say:
//! * numbers and addresses are parsed strictly: no trailing text (the
//!   reference's `sscanf` ignores it), no values that overflow the field
//!   (`%hx` truncates), ports within 0..=65535 (the reference truncates),
//!   prefix lengths 0..=32 (the reference truncates `/288` to `/32`), and
//!   numeric ports only for `cathedral` (no service names);
//! * `run` and `control` user names longer than 31 bytes are an error (the
//!   reference truncates them), and a `control` path must fit a UNIX socket
//!   address (107 bytes);
//! * a `route` with host bits set is an error (the kernel would refuse it
//!   at start);
//! * `cathedral_id`, `cathedral_flock` and `cathedral_flock_dst` may not be
//!   0 (the reference treats 0 as "not set");
//! * `peer` with a non-zero address needs a non-zero port; `cathedral` and
//!   `cathedral_ip` need a non-zero address and port, and so does a
//!   cathedral's `local` (required in cathedral mode);
//! * `liturgy_prefix` may not be 0.0.0.0, and liturgy mode requires
//!   `cathedral` (the reference would send to 0.0.0.0:0);
//! * `tunnel` and `cathedral` are rejected in cathedral mode (the reference
//!   would use them as the padding MTU and the advertised address),
//!   `cathedral` in pilgrim and shrine mode (nothing would use it), and a
//!   pilgrim needs a fixed `peer` (the shrine never sends, so the address
//!   cannot be learnt);
//! * a `tunnel` MTU above 1422 is rejected on its line in every mode
//!   (1373 with shroud, checked after the whole file is read) and `run`
//!   lines missing for a process the mode starts are reported by the parser
//!   (the reference fails only when it starts the process).
//!
//! Left to the daemon: looking up users (`run`, `control`), resolving the
//! cathedral host, creating the pidfile, and the Linux 15-byte limit on the
//! `instance` name when it is used as the tun/tap interface name.

mod error;
mod keyfile;
mod lexer;
mod parser;
mod remembrance;
mod types;
mod value;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

pub use error::{ConfigError, ErrorKind};
pub use keyfile::{COSK_LEN, KEY_LEN, KeyFileError, load_key_file};
pub use lexer::MAX_LINE_LEN;
pub use remembrance::{
    MAX_CATHEDRALS, REMEMBRANCE_LEN, Remembrance, load_remembrance_file, store_remembrance_file,
};
pub use types::{
    ControlSocket, HostPort, InitialPeer, Ipv4Net, Keyword, Mode, Mtu, PeerSetting, Role,
    TunnelSetting, UnknownName,
};
pub use value::{
    IFNAME_MAX, MTU_MAX, MTU_MIN, OVERHEAD, PATH_MTU, SHROUD_MTU_MAX, SHROUD_OVERHEAD,
};

use crate::secret::{Key32, Secret};

/// A parsed and validated sanctum.conf.
///
/// Holds paths, never key material. Built only by [`Config::parse`] (and
/// friends), so every value satisfies the rules of files.md §1.2/§1.3 and
/// the stricter ones listed in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    path: PathBuf,
    mode: Mode,
    instance: String,
    descr: Option<String>,
    pidfile: Option<PathBuf>,
    secret: Option<PathBuf>,
    secret_must_exist: bool,
    kek: Option<PathBuf>,
    spi: u16,
    tunnel: Option<TunnelSetting>,
    routes: Vec<Ipv4Net>,
    accepts: Vec<Ipv4Net>,
    peer: Option<PeerSetting>,
    local: SocketAddrV4,
    tap: bool,
    bridge: Option<String>,
    tfc: bool,
    shroud: bool,
    control: ControlSocket,
    run: BTreeMap<Role, String>,
    cathedral: Option<HostPort>,
    cathedral_id: Option<u32>,
    cathedral_secret: Option<PathBuf>,
    cathedral_cosk: Option<PathBuf>,
    cathedral_flock: Option<u64>,
    cathedral_flock_dst: Option<u64>,
    cathedral_nat_port: Option<u16>,
    cathedral_remembrance: Option<PathBuf>,
    cathedral_ip: Option<SocketAddrV4>,
    cathedral_mtu: Option<u16>,
    cathedral_p2p_sync: bool,
    secretdir: Option<PathBuf>,
    settings: Option<PathBuf>,
    liturgy_group: u16,
    liturgy_prefix: Option<Ipv4Addr>,
    liturgy_discoverable: bool,
    /// Line of the first occurrence of each keyword.
    lines: BTreeMap<Keyword, usize>,
    /// Line of each `run` line.
    run_lines: BTreeMap<Role, usize>,
}

impl Config {
    /// Parses and validates `text`. `path` is only used in error messages
    /// (and kept for [`Config::check_files`] messages); nothing is read.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Config, ConfigError> {
        parser::parse(path.as_ref(), text.as_bytes())
    }

    /// Like [`Config::parse`] for raw file bytes; a (non-comment) line that
    /// is not valid UTF-8 is an error.
    pub fn parse_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<Config, ConfigError> {
        parser::parse(path.as_ref(), bytes)
    }

    /// Reads the file, parses it and runs [`Config::check_files`]: what the
    /// reference does when it loads its configuration.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            keyword: None,
            kind: ErrorKind::Read,
            message: format!("cannot read the configuration: {}", keyfile::io_problem(&e)),
        })?;
        let config = Self::parse_bytes(path, &bytes)?;
        config.check_files()?;
        Ok(config)
    }

    /// The path given to the parser.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `mode`; [`Mode::Tunnel`] if absent.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `instance` (required): `[A-Za-z0-9-]`, at most 31 characters. Used in
    /// process titles and, on Linux, as the interface name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// `descr`: a free description, same syntax as `instance`.
    pub fn descr(&self) -> Option<&str> {
        self.descr.as_deref()
    }

    /// `pidfile`: created exclusively at start, holds the guardian's pid.
    pub fn pidfile(&self) -> Option<&Path> {
        self.pidfile.as_deref()
    }

    /// `secret`: the 32-byte shared secret (cathedral mode: the federation
    /// sync secret). Present in every mode but liturgy.
    pub fn secret(&self) -> Option<&Path> {
        self.secret.as_deref()
    }

    /// True if the secret file must exist at start: `secret` came before
    /// any `kek` line (with a KEK the secret is written later from an
    /// ambry).
    pub fn secret_must_exist(&self) -> bool {
        self.secret_must_exist
    }

    /// `kek`: the device's 32-byte base KEK for ambry unwrapping (tunnel
    /// mode with a cathedral, or liturgy mode).
    pub fn kek(&self) -> Option<&Path> {
        self.kek.as_deref()
    }

    /// `spi`: the tunnel id `local << 8 | remote` (liturgy: the own id
    /// only, at most 0xff); 0 if not set.
    pub fn spi(&self) -> u16 {
        self.spi
    }

    /// `tunnel`: tun address, prefix and MTU. Present in tunnel, pilgrim
    /// and shrine mode unless `tap yes`; never in cathedral mode.
    pub fn tunnel(&self) -> Option<&TunnelSetting> {
        self.tunnel.as_ref()
    }

    /// `route` lines in file order: networks routed into the tunnel (the
    /// gateway is the tunnel address). Never with host bits set.
    pub fn routes(&self) -> &[Ipv4Net] {
        &self.routes
    }

    /// `accept` lines in file order, host bits cleared: extra networks
    /// allowed as source/destination of decrypted packets.
    pub fn accepts(&self) -> &[Ipv4Net] {
        &self.accepts
    }

    /// `peer` as written, if given. See [`Config::effective_peer`].
    pub fn peer(&self) -> Option<PeerSetting> {
        self.peer
    }

    /// `local`: the UDP bind address; 0.0.0.0:0 if absent (never in
    /// cathedral mode, where it is required and non-zero).
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// `tap yes`: an L2 tap device instead of an L3 tun.
    pub fn tap(&self) -> bool {
        self.tap
    }

    /// `bridge`: bridge the tap device joins (only with `tap yes`).
    pub fn bridge(&self) -> Option<&str> {
        self.bridge.as_deref()
    }

    /// `tfc on`: traffic-flow-confidentiality padding (needs a numeric MTU).
    pub fn tfc(&self) -> bool {
        self.tfc
    }

    /// `shroud yes`.
    pub fn shroud(&self) -> bool {
        self.shroud
    }

    /// `control`: socket path and owner; `/tmp/sanctum-control` owned by
    /// `root` if absent.
    pub fn control(&self) -> &ControlSocket {
        &self.control
    }

    /// The user a process runs as (`run <process> as <user>`).
    pub fn run_as(&self, role: Role) -> Option<&str> {
        self.run.get(&role).map(String::as_str)
    }

    /// Every `run` line, by process. May name processes the mode does not
    /// start (hymn writes all of them).
    pub fn run_lines(&self) -> &BTreeMap<Role, String> {
        &self.run
    }

    /// `cathedral`: the cathedral this tunnel or liturgy uses (host kept as
    /// written). Enables the cathedral client.
    pub fn cathedral(&self) -> Option<&HostPort> {
        self.cathedral.as_ref()
    }

    /// `cathedral_id`: this device's identity at the cathedral (non-zero).
    pub fn cathedral_id(&self) -> Option<u32> {
        self.cathedral_id
    }

    /// `cathedral_secret`: the 32-byte cathedral secret of that identity.
    pub fn cathedral_secret(&self) -> Option<&Path> {
        self.cathedral_secret.as_deref()
    }

    /// `cathedral_cosk`: the 64-byte Ed25519 offer signing key.
    pub fn cathedral_cosk(&self) -> Option<&Path> {
        self.cathedral_cosk.as_deref()
    }

    /// `cathedral_flock`: own flock (56-bit id and domain byte), non-zero.
    pub fn cathedral_flock(&self) -> Option<u64> {
        self.cathedral_flock
    }

    /// `cathedral_flock_dst`: the peer's flock; defaults to
    /// `cathedral_flock`.
    pub fn cathedral_flock_dst(&self) -> Option<u64> {
        self.cathedral_flock_dst.or(self.cathedral_flock)
    }

    /// `cathedral_nat_port`: NAT-detection port; `None` when absent or 0
    /// (off: no p2p, always relayed).
    pub fn cathedral_nat_port(&self) -> Option<u16> {
        self.cathedral_nat_port
    }

    /// `cathedral_remembrance`: where the cathedral list is kept (§6);
    /// enables failover.
    pub fn cathedral_remembrance(&self) -> Option<&Path> {
        self.cathedral_remembrance.as_deref()
    }

    /// `cathedral_ip`: the public address a cathedral advertises, if
    /// configured. See [`Config::advertised_address`].
    pub fn cathedral_ip(&self) -> Option<SocketAddrV4> {
        self.cathedral_ip
    }

    /// `cathedral_mtu`: a cathedral's padding MTU (required in cathedral
    /// mode).
    pub fn cathedral_mtu(&self) -> Option<u16> {
        self.cathedral_mtu
    }

    /// `cathedral_p2p_sync yes`.
    pub fn cathedral_p2p_sync(&self) -> bool {
        self.cathedral_p2p_sync
    }

    /// `secretdir`: a cathedral's directory of client secrets (§3).
    pub fn secretdir(&self) -> Option<&Path> {
        self.secretdir.as_deref()
    }

    /// `settings`: a cathedral's settings file (§4).
    pub fn settings(&self) -> Option<&Path> {
        self.settings.as_deref()
    }

    /// `liturgy_group`; 0 if absent.
    pub fn liturgy_group(&self) -> u16 {
        self.liturgy_group
    }

    /// `liturgy_prefix`: `a.b.0.0` (required in liturgy mode).
    pub fn liturgy_prefix(&self) -> Option<Ipv4Addr> {
        self.liturgy_prefix
    }

    /// `liturgy_discoverable`; true (not hidden) if absent.
    pub fn liturgy_discoverable(&self) -> bool {
        self.liturgy_discoverable
    }

    /// The line a keyword first appeared on.
    pub fn line_of(&self, keyword: Keyword) -> Option<usize> {
        self.lines.get(&keyword).copied()
    }

    /// True if the cathedral client runs: a `cathedral` line (tunnel or
    /// liturgy mode).
    pub fn cathedral_client(&self) -> bool {
        self.cathedral.is_some()
    }

    /// Where the tunnel sends first: a configured non-zero peer; else, in
    /// tunnel mode with a cathedral, the cathedral (relay); else nobody until
    /// the peer is learnt from traffic.
    pub fn effective_peer(&self) -> InitialPeer {
        match self.peer {
            Some(PeerSetting::Addr(a)) if !a.ip().is_unspecified() => InitialPeer::Fixed(a),
            _ if self.mode == Mode::Tunnel && self.cathedral.is_some() => InitialPeer::Cathedral,
            _ => InitialPeer::Learn,
        }
    }

    /// True if a `peer <ip:port>` line was given (even 0.0.0.0, as in the
    /// reference): cathedral INFO then never changes the peer.
    pub fn peer_configured(&self) -> bool {
        matches!(self.peer, Some(PeerSetting::Addr(_)))
    }

    /// True if the peer is in auto mode (`peer auto`, or no usable address
    /// and no cathedral): a dead peer's address is forgotten rather than
    /// reset to the cathedral (behaviour.md §4.3).
    pub fn peer_auto(&self) -> bool {
        self.peer == Some(PeerSetting::Auto) || self.effective_peer() == InitialPeer::Learn
    }

    /// The address a cathedral advertises (relay address, remembrance slot
    /// 0): `cathedral_ip`, else `local`.
    pub fn advertised_address(&self) -> SocketAddrV4 {
        self.cathedral_ip.unwrap_or(self.local)
    }

    /// Per-datagram overhead for the MTU math: 78, or 127 with shroud.
    pub fn overhead(&self) -> u16 {
        if self.shroud {
            SHROUD_OVERHEAD
        } else {
            OVERHEAD
        }
    }

    /// The MTU as configured: `cathedral_mtu` in cathedral mode, else the
    /// `tunnel` line's ([`Mtu::Auto`] without a `tunnel` line).
    pub fn mtu(&self) -> Mtu {
        match (self.mode, self.cathedral_mtu, self.tunnel) {
            (Mode::Cathedral, Some(m), _) => Mtu::Fixed(m),
            (Mode::Cathedral, None, _) | (_, _, None) => Mtu::Auto,
            (_, _, Some(t)) => t.mtu,
        }
    }

    /// The MTU to start with: the numeric MTU, or for `auto` 1500 minus
    /// [`Config::overhead`] (1422, or 1373 with shroud).
    pub fn tun_mtu(&self) -> u16 {
        match self.mtu() {
            Mtu::Fixed(m) => m,
            Mtu::Auto => PATH_MTU - self.overhead(),
        }
    }

    /// True if MTU discovery runs (tunnel mode with an `auto` MTU).
    pub fn mtu_discovery(&self) -> bool {
        self.mode == Mode::Tunnel && self.mtu() == Mtu::Auto
    }

    /// The processes this mode starts, in start order (behaviour.md §1.1).
    pub fn roles_needed(&self) -> &'static [Role] {
        self.mode.roles()
    }

    /// Processes the mode starts that have no `run` line (empty for a
    /// parsed configuration: the parser rejects those).
    pub fn missing_run_lines(&self) -> Vec<Role> {
        self.roles_needed()
            .iter()
            .copied()
            .filter(|r| !self.run.contains_key(r))
            .collect()
    }

    /// The parse-time file checks of the reference, made stricter: the
    /// key files (`kek`, `secret` when [`Config::secret_must_exist`],
    /// `cathedral_secret`, `cathedral_cosk`) must pass [`load_key_file`]
    /// (the bytes are read and wiped at once), `settings` must be a
    /// readable regular file and `secretdir` a readable directory. The
    /// first failure, in file order, is returned with its line.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        keyfile::check_config_files(self)
    }

    /// Reads the shared secret (§2: 32 bytes). `Ok(None)` if no `secret` is
    /// configured.
    pub fn load_secret(&self) -> Result<Option<Key32>, KeyFileError> {
        self.secret
            .as_deref()
            .map(load_key_file::<KEY_LEN>)
            .transpose()
    }

    /// Reads the base KEK (32 bytes). `Ok(None)` if no `kek` is configured.
    pub fn load_kek(&self) -> Result<Option<Key32>, KeyFileError> {
        self.kek
            .as_deref()
            .map(load_key_file::<KEY_LEN>)
            .transpose()
    }

    /// Reads the cathedral secret (32 bytes). `Ok(None)` if not configured.
    pub fn load_cathedral_secret(&self) -> Result<Option<Key32>, KeyFileError> {
        self.cathedral_secret
            .as_deref()
            .map(load_key_file::<KEY_LEN>)
            .transpose()
    }

    /// Reads the COSK (64 bytes: Ed25519 seed then public key). `Ok(None)`
    /// if not configured.
    pub fn load_cathedral_cosk(&self) -> Result<Option<Secret<COSK_LEN>>, KeyFileError> {
        self.cathedral_cosk
            .as_deref()
            .map(load_key_file::<COSK_LEN>)
            .transpose()
    }
}
