//! chantryd: runs a sanctum.conf as privilege-separated role processes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(target_os = "linux")]
use chantry_service::guardian::{self, SetupError};
use chantry_service::service;

#[derive(Parser, Debug)]
#[command(name = "chantryd", version = version(), about = "Runs a sanctum tunnel as sandboxed role processes")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs the tunnel described by a sanctum.conf until SIGTERM.
    Run {
        /// The sanctum.conf.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Internal (the service): stop when process PID, the parent, dies.
        #[arg(long, value_name = "PID", hide = true)]
        die_with_parent: Option<i32>,
    },
    /// Checks a sanctum.conf and its key files; starts nothing.
    Check {
        /// The sanctum.conf.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Runs the system service: the control endpoint, profiles, tunnels.
    Service {
        /// The control socket (on Windows: the named pipe).
        #[arg(long, global = true, value_name = "PATH", default_value = service::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// The state directory (database, key files).
        #[arg(long, global = true, value_name = "DIR", default_value = service::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// The group whose members may list, connect and disconnect.
        #[arg(long, global = true, value_name = "NAME", default_value = service::DEFAULT_GROUP)]
        group: String,
        /// The group whose members may also change profiles and keys.
        #[arg(long, global = true, value_name = "NAME", default_value = service::DEFAULT_ADMIN_GROUP)]
        admin_group: String,
        /// Internal: started by the Windows service control manager.
        #[cfg(windows)]
        #[arg(long, hide = true)]
        scm: bool,
        /// Without one: run the service in the foreground.
        #[command(subcommand)]
        action: Option<ServiceAction>,
    },
    /// Internal: one role process, exec'd by the guardian.
    #[command(hide = true)]
    Role {
        /// The role name.
        name: String,
    },
}

/// Installing the service (macOS: launchd; Windows: the service control
/// manager; Linux: the package's systemd unit).
#[derive(Subcommand, Debug)]
enum ServiceAction {
    /// Registers the service with these flags, to start at boot, and starts it.
    Install,
    /// Stops the service and removes its registration (keeps the state).
    Uninstall,
}

/// What this build cannot do here.
#[cfg(not(target_os = "linux"))]
fn tunnels_unsupported() -> anyhow::Result<()> {
    anyhow::bail!(
        "{}",
        service::system::tunnels_unsupported().unwrap_or_default()
    )
}

fn version() -> &'static str {
    if cfg!(feature = "test-hooks") {
        concat!(env!("CARGO_PKG_VERSION"), " (test-hooks)")
    } else {
        env!("CARGO_PKG_VERSION")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // install, uninstall: plain stderr.
        Cmd::Service {
            action: Some(_), ..
        } => init_logs(false),
        // The service installs its own subscriber: stderr (on Windows
        // under the service control manager: a file) and its log ring.
        Cmd::Service { .. } => {}
        Cmd::Role { .. } => init_logs(true),
        Cmd::Run { .. } | Cmd::Check { .. } => init_logs(false),
    }
    let result = match cli.command {
        #[cfg(target_os = "linux")]
        Cmd::Run {
            config,
            die_with_parent,
        } => die_with_parent
            .map_or(Ok(()), service::tunnels::follow_parent)
            .and_then(|()| guardian::run(&config)),
        #[cfg(target_os = "linux")]
        Cmd::Check { config } => guardian::setup::load(&config)
            .map(|_| ())
            .map_err(Into::into),
        #[cfg(target_os = "linux")]
        Cmd::Role { name } => chantry_service::roles::run(&name),
        #[cfg(not(target_os = "linux"))]
        Cmd::Run { .. } | Cmd::Check { .. } | Cmd::Role { .. } => tunnels_unsupported(),
        Cmd::Service {
            socket,
            state_dir,
            group,
            admin_group,
            #[cfg(windows)]
            scm,
            action,
        } => std::env::current_exe()
            .map_err(anyhow::Error::from)
            .and_then(|chantryd| {
                let opts = service::Options {
                    socket,
                    state_dir,
                    group,
                    admin_group,
                    chantryd,
                };
                match action {
                    Some(ServiceAction::Install) => service::registration::install(&opts),
                    Some(ServiceAction::Uninstall) => service::registration::uninstall(),
                    #[cfg(windows)]
                    None if scm => service::registration::windows::run_dispatcher(opts),
                    None => service::run(opts),
                }
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[cfg(target_os = "linux")]
            if let Some(setup) = e.downcast_ref::<SetupError>() {
                eprintln!("chantryd: {setup}");
                return ExitCode::from(2);
            }
            eprintln!("chantryd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; roles prefix theirs with the role name.
fn init_logs(role: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(role)
        // A closed stderr (the service that read it died) must not turn
        // every log line into a panic of the guardian or a role.
        .log_internal_errors(false)
        .init();
}
