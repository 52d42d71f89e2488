//! The tray icon: one picture per state (disconnected, connecting,
//! connected, error), a status line, a check item per profile that
//! connects or disconnects it, "Open Chantry" and "Quit".
//!
//! Tauri's tray is libayatana-appindicator on Linux: a StatusNotifierItem
//! where a host is on the session bus (KDE, GNOME with the AppIndicator
//! extension), an XEmbed icon (GtkStatusIcon) where none is (trayer,
//! older panels); the end-to-end test uses the latter.

use std::path::PathBuf;

use chantry_core::ipc::{Request, TunnelState};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter as _, Manager as _, Wry};

use crate::error::AppError;
use crate::link::{LinkState, ProfileView};
use crate::model::{Shown, overall};

/// Id of the tray icon.
pub const TRAY_ID: &str = "chantry";
/// Menu id of "Open Chantry".
pub const OPEN: &str = "open";
/// Menu id of "Quit".
pub const QUIT: &str = "quit";
/// Menu id prefix of a profile's toggle.
pub const TOGGLE: &str = "toggle:";

const DISCONNECTED: &[u8] = include_bytes!("../icons/tray-disconnected.png");
const CONNECTING: &[u8] = include_bytes!("../icons/tray-connecting.png");
const CONNECTED: &[u8] = include_bytes!("../icons/tray-connected.png");
const ERROR: &[u8] = include_bytes!("../icons/tray-error.png");

fn picture(s: Shown) -> &'static [u8] {
    match s {
        Shown::Disconnected => DISCONNECTED,
        Shown::Connecting => CONNECTING,
        Shown::Connected => CONNECTED,
        Shown::Error => ERROR,
    }
}

/// What the tray shows; redrawn only when this changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayView {
    /// The icon.
    pub shown: Shown,
    /// The first, disabled line of the menu.
    pub status: String,
    /// Profile name, checked, enabled.
    pub toggles: Vec<(String, bool, bool)>,
}

/// The tray's picture of the link and the profiles.
pub fn view(link: &LinkState, profiles: &[ProfileView]) -> TrayView {
    let shown = overall(link, profiles);
    let status = match link {
        LinkState::Connecting { .. } => "Chantry: reaching the service…".to_owned(),
        LinkState::Down { error, .. } => match error {
            AppError::NotRunning { .. } => "Chantry: the service is not running".to_owned(),
            AppError::PermissionDenied { .. }
            | AppError::Refused {
                code: chantry_core::ipc::ErrorCode::Forbidden,
                ..
            } => "Chantry: no permission to use the service".to_owned(),
            _ => "Chantry: the service cannot be reached".to_owned(),
        },
        LinkState::Up { .. } if profiles.is_empty() => "Chantry: no profiles yet".to_owned(),
        LinkState::Up { .. } => format!("Chantry: {}", shown.word()),
    };
    let toggles = profiles
        .iter()
        .map(|p| {
            let on = matches!(p.info.state, TunnelState::Up | TunnelState::Connecting);
            (p.info.name.clone(), on, true)
        })
        .collect();
    TrayView {
        shown,
        status,
        toggles,
    }
}

fn menu(app: &AppHandle, v: &TrayView) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "status",
        &v.status,
        false,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for (name, checked, enabled) in &v.toggles {
        menu.append(&CheckMenuItem::with_id(
            app,
            format!("{TOGGLE}{name}"),
            name,
            *enabled,
            *checked,
            None::<&str>,
        )?)?;
    }
    if !v.toggles.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    menu.append(&MenuItem::with_id(
        app,
        OPEN,
        "Open Chantry",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(app, QUIT, "Quit", true, None::<&str>)?)?;
    Ok(menu)
}

/// Where the tray writes its icon files on Linux: a directory of this
/// user's (the default, $TMPDIR/tray-icon, is shared between users).
fn icon_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("chantry-tray"),
        _ => std::env::temp_dir().join(format!("chantry-tray-{}", nix::unistd::getuid())),
    }
}

/// Creates the tray icon.
pub fn create(app: &AppHandle, v: &TrayView) -> tauri::Result<TrayIcon> {
    let dir = icon_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!("tray icon directory {}: {e}", dir.display());
    }
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(picture(v.shown))?)
        .tooltip(&v.status)
        .temp_dir_path(dir)
        .menu(&menu(app, v)?)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu)
        .build(app)
}

/// Redraws the tray for `v`.
pub fn update(app: &AppHandle, v: &TrayView) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    tray.set_icon(Some(Image::from_bytes(picture(v.shown))?))?;
    tray.set_tooltip(Some(&v.status))?;
    tray.set_menu(Some(menu(app, v)?))?;
    Ok(())
}

/// Shows and focuses the main window.
pub fn open_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    let id = event.id().as_ref();
    if id == OPEN {
        open_window(app);
    } else if id == QUIT {
        app.exit(0);
    } else if let Some(name) = id.strip_prefix(TOGGLE) {
        let name = name.to_owned();
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let state = app.state::<crate::AppState>();
            let on = state
                .link
                .profile(&name)
                .is_some_and(|p| matches!(p.info.state, TunnelState::Up | TunnelState::Connecting));
            let request = if on {
                Request::Disconnect { name: name.clone() }
            } else {
                Request::Connect { name: name.clone() }
            };
            tracing::info!(profile = %name, "tray: {}", request.op());
            if let Err(e) = state.link.call_done(request).await {
                // The window explains what went wrong and what to do.
                let _ = app.emit("tray-error", &e);
                open_window(&app);
            }
            // The check mark follows the service's state, not the click.
            state.redraw_tray(&app);
        });
    }
}

#[cfg(test)]
mod tests {
    use chantry_core::ipc::{ErrorCode, Privilege, ProfileInfo};

    use super::*;

    fn p(name: &str, state: TunnelState) -> ProfileView {
        ProfileView {
            info: ProfileInfo {
                name: name.into(),
                instance: "t".into(),
                mode: "tunnel".into(),
                auto_connect: false,
                always_on: false,
                state,
            },
            detail: None,
            stats: None,
        }
    }

    #[test]
    fn the_menu_has_a_checked_toggle_per_running_profile() {
        let link = LinkState::Up {
            socket: "/s".into(),
            server: "chantryd".into(),
            privilege: Privilege::Member,
        };
        let v = view(
            &link,
            &[p("home", TunnelState::Up), p("work", TunnelState::Down)],
        );
        assert_eq!(v.shown, Shown::Connected);
        assert_eq!(v.status, "Chantry: connected");
        assert_eq!(
            v.toggles,
            vec![("home".into(), true, true), ("work".into(), false, true)]
        );
    }

    #[test]
    fn a_service_problem_is_the_status_line() {
        let down = |error| LinkState::Down {
            socket: "/s".into(),
            error,
        };
        let v = view(
            &down(AppError::NotRunning {
                socket: "/s".into(),
                detail: "no such file".into(),
            }),
            &[],
        );
        assert_eq!(v.shown, Shown::Error);
        assert_eq!(v.status, "Chantry: the service is not running");
        let v = view(
            &down(AppError::Refused {
                code: ErrorCode::Forbidden,
                message: "no".into(),
                line: None,
                file: None,
                line_text: None,
            }),
            &[],
        );
        assert_eq!(v.status, "Chantry: no permission to use the service");
    }
}
