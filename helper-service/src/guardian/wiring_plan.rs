//! Which role gets which ring in each mode: the graph of
//! spec/behaviour.md §1.2 with one ring per edge. A ring exists when its
//! consumer runs; its producer end is handed only to the one role that
//! may fill it, so a queue that would let a packet skip bless or confess
//! does not exist in any process.

use crate::role::Role;
use crate::wiring::{Mode, Ring};

/// The role that fills `ring` in `mode`, if that mode has one.
pub fn producer(ring: Ring, mode: Mode) -> Option<Role> {
    Some(match (ring, mode) {
        (Ring::Bless, Mode::Tunnel | Mode::Pilgrim) => Role::HeavenRx,
        (Ring::Purgatory, Mode::Tunnel | Mode::Pilgrim) => Role::Bless,
        (Ring::Offer, Mode::Tunnel) => Role::Chapel,
        (Ring::Offer, Mode::Pilgrim) => Role::Pilgrim,
        (Ring::Confess | Ring::Chapel, Mode::Tunnel | Mode::Shrine) => Role::PurgatoryRx,
        (Ring::Heaven, Mode::Tunnel | Mode::Shrine) => Role::Confess,
        (Ring::KeyBless, Mode::Tunnel) => Role::Chapel,
        (Ring::KeyBless, Mode::Pilgrim) => Role::Pilgrim,
        (Ring::KeyConfess, Mode::Tunnel) => Role::Chapel,
        (Ring::KeyConfess, Mode::Shrine) => Role::Shrine,
        (Ring::KeyPurgatoryRx | Ring::KeyPurgatoryTx, Mode::Tunnel) => Role::Chapel,
        (Ring::Chapel, Mode::Cathedral) => Role::PurgatoryRx,
        (Ring::Purgatory, Mode::Cathedral) => Role::Cathedral,
        _ => return None,
    })
}

/// The role that drains `ring` in `mode`, if that mode has one.
pub fn consumer(ring: Ring, mode: Mode) -> Option<Role> {
    Some(match (ring, mode) {
        (Ring::Bless | Ring::KeyBless, Mode::Tunnel | Mode::Pilgrim) => Role::Bless,
        (Ring::Purgatory | Ring::Offer, Mode::Tunnel | Mode::Pilgrim) => Role::PurgatoryTx,
        (Ring::KeyPurgatoryTx, Mode::Tunnel | Mode::Pilgrim) => Role::PurgatoryTx,
        (Ring::Confess | Ring::KeyConfess, Mode::Tunnel | Mode::Shrine) => Role::Confess,
        (Ring::KeyPurgatoryRx, Mode::Tunnel | Mode::Shrine) => Role::PurgatoryRx,
        (Ring::Chapel, Mode::Tunnel) => Role::Chapel,
        (Ring::Chapel, Mode::Shrine) => Role::Shrine,
        (Ring::Heaven, Mode::Tunnel | Mode::Shrine) => Role::HeavenTx,
        (Ring::Chapel, Mode::Cathedral) => Role::Cathedral,
        (Ring::Purgatory, Mode::Cathedral) => Role::PurgatoryTx,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_reaches_the_wire_only_through_bless() {
        for mode in Mode::ALL {
            for ring in Ring::ALL {
                let (Some(p), Some(c)) = (producer(ring, mode), consumer(ring, mode)) else {
                    continue;
                };
                // Nothing from the TUN readers goes anywhere but bless,
                // nothing from the socket reader anywhere but confess or
                // the keying role.
                if p == Role::HeavenRx {
                    assert_eq!(c, Role::Bless, "{ring:?} in {mode:?}");
                }
                if p == Role::PurgatoryRx {
                    assert!(
                        matches!(
                            c,
                            Role::Confess | Role::Chapel | Role::Shrine | Role::Cathedral
                        ),
                        "{ring:?} in {mode:?}"
                    );
                }
                if c == Role::HeavenTx {
                    assert_eq!(p, Role::Confess, "{ring:?} in {mode:?}");
                }
                if c == Role::PurgatoryTx {
                    assert!(matches!(
                        p,
                        Role::Bless | Role::Chapel | Role::Pilgrim | Role::Cathedral
                    ));
                }
                assert!(mode.roles().contains(&p) && mode.roles().contains(&c));
            }
        }
    }

    #[test]
    fn a_shrine_has_nothing_that_sends() {
        assert!(!Mode::Shrine.roles().contains(&Role::PurgatoryTx));
        assert!(!Mode::Shrine.roles().contains(&Role::Bless));
        for ring in Ring::ALL {
            assert_ne!(consumer(ring, Mode::Shrine), Some(Role::PurgatoryTx));
        }
    }
}
