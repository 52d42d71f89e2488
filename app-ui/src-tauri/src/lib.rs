//! Chantry, the desktop app: an unprivileged Tauri 2 window and tray icon
//! over chantryd's control endpoint (the same `chantry_core::ipc` frames
//! and messages as chantryctl). The window's front end (../src, built by
//! vite into ../dist) calls the commands in [`commands`] and listens to
//! three events: `link-state` ([`link::LinkState`]), `profiles` (a list
//! of [`link::ProfileView`]) and `service-event` (every
//! [`chantry_core::ipc::Event`] of the subscription as the service sent
//! it); `tray-error` carries an [`error::AppError`] of a tray action.
//!
//! * [`link`]: the connection to the service and the profile model.
//! * [`model`]: the four states a person sees.
//! * [`tray`]: the tray icon and its menu.
//! * [`files`]: reading the files of an import as the user.
//! * [`secrets`]: remembered vicar passphrases in the OS keyring.
//! * [`error`]: what went wrong, in terms the front end turns into actions.

pub mod commands;
pub mod error;
pub mod files;
pub mod link;
pub mod model;
pub mod secrets;
pub mod tray;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chantry_core::ipc::Event;
use clap::Parser;
use tauri::{AppHandle, Emitter as _, Manager as _, WindowEvent};

use crate::link::{Link, LinkState, ProfileView, Sink};
use crate::secrets::{MemoryStore, OsKeyring, PassphraseStore};
use crate::tray::TrayView;

/// The service's socket unless `--socket` or `CHANTRY_SOCKET` says
/// otherwise.
pub const DEFAULT_SOCKET: &str = "/run/chantry/chantryd.sock";

/// The command line of `chantry`.
#[derive(Debug, Parser)]
#[command(
    name = "chantry",
    version,
    about = "Chantry: the desktop app of chantryd"
)]
pub struct Cli {
    /// chantryd's control socket.
    #[arg(long, env = "CHANTRY_SOCKET", default_value = DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
    /// Start with the window hidden (only the tray icon): how the login
    /// entry starts it.
    #[arg(long)]
    pub hidden: bool,
    /// Keep remembered passphrases in memory only, not in the OS keyring
    /// (for sessions without one).
    #[arg(long)]
    pub no_keyring: bool,
}

/// What the commands and the tray share.
pub struct AppState {
    /// The connection to the service.
    pub link: Link,
    /// Remembered vicar passphrases.
    pub secrets: Box<dyn PassphraseStore>,
    /// The socket, for the front end's messages.
    pub socket: PathBuf,
    drawn: Mutex<Option<TrayView>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Redraws the tray if what it shows changed.
    pub fn redraw_tray(&self, app: &AppHandle) {
        let v = tray::view(&self.link.state(), &self.link.profiles());
        let mut drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        if drawn.as_ref() == Some(&v) {
            return;
        }
        let result = if drawn.is_none() {
            tray::create(app, &v).map(drop)
        } else {
            tray::update(app, &v)
        };
        match result {
            Ok(()) => {
                tracing::info!(state = v.shown.word(), "tray: {}", v.status);
                *drawn = Some(v);
            }
            Err(e) => tracing::warn!("tray: {e}"),
        }
    }
}

/// Sends what the link learns to the window and the tray.
struct AppSink(AppHandle);

impl Sink for AppSink {
    fn link(&self, state: &LinkState) {
        let _ = self.0.emit("link-state", state);
        if let Some(s) = self.0.try_state::<AppState>() {
            s.redraw_tray(&self.0);
        }
    }

    fn profiles(&self, profiles: &[ProfileView]) {
        let _ = self.0.emit("profiles", profiles);
        if let Some(s) = self.0.try_state::<AppState>() {
            s.redraw_tray(&self.0);
        }
    }

    fn event(&self, event: &Event) {
        let _ = self.0.emit("service-event", event);
        if let Event::Stats { .. } = event
            && let Some(s) = self.0.try_state::<AppState>()
        {
            // The stage (keying, online) decides connecting/connected.
            s.redraw_tray(&self.0);
        }
    }
}

/// Runs the app until "Quit".
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    tracing::info!(socket = %cli.socket.display(), "chantry app starting");

    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::link_state,
            commands::profiles,
            commands::retry,
            commands::connect,
            commands::disconnect,
            commands::status,
            commands::secret_path,
            commands::import_conf,
            commands::import_vicar,
            commands::remembered,
            commands::forget_passphrase,
            commands::edit,
            commands::remove,
            commands::logs,
            commands::events,
            commands::history,
            commands::get_settings,
            commands::set_settings,
            commands::pick_file,
            commands::save_text,
            commands::autostart,
            commands::set_autostart,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let (link, task) = Link::new(cli.socket.clone(), Arc::new(AppSink(handle.clone())));
            let secrets: Box<dyn PassphraseStore> = if cli.no_keyring {
                Box::new(MemoryStore::default())
            } else {
                Box::new(OsKeyring)
            };
            app.manage(AppState {
                link,
                secrets,
                socket: cli.socket.clone(),
                drawn: Mutex::new(None),
            });
            app.state::<AppState>().redraw_tray(&handle);
            tauri::async_runtime::spawn(task);
            if let Some(w) = app.get_webview_window("main") {
                if cli.hidden {
                    w.hide()?;
                }
                let w2 = w.clone();
                // Closing the window leaves the app in the tray.
                w.on_window_event(move |e| {
                    if let WindowEvent::CloseRequested { api, .. } = e {
                        api.prevent_close();
                        let _ = w2.hide();
                    }
                });
            }
            Ok(())
        })
        .run(tauri::generate_context!())?;
    Ok(())
}
