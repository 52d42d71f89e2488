//! `chantryd service`: the one system service the desktop app and
//! chantryctl drive (docs/architecture.md, "The service").
//!
//! * [`auth`]: peer credentials to a [`Privilege`](chantry_core::ipc::Privilege),
//!   and per-request refusals that name the group needed.
//! * [`store`]: profiles, the event log, statistics samples and settings
//!   in SQLite, key files 0600.
//! * [`profile`]: an import request checked into a profile, and back.
//! * [`vicar_import`]: a profile from a vicar file.
//! * [`conf_text`]: the sanctum.conf lines the service rewrites.
//! * [`tunnels`]: one supervised `chantryd run` child per wanted profile.
//! * [`killswitch`]: the nftables table of always-on profiles (Linux; an
//!   always-on profile is refused elsewhere).
//! * [`netwatch`]: network changes and resume from sleep (Linux).
//! * [`autoconnect`]: start-up and shutdown of the tunnels.
//! * [`stats`]: each running tunnel's numbers, from its control socket.
//! * [`logbook`]: the kept and streamed log lines.
//! * [`settings`]: the service-wide settings.
//! * [`endpoint`]: the control endpoint's connections and requests.
//! * [`transport`]: the endpoint per system: a Unix socket (Linux, macOS)
//!   or a named pipe with an explicit DACL (Windows), and who the caller is.
//! * [`registration`]: installing the service (launchd, the Windows
//!   service control manager).
//! * [`system`]: signals, private files, whether tunnels run here.
//! * [`reply`]: how a request fails.
//! * [`client`]: the blocking client chantryctl uses.

pub mod auth;
pub mod autoconnect;
pub mod client;
pub mod conf_text;
pub mod endpoint;
pub mod killswitch;
pub mod logbook;
pub mod netwatch;
pub mod profile;
pub mod registration;
pub mod reply;
pub mod settings;
pub mod stats;
pub mod store;
pub mod system;
pub mod transport;
pub mod tunnels;
pub mod vicar_import;

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

/// Default path of the control socket (on Windows: of the named pipe).
pub const DEFAULT_SOCKET: &str = transport::DEFAULT_ENDPOINT;
/// Default state directory.
#[cfg(not(any(target_os = "macos", windows)))]
pub const DEFAULT_STATE_DIR: &str = "/var/lib/chantry";
/// Default state directory.
#[cfg(target_os = "macos")]
pub const DEFAULT_STATE_DIR: &str = "/Library/Application Support/Chantry";
/// Default state directory.
#[cfg(windows)]
pub const DEFAULT_STATE_DIR: &str = r"C:\ProgramData\Chantry";
/// Default users' group.
#[cfg(unix)]
pub const DEFAULT_GROUP: &str = "chantry";
/// Default users' group (a local group).
#[cfg(not(unix))]
pub const DEFAULT_GROUP: &str = "Chantry Users";
/// Default admin group.
#[cfg(unix)]
pub const DEFAULT_ADMIN_GROUP: &str = "chantry-admin";
/// Default admin group (a local group; elevated Administrators and
/// SYSTEM are admins anyway).
#[cfg(not(unix))]
pub const DEFAULT_ADMIN_GROUP: &str = "Chantry Administrators";

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The control socket.
    pub socket: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The users' group.
    pub group: String,
    /// The admin group.
    pub admin_group: String,
    /// The chantryd binary that runs tunnels (normally this one).
    pub chantryd: PathBuf,
}

/// Runs the service until SIGTERM or SIGINT. Installs the process's
/// tracing subscriber (stderr and the service's log ring,
/// [`logbook::install`]): call it without one installed.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let logs = logbook::LogBook::new(logbook::RING_LINES);
    logbook::install(&logs);
    run_with(opts, logs, std::future::pending())
}

/// Runs the service until SIGTERM, SIGINT or `stop` completes (the
/// Windows service control manager's stop), with `logs` as its log ring;
/// the caller has installed the tracing subscriber that feeds it
/// ([`logbook::install`], [`logbook::install_with`]).
pub fn run_with(
    opts: Options,
    logs: Arc<logbook::LogBook>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(serve(opts, logs, stop))
}

async fn serve(
    opts: Options,
    logs: Arc<logbook::LogBook>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let groups = auth::Groups::resolve(&opts.group, &opts.admin_group);
    // (Windows has no gids: its transport warns when it looks the SID up.)
    if cfg!(unix) && groups.member_gid.is_none() {
        tracing::warn!(
            group = opts.group,
            "group does not exist: only root and admins can use the service"
        );
    }
    let store = store::Store::open(&opts.state_dir)
        .await
        .with_context(|| format!("state directory {}", opts.state_dir.display()))?;
    let tunnels = tunnels::Tunnels::new(opts.chantryd.clone(), store.clone());
    settings::apply_stored(&store, &logs, &tunnels)
        .await
        .context("stored settings")?;
    let events = tunnels.event_sender();
    store.record_to(events.clone());
    logs.stream_to(events.clone());
    let stats = stats::Stats::default();
    let poller = tokio::spawn(stats.clone().run(
        tunnels.clone(),
        store.clone(),
        logs.clone(),
        events,
    ));
    let listener = transport::bind(&opts.socket, &groups)
        .with_context(|| format!("control endpoint {}", opts.socket.display()))?;
    let service = Arc::new(endpoint::Service {
        groups,
        store: store.clone(),
        tunnels: tunnels.clone(),
        logs,
        stats,
    });
    let _ = store.log_event(None, "start", "service started").await;
    let term = system::terminate_signal().context("SIGTERM handler")?;
    let watcher = autoconnect::start(&store, &tunnels).await;
    tracing::info!(socket = %opts.socket.display(), state = %opts.state_dir.display(), "chantryd service ready");
    notify_ready();
    tokio::select! {
        r = endpoint::accept_loop(listener, service) => r?,
        () = term => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        () = stop => tracing::info!("the service manager asked to stop"),
    }
    poller.abort();
    autoconnect::stop(&tunnels, watcher).await;
    if cfg!(unix) {
        let _ = std::fs::remove_file(&opts.socket);
    }
    let _ = store.log_event(None, "stop", "service stopped").await;
    Ok(())
}

/// Tells systemd (Type=notify) the service is ready, if it asked.
#[cfg(not(target_os = "linux"))]
fn notify_ready() {}

/// Tells systemd (Type=notify) the service is ready, if it asked.
#[cfg(target_os = "linux")]
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("sd_notify: {e}");
            return;
        }
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(b"READY=1", &a))
    } else {
        sock.send_to(b"READY=1", &path)
    };
    if let Err(e) = sent {
        tracing::warn!("sd_notify: {e}");
    }
}
