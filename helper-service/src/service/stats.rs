//! A running tunnel's numbers: once a second the service asks each running
//! tunnel's control socket (spec/files.md §8, the socket the service put
//! at [`Store::control_path`]) for its status, turns the answer into a
//! [`TunnelStats`] (kept for `Status` answers and sent as
//! [`Event::Stats`]), and every [`SAMPLE_EVERY_S`] seconds stores the
//! counters as a sample ([`Store::add_sample`], 24 h kept).
//!
//! What the numbers mean:
//! * the control socket counts packets and bytes per SA, from 0 at each
//!   key install; the service adds up the SAs it saw since the tunnel was
//!   connected ([`Summed`]). Packets carried by an SA after the last poll
//!   before it was replaced (at most a second's worth per rekey) are not
//!   counted, and the sums start at 0 with each connect;
//! * the stage is [`Stage::Keying`] until both directions have an SA,
//!   then [`Stage::Online`], or [`Stage::Rekeying`] while the guardian's
//!   lines say an exchange is under way ([`LogBook::exchange_under_way`]).
//!   [`Stage::Error`] is never reported: a tunnel whose socket does not
//!   answer has no stats at all, and its state says why;
//! * the path is [`PathKind::Relay`] when the peer is the profile's
//!   cathedral, else [`PathKind::Direct`]; unknown while the peer is;
//! * `since_key_exchange_s` is the age of the sending SA, both read on
//!   CLOCK_MONOTONIC.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chantry_core::config::Config;
use chantry_core::ipc::{Counters, Event, PathKind, Stage, StatsSample, TunnelStats};
use tokio::sync::broadcast;

use super::logbook::LogBook;
use super::store::Store;
use super::tunnels::{Tunnels, unix_now};
use crate::control::{SaStats, Status};

/// How often the control sockets are asked.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long one control socket has to answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// Seconds between two stored samples of a tunnel.
pub const SAMPLE_EVERY_S: u64 = 10;

/// What the profile's configuration says about where packets may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The `cathedral` line as written (`host:port`).
    pub cathedral: Option<String>,
    /// Its address (a host name resolved once), to tell a relayed peer.
    pub cathedral_addr: Option<SocketAddrV4>,
}

impl Facts {
    /// Reads the facts from a configuration text; a host name is resolved
    /// (blocking: call it off the runtime).
    pub fn of_config(label: &str, text: &str) -> Facts {
        let Ok(config) = Config::parse(label, text) else {
            return Facts::default();
        };
        let Some(hp) = config.cathedral() else {
            return Facts::default();
        };
        let addr = hp.literal().or_else(|| {
            use std::net::ToSocketAddrs as _;
            (hp.host.as_str(), hp.port)
                .to_socket_addrs()
                .ok()?
                .find_map(|a| match a {
                    std::net::SocketAddr::V4(v4) => Some(v4),
                    std::net::SocketAddr::V6(_) => None,
                })
        });
        Facts {
            cathedral: Some(hp.to_string()),
            cathedral_addr: addr,
        }
    }
}

/// One direction's counters summed over the SAs seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summed {
    spi: u32,
    pkt: u64,
    bytes: u64,
    base: Counters,
}

impl Summed {
    /// Takes a new reading; returns the sum. A new SPI, or counters that
    /// went down, start a new SA: the last reading of the old one is added
    /// to the base.
    pub fn update(&mut self, sa: &SaStats) -> Counters {
        if sa.spi != self.spi || sa.pkt < self.pkt || sa.bytes < self.bytes {
            self.base.packets = self.base.packets.saturating_add(self.pkt);
            self.base.bytes = self.base.bytes.saturating_add(self.bytes);
            self.spi = sa.spi;
        }
        self.pkt = sa.pkt;
        self.bytes = sa.bytes;
        Counters {
            packets: self.base.packets.saturating_add(self.pkt),
            bytes: self.base.bytes.saturating_add(self.bytes),
        }
    }
}

/// Builds the numbers of one reading.
pub fn derive(
    status: &Status,
    facts: &Facts,
    tx: Counters,
    rx: Counters,
    now_mono: u64,
    exchanging: bool,
) -> TunnelStats {
    let keyed = status.tx.spi != 0 && status.rx.spi != 0;
    let stage = match (keyed, exchanging) {
        (false, _) => Stage::Keying,
        (true, true) => Stage::Rekeying,
        (true, false) => Stage::Online,
    };
    let path = status.peer.map(|p| {
        if Some(p) == facts.cathedral_addr {
            PathKind::Relay
        } else {
            PathKind::Direct
        }
    });
    TunnelStats {
        stage,
        path,
        peer: status.peer.map(|p| p.to_string()),
        cathedral: facts.cathedral.clone(),
        since_key_exchange_s: (status.tx.spi != 0).then(|| now_mono.saturating_sub(status.tx.age)),
        mtu: status.mtu,
        tx,
        rx,
    }
}

#[derive(Debug, Default)]
struct Track {
    facts: Facts,
    latest: Option<TunnelStats>,
    tx: Summed,
    rx: Summed,
    last_sample: Option<u64>,
}

/// The latest numbers of every running tunnel, shared by the poller and
/// the connections.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    tracks: Arc<Mutex<HashMap<String, Track>>>,
}

impl Stats {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Track>> {
        self.tracks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The numbers of `name`'s tunnel from the last poll, if it runs and
    /// its control socket answered.
    pub fn latest(&self, name: &str) -> Option<TunnelStats> {
        self.lock().get(name).and_then(|t| t.latest.clone())
    }

    /// Polls once a second until the task is dropped.
    pub async fn run(
        self,
        tunnels: Tunnels,
        store: Store,
        logs: Arc<LogBook>,
        events: broadcast::Sender<Event>,
    ) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            self.poll_once(&tunnels, &store, &logs, &events).await;
        }
    }

    /// Asks every running tunnel once.
    pub async fn poll_once(
        &self,
        tunnels: &Tunnels,
        store: &Store,
        logs: &LogBook,
        events: &broadcast::Sender<Event>,
    ) {
        let running = tunnels.running();
        let gone: Vec<String> = {
            let mut map = self.lock();
            let gone = map
                .keys()
                .filter(|n| !running.iter().any(|(r, _)| r == *n))
                .cloned()
                .collect::<Vec<_>>();
            for n in &gone {
                map.remove(n);
            }
            gone
        };
        for n in &gone {
            logs.forget_exchange(n);
        }
        let mut asked = Vec::with_capacity(running.len());
        for (name, path) in running {
            let query = tokio::task::spawn_blocking(move || query(&path, QUERY_TIMEOUT));
            asked.push((name, query));
        }
        for (name, query) in asked {
            let status = match query.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(profile = name, "no status: {e}");
                    if let Some(t) = self.lock().get_mut(&name) {
                        t.latest = None;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(profile = name, "status query failed: {e}");
                    continue;
                }
            };
            if !self.lock().contains_key(&name) {
                let facts = self.facts_of(store, &name).await;
                self.lock().entry(name.clone()).or_insert(Track {
                    facts,
                    ..Track::default()
                });
            }
            let at = unix_now();
            let now_mono = monotonic_now();
            let exchanging = logs.exchange_under_way(&name);
            let (stats, sample) = {
                let mut map = self.lock();
                let Some(t) = map.get_mut(&name) else {
                    continue;
                };
                let tx = t.tx.update(&status.tx);
                let rx = t.rx.update(&status.rx);
                let stats = derive(&status, &t.facts, tx, rx, now_mono, exchanging);
                t.latest = Some(stats.clone());
                let due = t
                    .last_sample
                    .is_none_or(|last| at >= last.saturating_add(SAMPLE_EVERY_S));
                let sample = due.then(|| {
                    t.last_sample = Some(at);
                    StatsSample { at, tx, rx }
                });
                (stats, sample)
            };
            let _ = events.send(Event::Stats {
                name: name.clone(),
                at,
                stats,
            });
            if let Some(sample) = sample
                && let Err(e) = store.add_sample(&name, &sample).await
            {
                tracing::warn!(profile = name, "statistics sample not stored: {e}");
            }
        }
    }

    /// The facts of `name`'s stored configuration.
    async fn facts_of(&self, store: &Store, name: &str) -> Facts {
        let config = match store.get(name).await {
            Ok(Some(p)) => p.config,
            _ => return Facts::default(),
        };
        let label = format!("{name}.conf");
        tokio::task::spawn_blocking(move || Facts::of_config(&label, &config))
            .await
            .unwrap_or_default()
    }
}

/// Asks the control socket at `path` for the tunnel's status.
#[cfg(unix)]
fn query(
    path: &std::path::Path,
    timeout: Duration,
) -> Result<Status, crate::control::ControlError> {
    crate::control::query(path, timeout)
}

/// The control socket is a Unix datagram socket; where there is none no
/// tunnel runs, so nothing is ever asked.
#[cfg(not(unix))]
fn query(path: &std::path::Path, _timeout: Duration) -> Result<Status, String> {
    Err(format!(
        "{}: no Unix datagram sockets on this system",
        path.display()
    ))
}

/// Whole seconds of CLOCK_MONOTONIC, the clock of the control socket's
/// times (0 if it cannot be read, or where there is none).
pub fn monotonic_now() -> u64 {
    #[cfg(unix)]
    {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map_or(0, |t| u64::try_from(t.tv_sec()).unwrap_or(0))
    }
    #[cfg(not(unix))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn sa(spi: u32, age: u64, pkt: u64, bytes: u64) -> SaStats {
        SaStats {
            spi,
            age,
            pkt,
            last: 0,
            bytes,
        }
    }

    #[test]
    fn sums_run_across_rekeys() {
        let mut s = Summed::default();
        let c = |packets, bytes| Counters { packets, bytes };
        assert_eq!(s.update(&sa(0, 0, 0, 0)), c(0, 0));
        assert_eq!(s.update(&sa(7, 10, 5, 500)), c(5, 500));
        assert_eq!(s.update(&sa(7, 10, 9, 900)), c(9, 900));
        // Rekey: the new SA starts from 0.
        assert_eq!(s.update(&sa(8, 70, 2, 200)), c(11, 1100));
        // Keys erased, then a new exchange.
        assert_eq!(s.update(&sa(0, 0, 0, 0)), c(11, 1100));
        assert_eq!(s.update(&sa(9, 90, 1, 100)), c(12, 1200));
        // Same SPI reinstalled (counters went down): still a new SA.
        assert_eq!(s.update(&sa(9, 95, 0, 0)), c(12, 1200));
        assert_eq!(s.update(&sa(9, 95, 1, 100)), c(13, 1300));
    }

    fn status(tx_spi: u32, rx_spi: u32, peer: Option<SocketAddrV4>) -> Status {
        Status {
            tx: sa(tx_spi, 100, 3, 300),
            rx: sa(rx_spi, 101, 4, 400),
            peer,
            mtu: 1422,
        }
    }

    #[test]
    fn stage_path_and_key_age() {
        let cathedral = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4500);
        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), 4500);
        let facts = Facts {
            cathedral: Some("cathedral.example:4500".into()),
            cathedral_addr: Some(cathedral),
        };
        let c = Counters::default();
        let s = derive(&status(0, 5, None), &facts, c, c, 130, false);
        assert_eq!(s.stage, Stage::Keying);
        assert_eq!((s.path, s.peer.clone()), (None, None));
        assert_eq!(s.since_key_exchange_s, None);
        assert_eq!(s.cathedral.as_deref(), Some("cathedral.example:4500"));

        let s = derive(&status(4, 5, Some(cathedral)), &facts, c, c, 130, false);
        assert_eq!(s.stage, Stage::Online);
        assert_eq!(s.path, Some(PathKind::Relay));
        assert_eq!(s.peer.as_deref(), Some("192.0.2.1:4500"));
        assert_eq!(s.since_key_exchange_s, Some(30));
        assert_eq!(s.mtu, 1422);

        let s = derive(&status(4, 5, Some(peer)), &facts, c, c, 130, true);
        assert_eq!(s.stage, Stage::Rekeying);
        assert_eq!(s.path, Some(PathKind::Direct));

        // Without a cathedral every known peer is direct; an exchange
        // before the first keys is still keying.
        let s = derive(
            &status(4, 0, Some(peer)),
            &Facts::default(),
            c,
            c,
            130,
            true,
        );
        assert_eq!(s.stage, Stage::Keying);
        assert_eq!(s.path, Some(PathKind::Direct));
        assert_eq!(s.cathedral, None);
    }

    #[test]
    fn facts_come_from_the_cathedral_line() {
        let mut text = String::from(
            "instance t1\nspi 0x0102\nsecret /k\nlocal 127.0.0.1:4500\ntunnel 10.0.0.1/30 1422\n\
             cathedral_id 0badf00d\ncathedral_flock 1122334455667700\ncathedral_secret /c\n\
             cathedral_cosk /o\ncathedral 127.0.0.1:4600\n",
        );
        for role in chantry_core::config::Mode::Tunnel.roles() {
            text.push_str(&format!("run {} as nobody\n", role.as_str()));
        }
        let f = Facts::of_config("x", &text);
        assert_eq!(f.cathedral.as_deref(), Some("127.0.0.1:4600"));
        assert_eq!(
            f.cathedral_addr,
            Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4600))
        );
        assert_eq!(Facts::of_config("x", "mode tunnel\n"), Facts::default());
    }
}
