//! chapel: the tunnel-mode key exchange (behaviour.md §3). The only role
//! that holds the shared secret. It sees offers (from purgatory-rx), the RX
//! statistics confess publishes, and sends offers (to purgatory-tx) and
//! session keys (to bless and confess); it never sees a packet's contents.
//! With `cathedral` it also runs the cathedral client, which decides
//! whether traffic goes through the relay or straight to the peer
//! (chapel_cathedral.rs).

use std::time::Duration;

use anyhow::Result;
use chantry_core::entropy::OsEntropy;
use chantry_core::exchange::{ExchangeConfig, KeyExchange, RxStatus};
use chantry_core::kdf;
use chantry_core::secret::Key32;
use chantry_core::time::Instant;
use chantry_core::wire::offer::{self, Magic, PacketKind};

use super::Role0;
use super::chapel_cathedral::CathedralSide;
use super::keying::{self, KeyOut};
use super::runtime::{self, BATCH};
use crate::shm::{self, KeyMsg, Meta};
use crate::wiring::{Ring, Slot};

/// Longest sleep: chapel re-reads the RX statistics at least this often.
const TICK: Duration = Duration::from_secs(1);

/// Runs chapel until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let secret_fd = runtime::take(&mut r.fds, Slot::Secret)?;
    let mut offers_in = runtime::consumer(&mut r.fds, Ring::Chapel)?;
    let mut offers_out = runtime::producer(&mut r.fds, Ring::Offer)?;
    let mut keys = KeyOut {
        bless: Some(runtime::producer(&mut r.fds, Ring::KeyBless)?),
        confess: Some(runtime::producer(&mut r.fds, Ring::KeyConfess)?),
    };
    let mut shroud_rx = Some(runtime::producer(&mut r.fds, Ring::KeyPurgatoryRx)?);
    let mut shroud_tx = Some(runtime::producer(&mut r.fds, Ring::KeyPurgatoryTx)?);
    let report = match r.settings.cathedral_client {
        Some(_) => Some(std::fs::File::from(r.fds.take(Slot::Report)?)),
        None => None,
    };
    let (wake, state) = r.enter()?;
    let s = &r.settings;
    let mut rng = OsEntropy;
    let (secret, mut cathedral) = match &s.cathedral_client {
        None => (keying::read_secret(secret_fd)?, None),
        Some(c) => {
            let mut keys = keying::read_client_keys(secret_fd)?;
            // Without a secret file yet (a `kek` is then configured) the
            // exchange waits for the first ambry anyway.
            let secret = keys.secret.take().unwrap_or_else(|| Key32::new([0; 32]));
            let side = CathedralSide::new(s, c, keys, report, &state, runtime::now(), &mut rng)?;
            (secret, Some(side))
        }
    };
    if s.shroud {
        let key = kdf::peer_shroud_key(&secret, s.flock_src, s.flock_dst);
        keying::send(&mut shroud_rx, &KeyMsg::ShroudRx { key: key.clone() });
        keying::send(&mut shroud_tx, &KeyMsg::ShroudTx { key });
    }
    let cfg = ExchangeConfig {
        flock_src: s.flock_src,
        flock_dst: s.flock_dst,
        tunnel_id: s.tunnel_id,
        cathedral: cathedral.is_some(),
    };
    let mut ex = KeyExchange::new(cfg, secret, &mut rng);
    ex.set_peer_known(state.peer().is_some());
    // With a KEK no exchange starts before the first ambry of this
    // lifetime, as in the reference (behaviour.md §7.2).
    ex.require_ambry(cathedral.as_ref().is_some_and(CathedralSide::has_kek));
    tracing::info!(
        instance = format_args!("{:016x}", ex.instance_id()),
        "chapel ready"
    );
    let rekey_every = test_rekey_every(s.test_rekey_every);
    let mut next_forced = rekey_every.map(|d| runtime::now().mono + d);
    let mut last_decrypt = 0;
    let mut buf = vec![0u8; shm::SLOT_DATA];
    loop {
        let now = runtime::now();
        // What confess saw since the last look.
        let rx = state.rx_stats();
        ex.set_rx_status((rx.spi != 0 && rx.pkt > 0).then(|| RxStatus {
            spi: rx.spi,
            packets: rx.pkt,
            installed: Instant::from_secs(rx.age),
        }));
        let ld = state.last_decrypt();
        if ld != 0 && ld != last_decrypt {
            last_decrypt = ld;
            ex.rx_decrypted(Instant::from_secs(ld));
        }
        if let (Some(every), Some(t)) = (rekey_every, next_forced)
            && now.mono >= t
        {
            tracing::info!("test hook: forcing a key exchange");
            ex.force_exchange();
            next_forced = Some(now.mono + every);
        }
        if let Some(c) = cathedral.as_mut() {
            c.tick(now, &state, &mut ex, &mut rng);
        }
        let mut moved = 0;
        while moved < BATCH {
            let Some((meta, len)) = offers_in.pop(&mut buf) else {
                break;
            };
            moved += 1;
            if let (Some(c), Some(src)) = (cathedral.as_mut(), meta.addr)
                && offer::classify(&buf[..len]) == Some(PacketKind::Offer(Magic::Katedral))
            {
                c.handle_datagram(now, src, &buf[..len]);
                continue;
            }
            match ex.handle_offer(&buf[..len], now, &mut rng) {
                Ok(accepted) => {
                    tracing::debug!(?accepted, "offer accepted");
                    // Under the cathedral hold (behaviour.md §4.4).
                    if let Some(src) = meta.addr
                        && state.learn_peer(src, now.mono.secs())
                    {
                        ex.set_peer_known(true);
                        tracing::info!(peer = %src, "peer address learned from an offer");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "offer rejected"),
            }
        }
        ex.poll(now, &mut rng);
        let mut new_rx = None;
        while let Some(cmd) = ex.poll_key() {
            if let chantry_core::exchange::KeyCommand::InstallRx(k) = &cmd {
                new_rx = Some(k.spi);
            }
            if matches!(cmd, chantry_core::exchange::KeyCommand::Erase)
                && !r.settings.peer_configured
            {
                // A dead peer's address is forgotten (behaviour.md §4.3);
                // with a cathedral that is its relay, whatever the hold.
                state.force_peer(r.settings.peer);
                ex.set_peer_known(r.settings.peer.is_some());
            }
            keys.apply(cmd);
        }
        let mut sent = false;
        if let Some(c) = cathedral.as_mut() {
            if let Some(spi) = new_rx {
                // A relaying cathedral forwards data only for SPIs the
                // receiver reported: tell it before the peer can use the
                // new key (this INFO leaves before our offers below).
                c.rx_installed(spi, now, &state, &mut rng);
            }
            sent |= c.flush(now, &state, &mut ex, &mut offers_out, &mut rng);
        }
        // After the cathedral's events: an ambry switch starts an exchange.
        while let Some(offer) = ex.poll_transmit() {
            sent |= offers_out.push(Meta::default(), &offer).is_ok();
        }
        if sent {
            offers_out.wake();
        }
        while let Some(e) = ex.poll_event() {
            tracing::info!(event = ?e, "exchange");
        }
        if moved == BATCH {
            continue;
        }
        let now = runtime::now().mono;
        let deadline = match (
            ex.next_deadline(),
            cathedral.as_ref().and_then(|c| c.next_deadline(now)),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = deadline.map_or(TICK, |d| runtime::until(d, now).min(TICK));
        shm::sleep(&mut [&mut offers_in], &wake, &[], Some(timeout))?;
    }
}

/// The forced-rekey interval, honoured only by test builds.
fn test_rekey_every(secs: Option<u64>) -> Option<Duration> {
    if cfg!(feature = "test-hooks") {
        secs.filter(|s| *s > 0).map(Duration::from_secs)
    } else {
        None
    }
}
