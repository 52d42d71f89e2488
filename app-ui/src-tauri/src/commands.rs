//! The commands the front end invokes. Each is one request to the
//! service (or one file, dialog or keyring operation) and fails with an
//! [`AppError`] the front end turns into an action.

use std::path::{Path, PathBuf};

use chantry_core::ipc::{
    ErrorCode, EventRecord, ImportRequest, LogLine, Passphrase, Request, Response, Settings,
    StatsSample, TunnelStatus, VicarImportRequest,
};
use serde::Serialize;
use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_dialog::DialogExt as _;
use tokio::sync::oneshot;

use crate::AppState;
use crate::error::AppError;
use crate::files;
use crate::link::{LinkState, ProfileView, unexpected};
use crate::secrets;

type Res<T> = Result<T, AppError>;

/// Who runs the app and where it looks for the service.
#[derive(Debug, Clone, Serialize)]
pub struct AppInfo {
    /// The app's version.
    pub version: String,
    /// The control socket.
    pub socket: String,
    /// The login name of the user running the app.
    pub user: String,
}

/// Who runs the app and where it looks for the service.
#[tauri::command]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    AppInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        socket: state.socket.display().to_string(),
        user,
    }
}

/// The connection to the service.
#[tauri::command]
pub fn link_state(state: State<'_, AppState>) -> LinkState {
    state.link.state()
}

/// The profiles as last known.
#[tauri::command]
pub fn profiles(state: State<'_, AppState>) -> Vec<ProfileView> {
    state.link.profiles()
}

/// Connect to the service now.
#[tauri::command]
pub fn retry(state: State<'_, AppState>) {
    state.link.retry();
}

/// Brings a profile's tunnel up.
#[tauri::command]
pub async fn connect(state: State<'_, AppState>, name: String) -> Res<()> {
    state.link.call_done(Request::Connect { name }).await
}

/// Takes a profile's tunnel down.
#[tauri::command]
pub async fn disconnect(state: State<'_, AppState>, name: String) -> Res<()> {
    state.link.call_done(Request::Disconnect { name }).await
}

/// A profile's tunnel, as the service reports it now.
#[tauri::command]
pub async fn status(state: State<'_, AppState>, name: String) -> Res<TunnelStatus> {
    match state
        .link
        .call(Request::Status {
            name: Some(name.clone()),
        })
        .await?
    {
        Response::Status { tunnels } => tunnels
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| AppError::protocol(format!("no status for {name}"))),
        other => Err(unexpected(&other)),
    }
}

/// The key file a sanctum.conf's `secret` line names (to fill in the
/// import form).
#[tauri::command]
pub fn secret_path(config_path: String) -> Res<Option<String>> {
    Ok(files::secret_path_of(Path::new(&config_path))?.map(|p| p.display().to_string()))
}

/// Imports a sanctum.conf and its key file as profile `name` (empty:
/// the configuration's instance).
#[tauri::command]
pub async fn import_conf(
    state: State<'_, AppState>,
    name: String,
    config_path: String,
    key_path: Option<String>,
    auto_connect: bool,
    always_on: bool,
) -> Res<String> {
    let config_path = PathBuf::from(config_path);
    let key_path = key_path.filter(|k| !k.trim().is_empty()).map(PathBuf::from);
    let read = files::read_conf(&config_path, key_path.as_deref())?;
    let name = if name.trim().is_empty() {
        read.instance.clone()
    } else {
        name.trim().to_owned()
    };
    let text = read.text.clone();
    state
        .link
        .call_done(Request::Import(ImportRequest {
            name: name.clone(),
            config: read.text,
            secret: read.secret,
            auto_connect,
            always_on,
            kek: read.kek,
            cathedral_secret: read.cathedral_secret,
            cathedral_cosk: read.cathedral_cosk,
        }))
        .await
        .map_err(|e| e.about_file(&config_path, &text))?;
    Ok(name)
}

/// What came of a vicar import besides the profile.
#[derive(Debug, Clone, Serialize)]
pub struct VicarImported {
    /// The typed passphrase is now in the OS keyring.
    pub remembered: bool,
    /// Why it could not be remembered (the profile is imported all the
    /// same).
    pub keyring_error: Option<AppError>,
}

/// Imports a vicar profile: the file, its passphrase (typed, or the one
/// remembered for `name`), and the sanctum.conf lines it does not hold.
/// A typed passphrase is remembered in the OS keyring once the service
/// accepted it, if `remember`.
#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn import_vicar(
    state: State<'_, AppState>,
    name: String,
    vicar_path: String,
    passphrase: Option<String>,
    remember: bool,
    config: String,
    auto_connect: bool,
    always_on: bool,
) -> Res<VicarImported> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(AppError::other("give the profile a name"));
    }
    let vicar = files::read_vicar(Path::new(&vicar_path))?;
    let (pass, typed) = secrets::choose(&*state.secrets, &name, passphrase.as_deref())?;
    let result = state
        .link
        .call_done(Request::ImportVicar(VicarImportRequest {
            name: name.clone(),
            vicar,
            passphrase: Passphrase::new(pass.to_string()),
            config: config.clone(),
            auto_connect,
            always_on,
        }))
        .await;
    match result {
        Ok(()) => Ok(if remember && typed {
            match state.secrets.set(&name, &pass) {
                Ok(()) => VicarImported {
                    remembered: true,
                    keyring_error: None,
                },
                Err(e) => VicarImported {
                    remembered: false,
                    keyring_error: Some(e),
                },
            }
        } else {
            VicarImported {
                remembered: false,
                keyring_error: None,
            }
        }),
        Err(
            e @ AppError::Refused {
                code: ErrorCode::Invalid,
                ..
            },
        ) => Err(e.about_file(Path::new("sanctum.conf lines"), &config)),
        Err(e) => Err(e),
    }
}

/// Whether a passphrase is remembered for `name`.
#[tauri::command]
pub fn remembered(state: State<'_, AppState>, name: String) -> Res<bool> {
    Ok(state.secrets.get(&name)?.is_some())
}

/// Forgets the passphrase remembered for `name`.
#[tauri::command]
pub fn forget_passphrase(state: State<'_, AppState>, name: String) -> Res<()> {
    state.secrets.forget(&name)
}

/// Changes a profile's auto-connect or kill-switch (always-on) flag.
#[tauri::command]
pub async fn edit(
    state: State<'_, AppState>,
    name: String,
    auto_connect: Option<bool>,
    always_on: Option<bool>,
) -> Res<()> {
    state
        .link
        .call_done(Request::Edit {
            name,
            auto_connect,
            always_on,
        })
        .await
}

/// Deletes a profile (it must be down).
#[tauri::command]
pub async fn remove(state: State<'_, AppState>, name: String) -> Res<()> {
    state
        .link
        .call_done(Request::Remove { name: name.clone() })
        .await?;
    // Its remembered passphrase goes with it.
    let _ = state.secrets.forget(&name);
    Ok(())
}

/// The service's newest log lines.
#[tauri::command]
pub async fn logs(
    state: State<'_, AppState>,
    name: Option<String>,
    limit: u32,
) -> Res<Vec<LogLine>> {
    match state.link.call(Request::Logs { name, limit }).await? {
        Response::Logs { lines } => Ok(lines),
        other => Err(unexpected(&other)),
    }
}

/// The newest entries of the event log.
#[tauri::command]
pub async fn events(
    state: State<'_, AppState>,
    name: Option<String>,
    limit: u32,
) -> Res<Vec<EventRecord>> {
    match state.link.call(Request::Events { name, limit }).await? {
        Response::Events { events } => Ok(events),
        other => Err(unexpected(&other)),
    }
}

/// A profile's stored counter samples of the last `seconds`.
#[tauri::command]
pub async fn history(
    state: State<'_, AppState>,
    name: String,
    seconds: u32,
) -> Res<Vec<StatsSample>> {
    match state.link.call(Request::History { name, seconds }).await? {
        Response::History { samples } => Ok(samples),
        other => Err(unexpected(&other)),
    }
}

/// The service's settings.
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Res<Settings> {
    match state.link.call(Request::GetSettings).await? {
        Response::Settings(s) => Ok(s),
        other => Err(unexpected(&other)),
    }
}

/// Replaces the service's settings.
#[tauri::command]
pub async fn set_settings(state: State<'_, AppState>, settings: Settings) -> Res<()> {
    state.link.call_done(Request::SetSettings(settings)).await
}

/// Asks the user for a file to open; `None` if they cancelled.
#[tauri::command]
pub async fn pick_file(app: AppHandle, title: String) -> Res<Option<String>> {
    let (tx, rx) = oneshot::channel();
    app.dialog().file().set_title(title).pick_file(move |p| {
        let _ = tx.send(p);
    });
    let picked = rx
        .await
        .map_err(|_| AppError::other("the file dialog closed"))?;
    picked
        .map(|p| {
            p.into_path()
                .map(|p| p.display().to_string())
                .map_err(AppError::other)
        })
        .transpose()
}

/// Asks the user where to save `text` and writes it there; the path, or
/// `None` if they cancelled.
#[tauri::command]
pub async fn save_text(app: AppHandle, suggested: String, text: String) -> Res<Option<String>> {
    let (tx, rx) = oneshot::channel();
    app.dialog()
        .file()
        .set_file_name(suggested)
        .save_file(move |p| {
            let _ = tx.send(p);
        });
    let Some(picked) = rx
        .await
        .map_err(|_| AppError::other("the file dialog closed"))?
    else {
        return Ok(None);
    };
    let path = picked.into_path().map_err(AppError::other)?;
    std::fs::write(&path, text).map_err(|e| AppError::BadFile {
        path: path.display().to_string(),
        detail: format!("cannot write it: {e}"),
        line: None,
        line_text: None,
    })?;
    Ok(Some(path.display().to_string()))
}

/// Whether the app starts at login (an XDG autostart entry on Linux).
#[tauri::command]
pub fn autostart(app: AppHandle) -> Res<bool> {
    app.autolaunch().is_enabled().map_err(AppError::other)
}

/// Makes the app start at login (hidden, in the tray), or not.
#[tauri::command]
pub fn set_autostart(app: AppHandle, enabled: bool) -> Res<()> {
    let a = app.autolaunch();
    if enabled { a.enable() } else { a.disable() }.map_err(AppError::other)
}
