//! confess: opens data packets from purgatory-rx with the active or pending
//! RX SA and hands what authenticates to heaven-tx. The only role that sees
//! RX session keys, and the only path from the wire to the clear side.

use anyhow::Result;
use chantry_core::sa::{RxSa, RxSlots};

use super::runtime::{self, BATCH};
use super::shared::Shared;
use super::{KIND_GRACE, KIND_TRAFFIC, Role0};
use crate::shm::{self, KeyMsg, Meta};
use crate::wiring::Ring;

/// Runs confess until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let mut input = runtime::consumer(&mut r.fds, Ring::Confess)?;
    let mut keys = runtime::consumer(&mut r.fds, Ring::KeyConfess)?;
    let mut out = runtime::producer(&mut r.fds, Ring::Heaven)?;
    let (wake, state) = r.enter()?;
    let cfg = r.settings.data_config();
    let mut slots = RxSlots::new();
    let mut buf = vec![0u8; shm::SLOT_DATA];
    loop {
        while let Some(msg) = keys.pop_key() {
            let now = runtime::now();
            match msg {
                Ok(KeyMsg::InstallRx { spi, salt, key }) => {
                    let slot = slots.install(RxSa::new(key, spi, salt, now.mono));
                    publish_spis(&state, &slots);
                    tracing::info!(spi = format_args!("{spi:08x}"), ?slot, "RX key installed");
                }
                Ok(KeyMsg::Erase) => {
                    slots.erase();
                    publish_spis(&state, &slots);
                    state.set_rx_stats(0, 0, 0, 0, 0);
                    state.set_last_decrypt(0);
                    tracing::info!("RX keys erased");
                }
                Ok(other) => tracing::warn!(msg = other.name(), "unexpected key message"),
                Err(e) => tracing::warn!(error = %e, "malformed key message"),
            }
        }
        let now = runtime::now();
        let mut moved = 0;
        let mut opened = 0;
        let mut learned = None;
        let mut from_peer = false;
        while moved < BATCH {
            let Some((meta, len)) = input.pop(&mut buf) else {
                break;
            };
            moved += 1;
            let Ok(rx) = slots.open(&cfg, &mut buf[..len]) else {
                continue;
            };
            opened += 1;
            if rx.promoted {
                publish_spis(&state, &slots);
            }
            // Roaming: authenticated traffic teaches the peer address,
            // under the cathedral hold (behaviour.md §4.4). Once per
            // source and batch.
            if let Some(src) = meta.addr
                && learned != Some(src)
            {
                learned = Some(src);
                if state.learn_peer(src, now.mono.secs()) {
                    tracing::info!(peer = %src, "peer address learned from traffic");
                }
                from_peer |= state.peer() == Some(src);
            }
            let kind = match rx.next {
                chantry_core::wire::data::Next::Traffic => KIND_TRAFFIC,
                chantry_core::wire::data::Next::Grace => KIND_GRACE,
            };
            let _ = out.push(
                Meta { addr: None, kind },
                buf.get(rx.payload.clone()).unwrap_or_default(),
            );
        }
        if opened > 0 {
            out.wake();
            state.set_last_decrypt(now.mono.secs());
            if from_peer {
                state.set_heard_from_peer(now.mono.secs());
            }
            if let Some(sa) = slots.active() {
                state.set_rx_stats(
                    sa.spi(),
                    sa.installed_at().secs(),
                    sa.packets(),
                    now.mono.secs(),
                    sa.bytes(),
                );
            }
        }
        if moved > 0 {
            continue;
        }
        shm::sleep(&mut [&mut input, &mut keys], &wake, &[], None)?;
    }
}

/// Tells purgatory-rx (pre-filter) and chapel which SPIs are live.
fn publish_spis(state: &Shared, slots: &RxSlots) {
    state.set_rx_spis(slots.active_spi(), slots.pending_spi());
}
