//! cathedral: the cathedral server (behaviour.md §8). purgatory-rx hands
//! it every datagram with its source, from the main socket and the NAT
//! port alike; it checks offers, keeps the
//! registry, answers INFO and relays exchange offers and data packets
//! between registered tunnels, queueing each datagram with its
//! destination for purgatory-tx. It holds no socket and runs in an empty
//! network namespace.
//!
//! The secret directory and the settings file are read once, before the
//! sandbox (as the guardian's user, so root-only key files work); the
//! sandboxed role has no filesystem access. Reloading them needs a
//! restart of the daemon for now.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chantry_core::cathedral::server::{Cathedral, Counters};
use chantry_core::cathedral::settings::{Settings, parse_settings};
use chantry_core::cathedral::{COSK_PUBLIC_LEN, MemoryDirectory};
use chantry_core::config::{KEY_LEN, load_key_file};
use chantry_core::entropy::OsEntropy;
use chantry_core::secret::Key32;

use super::Role0;
use super::runtime::{self, BATCH};
use crate::shm::{self, Meta};
use crate::wiring::{CathedralPaths, Ring};

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
    let (settings, directory) = load(&paths)?;
    let (wake, _state) = r.enter()?;
    tracing::info!(
        public = %paths.public,
        flocks = settings.flocks.len(),
        "cathedral ready"
    );
    let mut server = Cathedral::new(paths.public, settings, Box::new(directory));
    let mut rng = OsEntropy;
    let mut buf = vec![0u8; shm::SLOT_DATA];
    let mut logged = Counters::default();
    let mut next_status = runtime::now().mono + STATUS_EVERY;
    loop {
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
        shm::sleep(&mut [&mut inbox], &wake, &[], Some(timeout))?;
    }
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
        "cathedral status"
    );
}

/// Reads the settings file and, for every `allow`ed identity, its
/// cathedral secret and COSK public key from the secret directory
/// (files.md §3, §4). Bad settings lines and missing key files are logged
/// and skipped, as in the reference.
pub fn load(paths: &CathedralPaths) -> Result<(Settings, MemoryDirectory)> {
    let settings = match &paths.settings {
        None => Settings::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("settings file {}", p.display()))?;
            let (s, problems) = parse_settings(&text);
            for pr in problems {
                tracing::warn!(file = %p.display(), line = pr.line, problem = pr.message, "settings line skipped");
            }
            s
        }
    };
    let mut dir = MemoryDirectory::new();
    for (&flock, f) in &settings.flocks {
        dir.add_flock(flock);
        let fdir = paths.secretdir.join(format!("flock-{flock:x}"));
        for a in &f.allows {
            match load_identity(&fdir, a.identity) {
                Ok((cs, public)) => dir.add_client(flock, a.identity, cs, public),
                Err(e) => tracing::warn!(
                    flock = format_args!("{flock:x}"),
                    identity = format_args!("{:08x}", a.identity),
                    error = %format!("{e:#}"),
                    "identity without usable keys: its offers will be dropped"
                ),
            }
        }
    }
    Ok((settings, dir))
}

/// `<ID>.key` (32-byte CS) and `<ID>.pub` (32-byte COSK public key).
fn load_identity(fdir: &Path, identity: u32) -> Result<(Key32, [u8; COSK_PUBLIC_LEN])> {
    let cs = load_key_file::<KEY_LEN>(&fdir.join(format!("{identity:08x}.key")))?;
    let public = load_key_file::<COSK_PUBLIC_LEN>(&fdir.join(format!("{identity:08x}.pub")))?;
    Ok((cs, *public.expose()))
}
