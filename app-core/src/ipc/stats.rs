//! What the service knows about a running tunnel beyond its state: the
//! counters of the control socket (spec/files.md §8), where the packets go
//! (direct or through a cathedral), and the key exchange's stage. The
//! desktop app draws its tunnel detail and throughput plot from these.

use serde::{Deserialize, Serialize};

/// Packets and bytes of one direction of the tunnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Packets carried under the current and earlier keys.
    pub packets: u64,
    /// Bytes carried (ciphertext payload as the control socket counts it).
    pub bytes: u64,
}

/// Where a tunnel is in its key life, as a person would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// No key installed yet: the first exchange is under way.
    Keying,
    /// Keys installed in both directions, traffic can flow.
    Online,
    /// Online, and a newer key is being negotiated.
    Rekeying,
    /// The tunnel reports a problem (see the status detail).
    Error,
}

/// How packets reach the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Straight to the peer's address.
    Direct,
    /// Relayed by a cathedral.
    Relay,
}

/// A running tunnel's numbers at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStats {
    /// The key stage.
    pub stage: Stage,
    /// Direct or relayed; absent while the peer is unknown.
    #[serde(default)]
    pub path: Option<PathKind>,
    /// Where packets go (`192.0.2.1:4500`), absent while unknown.
    #[serde(default)]
    pub peer: Option<String>,
    /// The cathedral in use (`198.51.100.7:4500`), if the profile has one.
    #[serde(default)]
    pub cathedral: Option<String>,
    /// Seconds since the sending key was installed; absent before the
    /// first key.
    #[serde(default)]
    pub since_key_exchange_s: Option<u64>,
    /// The tunnel MTU.
    pub mtu: u16,
    /// Sent through the tunnel.
    pub tx: Counters,
    /// Received through the tunnel.
    pub rx: Counters,
}

/// One stored sample of a tunnel's counters (the service keeps one every
/// 10 s for 24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSample {
    /// Unix time of the sample, seconds.
    pub at: u64,
    /// Sent so far.
    pub tx: Counters,
    /// Received so far.
    pub rx: Counters,
}
