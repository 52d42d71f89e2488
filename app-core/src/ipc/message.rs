//! The typed messages of the control protocol. Every message is one JSON
//! object; enums are internally tagged (`"type"`, `"op"`, `"kind"`,
//! `"event"`) so other languages (the desktop app's front end) read them
//! without a schema compiler.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::stats::{StatsSample, TunnelStats};

/// The protocol version this build speaks. A service answers a hello with
/// another version with [`ErrorCode::Version`] and closes.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientHello {
    /// [`PROTOCOL_VERSION`] of the client.
    pub version: u32,
    /// A free-form client name for the logs (`chantryctl 0.1.0`).
    pub client: String,
}

/// The service's answer to a [`ClientHello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    /// [`PROTOCOL_VERSION`] of the service.
    pub version: u32,
    /// The service's name and version (`chantryd 0.1.0`).
    pub server: String,
    /// What this connection's caller may do.
    pub privilege: Privilege,
}

/// What a caller may do. Ordered: an admin may do what a member may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// Nothing (the service refuses such callers at connect).
    None,
    /// A member of the service's user group (`chantry`): list, status,
    /// subscribe, connect, disconnect.
    Member,
    /// Root or a member of the admin group (`chantry-admin`): also
    /// everything that changes profiles, key material or settings.
    Admin,
}

/// One request with the id its answer will carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    /// Chosen by the client; echoed in the answer.
    pub id: u64,
    /// The request.
    pub request: Request,
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The profiles and their states.
    List,
    /// The state of one profile, or of all of them.
    Status {
        /// The profile (all if absent).
        #[serde(default)]
        name: Option<String>,
    },
    /// Start the event stream on this connection.
    Subscribe,
    /// Bring a profile's tunnel up.
    Connect {
        /// The profile.
        name: String,
    },
    /// Take a profile's tunnel down.
    Disconnect {
        /// The profile.
        name: String,
    },
    /// Store a new profile from a sanctum.conf and its key file.
    Import(ImportRequest),
    /// Change a profile's flags.
    Edit {
        /// The profile.
        name: String,
        /// New auto-connect flag, if given.
        #[serde(default)]
        auto_connect: Option<bool>,
        /// New always-on (fail-closed) flag, if given.
        #[serde(default)]
        always_on: Option<bool>,
    },
    /// Delete a profile and its key files (it must be down).
    Remove {
        /// The profile.
        name: String,
    },
    /// A profile's sanctum.conf and key material, as imported.
    Export {
        /// The profile.
        name: String,
    },
    /// Store a new profile from a vicar file (files.md §9) and the
    /// sanctum.conf lines a vicar file does not hold.
    ImportVicar(VicarImportRequest),
    /// The newest lines of the event log, oldest first.
    Events {
        /// Only this profile's events (all if absent).
        #[serde(default)]
        name: Option<String>,
        /// At most this many (the service caps it at 1000).
        #[serde(default = "default_limit")]
        limit: u32,
    },
    /// The newest log lines the service kept, oldest first.
    Logs {
        /// Only this profile's lines (all if absent).
        #[serde(default)]
        name: Option<String>,
        /// At most this many (the service caps it at 1000).
        #[serde(default = "default_limit")]
        limit: u32,
    },
    /// A profile's stored statistics samples of the last `seconds`.
    History {
        /// The profile.
        name: String,
        /// How far back (the service keeps 24 h).
        seconds: u32,
    },
    /// The service's settings.
    GetSettings,
    /// Replace the service's settings.
    SetSettings(Settings),
}

fn default_limit() -> u32 {
    100
}

impl Request {
    /// The privilege the request needs.
    pub fn needs(&self) -> Privilege {
        match self {
            Request::List
            | Request::Status { .. }
            | Request::Subscribe
            | Request::Connect { .. }
            | Request::Disconnect { .. }
            | Request::Events { .. }
            | Request::Logs { .. }
            | Request::History { .. }
            | Request::GetSettings => Privilege::Member,
            Request::Import(_)
            | Request::ImportVicar(_)
            | Request::Edit { .. }
            | Request::Remove { .. }
            | Request::Export { .. }
            | Request::SetSettings(_) => Privilege::Admin,
        }
    }

    /// A short name for logs and refusals (`import`).
    pub fn op(&self) -> &'static str {
        match self {
            Request::List => "list",
            Request::Status { .. } => "status",
            Request::Subscribe => "subscribe",
            Request::Connect { .. } => "connect",
            Request::Disconnect { .. } => "disconnect",
            Request::Import(_) => "import",
            Request::Edit { .. } => "edit",
            Request::Remove { .. } => "remove",
            Request::Export { .. } => "export",
            Request::ImportVicar(_) => "import-vicar",
            Request::Events { .. } => "events",
            Request::Logs { .. } => "logs",
            Request::History { .. } => "history",
            Request::GetSettings => "get-settings",
            Request::SetSettings(_) => "set-settings",
        }
    }
}

/// A profile to store: the text of a sanctum.conf and the key material its
/// `secret` line names (and, for a cathedral client, its `kek`,
/// `cathedral_secret` and `cathedral_cosk` lines). The service rewrites
/// each of those paths to its own copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The profile name: 1 to 32 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// The sanctum.conf text.
    pub config: String,
    /// The contents of the shared secret file; empty for a profile with a
    /// `kek` whose secret has not been unwrapped from an ambry yet.
    pub secret: KeyMaterial,
    /// Bring it up when the service starts.
    #[serde(default)]
    pub auto_connect: bool,
    /// Keep the machine fail-closed while it is not up.
    #[serde(default)]
    pub always_on: bool,
    /// The contents of the `kek` file, if the configuration names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kek: Option<KeyMaterial>,
    /// The contents of the `cathedral_secret` file, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cathedral_secret: Option<KeyMaterial>,
    /// The contents of the `cathedral_cosk` file, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cathedral_cosk: Option<KeyMaterial>,
}

/// A profile to store from a vicar file: the file gives the cathedral, the
/// flock, the tunnel id and the key material (KEK, COSK, cathedral
/// secret); `config` gives the rest of the sanctum.conf (instance, local,
/// addresses, routes). The service writes the cathedral lines and the key
/// files itself; `config` must not name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VicarImportRequest {
    /// The profile name: 1 to 32 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// The 216-byte vicar file.
    pub vicar: KeyMaterial,
    /// Its passphrase.
    pub passphrase: Passphrase,
    /// The sanctum.conf lines the vicar file does not hold.
    pub config: String,
    /// Bring it up when the service starts.
    #[serde(default)]
    pub auto_connect: bool,
    /// Keep the machine fail-closed while it is not up.
    #[serde(default)]
    pub always_on: bool,
}

/// A passphrase: a plain JSON string, wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(Zeroizing<String>);

impl Serialize for Passphrase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Passphrase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Passphrase, D::Error> {
        String::deserialize(d).map(Passphrase::new)
    }
}

impl Passphrase {
    /// Wraps `text`.
    pub fn new(text: String) -> Passphrase {
        Passphrase(Zeroizing::new(text))
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(redacted)")
    }
}

/// The service-wide settings (the per-profile flags live on the profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Reconnect failed tunnels when links or routes change and after
    /// resume from sleep.
    pub reconnect_on_network_change: bool,
    /// Least level of the log lines kept and streamed: `error`, `warn`,
    /// `info` or `debug`.
    pub log_level: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            reconnect_on_network_change: true,
            log_level: "info".into(),
        }
    }
}

/// Key file bytes: hex in JSON, wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> KeyMaterial {
        KeyMaterial(Zeroizing::new(bytes))
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial({} bytes, redacted)", self.0.len())
    }
}

impl Serialize for KeyMaterial {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = Zeroizing::new(String::with_capacity(self.0.len().saturating_mul(2)));
        for b in self.0.iter() {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 15)]));
        }
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for KeyMaterial {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyMaterial, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let bytes = text.as_bytes();
        if bytes.len() % 2 != 0 {
            return Err(serde::de::Error::custom(
                "key material: odd number of hex digits",
            ));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
        for pair in bytes.chunks_exact(2) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(serde::de::Error::custom("key material: not hex")),
            }
        }
        Ok(KeyMaterial(out))
    }
}

/// A message from the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to the hello.
    Hello(ServerHello),
    /// A successful answer.
    Response {
        /// The request's id.
        id: u64,
        /// The answer.
        response: Response,
    },
    /// A refused or failed request (`id` absent: about the connection,
    /// e.g. a version mismatch or a malformed frame; the service closes).
    Error {
        /// The request's id.
        #[serde(default)]
        id: Option<u64>,
        /// What went wrong.
        error: ErrorReply,
    },
    /// An event of the subscription stream.
    Event(Event),
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// The answer to [`Request::List`].
    Profiles {
        /// Every profile, by name.
        profiles: Vec<ProfileInfo>,
    },
    /// The answer to [`Request::Status`].
    Status {
        /// The profiles asked for.
        tunnels: Vec<TunnelStatus>,
    },
    /// The answer to [`Request::Export`].
    Export(ExportedProfile),
    /// The answer to [`Request::Events`].
    Events {
        /// Oldest first.
        events: Vec<EventRecord>,
    },
    /// The answer to [`Request::Logs`].
    Logs {
        /// Oldest first.
        lines: Vec<LogLine>,
    },
    /// The answer to [`Request::History`].
    History {
        /// Oldest first.
        samples: Vec<StatsSample>,
    },
    /// The answer to [`Request::GetSettings`].
    Settings(Settings),
    /// Done (subscribe, connect, disconnect, import, edit, remove).
    Done,
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    /// Its name.
    pub name: String,
    /// The `instance` of its configuration (the TUN name).
    pub instance: String,
    /// Its `mode`.
    pub mode: String,
    /// Brought up at service start.
    pub auto_connect: bool,
    /// Fail-closed while not up.
    pub always_on: bool,
    /// Its tunnel's state.
    pub state: TunnelState,
}

/// The state of one tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStatus {
    /// The profile.
    pub name: String,
    /// Its state.
    pub state: TunnelState,
    /// Why it is in that state (the last failure), if known.
    #[serde(default)]
    pub detail: Option<String>,
    /// The guardian process, while one runs.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The tunnel's numbers, while it runs and its control socket answers.
    #[serde(default)]
    pub stats: Option<TunnelStats>,
}

/// Where a tunnel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelState {
    /// Not running.
    Down,
    /// The guardian was started; its roles are not all up yet.
    Connecting,
    /// All roles run.
    Up,
    /// The guardian exited on its own; see the detail.
    Failed,
}

impl fmt::Display for TunnelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunnelState::Down => "down",
            TunnelState::Connecting => "connecting",
            TunnelState::Up => "up",
            TunnelState::Failed => "failed",
        })
    }
}

/// A profile as exported: what [`ImportRequest`] takes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedProfile {
    /// Its name.
    pub name: String,
    /// The sanctum.conf text as stored (its `secret` line names the
    /// service's copy).
    pub config: String,
    /// The shared secret file's contents (empty for a profile with a
    /// `kek` whose secret has not been unwrapped from an ambry yet).
    pub secret: KeyMaterial,
    /// Auto-connect flag.
    pub auto_connect: bool,
    /// Always-on flag.
    pub always_on: bool,
    /// The `kek` file's contents, if the configuration names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kek: Option<KeyMaterial>,
    /// The `cathedral_secret` file's contents, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cathedral_secret: Option<KeyMaterial>,
    /// The `cathedral_cosk` file's contents, if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cathedral_cosk: Option<KeyMaterial>,
}

/// An event of the subscription stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A tunnel changed state.
    State(TunnelStatus),
    /// A log line of the service.
    Log(LogLine),
    /// A running tunnel's numbers, sent once a second while it runs.
    Stats {
        /// The profile.
        name: String,
        /// Unix time, seconds.
        at: u64,
        /// The numbers.
        stats: TunnelStats,
    },
    /// A line added to the event log.
    Recorded(EventRecord),
}

/// A log line of the service or of a tunnel's guardian.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Unix time, seconds.
    #[serde(default)]
    pub at: u64,
    /// `error`, `warn`, `info` or `debug`.
    pub level: String,
    /// The profile whose guardian wrote it (absent: the service).
    #[serde(default)]
    pub profile: Option<String>,
    /// The line.
    pub message: String,
}

/// One entry of the event log (connects, failures, imports, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unix time, seconds.
    pub at: u64,
    /// The profile (absent: the service itself).
    #[serde(default)]
    pub profile: Option<String>,
    /// What happened (`connect`, `up`, `failed`, `import`, ...).
    pub kind: String,
    /// A sentence.
    pub detail: String,
}

/// A refusal or failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The class of problem.
    pub code: ErrorCode,
    /// A sentence for people (a refusal names the group that is needed).
    pub message: String,
    /// For [`ErrorCode::Invalid`] about a file: the line at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// The class of an [`ErrorReply`]; chantryctl maps these to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The caller may not do this.
    Forbidden,
    /// No such profile.
    NotFound,
    /// A profile of that name exists.
    Exists,
    /// The request or its data is not valid.
    Invalid,
    /// A vicar file's passphrase is wrong (or the file was altered).
    Passphrase,
    /// The profile is in a state that does not allow it (e.g. removing
    /// one that is up).
    Busy,
    /// The client's protocol version is not spoken.
    Version,
    /// Too many connections or requests.
    Limit,
    /// The service failed.
    Internal,
}
