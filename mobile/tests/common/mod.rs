//! A simulated network for engines: hosts that collect what the engines
//! emit, and a link that carries datagrams between them on manual clocks.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use chantry_mobile::{
    Endpoint, Engine, EngineEvent, EngineHost, HostError, Profile, ProfileKeys, TunnelState,
};

/// Wall clock the simulations start at.
pub const WALL0: u64 = 1_767_225_600;

/// Everything one engine handed its host.
#[derive(Debug, Default)]
pub struct Collected {
    /// Datagrams to send.
    pub datagrams: Vec<(SocketAddrV4, Vec<u8>)>,
    /// Clear packets for the TUN side.
    pub packets: Vec<Vec<u8>>,
    /// Events.
    pub events: Vec<EngineEvent>,
}

/// A host that keeps what it is given.
#[derive(Debug, Default)]
pub struct Host(pub Mutex<Collected>);

impl EngineHost for Host {
    fn send_datagram(&self, to: Endpoint, datagram: Vec<u8>) -> Result<(), HostError> {
        let to = to.to_socket_addr().ok_or(HostError::Failed {
            message: "bad endpoint".into(),
        })?;
        self.0.lock().unwrap().datagrams.push((to, datagram));
        Ok(())
    }
    fn deliver_packet(&self, packet: Vec<u8>) -> Result<(), HostError> {
        self.0.lock().unwrap().packets.push(packet);
        Ok(())
    }
    fn on_event(&self, event: EngineEvent) -> Result<(), HostError> {
        self.0.lock().unwrap().events.push(event);
        Ok(())
    }
}

/// A sanctum.conf profile for one side of a simulated tunnel.
pub fn conf(inner: &str, peer: Option<SocketAddrV4>, extra: &str) -> Profile {
    let mut text = format!("instance sim\ntunnel {inner}/30 1400\n");
    if let Some(p) = peer {
        text += &format!("peer {p}\n");
    }
    text += extra;
    Profile::Conf {
        text,
        keys: ProfileKeys {
            secret: Some(vec![0x5a; 32]),
            ..ProfileKeys::default()
        },
    }
}

/// An IPv4 packet of `len` bytes from `src` to `dst` whose payload starts
/// with `tag`.
pub fn ip_packet(len: usize, src: [u8; 4], dst: [u8; 4], tag: u32) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[20..24].copy_from_slice(&tag.to_be_bytes());
    p
}

/// One engine on the simulated network.
pub struct Node {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Its host.
    pub host: Arc<Host>,
}

impl Node {
    /// An engine with a manual clock.
    pub fn new(profile: Profile) -> Node {
        let host = Arc::new(Host::default());
        let engine = Engine::with_manual_clock(profile, host.clone(), WALL0).unwrap();
        Node { engine, host }
    }

    /// Takes the clear packets delivered so far.
    pub fn take_packets(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.host.0.lock().unwrap().packets)
    }

    /// Takes the events so far.
    pub fn take_events(&self) -> Vec<EngineEvent> {
        std::mem::take(&mut self.host.0.lock().unwrap().events)
    }
}

/// Datagrams in flight: (from, to, bytes).
pub type Wire = Vec<(SocketAddrV4, SocketAddrV4, Vec<u8>)>;

/// Engines at addresses, and the datagrams between them.
pub struct Net {
    /// The engines by address.
    pub nodes: HashMap<SocketAddrV4, Node>,
    /// Datagrams sent and not yet delivered: (from, to, bytes).
    pub wire: Wire,
    /// A relay: datagrams to this address are handled by the closure,
    /// which returns what it sends on.
    pub relay: Option<(SocketAddrV4, Relay)>,
}

/// What a relay (a fake cathedral) does with one datagram: the datagrams
/// it sends in answer, `(to, bytes)`.
pub type Relay = Box<dyn FnMut(SocketAddrV4, &[u8]) -> Vec<(SocketAddrV4, Vec<u8>)>>;

/// The address of simulated node `i`.
pub fn addr(i: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 10 + i), 4500)
}

impl Net {
    /// An empty network.
    pub fn new() -> Net {
        Net {
            nodes: HashMap::new(),
            wire: Vec::new(),
            relay: None,
        }
    }

    /// Adds an engine at `at`.
    pub fn add(&mut self, at: SocketAddrV4, profile: Profile) {
        self.nodes.insert(at, Node::new(profile));
    }

    /// The engine at `at`.
    pub fn node(&self, at: SocketAddrV4) -> &Node {
        &self.nodes[&at]
    }

    fn collect(&mut self) {
        for (at, n) in &self.nodes {
            for (to, d) in std::mem::take(&mut n.host.0.lock().unwrap().datagrams) {
                self.wire.push((*at, to, d));
            }
        }
    }

    /// One step: delivers what is in flight through `filter` (which may
    /// drop or reorder), moves every clock by `ms` and runs due timers.
    pub fn step(&mut self, ms: u64, filter: &mut dyn FnMut(&mut Wire)) {
        self.collect();
        let mut batch = std::mem::take(&mut self.wire);
        filter(&mut batch);
        for (from, to, d) in batch {
            if let Some((raddr, relay)) = self.relay.as_mut()
                && to == *raddr
            {
                for (dst, bytes) in relay(from, &d) {
                    self.wire.push((*raddr, dst, bytes));
                }
                continue;
            }
            if let Some(n) = self.nodes.get(&to) {
                n.engine.receive_from(from, &d);
            }
        }
        for n in self.nodes.values() {
            n.engine.advance_clock(ms).unwrap();
            if n.engine.next_timeout_ms() == Some(0) {
                n.engine.handle_timeout();
            }
        }
        self.collect();
    }

    /// Steps on a clean link until every engine is up (at most `steps`).
    pub fn until_up(&mut self, steps: u32) -> bool {
        for _ in 0..steps {
            if self.all_up() {
                return true;
            }
            self.step(100, &mut |_| {});
        }
        self.all_up()
    }

    /// True if every engine is up.
    pub fn all_up(&self) -> bool {
        self.nodes
            .values()
            .all(|n| n.engine.state() == TunnelState::Up)
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}
