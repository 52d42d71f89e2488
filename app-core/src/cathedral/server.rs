//! A sans-IO cathedral (behaviour.md §8): the registry of tunnels built
//! from signed INFO offers, the INFO reply with the relay/p2p decision,
//! NAT probes, and the forwarding of exchange offers and data packets
//! between the registered tunnels of a flock (§8.10).
//!
//! NAT test (§8.4 step 6): a CIBORIUM probe whose source equals the
//! tunnel's main-path source makes that source the tunnel's p2p address;
//! a different source (a port-changing NAT) clears it. Unlike the
//! reference, a p2p address is used only while probes keep confirming it
//! ([`P2P_MAX_AGE`]): a client that stops probing (chantryd's does after a
//! failed direct path, see [`super::path`]) is relayed again, and so is its
//! peer.
//!
//! Also here: ambry distribution (§8.6, [`Cathedral::set_bundle`]),
//! liturgy groups (§8.7, [`liturgy`]), remembrance (§8.8), federation
//! with other cathedrals (§8.9, CATACOMB INFO, LITURGY and P2P_INFO,
//! [`Cathedral::set_federation`]) and the per-tunnel bandwidth caps of
//! relayed data (§8.10).
//!
//! Not here yet: shroud, offer TFC padding.
//!
//! Every datagram is hostile input: [`Cathedral::handle_datagram`] never
//! panics, and every datagram it does not act on is counted in
//! [`Counters::dropped`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::time::Duration;

use crate::entropy::Entropy;
use crate::kdf::{self, FLOCK_DOMAIN_MASK, OfferLabel};
use crate::time::{Instant, Now};
use crate::wire::data::Header as DataHeader;
use crate::wire::offer::{
    self, HEADER_LEN, INFO_FLAG_SAME_EXTERNAL_IPV4, InfoBody, LITURGY_FLAG_SIGNALING, LiturgyBody,
    Magic, Offer, OfferBody, OfferHeader, PacketKind,
};

use super::checks::{
    ClientDirectory, OfferSource, Rejection, VerifiedOffer, catacomb_reencrypt, check_offer,
};
use super::settings::Settings;
use crate::ambry::Bundle;
use crate::secret::Key32;
use crate::wire::offer::{
    INFO_FLAG_REMEMBRANCE, INFO_FLAG_SKIP_AMBRY, P2pInfoBody, RemembranceBody,
};

mod ambries;
pub mod bandwidth;
pub mod liturgy;

use ambries::Ambries;
use bandwidth::Bucket;
use liturgy::Liturgies;

/// Smallest datagram a cathedral looks at (behaviour.md §8.1).
pub const MIN_DATAGRAM: usize = 50;
/// A tunnel not refreshed for this long is forgotten (§8.11).
pub const TUNNEL_MAX_AGE: Duration = Duration::from_secs(120);
/// How long a new or restarted tunnel waits before it may go p2p.
pub const P2P_COOLDOWN: Duration = Duration::from_secs(15);
/// How often the registry is swept for expired tunnels.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// At most one federation update per tunnel this often (§8.4 step 7).
pub const FEDERATE_INTERVAL: Duration = Duration::from_secs(3);
/// At most one REMEMBRANCE per tunnel this often (§8.8).
pub const REMEMBRANCE_INTERVAL: Duration = Duration::from_secs(15);
/// A p2p address not confirmed by a NAT probe for this long is no longer
/// named in INFO replies: four notify intervals, so two or three lost
/// probes in a row do not end a direct path. (The reference keeps it until
/// the client restarts or its NAT is seen to change ports.)
pub const P2P_MAX_AGE: Duration = Duration::from_secs(20);

/// A registry key: (source flock with domain, destination flock with
/// domain, tunnel id).
pub type TunnelKey = (u64, u64, u16);

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    /// Shorter than a cathedral looks at.
    #[error("datagram too short: {0} bytes")]
    TooShort(usize),
    /// An offer that failed the checks of behaviour.md §8.3.
    #[error("offer rejected: {0}")]
    Offer(#[from] Rejection),
    /// A data packet whose header does not parse (SPI 0, seq mismatch).
    #[error("malformed data packet")]
    MalformedData,
    /// Source and destination flock may not exchange traffic.
    #[error("flocks {src:#x} -> {dst:#x} may not talk")]
    FlocksNotForwardable {
        /// Source flock.
        src: u64,
        /// Destination flock.
        dst: u64,
    },
    /// No `allow` lets this identity register this tunnel.
    #[error("identity {identity:#010x} may not register tunnel {tunnel:#06x}")]
    NotAllowed {
        /// Header spi.
        identity: u32,
        /// Tunnel id.
        tunnel: u16,
    },
    /// A NAT probe for a tunnel that never registered on the main port.
    #[error("NAT probe for an unknown tunnel")]
    NatProbeUnknown,
    /// The sending tunnel is not registered.
    #[error("sender tunnel not registered")]
    UnknownSender,
    /// The receiving tunnel is not registered.
    #[error("receiver tunnel not registered")]
    UnknownReceiver,
    /// The SPI is not one the receiver reported.
    #[error("spi {0:#010x} is not the receiver's")]
    WrongSpi(u32),
    /// A verified offer type a cathedral does not take (AMBRY, KEY, ...
    /// from a client; P2P_INFO not through CATACOMB).
    #[error("offer type not served")]
    NotServed,
    /// A LITURGY whose destination flock is not the one it must be (0 from
    /// a client, its own flock through CATACOMB).
    #[error("liturgy for flock {0:#x} refused")]
    LiturgyFlock(u64),
    /// No `allow` ties this identity to the liturgy peer id.
    #[error("identity {identity:#010x} may not speak for liturgy peer {id:#04x}")]
    LiturgyNotAllowed {
        /// Header spi.
        identity: u32,
        /// Peer id in the offer.
        id: u8,
    },
    /// A P2P_INFO while `cathedral_p2p_sync` is off, or for a tunnel that
    /// is not a federated one.
    #[error("P2P_INFO ignored")]
    P2pInfoIgnored,
    /// The receiver's bandwidth cap is reached.
    #[error("bandwidth cap of the receiving tunnel reached")]
    BandwidthCap,
}

/// What the cathedral has done since its start (or the last reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Verified INFO offers on the main path.
    pub info: u64,
    /// Verified NAT probes.
    pub nat_probes: u64,
    /// Of those, probes whose source differed from the tunnel's main-path
    /// source (a port-changing NAT: that tunnel is relayed).
    pub nat_changed: u64,
    /// INFO replies sent.
    pub info_replies: u64,
    /// Of those, replies naming the peer's NAT-tested address (p2p)
    /// rather than the relay.
    pub info_p2p: u64,
    /// Tunnels created.
    pub registered: u64,
    /// Instance changes seen (peer restarts).
    pub restarts: u64,
    /// Exchange offers relayed.
    pub offers_relayed: u64,
    /// Data packets relayed.
    pub data_relayed: u64,
    /// Bytes of relayed data packets.
    pub data_bytes: u64,
    /// Datagrams dropped, for any reason.
    pub dropped: u64,
    /// Of those, offers that failed authentication, signature, timestamp
    /// or identity checks.
    pub offers_rejected: u64,
    /// AMBRY offers sent.
    pub ambries_sent: u64,
    /// REMEMBRANCE offers sent.
    pub remembrances_sent: u64,
    /// CATACOMB offers sent to federation peers.
    pub federated_out: u64,
    /// Verified CATACOMB offers from federation peers.
    pub federated_in: u64,
    /// Data packets dropped by a bandwidth cap.
    pub bandwidth_drops: u64,
    /// Verified LITURGY offers taken (from clients and federated).
    pub liturgy: u64,
    /// LITURGY replies sent (the group's visible members).
    pub liturgy_replies: u64,
    /// Client LITURGY offers that came too soon after a reply: recorded,
    /// not answered.
    pub liturgy_too_fast: u64,
}

/// One registered tunnel.
#[derive(Clone, Debug)]
struct Tunnel {
    addr: SocketAddrV4,
    instance: u64,
    rx_active: u32,
    rx_pending: u32,
    last_seen: Instant,
    p2p: Option<SocketAddrV4>,
    p2p_seen: Instant,
    p2p_cooldown: Instant,
    /// Registered through a federation peer (`addr` is that cathedral).
    federated: bool,
    /// Next time a client INFO of this tunnel may be federated.
    next_federate: Instant,
    /// Next time this tunnel may get a REMEMBRANCE.
    next_remembrance: Instant,
    /// Cap on data relayed to this tunnel.
    bucket: Bucket,
}

impl Tunnel {
    /// The p2p address, if a probe confirmed it recently enough.
    fn p2p_at(&self, now: Instant) -> Option<SocketAddrV4> {
        self.p2p
            .filter(|_| now.saturating_since(self.p2p_seen) < P2P_MAX_AGE)
    }
}

/// The cathedral: registry, replies, relay.
pub struct Cathedral {
    public: SocketAddrV4,
    settings: Settings,
    directory: Box<dyn ClientDirectory + Send>,
    tunnels: HashMap<TunnelKey, Tunnel>,
    liturgies: Liturgies,
    out: VecDeque<(SocketAddrV4, Vec<u8>)>,
    counters: Counters,
    next_sweep: Instant,
    ambries: Ambries,
    sync: Option<Key32>,
    p2p_sync: bool,
}

impl core::fmt::Debug for Cathedral {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Cathedral")
            .field("public", &self.public)
            .field("tunnels", &self.tunnels.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Cathedral {
    /// A cathedral advertising `public` as its relay address, with the
    /// flocks of `settings` and the client keys of `directory`.
    pub fn new(
        public: SocketAddrV4,
        settings: Settings,
        directory: Box<dyn ClientDirectory + Send>,
    ) -> Self {
        Cathedral {
            public,
            settings,
            directory,
            tunnels: HashMap::new(),
            liturgies: Liturgies::default(),
            out: VecDeque::new(),
            counters: Counters::default(),
            next_sweep: Instant::ZERO,
            ambries: Ambries::default(),
            sync: None,
            p2p_sync: false,
        }
    }

    /// Federation (§8.9): the sync secret shared by all federated
    /// cathedrals (the cathedral's `secret` file) and
    /// `cathedral_p2p_sync`. Without it CATACOMB is refused and nothing is
    /// federated. The peers are the settings' `federate` lines.
    pub fn set_federation(&mut self, sync: Key32, p2p_sync: bool) {
        self.sync = Some(sync);
        self.p2p_sync = p2p_sync;
    }

    /// Installs the ambry bundle of the flock pair (a, b) (`a == b`: the
    /// flock's own bundle), or removes it with `None`. Clients reporting
    /// another generation get their entry with every INFO (§8.6).
    pub fn set_bundle(&mut self, a: u64, b: u64, bundle: Option<Bundle>) {
        self.ambries.set(a, b, bundle);
    }

    /// The generation of the bundle loaded for (a, b), if any.
    pub fn bundle_generation(&self, a: u64, b: u64) -> Option<u32> {
        self.ambries.generation(a, b)
    }

    /// The federation peers: the settings' `federate` lines without this
    /// cathedral's own address.
    fn federation_peers(&self) -> impl Iterator<Item = SocketAddrV4> + '_ {
        self.settings
            .federate
            .iter()
            .copied()
            .filter(|p| *p != self.public)
    }

    /// Replaces the settings and keys (a reload): tunnels whose flocks or
    /// owner are no longer allowed are dropped, the others stay.
    pub fn set_settings(&mut self, settings: Settings, directory: Box<dyn ClientDirectory + Send>) {
        self.settings = settings;
        self.directory = directory;
        let s = &self.settings;
        self.tunnels.retain(|&(src, dst, id), t| {
            let Some(flock) = s.flocks.get(&(src & FLOCK_DOMAIN_MASK)) else {
                return false;
            };
            let Some(allow) = flock.allows.iter().find(|a| a.owner == (id >> 8) as u8) else {
                return false;
            };
            t.bucket.set_mbit(allow.bandwidth);
            forwardable(s, src, dst).is_ok()
        });
        self.ambries
            .retain(|a, b| s.flocks.contains_key(&a) && (a == b || s.xflock(a, b)));
        self.liturgies
            .retain(|flock, identity, id| s.allowed(flock, identity, id).is_some());
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Registered tunnels.
    pub fn tunnels(&self) -> usize {
        self.tunnels.len()
    }

    /// Liturgy entries: (from clients, federated).
    pub fn liturgy_entries(&self) -> (usize, usize) {
        self.liturgies.count()
    }

    /// Where the tunnel `key` was last heard from, if registered.
    pub fn tunnel_address(&self, key: TunnelKey) -> Option<SocketAddrV4> {
        self.tunnels.get(&key).map(|t| t.addr)
    }

    /// The next datagram to send: (destination, bytes).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.out.pop_front()
    }

    /// When [`Cathedral::handle_timeout`] must run next.
    pub fn next_deadline(&self) -> Instant {
        self.next_sweep
    }

    /// Forgets tunnels not refreshed for [`TUNNEL_MAX_AGE`].
    pub fn handle_timeout(&mut self, now: Now) {
        if now.mono < self.next_sweep {
            return;
        }
        self.next_sweep = now.mono + SWEEP_INTERVAL;
        self.tunnels
            .retain(|_, t| now.mono.saturating_since(t.last_seen) < TUNNEL_MAX_AGE);
        self.liturgies.expire(now.mono);
    }

    /// Handles one datagram from `from`. `Err` means dropped (and
    /// counted); replies and relayed packets are queued for
    /// [`Cathedral::poll_transmit`].
    pub fn handle_datagram(
        &mut self,
        now: Now,
        from: SocketAddrV4,
        packet: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<(), Dropped> {
        let r = self.dispatch(now, from, packet, rng);
        if let Err(e) = r {
            self.counters.dropped += 1;
            if matches!(e, Dropped::Offer(_)) {
                self.counters.offers_rejected += 1;
            }
        }
        r
    }

    fn dispatch(
        &mut self,
        now: Now,
        from: SocketAddrV4,
        packet: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<(), Dropped> {
        if packet.len() < MIN_DATAGRAM {
            return Err(Dropped::TooShort(packet.len()));
        }
        match offer::classify(packet) {
            Some(PacketKind::Offer(Magic::Sacrament)) => self.forward_offer(packet),
            Some(PacketKind::Offer(_)) => self.cathedral_offer(now, from, packet, rng),
            _ => self.forward_data(now, packet),
        }
    }

    fn cathedral_offer(
        &mut self,
        now: Now,
        from: SocketAddrV4,
        packet: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<(), Dropped> {
        // CATACOMB is opened with the sync secret only when it comes from
        // a configured federation peer (§8.9).
        let sync = self
            .sync
            .clone()
            .filter(|_| self.federation_peers().any(|p| p == from));
        let v = check_offer(packet, now.wall, self.directory.as_ref(), sync.as_ref())?;
        let catacomb = v.source() == OfferSource::Federation;
        if catacomb {
            self.counters.federated_in += 1;
        }
        match *v.body() {
            OfferBody::Info(info) => self.info(now, from, &v, info, catacomb, rng),
            OfferBody::P2pInfo(p) if catacomb => self.p2p_info(now, &v, p),
            OfferBody::Liturgy(l) => self.liturgy(now, from, &v, &l, catacomb, rng),
            _ => Err(Dropped::NotServed),
        }
    }

    /// An INFO from a client (main path or NAT probe) or federated by a
    /// peer cathedral (behaviour.md §8.4).
    fn info(
        &mut self,
        now: Now,
        from: SocketAddrV4,
        v: &VerifiedOffer,
        info: InfoBody,
        catacomb: bool,
        rng: &mut dyn Entropy,
    ) -> Result<(), Dropped> {
        let nat = v.source() == OfferSource::NatProbe;
        let header = v.offer().header();
        let (src, dst, identity) = (header.flock_src, header.flock_dst, header.spi);
        forwardable(&self.settings, src, dst)?;
        let Some(bandwidth) = self
            .settings
            .allowed(src, identity, (info.tunnel >> 8) as u8)
        else {
            return Err(Dropped::NotAllowed {
                identity,
                tunnel: info.tunnel,
            });
        };
        let key = (src, dst, info.tunnel);
        if nat {
            self.counters.nat_probes += 1;
            let t = self.tunnels.get_mut(&key).ok_or(Dropped::NatProbeUnknown)?;
            if t.federated {
                return Ok(());
            }
            if t.addr != from {
                // A port-changing NAT: no p2p for this client.
                t.p2p = None;
                self.counters.nat_changed += 1;
            } else if now.mono >= t.p2p_cooldown {
                t.p2p = Some(from);
                t.p2p_seen = now.mono;
            }
            return Ok(());
        }
        self.counters.info += 1;
        let t = self.tunnels.entry(key).or_insert_with(|| {
            self.counters.registered += 1;
            Tunnel {
                addr: from,
                instance: info.instance,
                rx_active: 0,
                rx_pending: 0,
                last_seen: now.mono,
                p2p: None,
                p2p_seen: now.mono,
                p2p_cooldown: now.mono + P2P_COOLDOWN,
                federated: catacomb,
                next_federate: now.mono,
                next_remembrance: now.mono,
                bucket: Bucket::new(bandwidth, now.mono),
            }
        });
        let restarted = t.instance != info.instance;
        if restarted {
            t.p2p = None;
            t.p2p_cooldown = now.mono + P2P_COOLDOWN;
        }
        let remembrance = !restarted
            && !catacomb
            && info.flags & INFO_FLAG_REMEMBRANCE != 0
            && now.mono >= t.next_remembrance;
        if remembrance {
            t.next_remembrance = now.mono + REMEMBRANCE_INTERVAL;
        }
        t.last_seen = now.mono;
        t.rx_active = info.rx_active;
        t.rx_pending = info.rx_pending;
        t.instance = info.instance;
        t.addr = from;
        t.federated = catacomb;
        let federate = !catacomb && now.mono >= t.next_federate;
        if federate {
            t.next_federate = now.mono + FEDERATE_INTERVAL;
        }
        if restarted {
            self.counters.restarts += 1;
        } else if !catacomb {
            self.reply_info(now, key, identity, from, rng);
            if remembrance {
                self.send_remembrance(now, src, identity, from, rng);
            }
        }
        if !catacomb && info.flags & INFO_FLAG_SKIP_AMBRY == 0 {
            self.send_ambry(now, key, identity, info.ambry_generation, from, rng);
        }
        if federate {
            self.federate(v, key, identity, rng);
        }
        Ok(())
    }

    /// A LITURGY from a client, or federated by a peer cathedral
    /// (behaviour.md §8.7): record the member; to a client (at most every
    /// 3 s) federate its offer and reply with the members it may see.
    fn liturgy(
        &mut self,
        now: Now,
        from: SocketAddrV4,
        v: &VerifiedOffer,
        body: &LiturgyBody,
        catacomb: bool,
        rng: &mut dyn Entropy,
    ) -> Result<(), Dropped> {
        let header = v.offer().header();
        let (src, identity) = (header.flock_src, header.spi);
        let dst = header.flock_dst & FLOCK_DOMAIN_MASK;
        let want = if catacomb { src & FLOCK_DOMAIN_MASK } else { 0 };
        if dst != want {
            return Err(Dropped::LiturgyFlock(dst));
        }
        if self.settings.allowed(src, identity, body.id).is_none() {
            return Err(Dropped::LiturgyNotAllowed {
                identity,
                id: body.id,
            });
        }
        self.counters.liturgy += 1;
        let duties = self
            .liturgies
            .update(now.mono, src, identity, body, from, catacomb);
        if duties.remembrance {
            self.send_remembrance(now, src, identity, from, rng);
        }
        if duties.too_fast {
            self.counters.liturgy_too_fast += 1;
        }
        if !duties.reply {
            return Ok(());
        }
        self.federate_liturgy(v, src, rng);
        let signaling = body.flags & LITURGY_FLAG_SIGNALING != 0;
        let reply = LiturgyBody {
            id: 0,
            group: body.group,
            peers: self.liturgies.visible_to(src, body.id, signaling),
            hidden: 0,
            flags: 0,
        };
        if let Some(sealed) =
            self.seal_for_client(now, src, identity, &OfferBody::Liturgy(reply), rng)
        {
            self.out.push_back((from, sealed));
            self.counters.liturgy_replies += 1;
        }
        Ok(())
    }

    /// Re-sends a client's signed LITURGY to every federation peer under
    /// the sync secret, its destination flock its own (§8.9).
    fn federate_liturgy(&mut self, v: &VerifiedOffer, src: u64, rng: &mut dyn Entropy) {
        let Some(sync) = self.sync.clone() else {
            return;
        };
        let peers: Vec<SocketAddrV4> = self.federation_peers().collect();
        for peer in peers {
            let mut seed = [0u8; 64];
            rng.fill(&mut seed);
            if let Ok(sealed) = catacomb_reencrypt(v, src, &sync, &seed) {
                self.out.push_back((peer, sealed.to_vec()));
                self.counters.federated_out += 1;
            }
        }
    }

    /// A federated P2P_INFO (§8.9): copies the p2p address and flag of a
    /// federated tunnel, with `cathedral_p2p_sync` only.
    fn p2p_info(&mut self, now: Now, v: &VerifiedOffer, p: P2pInfoBody) -> Result<(), Dropped> {
        if !self.p2p_sync {
            return Err(Dropped::P2pInfoIgnored);
        }
        let header = v.offer().header();
        let (src, dst, identity) = (header.flock_src, header.flock_dst, header.spi);
        forwardable(&self.settings, src, dst)?;
        if self
            .settings
            .allowed(src, identity, (p.tunnel >> 8) as u8)
            .is_none()
        {
            return Err(Dropped::NotAllowed {
                identity,
                tunnel: p.tunnel,
            });
        }
        let t = self
            .tunnels
            .get_mut(&(src, dst, p.tunnel))
            .ok_or(Dropped::UnknownSender)?;
        if !t.federated {
            return Err(Dropped::P2pInfoIgnored);
        }
        t.p2p = (p.flags != 0).then_some(SocketAddrV4::new(p.ip, p.port));
        t.p2p_seen = now.mono;
        Ok(())
    }

    /// Re-sends a client's signed INFO to every federation peer under the
    /// sync secret, and a P2P_INFO with its main-path address (§8.9).
    fn federate(
        &mut self,
        v: &VerifiedOffer,
        key: TunnelKey,
        identity: u32,
        rng: &mut dyn Entropy,
    ) {
        let Some(sync) = self.sync.clone() else {
            return;
        };
        let (src, dst, tunnel) = key;
        let p2p = match self.tunnels.get(&key) {
            Some(t) if self.p2p_sync => P2pInfoBody {
                ip: *t.addr.ip(),
                port: t.addr.port(),
                tunnel,
                flags: u32::from(t.p2p.is_some()),
            },
            _ => P2pInfoBody {
                ip: std::net::Ipv4Addr::UNSPECIFIED,
                port: 0,
                tunnel,
                flags: 0,
            },
        };
        let peers: Vec<SocketAddrV4> = self.federation_peers().collect();
        for peer in peers {
            let mut seed = [0u8; 64];
            rng.fill(&mut seed);
            if let Ok(sealed) = catacomb_reencrypt(v, dst, &sync, &seed) {
                self.out.push_back((peer, sealed.to_vec()));
                self.counters.federated_out += 1;
            }
            rng.fill(&mut seed);
            let header = OfferHeader::new(Magic::Catacomb, src, dst, identity, seed);
            let k = kdf::offer_key(&sync, OfferLabel::Catacomb, &seed, src, 0);
            let mut extra = [0u8; 64];
            rng.fill(&mut extra);
            let timestamp = v.offer().timestamp();
            let sealed = Offer::new(header, timestamp, &OfferBody::P2pInfo(p2p), extra).seal(&k);
            self.out.push_back((peer, sealed.to_vec()));
            self.counters.federated_out += 1;
        }
    }

    /// The AMBRY for the requester's tunnel if its generation is not the
    /// bundle's (§8.6).
    fn send_ambry(
        &mut self,
        now: Now,
        (src, dst, tunnel): TunnelKey,
        identity: u32,
        generation: u32,
        to: SocketAddrV4,
        rng: &mut dyn Entropy,
    ) {
        let Some(body) = self
            .ambries
            .offer_for(src, dst, tunnel, generation, now.wall)
        else {
            return;
        };
        if let Some(sealed) = self.seal_for_client(now, src, identity, &OfferBody::Ambry(body), rng)
        {
            self.out.push_back((to, sealed));
            self.counters.ambries_sent += 1;
        }
    }

    /// The cathedral list (§8.8): this cathedral, then its federation
    /// peers.
    fn send_remembrance(
        &mut self,
        now: Now,
        src: u64,
        identity: u32,
        to: SocketAddrV4,
        rng: &mut dyn Entropy,
    ) {
        let mut body = RemembranceBody {
            ips: [std::net::Ipv4Addr::UNSPECIFIED; offer::REMEMBRANCE_SLOTS],
            ports: [0; offer::REMEMBRANCE_SLOTS],
        };
        let list = std::iter::once(self.public).chain(self.federation_peers());
        for (i, a) in list.take(offer::REMEMBRANCE_SLOTS).enumerate() {
            body.ips[i] = *a.ip();
            body.ports[i] = a.port();
        }
        if let Some(sealed) =
            self.seal_for_client(now, src, identity, &OfferBody::Remembrance(body), rng)
        {
            self.out.push_back((to, sealed));
            self.counters.remembrances_sent += 1;
        }
    }

    /// A cathedral -> client offer: KATEDRAL, header spi = the client's
    /// identity, sealed under its cathedral secret; unsigned (crypto.md
    /// §11). `None` if the identity's secret is gone.
    fn seal_for_client(
        &self,
        now: Now,
        src: u64,
        identity: u32,
        body: &OfferBody,
        rng: &mut dyn Entropy,
    ) -> Option<Vec<u8>> {
        let cs = self
            .directory
            .cathedral_secret(src & FLOCK_DOMAIN_MASK, identity)?;
        let mut seed = [0u8; 64];
        rng.fill(&mut seed);
        let mut extra = [0u8; 64];
        rng.fill(&mut extra);
        let (r1, r2) = (rng.next_u32(), rng.next_u32());
        let filler = (u64::from(r1) << 32) | u64::from(r2);
        let header = OfferHeader::new(
            Magic::Katedral,
            filler,
            filler.rotate_left(17),
            identity,
            seed,
        );
        let key = kdf::offer_key(&cs, OfferLabel::Cathedral, &seed, src, 0);
        Some(
            Offer::new(header, now.wall, body, extra)
                .seal(&key)
                .to_vec(),
        )
    }

    /// The INFO reply (§8.5), if the peer tunnel is registered.
    fn reply_info(
        &mut self,
        now: Now,
        (src, dst, id): TunnelKey,
        identity: u32,
        to: SocketAddrV4,
        rng: &mut dyn Entropy,
    ) {
        let (Some(me), Some(peer)) = (
            self.tunnels.get(&(src, dst, id)),
            self.tunnels.get(&(dst, src, id.swap_bytes())),
        ) else {
            return;
        };
        if peer.federated && !self.p2p_sync {
            // The peer's own cathedral answers it; this one stays silent.
            return;
        }
        let mut body = InfoBody {
            local_ip_raw: me.addr.ip().octets(),
            local_port_raw: me.addr.port().to_be_bytes(),
            ..InfoBody::default()
        };
        let mut p2p = false;
        match (me.p2p_at(now.mono), peer.p2p_at(now.mono)) {
            (Some(a), Some(b)) if a.ip() != b.ip() => {
                body.peer_ip = *b.ip();
                body.peer_port = b.port();
                p2p = true;
            }
            (a, b) => {
                let cooled = now.mono >= me.p2p_cooldown && now.mono >= peer.p2p_cooldown;
                if cooled && a.map(|a| *a.ip()) == b.map(|b| *b.ip()) {
                    body.flags = INFO_FLAG_SAME_EXTERNAL_IPV4;
                }
                body.peer_ip = *self.public.ip();
                body.peer_port = self.public.port();
            }
        }
        if let Some(sealed) = self.seal_for_client(now, src, identity, &OfferBody::Info(body), rng)
        {
            self.out.push_back((to, sealed));
            self.counters.info_replies += 1;
            if p2p {
                self.counters.info_p2p += 1;
            }
        }
    }

    /// An exchange offer between two registered tunnels (§8.10).
    fn forward_offer(&mut self, packet: &[u8]) -> Result<(), Dropped> {
        if packet.len() < HEADER_LEN {
            return Err(Dropped::TooShort(packet.len()));
        }
        let h = OfferHeader::parse(packet).map_err(|_| Dropped::TooShort(packet.len()))?;
        forwardable(&self.settings, h.flock_src, h.flock_dst)?;
        let id = (h.spi >> 16) as u16;
        if !self.tunnels.contains_key(&(h.flock_src, h.flock_dst, id)) {
            return Err(Dropped::UnknownSender);
        }
        let to = self
            .tunnels
            .get(&(h.flock_dst, h.flock_src, id.swap_bytes()))
            .ok_or(Dropped::UnknownReceiver)?
            .addr;
        self.out.push_back((to, packet.to_vec()));
        self.counters.offers_relayed += 1;
        Ok(())
    }

    /// A data packet to the tunnel that reported its SPI, within that
    /// tunnel's bandwidth cap (§8.10).
    fn forward_data(&mut self, now: Now, packet: &[u8]) -> Result<(), Dropped> {
        let h = DataHeader::parse(packet).map_err(|_| Dropped::MalformedData)?;
        forwardable(&self.settings, h.flock_src, h.flock_dst)?;
        let t = self
            .tunnels
            .get_mut(&(h.flock_dst, h.flock_src, (h.spi >> 16) as u16))
            .ok_or(Dropped::UnknownReceiver)?;
        if h.spi != t.rx_active && h.spi != t.rx_pending {
            return Err(Dropped::WrongSpi(h.spi));
        }
        if !t.bucket.admit(now.mono, packet.len()) {
            self.counters.bandwidth_drops += 1;
            return Err(Dropped::BandwidthCap);
        }
        self.out.push_back((t.addr, packet.to_vec()));
        self.counters.data_relayed += 1;
        self.counters.data_bytes += packet.len() as u64;
        Ok(())
    }
}

/// May traffic flow from flock `src` to flock `dst` (§8.4 step 1)?
fn forwardable(s: &Settings, src: u64, dst: u64) -> Result<(), Dropped> {
    let no = Dropped::FlocksNotForwardable { src, dst };
    if src & 0xff != dst & 0xff {
        return Err(no);
    }
    let (a, b) = (src & FLOCK_DOMAIN_MASK, dst & FLOCK_DOMAIN_MASK);
    if a != b && !s.xflock(a, b) {
        return Err(no);
    }
    if !s.flocks.contains_key(&a) || !s.flocks.contains_key(&b) {
        return Err(no);
    }
    Ok(())
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "server_ambry_tests.rs"]
mod ambry_tests;

#[cfg(test)]
#[path = "server_liturgy_tests.rs"]
mod liturgy_tests;
