//! The service-wide settings (`Request::GetSettings`, `SetSettings`):
//! stored in SQLite ([`Store::settings`], the defaults until set), the log
//! level applied to the [`LogBook`] and `reconnect_on_network_change` to
//! the [`Tunnels`] at once and at every start.

use chantry_core::ipc::{ErrorReply, Response, Settings};

use super::logbook::{LogBook, LogLevel};
use super::reply::{internal, invalid_at};
use super::store::Store;
use super::tunnels::Tunnels;

/// The log level of `s`, or why it is not valid.
pub fn check(s: &Settings) -> Result<LogLevel, ErrorReply> {
    s.log_level
        .parse::<LogLevel>()
        .map_err(|e| invalid_at(e.to_string(), None))
}

/// Applies the stored settings at start; invalid stored values (never
/// written by [`set`]) leave the defaults in force.
pub async fn apply_stored(
    store: &Store,
    logs: &LogBook,
    tunnels: &Tunnels,
) -> Result<(), super::store::StoreError> {
    let s = store.settings().await?;
    tunnels.set_reconnect_on_network_change(s.reconnect_on_network_change);
    match check(&s) {
        Ok(level) => logs.set_level(level),
        Err(e) => tracing::warn!("stored settings: {}", e.message),
    }
    Ok(())
}

/// Answers `GetSettings`.
pub async fn get(store: &Store) -> Result<Response, ErrorReply> {
    store
        .settings()
        .await
        .map(Response::Settings)
        .map_err(internal)
}

/// Answers `SetSettings`: checks, stores, applies, and records who
/// changed what.
pub async fn set(
    store: &Store,
    logs: &LogBook,
    tunnels: &Tunnels,
    new: Settings,
    uid: u32,
) -> Result<Response, ErrorReply> {
    let level = check(&new)?;
    let old = store.settings().await.map_err(internal)?;
    store.set_settings(&new).await.map_err(internal)?;
    if old != new {
        tracing::info!(
            uid,
            log_level = new.log_level,
            reconnect_on_network_change = new.reconnect_on_network_change,
            "settings changed"
        );
        let detail = format!(
            "settings changed by uid {uid}: log level {}, reconnect on network change {}",
            new.log_level,
            if new.reconnect_on_network_change {
                "on"
            } else {
                "off"
            }
        );
        let _ = store.log_event(None, "settings", &detail).await;
    }
    // After the line above, so that the change itself is kept at the old
    // level.
    logs.set_level(level);
    tunnels.set_reconnect_on_network_change(new.reconnect_on_network_change);
    Ok(Response::Done)
}
