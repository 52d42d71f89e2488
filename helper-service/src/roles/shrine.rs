//! shrine: one-way receiver keying (behaviour.md §6). Accepts the
//! pilgrim's KEY offers and installs RX keys in confess. A shrine has no
//! way to send: no TX key, no bless, no purgatory-tx.

use anyhow::Result;

use super::Role0;
use super::keying::{self, KeyOut};
use super::runtime::{self, BATCH};
use crate::shm::{self};
use crate::wiring::{Ring, Slot};

/// Runs the shrine until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let secret_fd = runtime::take(&mut r.fds, Slot::Secret)?;
    let mut offers_in = runtime::consumer(&mut r.fds, Ring::Chapel)?;
    let mut keys = KeyOut {
        bless: None,
        confess: Some(runtime::producer(&mut r.fds, Ring::KeyConfess)?),
    };
    let (wake, state) = r.enter()?;
    let secret = keying::read_secret(secret_fd)?;
    let mut shrine = chantry_core::pilgrim::Shrine::new(secret);
    tracing::info!("shrine ready");
    let mut buf = vec![0u8; shm::SLOT_DATA];
    loop {
        let now = runtime::now();
        let mut moved = 0;
        while moved < BATCH {
            let Some((meta, len)) = offers_in.pop(&mut buf) else {
                break;
            };
            moved += 1;
            match shrine.handle_offer(&buf[..len], now) {
                Ok(spi) => {
                    tracing::info!(spi = format_args!("{spi:08x}"), "KEY offer accepted");
                    if let Some(src) = meta.addr {
                        state.set_peer(Some(src));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "KEY offer rejected"),
            }
        }
        while let Some(cmd) = shrine.poll_key() {
            keys.apply(cmd);
        }
        while let Some(e) = shrine.poll_event() {
            tracing::info!(event = ?e, "shrine");
        }
        if moved == BATCH {
            continue;
        }
        shm::sleep(&mut [&mut offers_in], &wake, &[], None)?;
    }
}
