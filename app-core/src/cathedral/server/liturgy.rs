//! Liturgy groups on the cathedral (behaviour.md §8.7): who asked to be
//! part of which group, and which of them each member may see.
//!
//! Entries live per flock domain (the header's `flock_src`, domain byte
//! included) and are keyed by (peer id, SIGNALING flag), so one device may
//! hold a discovery entry and a signaling entry at once. A member sees
//! every other entry of its domain and group that is
//!
//! * visible: not both hidden (hidden members form a hub and spoke with the
//!   visible ones, never a mesh among themselves), and
//! * wanted: when both entries are signaling ones, one of the two named the
//!   other in its `peers` wish list; otherwise always.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use crate::time::Instant;
use crate::wire::offer::{LITURGY_FLAG_REMEMBRANCE, LITURGY_FLAG_SIGNALING, LiturgyBody};

/// Number of peer ids a LITURGY `peers` array holds (0..=254).
pub const LITURGY_PEERS: usize = 255;

/// A liturgy entry not refreshed for this long is forgotten (§8.11).
pub const LITURGY_MAX_AGE: Duration = Duration::from_secs(120);

/// At most one reply (and federation) per entry this often (§8.7).
pub const LITURGY_REPLY_INTERVAL: Duration = Duration::from_secs(3);

/// At most one REMEMBRANCE per entry this often (§8.8).
pub const LITURGY_REMEMBRANCE_INTERVAL: Duration = Duration::from_secs(15);

/// An entry's key: (flock with domain, peer id, signaling).
type Key = (u64, u8, bool);

/// One member of a liturgy group.
#[derive(Clone, Debug)]
struct Entry {
    /// The cathedral identity that signed its offers.
    identity: u32,
    group: u16,
    hidden: bool,
    /// The wish list of a signaling entry (ignored for discovery ones).
    peers: [u8; LITURGY_PEERS],
    /// Where its last offer came from (a federation peer for federated
    /// entries).
    addr: SocketAddrV4,
    last_seen: Instant,
    next_reply: Instant,
    next_remembrance: Instant,
    federated: bool,
}

/// What the cathedral owes the sender of a LITURGY offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Duties {
    /// Send it a REMEMBRANCE.
    pub remembrance: bool,
    /// Send it the group's members and federate its offer; `false` for a
    /// federated offer and for a client that updates faster than
    /// [`LITURGY_REPLY_INTERVAL`].
    pub reply: bool,
    /// A client offer that came too soon after the last reply.
    pub too_fast: bool,
}

/// The liturgy entries of every flock domain.
#[derive(Debug, Default)]
pub struct Liturgies {
    entries: HashMap<Key, Entry>,
}

impl Liturgies {
    /// Records a verified LITURGY from `from`, signed by `identity` for
    /// flock `flock` (domain included); `federated` when a peer cathedral
    /// re-sent it. Returns what to send back.
    pub fn update(
        &mut self,
        now: Instant,
        flock: u64,
        identity: u32,
        body: &LiturgyBody,
        from: SocketAddrV4,
        federated: bool,
    ) -> Duties {
        let signaling = body.flags & LITURGY_FLAG_SIGNALING != 0;
        let e = self
            .entries
            .entry((flock, body.id, signaling))
            .or_insert_with(|| Entry {
                identity,
                group: body.group,
                hidden: false,
                peers: [0; LITURGY_PEERS],
                addr: from,
                last_seen: now,
                next_reply: now,
                next_remembrance: now,
                federated,
            });
        e.identity = identity;
        e.group = body.group;
        e.hidden = body.hidden != 0;
        e.peers = body.peers;
        e.addr = from;
        e.last_seen = now;
        e.federated = federated;
        let mut duties = Duties::default();
        if federated {
            return duties;
        }
        if body.flags & LITURGY_FLAG_REMEMBRANCE != 0 && now >= e.next_remembrance {
            e.next_remembrance = now + LITURGY_REMEMBRANCE_INTERVAL;
            duties.remembrance = true;
        }
        if now >= e.next_reply {
            e.next_reply = now + LITURGY_REPLY_INTERVAL;
            duties.reply = true;
        } else {
            duties.too_fast = true;
        }
        duties
    }

    /// The `peers` array of the reply to entry (flock, id, signaling):
    /// `1` for every other entry of the same domain and group it may see.
    /// All zero if there is no such entry.
    pub fn visible_to(&self, flock: u64, id: u8, signaling: bool) -> [u8; LITURGY_PEERS] {
        let mut peers = [0u8; LITURGY_PEERS];
        let Some(me) = self.entries.get(&(flock, id, signaling)) else {
            return peers;
        };
        for (&(f, other_id, other_signaling), other) in &self.entries {
            if f != flock || (other_id, other_signaling) == (id, signaling) {
                continue;
            }
            let visible = !me.hidden || !other.hidden;
            let wanted = if signaling && other_signaling {
                wish(&me.peers, other_id) || wish(&other.peers, id)
            } else {
                true
            };
            if other.group == me.group
                && visible
                && wanted
                && let Some(slot) = peers.get_mut(usize::from(other_id))
            {
                *slot = 1;
            }
        }
        peers
    }

    /// Forgets entries not refreshed for [`LITURGY_MAX_AGE`]; returns how
    /// many went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now.saturating_since(e.last_seen) < LITURGY_MAX_AGE);
        before - self.entries.len()
    }

    /// Keeps the entries for which `keep(flock, identity, id)` holds (a
    /// settings reload).
    pub fn retain(&mut self, mut keep: impl FnMut(u64, u32, u8) -> bool) {
        self.entries
            .retain(|&(flock, id, _), e| keep(flock, e.identity, id));
    }

    /// Entries known: (from clients, federated).
    pub fn count(&self) -> (usize, usize) {
        let federated = self.entries.values().filter(|e| e.federated).count();
        (self.entries.len() - federated, federated)
    }
}

/// Does the wish list name `id`? (An id of 255 has no slot.)
fn wish(peers: &[u8; LITURGY_PEERS], id: u8) -> bool {
    peers.get(usize::from(id)).is_some_and(|w| *w != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const FLOCK: u64 = 0xcafe_0000;

    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    fn addr(i: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 79, i), 5000)
    }

    fn body(id: u8, group: u16, hidden: bool, signaling: &[u8]) -> LiturgyBody {
        let mut peers = [0u8; LITURGY_PEERS];
        for &p in signaling {
            peers[usize::from(p)] = 1;
        }
        LiturgyBody {
            id,
            group,
            peers,
            hidden: u8::from(hidden),
            flags: if signaling.is_empty() {
                0
            } else {
                LITURGY_FLAG_SIGNALING
            },
        }
    }

    fn seen(l: &Liturgies, flock: u64, id: u8, signaling: bool) -> Vec<u8> {
        let peers = l.visible_to(flock, id, signaling);
        (0..=254u8)
            .filter(|&i| peers[usize::from(i)] == 1)
            .collect()
    }

    fn join(l: &mut Liturgies, t: u64, flock: u64, b: &LiturgyBody) -> Duties {
        l.update(at(t), flock, 0x2a, b, addr(b.id), false)
    }

    #[test]
    fn discovery_members_of_a_group_see_each_other_but_not_other_groups() {
        let mut l = Liturgies::default();
        for id in [1, 2, 3] {
            join(&mut l, 0, FLOCK, &body(id, 7, false, &[]));
        }
        join(&mut l, 0, FLOCK, &body(4, 8, false, &[]));
        assert_eq!(seen(&l, FLOCK, 1, false), vec![2, 3]);
        assert_eq!(seen(&l, FLOCK, 3, false), vec![1, 2]);
        assert_eq!(seen(&l, FLOCK, 4, false), Vec::<u8>::new());
    }

    #[test]
    fn domains_are_separate() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK | 1, &body(1, 7, false, &[]));
        join(&mut l, 0, FLOCK | 2, &body(2, 7, false, &[]));
        join(&mut l, 0, FLOCK | 1, &body(3, 7, false, &[]));
        assert_eq!(seen(&l, FLOCK | 1, 1, false), vec![3]);
        assert_eq!(seen(&l, FLOCK | 2, 2, false), Vec::<u8>::new());
    }

    #[test]
    fn hidden_members_see_visible_ones_but_never_each_other() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[]));
        join(&mut l, 0, FLOCK, &body(2, 7, true, &[]));
        join(&mut l, 0, FLOCK, &body(3, 7, true, &[]));
        assert_eq!(seen(&l, FLOCK, 1, false), vec![2, 3]);
        assert_eq!(seen(&l, FLOCK, 2, false), vec![1]);
        assert_eq!(seen(&l, FLOCK, 3, false), vec![1]);
    }

    #[test]
    fn signaling_members_see_only_who_one_of_the_two_asked_for() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[2]));
        join(&mut l, 0, FLOCK, &body(2, 7, false, &[9]));
        join(&mut l, 0, FLOCK, &body(3, 7, false, &[9]));
        // A discovery member sees and is seen by every signaling one.
        join(&mut l, 0, FLOCK, &body(4, 7, false, &[]));
        assert_eq!(seen(&l, FLOCK, 1, true), vec![2, 4]);
        // 2 did not ask for 1, but 1 asked for 2.
        assert_eq!(seen(&l, FLOCK, 2, true), vec![1, 4]);
        assert_eq!(seen(&l, FLOCK, 3, true), vec![4]);
        assert_eq!(seen(&l, FLOCK, 4, false), vec![1, 2, 3]);
    }

    #[test]
    fn a_device_may_hold_a_discovery_and_a_signaling_entry() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[]));
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[2]));
        join(&mut l, 0, FLOCK, &body(2, 7, false, &[]));
        assert_eq!(l.count(), (3, 0));
        // As the reference does, an entry sees the other entry of its own
        // id: only the entry itself is skipped.
        assert_eq!(seen(&l, FLOCK, 1, false), vec![1, 2]);
    }

    #[test]
    fn replies_and_remembrance_are_rate_limited_per_entry() {
        let mut l = Liturgies::default();
        let mut b = body(1, 7, false, &[]);
        b.flags |= LITURGY_FLAG_REMEMBRANCE;
        let d = join(&mut l, 100, FLOCK, &b);
        assert_eq!(
            d,
            Duties {
                remembrance: true,
                reply: true,
                too_fast: false
            }
        );
        let d = join(&mut l, 102, FLOCK, &b);
        assert_eq!(
            d,
            Duties {
                remembrance: false,
                reply: false,
                too_fast: true
            }
        );
        let d = join(&mut l, 103, FLOCK, &b);
        assert!(d.reply && !d.remembrance && !d.too_fast);
        let d = join(&mut l, 115, FLOCK, &b);
        assert!(d.reply && d.remembrance);
        // Another entry has its own clock.
        assert!(join(&mut l, 115, FLOCK, &body(2, 7, false, &[])).reply);
    }

    #[test]
    fn federated_offers_are_recorded_but_owe_nothing() {
        let mut l = Liturgies::default();
        let mut b = body(5, 7, false, &[]);
        b.flags |= LITURGY_FLAG_REMEMBRANCE;
        let d = l.update(at(0), FLOCK, 0x2a, &b, addr(200), true);
        assert_eq!(d, Duties::default());
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[]));
        assert_eq!(seen(&l, FLOCK, 1, false), vec![5]);
        assert_eq!(l.count(), (1, 1));
        // The client itself then talks to this cathedral: no longer
        // federated.
        l.update(at(1), FLOCK, 0x2a, &b, addr(5), false);
        assert_eq!(l.count(), (2, 0));
    }

    #[test]
    fn entries_expire_after_two_minutes_without_an_update() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[]));
        join(&mut l, 60, FLOCK, &body(2, 7, false, &[]));
        assert_eq!(l.expire(at(119)), 0);
        assert_eq!(l.expire(at(120)), 1);
        assert_eq!(seen(&l, FLOCK, 2, false), Vec::<u8>::new());
        assert_eq!(l.expire(at(180)), 1);
        assert_eq!(l.count(), (0, 0));
    }

    #[test]
    fn a_group_change_moves_the_member() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[]));
        join(&mut l, 0, FLOCK, &body(2, 7, false, &[]));
        join(&mut l, 4, FLOCK, &body(2, 8, false, &[]));
        assert_eq!(seen(&l, FLOCK, 1, false), Vec::<u8>::new());
    }

    #[test]
    fn retain_drops_what_the_settings_no_longer_allow() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[]));
        join(&mut l, 0, FLOCK, &body(2, 7, false, &[]));
        l.retain(|_, _, id| id != 2);
        assert_eq!(seen(&l, FLOCK, 1, false), Vec::<u8>::new());
    }

    #[test]
    fn id_255_is_recorded_but_has_no_slot() {
        let mut l = Liturgies::default();
        join(&mut l, 0, FLOCK, &body(255, 7, false, &[]));
        join(&mut l, 0, FLOCK, &body(1, 7, false, &[]));
        assert_eq!(seen(&l, FLOCK, 1, false), Vec::<u8>::new());
        assert_eq!(seen(&l, FLOCK, 255, false), vec![1]);
    }
}
