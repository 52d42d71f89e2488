//! chapel's ambry, remembrance and failover duties (behaviour.md §7.2,
//! §7.3), for the cathedral client's events; the caller keeps the others
//! (INFO and where the peer is):
//!
//! * AMBRY (with a `kek`): unwrap the entry (crypto.md §12.3) into the new
//!   shared secret, report it to the guardian, which writes the `secret`
//!   file (chapel has no file access), report the new generation in INFO,
//!   and start an exchange under the new secret at once (the 75 s
//!   renegotiation window runs in the exchange). The old keys carry
//!   traffic until the new ones are installed, so nothing is interrupted.
//! * REMEMBRANCE: the client has taken the list as its failover list; the
//!   file bytes go to the guardian, which writes `cathedral_remembrance`.
//! * Unresponsive / Switched: logged; a peer address that was the silent
//!   cathedral (relay) moves to the new one at once, otherwise the new
//!   cathedral's INFO replies move it.

use std::io::Write;

use chantry_core::ambry::Unwrapper;
use chantry_core::cathedral::{CathedralClient, CathedralEvent};
use chantry_core::entropy::Entropy;
use chantry_core::exchange::KeyExchange;
use chantry_core::secret::Key32;
use chantry_core::time::Now;

use crate::report::Report;

/// Chapel's ambry, remembrance and failover duties.
pub struct AmbryDuties {
    /// The base KEK, if configured.
    pub kek: Option<Key32>,
    /// The pipe to the guardian.
    pub report: Option<std::fs::File>,
    /// Own flock (with domain byte).
    pub flock_src: u64,
    /// Peer flock (with domain byte).
    pub flock_dst: u64,
    /// Own tunnel id.
    pub tunnel: u16,
    /// The installed ambry generation (0: none in this lifetime).
    pub generation: u32,
    /// A `peer` line was given: cathedral INFO never moves the peer.
    pub peer_configured: bool,
}

impl std::fmt::Debug for AmbryDuties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmbryDuties")
            .field("kek", &self.kek.is_some())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl AmbryDuties {
    /// Acts on one event of the cathedral client if it is one of these
    /// duties (AMBRY, REMEMBRANCE, unresponsive, switched, ignored);
    /// anything else is handed back.
    pub fn handle(
        &mut self,
        e: CathedralEvent,
        now: Now,
        state: &super::shared::Shared,
        ex: &mut KeyExchange,
        client: &mut CathedralClient,
        rng: &mut dyn Entropy,
    ) -> Option<CathedralEvent> {
        match e {
            CathedralEvent::Ambry(body) => {
                // Without a KEK the client drops AMBRY before it gets here.
                let kek = self.kek.as_ref()?;
                let unwrapper = Unwrapper {
                    base_kek: kek,
                    flock_src: self.flock_src,
                    flock_dst: self.flock_dst,
                    tunnel: self.tunnel,
                    current_generation: self.generation,
                };
                match unwrapper.unwrap(&body, now.wall) {
                    Ok(secret) => {
                        self.generation = body.generation;
                        client.set_ambry_generation(body.generation);
                        self.send(&Report::Ambry {
                            generation: body.generation,
                            secret: secret.clone(),
                        });
                        ex.ambry_switch(now, secret, rng);
                        tracing::info!(
                            generation = format_args!("{:08x}", body.generation),
                            "ambry generation active: rekeying under the new secret"
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "ambry refused"),
                }
            }
            CathedralEvent::Remembrance(update) => {
                tracing::info!(cathedrals = ?update.entries, "remembrance list from the cathedral");
                self.send(&Report::Remembrance(Box::new(update.file)));
            }
            CathedralEvent::Unresponsive { cathedral } => {
                tracing::warn!(%cathedral, "cathedral unresponsive for 45 s");
            }
            CathedralEvent::Switched { from, to } => {
                tracing::warn!(%from, %to, "failing over to the next remembered cathedral");
                // Relaying through the silent cathedral cannot work: relay
                // through the new one until its INFO says otherwise. (The
                // reference leaves the peer alone and waits for that INFO,
                // which never comes while the peer is registered at a third
                // federated cathedral without p2p sync.)
                state.set_cathedral(Some(to));
                if !self.peer_configured && state.peer() == Some(from) {
                    state.force_peer(Some(to));
                    tracing::info!(peer = %to, "relaying through the new cathedral");
                }
            }
            CathedralEvent::Ignored { offer_type, reason } => {
                tracing::debug!(offer_type, ?reason, "cathedral offer ignored");
            }
            other => return Some(other),
        }
        None
    }

    /// Writes one report to the guardian (one write below PIPE_BUF).
    fn send(&mut self, r: &Report) {
        if let Some(p) = self.report.as_mut()
            && let Err(e) = p.write_all(&r.encode())
        {
            tracing::error!(error = %e, "could not report to the guardian");
        }
    }
}
