//! The plain values that cross the FFI: addresses, settings for the host's
//! TUN interface, verdicts, events and statistics. None of them carries key
//! material.

use std::net::{Ipv4Addr, SocketAddrV4};

/// An IPv4 UDP endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, uniffi::Record)]
pub struct Endpoint {
    /// Dotted IPv4 address, e.g. `"192.0.2.1"`.
    pub ip: String,
    /// UDP port.
    pub port: u16,
}

impl Endpoint {
    /// The endpoint as a socket address; `None` if `ip` is not a dotted
    /// IPv4 address.
    pub fn to_socket_addr(&self) -> Option<SocketAddrV4> {
        let ip: Ipv4Addr = self.ip.parse().ok()?;
        Some(SocketAddrV4::new(ip, self.port))
    }
}

impl From<SocketAddrV4> for Endpoint {
    fn from(a: SocketAddrV4) -> Self {
        Endpoint {
            ip: a.ip().to_string(),
            port: a.port(),
        }
    }
}

/// An IPv4 network (`address/prefix`), for routes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, uniffi::Record)]
pub struct Ipv4Network {
    /// Network address, dotted.
    pub address: String,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

/// What the host needs to set up its TUN interface (Android
/// `VpnService.Builder`, iOS `NEPacketTunnelNetworkSettings`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TunnelSettings {
    /// The profile's `instance` name.
    pub name: String,
    /// The tunnel's own inner address.
    pub address: String,
    /// Prefix length of the tunnel network.
    pub prefix: u8,
    /// MTU of the TUN interface (the largest clear packet).
    pub mtu: u16,
    /// Networks to route into the tunnel (`route` lines; the tunnel network
    /// itself is always routed).
    pub routes: Vec<Ipv4Network>,
    /// The peer the engine sends to first, if it knows one (a fixed `peer`
    /// or the cathedral that relays).
    pub peer: Option<Endpoint>,
    /// The cathedral this profile registers with, if any.
    pub cathedral: Option<Endpoint>,
}

/// Where the tunnel stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum TunnelState {
    /// A cathedral profile with a device KEK: waiting for the first ambry
    /// to deliver the shared secret.
    WaitingForSecret,
    /// No usable pair of session keys yet: the key exchange runs.
    Keying,
    /// Both a TX and an RX key are installed: packets flow.
    Up,
    /// [`crate::Engine::shutdown`] was called; every key is wiped.
    Closed,
}

/// What became of one packet or datagram handed to the engine. Drops are
/// normal on a VPN (no key yet, a stray datagram), so they are values and
/// not errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Verdict {
    /// Taken: sealed and handed to the host (a clear packet), or
    /// authenticated and processed (a datagram).
    Accepted,
    /// A clear packet that is not IPv4.
    NotIpv4,
    /// A clear packet shorter than 13 bytes.
    TooShort,
    /// A clear packet larger than the tunnel MTU.
    TooBig,
    /// No TX key yet (or it expired): the packet was dropped.
    NoKey,
    /// No peer address known yet: the packet was dropped.
    NoPeer,
    /// A datagram that is malformed, not for us, replayed or fails
    /// authentication.
    Rejected,
    /// A decrypted packet outside the tunnel networks (neither its source
    /// nor its destination lies in one): not delivered.
    Filtered,
    /// The endpoint the datagram came from is not an IPv4 address.
    BadEndpoint,
    /// The engine was shut down.
    Closed,
}

/// Something the host may want to show or log.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum EngineEvent {
    /// The tunnel state changed.
    State {
        /// The new state.
        state: TunnelState,
    },
    /// The peer address changed (learned from authenticated traffic).
    PeerAddress {
        /// The new peer.
        peer: Endpoint,
        /// True if the peer is reached through the cathedral (relay),
        /// false for a direct path.
        relayed: bool,
    },
    /// A new TX key is in use (a completed key exchange).
    Rekey {
        /// SPI of the new TX security association.
        tx_spi: u32,
    },
    /// A new RX key was installed.
    RxKey {
        /// Its SPI.
        spi: u32,
    },
    /// Every session key was wiped (dead peer, ambry deadline).
    KeysErased,
    /// The TX key hit a hard limit and was destroyed until the next rekey.
    TxExpired,
    /// The peer acknowledged an MTU probe of this size.
    MtuAcknowledged {
        /// Probe payload size.
        size: u16,
    },
    /// The cathedral delivered a new shared secret (ambry) and it was
    /// installed.
    AmbryInstalled {
        /// The ambry generation.
        generation: u32,
    },
    /// The cathedral told us where the peer is.
    PeerDiscovered {
        /// The peer's address as the cathedral sees it.
        peer: Endpoint,
        /// The cathedral relays (the address is the cathedral's).
        relayed: bool,
    },
    /// Something in the key exchange or the cathedral conversation, in
    /// words (for logs).
    Info {
        /// What happened.
        message: String,
    },
    /// A problem the engine recovered from (an ambry that did not unwrap,
    /// a silent cathedral, ...).
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Counters and key state of one engine.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct EngineStats {
    /// Where the tunnel stands.
    pub state: TunnelState,
    /// SPI of the TX security association (0: none).
    pub tx_spi: u32,
    /// SPI of the active RX security association (0: none).
    pub rx_spi: u32,
    /// SPI of the pending RX security association (0: none).
    pub rx_pending_spi: u32,
    /// Data packets sealed (graces included).
    pub tx_packets: u64,
    /// Bytes sealed.
    pub tx_bytes: u64,
    /// Data packets opened.
    pub rx_packets: u64,
    /// Bytes opened.
    pub rx_bytes: u64,
    /// Datagrams the crypto side dropped.
    pub rx_dropped: u64,
    /// Completed key exchanges.
    pub rekeys: u64,
    /// Milliseconds since the last packet was decrypted.
    pub last_rx_ms_ago: Option<u64>,
    /// The current peer.
    pub peer: Option<Endpoint>,
    /// True if the current peer is the cathedral (relay).
    pub relayed: bool,
    /// Clear packets from the TUN side refused before encryption (not
    /// IPv4, too short, too big).
    pub tun_refused: u64,
    /// Decrypted packets not delivered because they lie outside the
    /// tunnel networks.
    pub tun_filtered: u64,
    /// Clear packets delivered to the host.
    pub tun_delivered: u64,
    /// Host callbacks that failed.
    pub host_errors: u64,
    /// Ambry generation in use (0: none).
    pub ambry_generation: u32,
}
