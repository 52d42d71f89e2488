//! The Windows service: `install` registers `chantryd service --scm` with
//! the service control manager (automatic start, LocalSystem) and starts
//! it; `uninstall` stops and deletes it; [`run_dispatcher`] is what
//! `--scm` runs: it hands the process to the manager, reports the service
//! running, and stops the service on the manager's stop or shutdown
//! control.
//!
//! No `unsafe` here: the entry point `define_windows_service!` generates
//! is the windows-service crate's.

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Notify;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use crate::service::Options;
use crate::service::logbook::{self, LogBook};

/// The service's name for the manager (`sc query chantryd`).
pub const SERVICE_NAME: &str = "chantryd";
/// The name the Services console shows.
pub const DISPLAY_NAME: &str = "Chantry VPN service";
/// What the Services console says of it.
pub const DESCRIPTION: &str =
    "Runs Chantry's control pipe and profiles for the Chantry app and chantryctl.";
/// The flag that makes `chantryd service` run under the manager.
pub const SCM_FLAG: &str = "--scm";
/// The service's log, in its state directory.
pub const LOG_FILE: &str = "chantryd.log";
/// How long `uninstall` waits for the service to stop.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// The options `--scm` was started with, for the service's main (the
/// manager calls it on its own thread, with no way to pass them).
static OPTIONS: OnceLock<Options> = OnceLock::new();

/// Registers the service to run this binary with `opts` and starts it.
pub fn install(opts: &Options) -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .context("opening the service control manager (run as an Administrator)")?;
    let mut launch_arguments = super::service_args(opts);
    launch_arguments.push(SCM_FLAG.into());
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: opts.chantryd.clone(),
        launch_arguments,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .context("registering the chantryd service")?;
    service
        .set_description(DESCRIPTION)
        .context("describing the service")?;
    service.start::<&str>(&[]).context("starting the service")?;
    println!("installed and started the {SERVICE_NAME} service");
    Ok(())
}

/// Stops the service (bounded wait) and deletes it.
pub fn uninstall() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .context("opening the service control manager (run as an Administrator)")?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .context("opening the chantryd service")?;
    // Deleting marks it; the manager removes it once it has stopped.
    service.delete().context("deleting the service")?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        service.stop().context("stopping the service")?;
    }
    let start = Instant::now();
    while service.query_status()?.current_state != ServiceState::Stopped {
        if start.elapsed() > STOP_WAIT {
            anyhow::bail!("the service did not stop within {} s", STOP_WAIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("stopped and removed the {SERVICE_NAME} service");
    Ok(())
}

/// Runs the service under the manager (`chantryd service --scm`): returns
/// when the service has stopped.
pub fn run_dispatcher(opts: Options) -> anyhow::Result<()> {
    OPTIONS
        .set(opts)
        .map_err(|_| anyhow::anyhow!("the service dispatcher ran twice"))?;
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).context(
        "connecting to the service control manager (`--scm` is for the manager: run \
         `chantryd service` without it in a console)",
    )
}

windows_service::define_windows_service!(ffi_service_main, service_main);

/// The service's main, on the manager's thread.
fn service_main(_arguments: Vec<OsString>) {
    if let Err(e) = serve() {
        tracing::error!("chantryd service: {e:#}");
    }
}

fn status(state: ServiceState, exit_code: ServiceExitCode) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code,
        checkpoint: 0,
        wait_hint: if state == ServiceState::StopPending {
            Duration::from_secs(15)
        } else {
            Duration::ZERO
        },
        process_id: None,
    }
}

fn serve() -> anyhow::Result<()> {
    let opts = OPTIONS
        .get()
        .cloned()
        .context("the service started without options")?;
    // The manager gives the service no stderr: the lines go to a file in
    // the state directory, and to the log ring as on every system.
    let logs = LogBook::new(logbook::RING_LINES);
    let log_file = opts.state_dir.join(LOG_FILE);
    logbook::install_with(&logs, Mutex::new(open_log(&log_file)?), false);
    let stop = Arc::new(Notify::new());
    let on_control = {
        let stop = stop.clone();
        move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                // A permit is stored if the service is not waiting yet.
                stop.notify_one();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let handle = service_control_handler::register(SERVICE_NAME, on_control)
        .context("registering the service control handler")?;
    handle.set_service_status(status(ServiceState::Running, ServiceExitCode::NO_ERROR))?;
    let result = crate::service::run_with(opts, logs, async move { stop.notified().await });
    let code = match &result {
        Ok(()) => ServiceExitCode::NO_ERROR,
        Err(_) => ServiceExitCode::ServiceSpecific(1),
    };
    handle.set_service_status(status(ServiceState::Stopped, code))?;
    result
}

/// Opens `path` for appending, creating it and its directory.
fn open_log(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))
}
