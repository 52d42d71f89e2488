//! cathedral: the cathedral server (behaviour.md §8). purgatory-rx hands
//! it every datagram with its source, from the main socket and the NAT
//! port alike; it checks offers, keeps the
//! registry, answers INFO and relays exchange offers and data packets
//! between registered tunnels, queueing each datagram with its
//! destination for purgatory-tx. It holds no socket and runs in an empty
//! network namespace.
//!
//! It has no filesystem access: the guardian reads the settings file,
//! the secret directory and the ambry bundles (as root, so root-only key
//! files work) and feeds them over a pipe, at start and on every reload
//! (SIGHUP, or a changed mtime checked every 10 s; crate::feed).
//! A reload replaces flocks, allows, keys, federation peers and changed
//! bundles and keeps the registrations that are still allowed
//! (behaviour.md §8.11).

use std::time::Duration;

use anyhow::{Context, Result};
use chantry_core::ambry::Bundle;
use chantry_core::cathedral::MemoryDirectory;
use chantry_core::cathedral::server::{Cathedral, Counters};
use chantry_core::cathedral::settings::{Settings, parse_settings};
use chantry_core::entropy::OsEntropy;

use super::Role0;
use super::runtime::{self, BATCH};
use crate::feed::{BundleFeed, FeedReader, Snapshot};
use crate::shm::{self, Meta};
use crate::wiring::{Ring, Slot};

/// How often the counters are logged when they changed (behaviour.md
/// §8.11: a status log every 5 s).
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Runs the cathedral until it is killed.
pub fn run(mut r: Role0) -> Result<()> {
    let mut inbox = runtime::consumer(&mut r.fds, Ring::Chapel)?;
    let mut outbox = runtime::producer(&mut r.fds, Ring::Purgatory)?;
    let paths = r
        .settings
        .cathedral
        .clone()
        .context("cathedral mode without its secret directory")?;
    let feed_fd = r.fds.take(Slot::Feed)?;
    // Non-blocking before the sandbox (no fcntl(F_SETFL) after it).
    nix::fcntl::fcntl(
        std::os::fd::AsFd::as_fd(&feed_fd),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .context("feed pipe")?;
    let mut feed_pipe = std::fs::File::from(feed_fd);
    let (wake, _state) = r.enter()?;
    let mut server = Cathedral::new(
        paths.public,
        Settings::default(),
        Box::new(MemoryDirectory::new()),
    );
    let mut feed = FeedReader::default();
    let mut feed_open = true;
    let mut fed = false;
    let mut rng = OsEntropy;
    let mut buf = vec![0u8; shm::SLOT_DATA];
    let mut logged = Counters::default();
    let mut next_status = runtime::now().mono + STATUS_EVERY;
    loop {
        if feed_open {
            feed_open = feed.drain(&mut feed_pipe);
            loop {
                match feed.next_snapshot() {
                    Ok(Some(snap)) => {
                        apply(&mut server, snap, paths.p2p_sync);
                        if !fed {
                            fed = true;
                            tracing::info!(public = %paths.public, "cathedral ready");
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "cathedral feed");
                        break;
                    }
                }
            }
        }
        let now = runtime::now();
        let mut moved = 0;
        while moved < BATCH {
            let Some((meta, len)) = inbox.pop(&mut buf) else {
                break;
            };
            moved += 1;
            let Some(from) = meta.addr else { continue };
            let packet = buf.get(..len).unwrap_or_default();
            if let Err(e) = server.handle_datagram(now, from, packet, &mut rng) {
                tracing::debug!(%from, reason = %e, "dropped");
            }
        }
        server.handle_timeout(now);
        let mut sent = false;
        while let Some((to, datagram)) = server.poll_transmit() {
            let meta = Meta {
                addr: Some(to),
                kind: 0,
            };
            sent |= outbox.push(meta, &datagram).is_ok();
        }
        if sent {
            outbox.wake();
        }
        if now.mono >= next_status {
            next_status = now.mono + STATUS_EVERY;
            let c = server.counters();
            if c != logged {
                logged = c;
                log_status(&server, &c);
            }
        }
        if moved == BATCH {
            continue;
        }
        let now = runtime::now().mono;
        let timeout = runtime::until(server.next_deadline().min(next_status), now);
        let extra = [std::os::fd::AsFd::as_fd(&feed_pipe)];
        let extra: &[std::os::fd::BorrowedFd<'_>] = if feed_open { &extra } else { &[] };
        shm::sleep(&mut [&mut inbox], &wake, extra, Some(timeout))?;
    }
}

/// Installs a snapshot: settings and keys (registrations that are still
/// allowed stay), the sync secret, and the bundles that changed. A bundle
/// that is not exactly what a cathedral loads (files.md §5.2) is refused
/// and the pair has none.
fn apply(server: &mut Cathedral, snap: Snapshot, p2p_sync: bool) {
    let (settings, _) = parse_settings(&snap.settings_text);
    let mut dir = MemoryDirectory::new();
    for &flock in settings.flocks.keys() {
        dir.add_flock(flock);
    }
    for i in snap.identities {
        dir.add_client(i.flock, i.id, i.cs, i.public);
    }
    let (flocks, federate) = (settings.flocks.len(), settings.federate.len());
    server.set_settings(settings, Box::new(dir));
    if let Some(sync) = snap.sync {
        server.set_federation(sync, p2p_sync);
    }
    for (a, b, feed) in snap.bundles {
        let BundleFeed::Bytes(bytes) = feed else {
            continue;
        };
        match Bundle::parse_for_pair(&bytes, a, b) {
            Ok(bundle) => {
                tracing::info!(
                    flocks = format_args!("{a:x}/{b:x}"),
                    generation = format_args!("{:08x}", bundle.head.generation),
                    "ambry bundle installed"
                );
                server.set_bundle(a, b, Some(bundle));
            }
            Err(e) => {
                tracing::warn!(flocks = format_args!("{a:x}/{b:x}"), error = %e, "ambry bundle refused");
                server.set_bundle(a, b, None);
            }
        }
    }
    tracing::info!(
        flocks,
        federate,
        tunnels = server.tunnels(),
        "cathedral settings installed"
    );
}

/// The status line the e2e tests and operators read.
fn log_status(server: &Cathedral, c: &Counters) {
    tracing::info!(
        tunnels = server.tunnels(),
        info = c.info,
        info_replies = c.info_replies,
        info_p2p = c.info_p2p,
        nat_probes = c.nat_probes,
        nat_changed = c.nat_changed,
        offers_relayed = c.offers_relayed,
        data_relayed = c.data_relayed,
        data_bytes = c.data_bytes,
        dropped = c.dropped,
        offers_rejected = c.offers_rejected,
        ambries = c.ambries_sent,
        remembrances = c.remembrances_sent,
        federated_out = c.federated_out,
        federated_in = c.federated_in,
        bandwidth_drops = c.bandwidth_drops,
        liturgy = c.liturgy,
        liturgy_replies = c.liturgy_replies,
        liturgy_too_fast = c.liturgy_too_fast,
        "cathedral status"
    );
}
