//! Where a cathedral client sends its tunnel's traffic: through the
//! cathedral's relay, or straight to the peer's NAT-tested address once
//! the cathedral names it, and back to the relay when that direct path
//! goes silent (behaviour.md §4.1, §4.4, §7.2, §8.5).
//!
//! Two pieces, both sans-IO:
//!
//! - [`peer_update`]: the §4.4 rule every writer of the peer address
//!   follows when a cathedral is in use: an update to a non-cathedral
//!   address starts (or renews) a 10 s hold during which an update back to
//!   the cathedral is refused, so relayed stragglers do not pull a working
//!   direct path back to the relay.
//! - [`PathKeeper`]: the client's relay → direct → relay life. An INFO reply
//!   naming a direct address moves the peer there and punches the NATs
//!   (fast heartbeats, §4.1). A direct path that brings nothing within the
//!   punch window, or that falls silent for two heartbeat intervals, is
//!   given up: the peer goes back to the cathedral, NAT probes stop and
//!   direct addresses are ignored for a back-off that doubles on every
//!   failure. The stopped probes let a cathedral that ages its NAT tests
//!   (chantryd's does, see [`super::server::P2P_MAX_AGE`]) name the relay to
//!   both sides again.
//!
//! The reference client has no such fallback: it keeps the direct address
//! for as long as the cathedral names it and only returns to the relay on
//! its 120 s dead-peer reset, after which the next INFO reply moves it
//! straight back (docs/architecture.md discusses the difference).

use core::time::Duration;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::client::PeerInfo;
use crate::time::Instant;

/// How long an update to a non-cathedral address blocks a return to the
/// cathedral (behaviour.md §4.4, §10).
pub const PEER_HOLD: Duration = Duration::from_secs(10);
/// A new direct path must bring a packet from the peer within this long:
/// the fast-heartbeat window of a holepunch (behaviour.md §4.1). The peer
/// hears of the direct path at most one notify interval (5 s) after us
/// and then sends a heartbeat a second.
pub const PUNCH_WINDOW: Duration = Duration::from_secs(15);
/// A direct path that brought packets and then nothing for this long is
/// dead: two heartbeat intervals, the reference's own "grace heartbeat
/// timeout" (behaviour.md §3.4).
pub const DIRECT_SILENCE: Duration = Duration::from_secs(30);
/// First back-off after a failed direct path.
pub const BACKOFF_MIN: Duration = Duration::from_secs(60);
/// Longest back-off; a direct path that carried traffic at least this long
/// before it died starts the next back-off at [`BACKOFF_MIN`] again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(960);

/// What [`peer_update`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldDecision {
    /// The update is refused: it would return to the cathedral during the
    /// hold.
    Refused,
    /// The update goes ahead; the hold is now `hold_until` (`None`: no
    /// hold).
    Allowed {
        /// The new hold deadline.
        hold_until: Option<Instant>,
    },
}

/// behaviour.md §4.4 for an update of the peer address to `to` at `now`,
/// with the current `cathedral` (none: no hold rule at all) and the hold
/// deadline so far.
pub fn peer_update(
    to: Ipv4Addr,
    cathedral: Option<Ipv4Addr>,
    hold_until: Option<Instant>,
    now: Instant,
) -> HoldDecision {
    let Some(cathedral) = cathedral else {
        return HoldDecision::Allowed { hold_until: None };
    };
    if to == cathedral {
        if hold_until.is_some_and(|h| now < h) {
            return HoldDecision::Refused;
        }
        HoldDecision::Allowed { hold_until: None }
    } else {
        HoldDecision::Allowed {
            hold_until: Some(now + PEER_HOLD),
        }
    }
}

/// What to do with the address of an INFO reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoVerdict {
    /// No usable address (zero, our own, or a configured peer).
    Ignore,
    /// The cathedral relays: the peer is the cathedral (subject to the
    /// hold).
    Relay(SocketAddrV4),
    /// Try the direct path: set the peer (subject to the hold) and, if it
    /// changed, punch.
    Direct(SocketAddrV4),
    /// A direct address named while backing off after a failed one.
    BackingOff {
        /// The address named.
        addr: SocketAddrV4,
        /// When direct addresses are accepted again.
        until: Instant,
    },
}

/// A direct path given up by [`PathKeeper::tick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The direct address that went silent.
    pub from: SocketAddrV4,
    /// Nothing ever came from it (the punch failed), rather than traffic
    /// that stopped.
    pub never_heard: bool,
    /// How long it has been silent.
    pub silent: Duration,
    /// When NAT probes resume and direct addresses are accepted again.
    pub retry_at: Instant,
}

/// The direct address being watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Watch {
    addr: SocketAddrV4,
    since: Instant,
    first_heard: Option<Instant>,
    /// When the silence limit runs out, as of the last tick.
    deadline: Instant,
}

/// The relay → direct → relay life of a cathedral client's peer path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathKeeper {
    watch: Option<Watch>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Default for PathKeeper {
    fn default() -> Self {
        PathKeeper::new()
    }
}

impl PathKeeper {
    /// On the relay, no back-off.
    pub fn new() -> Self {
        PathKeeper {
            watch: None,
            backoff: BACKOFF_MIN,
            retry_at: None,
        }
    }

    /// What an INFO reply's address means now.
    pub fn on_info(&self, now: Instant, info: &PeerInfo) -> InfoVerdict {
        let Some(addr) = info.peer else {
            return InfoVerdict::Ignore;
        };
        if info.relayed {
            return InfoVerdict::Relay(addr);
        }
        match self.retry_at {
            Some(until) if now < until => InfoVerdict::BackingOff { addr, until },
            _ => InfoVerdict::Direct(addr),
        }
    }

    /// Whether CIBORIUM probes go out now: not while backing off, so the
    /// cathedral's NAT test of this client ages out.
    pub fn nat_probing(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }

    /// When a direct address is accepted again, if backing off.
    pub fn backing_off_until(&self, now: Instant) -> Option<Instant> {
        self.retry_at.filter(|t| now < *t)
    }

    /// Once a tick: the current `peer`, the current `cathedral` and when a
    /// packet from the current peer last decrypted (`heard`). Returns the
    /// fallback to apply (set the peer to the cathedral, ignoring the
    /// hold) when a direct path died.
    pub fn tick(
        &mut self,
        now: Instant,
        peer: Option<SocketAddrV4>,
        cathedral: SocketAddrV4,
        heard: Option<Instant>,
    ) -> Option<Fallback> {
        let direct = peer.filter(|p| p.ip() != cathedral.ip() && !p.ip().is_unspecified());
        let Some(addr) = direct else {
            self.watch = None;
            return None;
        };
        let mut w = match self.watch {
            Some(w) if w.addr == addr => w,
            _ => Watch {
                addr,
                since: now,
                first_heard: None,
                deadline: now + PUNCH_WINDOW,
            },
        };
        // Stamps from before the switch belong to the previous peer
        // (whole seconds: a stamp in the switch's second counts).
        let heard = heard.filter(|h| h.secs() >= w.since.secs());
        if let Some(h) = heard {
            w.first_heard.get_or_insert(h);
        }
        let (from, limit) = match heard {
            Some(h) => (h, DIRECT_SILENCE),
            None => (w.since, PUNCH_WINDOW),
        };
        w.deadline = from + limit;
        self.watch = Some(w);
        let silent = now.saturating_since(from);
        if silent < limit {
            return None;
        }
        let lived = match (w.first_heard, heard) {
            (Some(first), Some(last)) => last.saturating_since(first),
            _ => Duration::ZERO,
        };
        if lived >= BACKOFF_MAX {
            self.backoff = BACKOFF_MIN;
        }
        let retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.retry_at = Some(retry_at);
        self.watch = None;
        Some(Fallback {
            from: addr,
            never_heard: heard.is_none(),
            silent,
            retry_at,
        })
    }

    /// When [`PathKeeper::tick`] has something to decide next: the end of a
    /// back-off or the silence limit of the watched path.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let backoff = self.backing_off_until(now);
        let watch = self.watch.map(|w| w.deadline);
        match (backoff, watch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4500);
    const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 4500);

    fn t(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    fn info(peer: SocketAddrV4) -> PeerInfo {
        PeerInfo {
            peer: Some(peer),
            relayed: peer.ip() == CAT.ip(),
            same_external_ipv4: false,
            flags: 0,
            own_public_ip_raw: [0; 4],
            own_public_port_raw: [0; 2],
        }
    }

    #[test]
    fn the_hold_keeps_a_direct_path_from_the_relay_for_ten_seconds() {
        let (cat, peer) = (Some(*CAT.ip()), *PEER.ip());
        let d = peer_update(peer, cat, None, t(100));
        assert_eq!(
            d,
            HoldDecision::Allowed {
                hold_until: Some(t(110))
            }
        );
        assert_eq!(
            peer_update(*CAT.ip(), cat, Some(t(110)), t(109)),
            HoldDecision::Refused
        );
        assert_eq!(
            peer_update(*CAT.ip(), cat, Some(t(110)), t(110)),
            HoldDecision::Allowed { hold_until: None }
        );
        // Without a cathedral there is no hold at all.
        assert_eq!(
            peer_update(*CAT.ip(), None, Some(t(110)), t(100)),
            HoldDecision::Allowed { hold_until: None }
        );
    }

    #[test]
    fn relay_then_direct_then_silence_goes_back_to_the_relay() {
        let mut k = PathKeeper::new();
        assert_eq!(k.tick(t(0), Some(CAT), CAT, None), None);
        assert_eq!(k.on_info(t(5), &info(CAT)), InfoVerdict::Relay(CAT));
        assert!(k.nat_probing(t(5)));
        assert_eq!(k.on_info(t(20), &info(PEER)), InfoVerdict::Direct(PEER));
        // The peer moved at 20; packets from it at 22..=60.
        assert_eq!(k.tick(t(20), Some(PEER), CAT, Some(t(19))), None);
        assert_eq!(k.tick(t(34), Some(PEER), CAT, None), None);
        for s in 35..=60 {
            assert_eq!(k.tick(t(s), Some(PEER), CAT, Some(t(s))), None);
            // The next decision is the silence limit, never in the past
            // (chapel sleeps until it).
            assert_eq!(k.next_deadline(t(s)), Some(t(s + 30)));
        }
        assert_eq!(k.tick(t(89), Some(PEER), CAT, Some(t(60))), None);
        let f = k.tick(t(90), Some(PEER), CAT, Some(t(60))).unwrap();
        assert_eq!(
            f,
            Fallback {
                from: PEER,
                never_heard: false,
                silent: Duration::from_secs(30),
                retry_at: t(150),
            }
        );
        // Backing off: relay only, no probes, direct addresses ignored.
        assert!(!k.nat_probing(t(149)));
        assert_eq!(
            k.on_info(t(95), &info(PEER)),
            InfoVerdict::BackingOff {
                addr: PEER,
                until: t(150)
            }
        );
        assert_eq!(k.on_info(t(95), &info(CAT)), InfoVerdict::Relay(CAT));
        assert_eq!(k.tick(t(95), Some(CAT), CAT, Some(t(95))), None);
        assert_eq!(k.next_deadline(t(95)), Some(t(150)));
        assert!(k.nat_probing(t(150)));
        assert_eq!(k.on_info(t(150), &info(PEER)), InfoVerdict::Direct(PEER));
    }

    #[test]
    fn a_punch_that_brings_nothing_fails_after_the_window_and_backs_off_longer() {
        let mut k = PathKeeper::new();
        let mut now = 0;
        for want in [60, 120, 240, 480, 960, 960] {
            assert_eq!(k.tick(t(now), Some(PEER), CAT, None), None);
            assert_eq!(k.next_deadline(t(now)), Some(t(now + 15)));
            assert_eq!(k.tick(t(now + 14), Some(PEER), CAT, None), None);
            let f = k.tick(t(now + 15), Some(PEER), CAT, None).unwrap();
            assert!(f.never_heard);
            assert_eq!(f.retry_at, t(now + 15 + want));
            now = now + 15 + want;
        }
    }

    #[test]
    fn a_long_lived_direct_path_resets_the_backoff() {
        let mut k = PathKeeper::new();
        k.tick(t(0), Some(PEER), CAT, None);
        k.tick(t(15), Some(PEER), CAT, None).unwrap();
        // 60 s back-off, the next would be 120 s...
        k.tick(t(100), Some(PEER), CAT, Some(t(100)));
        k.tick(t(1100), Some(PEER), CAT, Some(t(1100)));
        let f = k.tick(t(1130), Some(PEER), CAT, Some(t(1100))).unwrap();
        // ... but 1000 s of traffic start it over.
        assert_eq!(f.retry_at, t(1190));
    }

    #[test]
    fn stamps_from_before_a_switch_do_not_count() {
        let mut k = PathKeeper::new();
        let other = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 9), 4500);
        k.tick(t(0), Some(PEER), CAT, Some(t(0)));
        // A new direct address at 10: the old stamp (from PEER) is ignored.
        assert_eq!(k.tick(t(10), Some(other), CAT, Some(t(9))), None);
        let f = k.tick(t(25), Some(other), CAT, Some(t(9))).unwrap();
        assert!(f.never_heard);
        assert_eq!(f.from, other);
    }
}
