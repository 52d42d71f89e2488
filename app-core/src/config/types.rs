//! The small value types a parsed configuration is made of.

use core::fmt;
use core::str::FromStr;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// Error of the `FromStr` impls of [`Mode`], [`Role`] and [`Keyword`]: the
/// text is not one of the known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    /// What was being looked up ("mode", "process", "keyword").
    pub what: &'static str,
    /// The text that matched nothing.
    pub name: String,
}

/// The operating mode of a daemon (`mode`, files.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Mode {
    /// Two-way tunnel (`tunnel` or `default`); the default.
    #[default]
    Tunnel,
    /// One-way sender.
    Pilgrim,
    /// One-way receiver.
    Shrine,
    /// Cathedral server.
    Cathedral,
    /// Automatic mesh via a cathedral.
    Liturgy,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 5] = [
        Mode::Tunnel,
        Mode::Pilgrim,
        Mode::Shrine,
        Mode::Cathedral,
        Mode::Liturgy,
    ];

    /// The canonical configuration word (`default` parses as `tunnel`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tunnel => "tunnel",
            Mode::Pilgrim => "pilgrim",
            Mode::Shrine => "shrine",
            Mode::Cathedral => "cathedral",
            Mode::Liturgy => "liturgy",
        }
    }

    /// The processes the daemon starts in this mode, in start order
    /// (behaviour.md §1.1); each needs a `run` line.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Mode::Tunnel => &[
                Control,
                PurgatoryRx,
                PurgatoryTx,
                HeavenRx,
                Bless,
                HeavenTx,
                Confess,
                Chapel,
            ],
            Mode::Pilgrim => &[Control, PurgatoryTx, HeavenRx, Bless, Pilgrim],
            Mode::Shrine => &[Control, PurgatoryRx, HeavenTx, Confess, Shrine],
            Mode::Cathedral => &[Control, PurgatoryRx, PurgatoryTx, Cathedral],
            Mode::Liturgy => &[PurgatoryRx, PurgatoryTx, Bishop, Liturgy],
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = UnknownName;

    /// Accepts the words of the `mode` keyword, including `default`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tunnel" | "default" => Ok(Mode::Tunnel),
            "pilgrim" => Ok(Mode::Pilgrim),
            "shrine" => Ok(Mode::Shrine),
            "cathedral" => Ok(Mode::Cathedral),
            "liturgy" => Ok(Mode::Liturgy),
            _ => Err(UnknownName {
                what: "mode",
                name: s.to_owned(),
            }),
        }
    }
}

/// A daemon process, as named in `run <process> as <user>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads clear packets from the tun/tap device.
    HeavenRx,
    /// Writes clear packets to the tun/tap device.
    HeavenTx,
    /// Receives UDP datagrams.
    PurgatoryRx,
    /// Sends UDP datagrams.
    PurgatoryTx,
    /// Tunnel-mode keying and cathedral client.
    Chapel,
    /// Encrypts.
    Bless,
    /// Decrypts.
    Confess,
    /// Answers status requests on the control socket.
    Control,
    /// One-way sender keying.
    Pilgrim,
    /// One-way receiver keying.
    Shrine,
    /// Cathedral server.
    Cathedral,
    /// Liturgy client.
    Liturgy,
    /// Applies discovered liturgy peers with hymn.
    Bishop,
}

impl Role {
    /// Every role, in the order of the reference's process table.
    pub const ALL: [Role; 13] = [
        Role::HeavenRx,
        Role::HeavenTx,
        Role::PurgatoryRx,
        Role::PurgatoryTx,
        Role::Chapel,
        Role::Bless,
        Role::Confess,
        Role::Control,
        Role::Pilgrim,
        Role::Shrine,
        Role::Cathedral,
        Role::Liturgy,
        Role::Bishop,
    ];

    /// The process name used in `run` lines and process titles.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::HeavenRx => "heaven-rx",
            Role::HeavenTx => "heaven-tx",
            Role::PurgatoryRx => "purgatory-rx",
            Role::PurgatoryTx => "purgatory-tx",
            Role::Chapel => "chapel",
            Role::Bless => "bless",
            Role::Confess => "confess",
            Role::Control => "control",
            Role::Pilgrim => "pilgrim",
            Role::Shrine => "shrine",
            Role::Cathedral => "cathedral",
            Role::Liturgy => "liturgy",
            Role::Bishop => "bishop",
        }
    }

    /// Roles that hold key material and never need a network: chantryd runs
    /// them in an empty network namespace.
    pub fn is_crypto(self) -> bool {
        matches!(
            self,
            Role::Bless | Role::Confess | Role::Chapel | Role::Pilgrim | Role::Shrine
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "process",
                name: s.to_owned(),
            })
    }
}

/// An IPv4 address with a prefix length (`<ipv4>/<prefix>`).
///
/// The address is kept as written (host bits included); [`Ipv4Net::network`]
/// masks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// `None` if `prefix` is above 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then_some(Self { addr, prefix })
    }

    /// The address as written.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0..=32.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask of the prefix (`/30` -> 255.255.255.252).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_bits())
    }

    /// The address with its host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask_bits())
    }

    /// True if `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask_bits() == u32::from(self.network())
    }

    /// True if the address has bits set outside the prefix.
    pub fn has_host_bits(&self) -> bool {
        self.addr != self.network()
    }

    fn mask_bits(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The MTU part of a `tunnel` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtu {
    /// A numeric MTU, already checked to be within 623..=1422.
    Fixed(u16),
    /// `auto`: start at `1500 - overhead` and run MTU discovery (tunnel mode
    /// only).
    Auto,
}

/// The `tunnel <ipv4>/<prefix> <mtu|auto>` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelSetting {
    /// The tun address and prefix (0.0.0.0 with `tap yes`).
    pub net: Ipv4Net,
    /// The MTU as configured.
    pub mtu: Mtu,
}

/// The `peer` setting as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSetting {
    /// `peer auto`: learn the peer from traffic.
    Auto,
    /// `peer <ipv4>:<port>`. 0.0.0.0 also means "learn", but (as in the
    /// reference) still marks the peer as configured, so cathedral INFO
    /// never overrides it.
    Addr(SocketAddrV4),
}

/// Where a tunnel sends its first packets (see [`crate::config::Config::effective_peer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPeer {
    /// A configured, non-zero peer address.
    Fixed(SocketAddrV4),
    /// The cathedral's address (relay) until INFO tells us a direct path;
    /// resolving the cathedral host is the daemon's job.
    Cathedral,
    /// Unknown: learnt from the first authenticated packet.
    Learn,
}

/// The `control <path> <user>` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSocket {
    /// Path of the UNIX datagram socket.
    pub path: PathBuf,
    /// User owning the socket (looked up by the daemon, not the parser).
    pub user: String,
}

impl Default for ControlSocket {
    /// `/tmp/sanctum-control` owned by `root`, the reference default.
    fn default() -> Self {
        Self {
            path: PathBuf::from("/tmp/sanctum-control"),
            user: "root".to_owned(),
        }
    }
}

/// A `cathedral <host>:<port>` setting. The host is kept as written (a
/// dotted IPv4 address or a host name); resolving it (once, first IPv4
/// result) is the daemon's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or dotted IPv4 address.
    pub host: String,
    /// UDP port, never 0.
    pub port: u16,
}

impl HostPort {
    /// The address if the host is a literal IPv4 address.
    pub fn literal(&self) -> Option<SocketAddrV4> {
        self.host
            .parse::<Ipv4Addr>()
            .ok()
            .map(|ip| SocketAddrV4::new(ip, self.port))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

macro_rules! keywords {
    ($($variant:ident => $name:literal,)*) => {
        /// Every keyword of sanctum.conf (files.md §1.2). Keywords are
        /// case-sensitive.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Keyword {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Keyword {
            /// Every keyword.
            pub const ALL: &'static [Keyword] = &[$(Keyword::$variant,)*];

            /// The keyword as written in the file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Keyword::$variant => $name,)*
                }
            }
        }
    };
}

keywords! {
    Mode => "mode",
    Instance => "instance",
    Descr => "descr",
    Pidfile => "pidfile",
    Secret => "secret",
    Kek => "kek",
    Spi => "spi",
    Tunnel => "tunnel",
    Route => "route",
    Accept => "accept",
    Peer => "peer",
    Local => "local",
    Tap => "tap",
    Bridge => "bridge",
    Tfc => "tfc",
    Shroud => "shroud",
    Control => "control",
    Run => "run",
    Cathedral => "cathedral",
    CathedralId => "cathedral_id",
    CathedralSecret => "cathedral_secret",
    CathedralCosk => "cathedral_cosk",
    CathedralFlock => "cathedral_flock",
    CathedralFlockDst => "cathedral_flock_dst",
    CathedralNatPort => "cathedral_nat_port",
    CathedralRemembrance => "cathedral_remembrance",
    CathedralIp => "cathedral_ip",
    CathedralMtu => "cathedral_mtu",
    CathedralP2pSync => "cathedral_p2p_sync",
    Secretdir => "secretdir",
    Settings => "settings",
    LiturgyGroup => "liturgy_group",
    LiturgyPrefix => "liturgy_prefix",
    LiturgyDiscoverable => "liturgy_discoverable",
}

impl Keyword {
    /// True for the keywords that may appear on several lines (`route`,
    /// `accept`, and `run` once per process). Every other keyword is fatal
    /// when repeated.
    pub fn repeatable(self) -> bool {
        matches!(self, Keyword::Route | Keyword::Accept | Keyword::Run)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Keyword {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Keyword::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "keyword",
                name: s.to_owned(),
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>(), Ok(m));
        }
        assert_eq!("default".parse::<Mode>(), Ok(Mode::Tunnel));
        assert!("Tunnel".parse::<Mode>().is_err());
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert_eq!(
            "heaven".parse::<Role>().unwrap_err().to_string(),
            "unknown process \"heaven\""
        );
        for k in Keyword::ALL {
            assert_eq!(k.as_str().parse::<Keyword>(), Ok(*k));
        }
        assert_eq!(Keyword::ALL.len(), 34);
    }

    #[test]
    fn roles_per_mode_follow_the_process_table() {
        use Role::*;
        assert_eq!(Mode::Tunnel.roles().len(), 8);
        assert!(!Mode::Pilgrim.roles().contains(&PurgatoryRx));
        assert!(!Mode::Shrine.roles().contains(&PurgatoryTx));
        assert!(!Mode::Liturgy.roles().contains(&Control));
        assert_eq!(
            Mode::Cathedral.roles(),
            &[Control, PurgatoryRx, PurgatoryTx, Cathedral]
        );
        assert_eq!(
            Mode::Liturgy.roles(),
            &[PurgatoryRx, PurgatoryTx, Bishop, Liturgy]
        );
    }

    #[test]
    fn ipv4_net_masks() {
        let n = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 30).unwrap();
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 255, 252));
        assert_eq!(n.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert!(n.has_host_bits());
        assert!(n.contains(Ipv4Addr::new(10, 0, 0, 3)));
        assert!(!n.contains(Ipv4Addr::new(10, 0, 0, 4)));
        let all = Ipv4Net::new(Ipv4Addr::new(1, 2, 3, 4), 0).unwrap();
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        assert!(all.contains(Ipv4Addr::new(200, 1, 1, 1)));
        assert_eq!(
            Ipv4Net::new(Ipv4Addr::LOCALHOST, 32).unwrap().netmask(),
            Ipv4Addr::BROADCAST
        );
        assert!(Ipv4Net::new(Ipv4Addr::LOCALHOST, 33).is_none());
        assert_eq!(n.to_string(), "10.0.0.1/30");
    }
}
