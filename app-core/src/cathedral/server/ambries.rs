//! The bundles a cathedral serves (behaviour.md §8.6): one per flock (same
//! flock) and one per `xflock` pair, indexed by (device flock, tunnel id).
//! The cathedral cannot unwrap any of it.

use std::collections::HashMap;

use crate::ambry::{Bundle, expires_at};
use crate::kdf::FLOCK_DOMAIN_MASK;
use crate::wire::offer::AmbryBody;

/// A loaded bundle and its entry index.
#[derive(Debug)]
struct Loaded {
    bundle: Bundle,
    index: HashMap<(u64, u16), usize>,
}

/// Bundles by flock pair (domain bytes cleared, smaller id first).
#[derive(Debug, Default)]
pub struct Ambries {
    pairs: HashMap<(u64, u64), Loaded>,
}

/// The map key of the pair (a, b), either order.
fn pair(a: u64, b: u64) -> (u64, u64) {
    let (a, b) = (a & FLOCK_DOMAIN_MASK, b & FLOCK_DOMAIN_MASK);
    (a.min(b), a.max(b))
}

impl Ambries {
    /// Installs (or with `None` removes) the bundle of the pair (a, b);
    /// `a == b` is a flock's own bundle.
    pub fn set(&mut self, a: u64, b: u64, bundle: Option<Bundle>) {
        let key = pair(a, b);
        match bundle {
            None => {
                self.pairs.remove(&key);
            }
            Some(bundle) => {
                let index = bundle
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| ((e.flock, e.tunnel), i))
                    .collect();
                self.pairs.insert(key, Loaded { bundle, index });
            }
        }
    }

    /// The generation of the pair's bundle, if one is loaded.
    pub fn generation(&self, a: u64, b: u64) -> Option<u32> {
        self.pairs
            .get(&pair(a, b))
            .map(|l| l.bundle.head.generation)
    }

    /// Drops the bundles of pairs `keep` says no to (a settings reload).
    pub fn retain(&mut self, mut keep: impl FnMut(u64, u64) -> bool) {
        self.pairs.retain(|&(a, b), _| keep(a, b));
    }

    /// The AMBRY body for the device of flock `src` and tunnel `tunnel`
    /// talking to flock `dst`, when its reported `generation` is not the
    /// bundle's and the bundle has not expired at `now_wall`.
    pub fn offer_for(
        &self,
        src: u64,
        dst: u64,
        tunnel: u16,
        generation: u32,
        now_wall: u64,
    ) -> Option<AmbryBody> {
        let l = self.pairs.get(&pair(src, dst))?;
        if l.bundle.head.generation == generation || expires_at(l.bundle.head.expires) < now_wall {
            return None;
        }
        let i = *l.index.get(&(src & FLOCK_DOMAIN_MASK, tunnel))?;
        Some(l.bundle.offer_body(l.bundle.entries.get(i)?))
    }
}
