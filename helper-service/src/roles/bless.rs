//! bless: seals clear packets and graces from heaven-rx with the TX SA and
//! hands the data packets to purgatory-tx. The only role that ever sees a
//! TX session key, and the only path from the clear side to the wire.

use anyhow::Result;
use chantry_core::sa::{TxError, TxSa};
use chantry_core::wire::data::{self, Next, PAYLOAD_OFFSET};

use super::runtime::{self, BATCH};
use super::{KIND_GRACE, Role0};
use crate::shm::{self, KeyMsg, Meta};
use crate::wiring::Ring;

/// Runs bless until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let mut input = runtime::consumer(&mut r.fds, Ring::Bless)?;
    let mut keys = runtime::consumer(&mut r.fds, Ring::KeyBless)?;
    let mut out = runtime::producer(&mut r.fds, Ring::Purgatory)?;
    let (wake, state) = r.enter()?;
    let cfg = r.settings.data_config();
    let mut tx: Option<TxSa> = None;
    let mut buf = vec![0u8; shm::SLOT_DATA + 64];
    loop {
        while let Some(msg) = keys.pop_key() {
            let now = runtime::now();
            match msg {
                Ok(KeyMsg::InstallTx { spi, salt, key }) => {
                    tx = Some(TxSa::new(key, spi, salt, now.mono));
                    state.set_holepunch(now.mono.secs());
                    state.set_tx_stats(spi, now.mono.secs(), 0, 0, 0);
                    tracing::info!(spi = format_args!("{spi:08x}"), "TX key installed");
                }
                Ok(KeyMsg::Erase) => {
                    tx = None;
                    state.set_tx_stats(0, 0, 0, 0, 0);
                    tracing::info!("TX key erased");
                }
                Ok(other) => tracing::warn!(msg = other.name(), "unexpected key message"),
                Err(e) => tracing::warn!(error = %e, "malformed key message"),
            }
        }
        let now = runtime::now();
        let mut moved = 0;
        while moved < BATCH {
            let Some((meta, len)) = input.pop(&mut buf[PAYLOAD_OFFSET..]) else {
                break;
            };
            moved += 1;
            let Some(sa) = tx.as_mut() else { continue };
            let next = if meta.kind == KIND_GRACE {
                Next::Grace
            } else {
                Next::Traffic
            };
            let Some(sealed_len) = data::sealed_len(len, cfg.tfc_mtu) else {
                continue;
            };
            if sealed_len > buf.len() {
                continue;
            }
            match sa.seal(&cfg, now.mono, next, &mut buf[..sealed_len], len) {
                Ok(sealed) => {
                    // A full ring drops the packet, as the reference does
                    // when its pool runs dry; TCP recovers.
                    let _ = out.push(Meta::default(), &buf[..sealed.len]);
                }
                Err(TxError::Expired(limit)) => {
                    tracing::info!(?limit, "TX SA reached a hard limit, destroyed");
                    tx = None;
                    state.set_tx_stats(0, 0, 0, 0, 0);
                }
                Err(e) => tracing::debug!(error = %e, "seal failed"),
            }
        }
        if moved > 0 {
            out.wake();
            if let Some(sa) = &tx {
                state.set_tx_stats(
                    sa.spi(),
                    sa.installed_at().secs(),
                    sa.packets(),
                    now.mono.secs(),
                    sa.bytes(),
                );
            }
            continue;
        }
        shm::sleep(&mut [&mut input, &mut keys], &wake, &[], None)?;
    }
}
