//! pilgrim: one-way sender keying (behaviour.md §6). Makes a fresh TX key
//! when there is none or it ages out, installs it in bless at once and
//! announces it to the shrine in KEY offers. It has no RX side at all.

use std::time::Duration;

use anyhow::Result;
use chantry_core::entropy::OsEntropy;
use chantry_core::pilgrim::Pilgrim;
use chantry_core::time::Instant;

use super::Role0;
use super::keying::{self, KeyOut};
use super::runtime;
use crate::shm::{self, Meta};
use crate::wiring::{Ring, Slot};

/// Longest sleep between looks at the TX statistics.
const TICK: Duration = Duration::from_secs(1);

/// Runs the pilgrim until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let secret_fd = runtime::take(&mut r.fds, Slot::Secret)?;
    let mut offers_out = runtime::producer(&mut r.fds, Ring::Offer)?;
    let mut keys = KeyOut {
        bless: Some(runtime::producer(&mut r.fds, Ring::KeyBless)?),
        confess: None,
    };
    let (wake, state) = r.enter()?;
    let secret = keying::read_secret(secret_fd)?;
    let mut rng = OsEntropy;
    let mut p = Pilgrim::new(secret, &mut rng);
    tracing::info!(
        instance = format_args!("{:016x}", p.instance_id()),
        "pilgrim ready"
    );
    loop {
        let now = runtime::now();
        let tx = state.tx_stats();
        p.set_tx_status((tx.spi != 0).then(|| (tx.spi, Instant::from_secs(tx.age))));
        p.poll(now, &mut rng);
        while let Some(cmd) = p.poll_key() {
            keys.apply(cmd);
        }
        let mut sent = false;
        while let Some(offer) = p.poll_transmit() {
            sent |= offers_out.push(Meta::default(), &offer).is_ok();
        }
        if sent {
            offers_out.wake();
        }
        while let Some(e) = p.poll_event() {
            tracing::info!(event = ?e, "pilgrim");
        }
        let timeout = runtime::until(p.next_deadline(), runtime::now().mono).min(TICK);
        shm::sleep(&mut [], &wake, &[], Some(timeout))?;
    }
}
