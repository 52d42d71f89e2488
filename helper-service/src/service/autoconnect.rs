//! What the service does with its tunnels when it starts and stops: the
//! kill switch a killed service left behind is replaced by the one of
//! the always-on auto-connect profiles in one transaction (or removed if
//! there are none), the watchers of network and sleep start, and the
//! profiles marked auto-connect are connected. At shutdown every tunnel
//! is stopped and the table goes.

use super::netwatch;
use super::store::{Profile, Store};
use super::tunnels::{Stale, Tunnels};

/// Start-up: stale rules replaced or removed, watchers on, auto-connect
/// profiles up. Failures are logged; the service runs on.
pub async fn start(store: &Store, tunnels: &Tunnels) -> tokio::task::JoinHandle<()> {
    let profiles = store.list().await.unwrap_or_else(|e| {
        tracing::error!("profiles: {e}");
        Vec::new()
    });
    let what = match tunnels.adopt_stale_rules(&profiles).await {
        Ok(Stale::None) => None,
        Ok(Stale::Replaced) => Some("replaced by this start's always-on profiles"),
        Ok(Stale::Removed) => Some("removed"),
        Err(e) => {
            tracing::error!("{e}");
            None
        }
    };
    if let Some(what) = what {
        let message = format!("the kill switch a previous run left behind was {what}");
        tracing::warn!("{message}");
        let _ = store.log_event(None, "killswitch", &message).await;
    }
    // Before any guardian starts, so the watcher sees their TUN devices
    // come and knows them as ours.
    let watcher = netwatch::spawn(tunnels.clone());
    connect_marked(&profiles, store, tunnels).await;
    watcher
}

/// Connects every profile of `profiles` marked auto-connect.
pub async fn connect_marked(profiles: &[Profile], store: &Store, tunnels: &Tunnels) {
    for p in profiles.iter().filter(|p| p.auto_connect) {
        tracing::info!(profile = p.name, "auto-connect");
        let _ = store
            .log_event(Some(&p.name), "auto-connect", "connecting at start")
            .await;
        if let Err(e) = tunnels.connect(p).await {
            tracing::error!(profile = p.name, "auto-connect: {e}");
            let _ = store.log_event(Some(&p.name), "failed", &e).await;
        }
    }
}

/// Shutdown: every tunnel down, the kill switch removed.
pub async fn stop(tunnels: &Tunnels, watcher: tokio::task::JoinHandle<()>) {
    watcher.abort();
    tunnels.stop_all().await;
}
