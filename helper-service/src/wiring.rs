//! How the guardian describes a role's inheritance to it: which fd number
//! holds which ring, socket or device, and the non-secret settings of the
//! tunnel. Both travel in the environment of the exec'd role
//! (`CHANTRY_FDS`, `CHANTRY_SETTINGS`); secrets never do: chapel reads the
//! shared secret from an inherited pipe.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::role::Role;

/// Environment variable naming the inherited fds.
pub const FDS_ENV: &str = "CHANTRY_FDS";
/// Environment variable holding [`RoleSettings`] as JSON.
pub const SETTINGS_ENV: &str = "CHANTRY_SETTINGS";

/// The rings of a tunnel, named after their consumer as in the reference
/// (spec/behaviour.md §1.2), plus the key rings that replace its shared key
/// slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ring {
    /// heaven-rx -> bless: clear packets and graces to encrypt.
    Bless,
    /// bless -> purgatory-tx: sealed data packets.
    Purgatory,
    /// chapel / pilgrim -> purgatory-tx: offers.
    Offer,
    /// purgatory-rx -> confess: data packets.
    Confess,
    /// purgatory-rx -> chapel / shrine: offers.
    Chapel,
    /// confess -> heaven-tx: decrypted packets and graces.
    Heaven,
    /// keying role -> bless: TX session keys.
    KeyBless,
    /// keying role -> confess: RX session keys.
    KeyConfess,
    /// keying role -> purgatory-rx: the shroud key for unshrouding.
    KeyPurgatoryRx,
    /// keying role -> purgatory-tx: the shroud key for shrouding.
    KeyPurgatoryTx,
}

impl Ring {
    /// Every ring, for parsing.
    pub const ALL: [Ring; 10] = [
        Ring::Bless,
        Ring::Purgatory,
        Ring::Offer,
        Ring::Confess,
        Ring::Chapel,
        Ring::Heaven,
        Ring::KeyBless,
        Ring::KeyConfess,
        Ring::KeyPurgatoryRx,
        Ring::KeyPurgatoryTx,
    ];

    /// The ring's name in `CHANTRY_FDS` and in memfd names.
    pub fn as_str(self) -> &'static str {
        match self {
            Ring::Bless => "bless",
            Ring::Purgatory => "purgatory",
            Ring::Offer => "offer",
            Ring::Confess => "confess",
            Ring::Chapel => "chapel",
            Ring::Heaven => "heaven",
            Ring::KeyBless => "key-bless",
            Ring::KeyConfess => "key-confess",
            Ring::KeyPurgatoryRx => "key-purgatory-rx",
            Ring::KeyPurgatoryTx => "key-purgatory-tx",
        }
    }

    /// Slots: data rings are deep enough to absorb a burst from the TUN
    /// device or the socket; offer and key rings carry a few messages.
    pub fn slots(self) -> u32 {
        match self {
            Ring::Bless | Ring::Purgatory | Ring::Confess | Ring::Heaven => 1024,
            Ring::Offer | Ring::Chapel => 64,
            Ring::KeyBless | Ring::KeyConfess | Ring::KeyPurgatoryRx | Ring::KeyPurgatoryTx => 16,
        }
    }

    /// Slots in `mode`: a cathedral's chapel ring carries every datagram
    /// (behaviour.md §1.2: 1024 in cathedral mode).
    pub fn slots_in(self, mode: Mode) -> u32 {
        match (self, mode) {
            (Ring::Chapel, Mode::Cathedral) => 1024,
            _ => self.slots(),
        }
    }
}

/// One inherited fd's purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The TUN device.
    Tun,
    /// The tunnel's UDP socket.
    Udp,
    /// A cathedral's second UDP socket, on `cathedral_nat_port`: NAT
    /// probes arrive there (purgatory-rx only; nothing is sent from it).
    NatUdp,
    /// The bound control socket.
    Control,
    /// This role's own wakeup eventfd.
    Wake,
    /// The shared state page.
    State,
    /// A pipe carrying the shared secret (keying roles).
    Secret,
    /// A pipe from chapel to the guardian: secrets unwrapped from ambries
    /// and remembrance lists, for the guardian to write to disk.
    Report,
    /// A pipe from the guardian to the cathedral role: its settings, keys
    /// and bundles, at start and on every reload.
    Feed,
    /// A ring this role consumes.
    In(Ring),
    /// A ring this role produces into.
    Out(Ring),
    /// The wakeup eventfd of the consumer of a ring this role produces into.
    Waker(Ring),
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slot::Tun => f.write_str("tun"),
            Slot::Udp => f.write_str("udp"),
            Slot::NatUdp => f.write_str("nat-udp"),
            Slot::Control => f.write_str("control"),
            Slot::Wake => f.write_str("wake"),
            Slot::State => f.write_str("state"),
            Slot::Secret => f.write_str("secret"),
            Slot::Report => f.write_str("report"),
            Slot::Feed => f.write_str("feed"),
            Slot::In(r) => write!(f, "in:{}", r.as_str()),
            Slot::Out(r) => write!(f, "out:{}", r.as_str()),
            Slot::Waker(r) => write!(f, "waker:{}", r.as_str()),
        }
    }
}

/// A malformed `CHANTRY_FDS` or `CHANTRY_SETTINGS`, or a missing fd.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// An entry that is not `name=fd` with a known name.
    #[error("{FDS_ENV}: bad entry `{0}`")]
    BadEntry(String),
    /// The role needs an fd the guardian did not give it.
    #[error("{FDS_ENV}: no `{0}` fd")]
    Missing(String),
    /// The environment variable is absent.
    #[error("{0} is not set: roles are started by `chantryd run`, not by hand")]
    NoEnv(&'static str),
    /// Settings that do not parse.
    #[error("{SETTINGS_ENV}: {0}")]
    Settings(#[from] serde_json::Error),
}

impl FromStr for Slot {
    type Err = WiringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ring = |name: &str| Ring::ALL.into_iter().find(|r| r.as_str() == name);
        let bad = || WiringError::BadEntry(s.to_owned());
        Ok(match s.split_once(':') {
            None => match s {
                "tun" => Slot::Tun,
                "udp" => Slot::Udp,
                "nat-udp" => Slot::NatUdp,
                "control" => Slot::Control,
                "wake" => Slot::Wake,
                "state" => Slot::State,
                "secret" => Slot::Secret,
                "report" => Slot::Report,
                "feed" => Slot::Feed,
                _ => return Err(bad()),
            },
            Some(("in", r)) => Slot::In(ring(r).ok_or_else(bad)?),
            Some(("out", r)) => Slot::Out(ring(r).ok_or_else(bad)?),
            Some(("waker", r)) => Slot::Waker(ring(r).ok_or_else(bad)?),
            Some(_) => return Err(bad()),
        })
    }
}

/// The fds a role inherited, by purpose, and the ones it has taken.
#[derive(Debug, Default)]
pub struct FdMap {
    given: BTreeMap<Slot, RawFd>,
    taken: Vec<RawFd>,
}

impl FdMap {
    /// Records that `slot` is at `fd` in the child.
    pub fn insert(&mut self, slot: Slot, fd: RawFd) {
        self.given.insert(slot, fd);
    }

    /// The `CHANTRY_FDS` value.
    pub fn encode(&self) -> String {
        self.given
            .iter()
            .map(|(s, fd)| format!("{s}={fd}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses a `CHANTRY_FDS` value.
    pub fn decode(s: &str) -> Result<FdMap, WiringError> {
        let mut map = FdMap::default();
        for entry in s.split(',').filter(|e| !e.is_empty()) {
            let (name, fd) = entry
                .split_once('=')
                .ok_or_else(|| WiringError::BadEntry(entry.to_owned()))?;
            let fd: RawFd = fd
                .parse()
                .ok()
                .filter(|fd| *fd > 2)
                .ok_or_else(|| WiringError::BadEntry(entry.to_owned()))?;
            map.insert(name.parse()?, fd);
        }
        Ok(map)
    }

    /// The fd numbers the role took: the sandbox keeps exactly these and
    /// closes every other fd above stderr.
    pub fn taken(&self) -> &[RawFd] {
        &self.taken
    }

    /// Takes ownership of the fd for `slot`. Each slot can be taken once.
    #[allow(unsafe_code)]
    pub fn take(&mut self, slot: Slot) -> Result<OwnedFd, WiringError> {
        let fd = self
            .given
            .remove(&slot)
            .ok_or_else(|| WiringError::Missing(slot.to_string()))?;
        self.taken.push(fd);
        // SAFETY: the guardian placed this fd at this number for this role
        // (dup2 before exec), nothing else in the process owns it, and
        // removing it from the map means it is wrapped exactly once.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Reads `CHANTRY_FDS` from the environment.
    pub fn from_env() -> Result<FdMap, WiringError> {
        let v = std::env::var(FDS_ENV).map_err(|_| WiringError::NoEnv(FDS_ENV))?;
        FdMap::decode(&v)
    }
}

/// The tunnel mode a role set runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Two-way tunnel with key exchange (chapel).
    Tunnel,
    /// One-way sender.
    Pilgrim,
    /// One-way receiver.
    Shrine,
    /// A cathedral: registry and relay for other devices' tunnels.
    Cathedral,
}

impl Mode {
    /// Every mode chantryd runs.
    pub const ALL: [Mode; 4] = [Mode::Tunnel, Mode::Pilgrim, Mode::Shrine, Mode::Cathedral];

    /// The configuration's name for this mode.
    pub fn config_mode(self) -> chantry_core::config::Mode {
        match self {
            Mode::Tunnel => chantry_core::config::Mode::Tunnel,
            Mode::Pilgrim => chantry_core::config::Mode::Pilgrim,
            Mode::Shrine => chantry_core::config::Mode::Shrine,
            Mode::Cathedral => chantry_core::config::Mode::Cathedral,
        }
    }

    /// The roles of this mode, in start order (the reference's order:
    /// control first, the keying role last).
    pub fn roles(self) -> &'static [Role] {
        self.config_mode().roles()
    }

    /// Whether chantryd runs `role` in any mode.
    pub fn any_runs(role: Role) -> bool {
        Mode::ALL.iter().any(|m| m.roles().contains(&role))
    }
}

/// Non-secret settings every role of a tunnel may read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSettings {
    /// The mode.
    pub mode: Mode,
    /// Instance name (logs).
    pub instance: String,
    /// Tunnel (inner) MTU at start.
    pub tun_mtu: u16,
    /// The TUN device carries a virtio-net header on every packet and
    /// hands over TCP/UDP super-packets (segmentation offload); set by the
    /// guardian once the device exists.
    pub tun_offload: bool,
    /// MTU discovery runs (`tunnel ... auto`).
    pub mtu_discovery: bool,
    /// TFC padding.
    pub tfc: bool,
    /// Shroud every datagram.
    pub shroud: bool,
    /// Own flock (0 without a cathedral).
    pub flock_src: u64,
    /// Peer flock (0 without a cathedral).
    pub flock_dst: u64,
    /// Tunnel id.
    pub tunnel_id: u16,
    /// The peer at start, if known.
    pub peer: Option<SocketAddrV4>,
    /// A `peer <addr>` line was given.
    pub peer_configured: bool,
    /// Networks allowed as source/destination of decrypted packets: the
    /// tunnel network and every `accept` line, as (network, prefix).
    pub accept: Vec<(Ipv4Addr, u8)>,
    /// Cathedral mode: where its keys and settings are.
    pub cathedral: Option<CathedralPaths>,
    /// Tunnel mode with `cathedral`: the cathedral client's settings.
    pub cathedral_client: Option<ClientSettings>,
    /// Test builds only: force a new key exchange this often (seconds), so
    /// end-to-end tests can watch rekeys under load. Ignored unless chantryd
    /// was built with the `test-hooks` feature.
    pub test_rekey_every: Option<u64>,
    /// Test builds only: the role calls a syscall outside its seccomp list
    /// right after entering the sandbox.
    pub test_forbidden_syscall: Option<String>,
}

/// A tunnel's cathedral client (behaviour.md §7), keys aside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSettings {
    /// The cathedral's main address.
    pub cathedral: SocketAddrV4,
    /// This device's identity at the cathedral.
    pub cathedral_id: u32,
    /// Own flock (with domain byte).
    pub flock_src: u64,
    /// The peer's flock (with domain byte).
    pub flock_dst: u64,
    /// `cathedral_nat_port`, if set.
    pub nat_port: Option<u16>,
    /// A `kek` is configured: chapel asks for ambries and keys only after
    /// the first one (behaviour.md §7.2).
    #[serde(default)]
    pub kek: bool,
    /// `cathedral_remembrance` is configured: chapel asks for the cathedral
    /// list and fails over along it (§7.3).
    #[serde(default)]
    pub remembrance: bool,
    /// The cathedral list from the remembrance file, as read by the
    /// guardian before this start.
    #[serde(default)]
    pub failover: Vec<SocketAddrV4>,
}

/// What the cathedral role reads before it enters its sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CathedralPaths {
    /// The secret directory (files.md §3).
    pub secretdir: std::path::PathBuf,
    /// The settings file (files.md §4), if any.
    pub settings: Option<std::path::PathBuf>,
    /// The address this cathedral advertises as its relay.
    pub public: SocketAddrV4,
    /// `cathedral_p2p_sync yes`.
    #[serde(default)]
    pub p2p_sync: bool,
    /// `cathedral_nat_port`: the second socket NAT probes arrive on, if
    /// set.
    #[serde(default)]
    pub nat_port: Option<u16>,
}

impl RoleSettings {
    /// Reads `CHANTRY_SETTINGS` from the environment.
    pub fn from_env() -> Result<RoleSettings, WiringError> {
        let v = std::env::var(SETTINGS_ENV).map_err(|_| WiringError::NoEnv(SETTINGS_ENV))?;
        Ok(serde_json::from_str(&v)?)
    }

    /// The data-path configuration (flocks and TFC target).
    pub fn data_config(&self) -> chantry_core::wire::data::DataConfig {
        chantry_core::wire::data::DataConfig {
            flock_src: self.flock_src,
            flock_dst: self.flock_dst,
            tfc_mtu: self.tfc.then_some(usize::from(self.tun_mtu)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_map_round_trips() {
        let mut m = FdMap::default();
        m.insert(Slot::Tun, 3);
        m.insert(Slot::In(Ring::KeyPurgatoryRx), 4);
        m.insert(Slot::Waker(Ring::Heaven), 5);
        m.insert(Slot::NatUdp, 6);
        let s = m.encode();
        assert_eq!(s, "tun=3,nat-udp=6,in:key-purgatory-rx=4,waker:heaven=5");
        assert_eq!(FdMap::decode(&s).unwrap().encode(), s);
    }

    #[test]
    fn fd_map_rejects_garbage() {
        for bad in ["tun", "tun=1", "tun=x", "in:nowhere=4", "what=4", "in=4"] {
            assert!(FdMap::decode(bad).is_err(), "{bad}");
        }
    }
}
