//! Keyword handlers (files.md §1.2) and the checks after parsing (§1.3).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use super::Config;
use super::error::{ConfigError, ErrorKind, quoted, shown_word};
use super::lexer::{self, BadLine, LexError, Line};
use super::types::{ControlSocket, HostPort, Keyword, Mode, Mtu, PeerSetting, Role, TunnelSetting};
use super::value::{self, MTU_MIN, Parsed, Problem};

/// Longest `control` path: `sun_path` of a Linux `sockaddr_un` holds 108
/// bytes including the terminating NUL.
const UNIX_PATH_MAX: usize = 107;

/// Parses and validates a whole file.
pub(super) fn parse(path: &Path, text: &[u8]) -> Result<Config, ConfigError> {
    let mut config = Config::empty(path);
    for line in lexer::lines(text) {
        let line = line.map_err(|bad| lexical_error(path, bad))?;
        config.apply(&line)?;
    }
    config.validate()?;
    Ok(config)
}

fn lexical_error(path: &Path, bad: BadLine) -> ConfigError {
    let message = match bad.error {
        LexError::TooLong(len) => {
            format!(
                "line is {len} bytes long (at most {} fit the reference's line buffer)",
                lexer::MAX_LINE_LEN
            )
        }
        LexError::Nul => "line contains a NUL byte".to_owned(),
        LexError::NotUtf8 => "line is not valid UTF-8".to_owned(),
    };
    ConfigError::at(
        path,
        bad.number,
        &shown_word(&bad.word),
        ErrorKind::Lexical,
        message,
    )
}

fn problem(kind: ErrorKind, message: impl Into<String>) -> Problem {
    Problem {
        kind,
        message: message.into(),
    }
}

/// Levenshtein distance, for "did you mean" hints (inputs are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i.saturating_add(1)];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(usize::from(ca != *cb));
            let del = prev
                .get(j.saturating_add(1))
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// The known keyword closest to an unknown word, if it is close.
fn suggestion(word: &str) -> Option<Keyword> {
    if word.len() > 40 {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    Keyword::ALL
        .iter()
        .map(|k| {
            (
                if k.as_str() == lower {
                    0
                } else {
                    edit_distance(word, k.as_str())
                },
                *k,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn path_value(value: &str) -> PathBuf {
    PathBuf::from(value)
}

impl Config {
    /// The defaults before any line is read.
    fn empty(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            mode: Mode::Tunnel,
            instance: String::new(),
            descr: None,
            pidfile: None,
            secret: None,
            secret_must_exist: false,
            kek: None,
            spi: 0,
            tunnel: None,
            routes: Vec::new(),
            accepts: Vec::new(),
            peer: None,
            local: SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
            tap: false,
            bridge: None,
            tfc: false,
            shroud: false,
            control: ControlSocket::default(),
            run: BTreeMap::new(),
            cathedral: None,
            cathedral_id: None,
            cathedral_secret: None,
            cathedral_cosk: None,
            cathedral_flock: None,
            cathedral_flock_dst: None,
            cathedral_nat_port: None,
            cathedral_remembrance: None,
            cathedral_ip: None,
            cathedral_mtu: None,
            cathedral_p2p_sync: false,
            secretdir: None,
            settings: None,
            liturgy_group: 0,
            liturgy_prefix: None,
            liturgy_discoverable: true,
            lines: BTreeMap::new(),
            run_lines: BTreeMap::new(),
        }
    }

    /// Applies one line.
    fn apply(&mut self, line: &Line<'_>) -> Result<(), ConfigError> {
        let Ok(keyword) = line.keyword.parse::<Keyword>() else {
            let message = match suggestion(line.keyword) {
                Some(k) => format!("unknown keyword (did you mean `{k}`?)"),
                None => "unknown keyword".to_owned(),
            };
            return Err(ConfigError::at(
                &self.path,
                line.number,
                &shown_word(line.keyword),
                ErrorKind::UnknownKeyword,
                message,
            ));
        };
        let at = |p: Problem| {
            ConfigError::at(&self.path, line.number, keyword.as_str(), p.kind, p.message)
        };
        if line.value.is_empty() {
            return Err(at(problem(ErrorKind::MissingValue, "missing value")));
        }
        if let Some(first) = self.lines.get(&keyword)
            && !keyword.repeatable()
        {
            return Err(at(problem(
                ErrorKind::Repeated,
                format!("given more than once (first on line {first})"),
            )));
        }
        self.lines.entry(keyword).or_insert(line.number);
        self.set(keyword, &line.value, line.number).map_err(|p| {
            ConfigError::at(&self.path, line.number, keyword.as_str(), p.kind, p.message)
        })
    }

    /// Stores the value of one keyword.
    fn set(&mut self, keyword: Keyword, value: &str, number: usize) -> Parsed<()> {
        match keyword {
            Keyword::Mode => {
                self.mode = value.parse().map_err(|_| {
                    Problem::invalid(format!(
                        "unknown mode {} (expected tunnel, default, pilgrim, shrine, cathedral or liturgy)",
                        quoted(value)
                    ))
                })?;
            }
            Keyword::Instance => self.instance = value::label(value)?,
            Keyword::Descr => self.descr = Some(value::label(value)?),
            Keyword::Pidfile => self.pidfile = Some(path_value(value)),
            Keyword::Secret => {
                self.secret = Some(path_value(value));
                self.secret_must_exist = self.kek.is_none();
            }
            Keyword::Kek => self.kek = Some(path_value(value)),
            Keyword::Spi => {
                self.spi = u16::try_from(value::hex(value, 16)?)
                    .map_err(|_| Problem::range("spi too large"))?;
            }
            Keyword::Tunnel => self.tunnel = Some(tunnel(value)?),
            Keyword::Route => {
                let net = value::ipv4_net(value)?;
                if net.has_host_bits() {
                    return Err(Problem::invalid(format!(
                        "{net} has host bits set (the network is {}/{})",
                        net.network(),
                        net.prefix()
                    )));
                }
                self.routes.push(net);
            }
            Keyword::Accept => {
                let net = value::ipv4_net(value)?;
                let masked = super::Ipv4Net::new(net.network(), net.prefix()).unwrap_or(net);
                self.accepts.push(masked);
            }
            Keyword::Peer => self.peer = Some(peer(value)?),
            Keyword::Local => self.local = value::ipv4_port(value)?,
            Keyword::Tap => self.tap = value::switch(value, "yes", "no")?,
            Keyword::Bridge => self.bridge = Some(value::ifname(value)?),
            Keyword::Tfc => self.tfc = value::switch(value, "on", "off")?,
            Keyword::Shroud => self.shroud = value::switch(value, "yes", "no")?,
            Keyword::Control => self.control = control(value)?,
            Keyword::Run => self.run_line(value, number)?,
            Keyword::Cathedral => {
                self.spi_first()?;
                self.cathedral = Some(cathedral(value)?);
            }
            Keyword::CathedralId => {
                self.spi_first()?;
                let id = value::hex(value, 32)?;
                let id = u32::try_from(id).map_err(|_| Problem::range("cathedral_id too large"))?;
                self.cathedral_id = Some(nonzero(id, "0 is not a valid identity")?);
            }
            Keyword::CathedralSecret => {
                self.spi_first()?;
                self.cathedral_secret = Some(path_value(value));
            }
            Keyword::CathedralCosk => {
                self.spi_first()?;
                self.cathedral_cosk = Some(path_value(value));
            }
            Keyword::CathedralFlock => {
                self.cathedral_flock =
                    Some(nonzero(value::hex(value, 64)?, "0 is not a valid flock")?);
            }
            Keyword::CathedralFlockDst => {
                self.cathedral_flock_dst =
                    Some(nonzero(value::hex(value, 64)?, "0 is not a valid flock")?);
            }
            Keyword::CathedralNatPort => {
                let port = value::port_number(value::one_word(value)?)?;
                self.cathedral_nat_port = (port != 0).then_some(port);
            }
            Keyword::CathedralRemembrance => self.cathedral_remembrance = Some(path_value(value)),
            Keyword::CathedralIp => {
                self.cathedral_mode_first(keyword)?;
                let addr = value::ipv4_port(value)?;
                self.cathedral_ip = Some(nonzero_addr(addr)?);
            }
            Keyword::CathedralMtu => {
                self.cathedral_mode_first(keyword)?;
                match value::mtu(value::one_word(value)?, false)? {
                    Mtu::Fixed(m) => self.cathedral_mtu = Some(m),
                    Mtu::Auto => return Err(Problem::invalid("mtu `auto` is not possible here")),
                }
            }
            Keyword::CathedralP2pSync => {
                self.cathedral_p2p_sync = value::switch(value, "yes", "no")?
            }
            Keyword::Secretdir => {
                self.cathedral_mode_first(keyword)?;
                self.secretdir = Some(path_value(value));
            }
            Keyword::Settings => {
                self.cathedral_mode_first(keyword)?;
                self.settings = Some(path_value(value));
            }
            Keyword::LiturgyGroup => {
                self.liturgy_group = u16::try_from(value::hex(value, 16)?)
                    .map_err(|_| Problem::range("liturgy_group too large"))?;
            }
            Keyword::LiturgyPrefix => {
                let ip = value::ipv4(value::one_word(value)?)?;
                let [a, b, c, d] = ip.octets();
                if ip.is_unspecified() {
                    return Err(Problem::invalid("0.0.0.0 is not a usable prefix"));
                }
                if c != 0 || d != 0 {
                    return Err(Problem::invalid(format!(
                        "{ip} must end in .0.0 (e.g. {a}.{b}.0.0)"
                    )));
                }
                self.liturgy_prefix = Some(ip);
            }
            Keyword::LiturgyDiscoverable => {
                self.liturgy_discoverable = value::switch(value, "yes", "no")?
            }
        }
        Ok(())
    }

    /// Order rule: the keyword needs a non-zero `spi` on an earlier line.
    fn spi_first(&self) -> Parsed<()> {
        if self.spi == 0 {
            return Err(problem(
                ErrorKind::Order,
                "needs a non-zero `spi` on an earlier line",
            ));
        }
        Ok(())
    }

    /// Order rule: the keyword is for cathedrals and `mode cathedral` must
    /// come first.
    fn cathedral_mode_first(&self, keyword: Keyword) -> Parsed<()> {
        match (self.mode, self.lines.get(&Keyword::Mode)) {
            (Mode::Cathedral, _) => Ok(()),
            (_, None) => Err(problem(
                ErrorKind::Order,
                format!(
                    "only valid in cathedral mode, and `mode cathedral` must come before `{keyword}`"
                ),
            )),
            (mode, Some(_)) => Err(problem(
                ErrorKind::WrongMode,
                format!("only valid in cathedral mode, not {mode}"),
            )),
        }
    }

    /// `run <process> as <user>`.
    fn run_line(&mut self, value: &str, number: usize) -> Parsed<()> {
        let words: Vec<&str> = value.split(' ').filter(|w| !w.is_empty()).collect();
        let [process, "as", user] = words.as_slice() else {
            return Err(Problem::invalid(format!(
                "{} is not `<process> as <user>`",
                quoted(value)
            )));
        };
        let role: Role = process.parse().map_err(|_| {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            Problem::invalid(format!(
                "unknown process {} (expected one of {})",
                quoted(process),
                known.join(", ")
            ))
        })?;
        let user = value::user(user)?;
        if let Some(first) = self.run_lines.get(&role) {
            return Err(problem(
                ErrorKind::Repeated,
                format!("process {role} already has a user (line {first})"),
            ));
        }
        self.run_lines.insert(role, number);
        self.run.insert(role, user);
        Ok(())
    }
}

fn nonzero<T: PartialEq + Default>(v: T, message: &str) -> Parsed<T> {
    if v == T::default() {
        Err(Problem::invalid(message))
    } else {
        Ok(v)
    }
}

fn nonzero_addr(addr: SocketAddrV4) -> Parsed<SocketAddrV4> {
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(Problem::invalid(format!(
            "{addr} needs a non-zero address and port"
        )));
    }
    Ok(addr)
}

/// `<ipv4>/<prefix> <mtu|auto>`; the MTU is checked first, as in the
/// reference.
fn tunnel(value: &str) -> Parsed<TunnelSetting> {
    let words: Vec<&str> = value.split(' ').filter(|w| !w.is_empty()).collect();
    match words.as_slice() {
        [net, mtu] => {
            let mtu = value::mtu(mtu, true)?;
            Ok(TunnelSetting {
                net: value::ipv4_net(net)?,
                mtu,
            })
        }
        [_, _, rest @ ..] => Err(Problem::invalid(format!(
            "unexpected text {} after the mtu",
            quoted(&rest.join(" "))
        ))),
        _ => Err(Problem::invalid(format!(
            "{} is not `<ipv4>/<prefix> <mtu>` or `<ipv4>/<prefix> auto`",
            quoted(value)
        ))),
    }
}

/// `auto` or `<ipv4>:<port>`.
fn peer(value: &str) -> Parsed<PeerSetting> {
    if value == "auto" {
        return Ok(PeerSetting::Auto);
    }
    let addr = value::ipv4_port(value)?;
    if !addr.ip().is_unspecified() && addr.port() == 0 {
        return Err(Problem::invalid(format!("{addr} has port 0")));
    }
    Ok(PeerSetting::Addr(addr))
}

/// `<path> <user>`: the user is the last space-separated word.
fn control(value: &str) -> Parsed<ControlSocket> {
    let Some((path, user)) = value.rsplit_once(' ') else {
        return Err(Problem::invalid(format!(
            "{} is not `<path> <user>`",
            quoted(value)
        )));
    };
    let path = path.trim_end();
    if path.len() > UNIX_PATH_MAX {
        return Err(Problem::range(format!(
            "socket path is {} bytes long (a UNIX socket path holds at most {UNIX_PATH_MAX})",
            path.len()
        )));
    }
    Ok(ControlSocket {
        path: PathBuf::from(path),
        user: value::user(user)?,
    })
}

/// `<host>:<port>`, non-zero port.
fn cathedral(value: &str) -> Parsed<HostPort> {
    let word = value::one_word(value)?;
    let Some((host, port)) = word.split_once(':') else {
        return Err(Problem::invalid(format!(
            "{} has no :port (expected <host>:<port>)",
            quoted(word)
        )));
    };
    let host = value::host(host)?;
    let port = value::port_number(port)?;
    if port == 0 {
        return Err(Problem::invalid("port 0 is not a cathedral port"));
    }
    if host
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_unspecified())
    {
        return Err(Problem::invalid("0.0.0.0 is not a cathedral address"));
    }
    Ok(HostPort { host, port })
}

/// Checks of files.md §1.3 (and Chantry's stricter ones), in a fixed order.
impl Config {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.instance.is_empty() {
            return Err(self.missing(
                Keyword::Instance,
                "every configuration needs an instance name",
            ));
        }
        if self.secret.is_none() && self.mode != Mode::Liturgy {
            let what = if self.mode == Mode::Cathedral {
                "a cathedral needs the path of its 32-byte federation sync secret".to_owned()
            } else {
                format!(
                    "{} mode needs the path of its 32-byte shared secret",
                    self.mode
                )
            };
            return Err(self.missing(Keyword::Secret, &what));
        }
        match self.mode {
            Mode::Cathedral => self.validate_cathedral()?,
            Mode::Liturgy => {
                self.l2_check()?;
                self.cathedral_client_check("required in liturgy mode")?;
                if self.liturgy_prefix.is_none() {
                    return Err(self.missing(
                        Keyword::LiturgyPrefix,
                        "liturgy mode needs the address pool, e.g. 10.15.0.0",
                    ));
                }
                if self.kek.is_none() {
                    return Err(
                        self.missing(Keyword::Kek, "liturgy mode needs the device's base KEK")
                    );
                }
                if self.spi > 0xff {
                    return Err(self.error(
                        Keyword::Spi,
                        ErrorKind::OutOfRange,
                        format!(
                            "{:#06x} is too large for liturgy mode (only the own id, at most 0xff)",
                            self.spi
                        ),
                    ));
                }
            }
            Mode::Tunnel | Mode::Pilgrim | Mode::Shrine => self.validate_tunnel_like()?,
        }
        if self.tfc {
            self.tfc_check()?;
        }
        if self.kek.is_some() && !matches!(self.mode, Mode::Tunnel | Mode::Liturgy) {
            return Err(self.error(
                Keyword::Kek,
                ErrorKind::WrongMode,
                "only used in tunnel and liturgy mode",
            ));
        }
        let missing = self.missing_run_lines();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|r| r.as_str()).collect();
            return Err(ConfigError::about(
                &self.path,
                None,
                "run",
                ErrorKind::Missing,
                format!(
                    "no `run <process> as <user>` line for {} ({} mode starts {})",
                    names.join(", "),
                    self.mode,
                    if names.len() == 1 { "it" } else { "them" }
                ),
            ));
        }
        Ok(())
    }

    fn validate_cathedral(&self) -> Result<(), ConfigError> {
        if self.tap {
            return Err(self.error(
                Keyword::Tap,
                ErrorKind::WrongMode,
                "a cathedral cannot use a tap device",
            ));
        }
        for (keyword, why) in [
            (Keyword::Bridge, "a cathedral has no tap device"),
            (
                Keyword::Tunnel,
                "a cathedral has no tunnel device (its padding MTU is `cathedral_mtu`)",
            ),
            (
                Keyword::Cathedral,
                "not used in cathedral mode (the advertised address is `cathedral_ip`)",
            ),
        ] {
            if self.lines.contains_key(&keyword) {
                return Err(self.error(keyword, ErrorKind::WrongMode, why));
            }
        }
        if self.secretdir.is_none() {
            return Err(self.missing(
                Keyword::Secretdir,
                "a cathedral needs the directory of its clients' secrets",
            ));
        }
        let Some(mtu) = self.cathedral_mtu else {
            return Err(self.missing(
                Keyword::CathedralMtu,
                "a cathedral needs the MTU used for TFC and shroud padding",
            ));
        };
        self.mtu_max_check(Keyword::CathedralMtu, mtu)?;
        if !self.lines.contains_key(&Keyword::Local) {
            return Err(self.missing(
                Keyword::Local,
                "a cathedral needs the non-zero address it listens on",
            ));
        }
        if self.local.ip().is_unspecified() || self.local.port() == 0 {
            return Err(self.error(
                Keyword::Local,
                ErrorKind::InvalidValue,
                format!(
                    "a cathedral needs a non-zero address and port, not {}",
                    self.local
                ),
            ));
        }
        Ok(())
    }

    fn validate_tunnel_like(&self) -> Result<(), ConfigError> {
        let mode = self.mode;
        if mode == Mode::Tunnel {
            if self.kek.is_some() && self.cathedral.is_none() {
                return Err(self.error(
                    Keyword::Kek,
                    ErrorKind::Conflict,
                    "needs `cathedral` (the KEK unwraps ambries sent by a cathedral)",
                ));
            }
            if self.cathedral.is_some() {
                self.cathedral_client_check("required with `cathedral`")?;
            }
        } else if self.cathedral.is_some() {
            return Err(self.error(
                Keyword::Cathedral,
                ErrorKind::WrongMode,
                format!(
                    "not used in {mode} mode (only tunnel and liturgy mode have a cathedral client)"
                ),
            ));
        }
        self.l2_check()?;
        match self.tunnel {
            None if !self.tap => {
                return Err(self.missing(
                    Keyword::Tunnel,
                    &format!("{mode} mode needs `tunnel <ipv4>/<prefix> <mtu>` unless `tap yes`"),
                ));
            }
            Some(t) if !self.tap && t.net.addr().is_unspecified() => {
                return Err(self.error(
                    Keyword::Tunnel,
                    ErrorKind::InvalidValue,
                    "address 0.0.0.0 is only valid with `tap yes`",
                ));
            }
            _ => {}
        }
        match self.mtu() {
            Mtu::Fixed(m) => self.mtu_max_check(Keyword::Tunnel, m)?,
            Mtu::Auto if mode == Mode::Tunnel => {}
            Mtu::Auto if self.tunnel.is_none() => {
                return Err(self.missing(
                    Keyword::Tunnel,
                    &format!("{mode} mode needs a numeric MTU; with `tap yes` write `tunnel 0.0.0.0/0 <mtu>`"),
                ));
            }
            Mtu::Auto => {
                return Err(self.error(
                    Keyword::Tunnel,
                    ErrorKind::WrongMode,
                    format!("mtu `auto` is only available in tunnel mode, not {mode}"),
                ));
            }
        }
        if mode == Mode::Pilgrim && !matches!(self.effective_peer(), super::InitialPeer::Fixed(_)) {
            let why = "pilgrim mode needs a fixed peer address; the shrine never sends, so it cannot be learnt";
            return Err(match self.lines.get(&Keyword::Peer) {
                Some(_) => self.error(Keyword::Peer, ErrorKind::InvalidValue, why),
                None => self.missing(Keyword::Peer, why),
            });
        }
        Ok(())
    }

    /// Tap/bridge consistency.
    fn l2_check(&self) -> Result<(), ConfigError> {
        if !self.tap {
            if self.bridge.is_some() {
                return Err(self.error(Keyword::Bridge, ErrorKind::Conflict, "needs `tap yes`"));
            }
            return Ok(());
        }
        if self.tunnel.is_some_and(|t| !t.net.addr().is_unspecified()) {
            return Err(self.error(
                Keyword::Tunnel,
                ErrorKind::Conflict,
                "address must be 0.0.0.0 with `tap yes`",
            ));
        }
        Ok(())
    }

    /// Cathedral client settings complete (tunnel with `cathedral`, liturgy).
    fn cathedral_client_check(&self, why: &str) -> Result<(), ConfigError> {
        if self.cathedral.is_none() {
            return Err(self.missing(Keyword::Cathedral, why));
        }
        for (keyword, present) in [
            (Keyword::CathedralSecret, self.cathedral_secret.is_some()),
            (Keyword::CathedralCosk, self.cathedral_cosk.is_some()),
            (Keyword::CathedralId, self.cathedral_id.is_some()),
            (Keyword::CathedralFlock, self.cathedral_flock.is_some()),
        ] {
            if !present {
                return Err(self.missing(keyword, why));
            }
        }
        Ok(())
    }

    /// The upper MTU bound once shroud is known.
    fn mtu_max_check(&self, keyword: Keyword, mtu: u16) -> Result<(), ConfigError> {
        let max = value::PATH_MTU - self.overhead();
        if mtu > max {
            return Err(self.error(
                keyword,
                ErrorKind::OutOfRange,
                format!("mtu {mtu} out of range ({MTU_MIN}..={max} with shroud)"),
            ));
        }
        Ok(())
    }

    /// `tfc on` needs a numeric MTU.
    fn tfc_check(&self) -> Result<(), ConfigError> {
        if self.mode == Mode::Cathedral || matches!(self.mtu(), Mtu::Fixed(_)) {
            return Ok(());
        }
        let why = match self.lines.get(&Keyword::Tunnel) {
            Some(line) => {
                format!("`tfc on` needs a numeric MTU, but the tunnel on line {line} uses `auto`")
            }
            None => "`tfc on` needs a numeric MTU, but there is no `tunnel` line".to_owned(),
        };
        Err(self.error(Keyword::Tfc, ErrorKind::Conflict, why))
    }

    /// An error about a keyword that appeared (its first line is named).
    fn error(&self, keyword: Keyword, kind: ErrorKind, message: impl Into<String>) -> ConfigError {
        ConfigError::about(
            &self.path,
            self.lines.get(&keyword).copied(),
            keyword.as_str(),
            kind,
            message,
        )
    }

    /// A required keyword is absent.
    fn missing(&self, keyword: Keyword, why: &str) -> ConfigError {
        ConfigError::about(
            &self.path,
            None,
            keyword.as_str(),
            ErrorKind::Missing,
            format!("missing ({why})"),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_hints() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(suggestion("Mode"), Some(Keyword::Mode));
        assert_eq!(suggestion("tunel"), Some(Keyword::Tunnel));
        assert_eq!(suggestion("cathedral_ids"), Some(Keyword::CathedralId));
        assert_eq!(suggestion("xyzzy"), None);
        assert_eq!(suggestion(&"a".repeat(1000)), None);
    }
}
