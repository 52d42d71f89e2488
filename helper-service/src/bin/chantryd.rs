//! chantryd: runs a sanctum.conf as privilege-separated role processes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        /// The control socket.
        #[arg(long, value_name = "PATH", default_value = service::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// The state directory (database, key files).
        #[arg(long, value_name = "DIR", default_value = service::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// The group whose members may list, connect and disconnect.
        #[arg(long, value_name = "NAME", default_value = service::DEFAULT_GROUP)]
        group: String,
        /// The group whose members may also change profiles and keys.
        #[arg(long, value_name = "NAME", default_value = service::DEFAULT_ADMIN_GROUP)]
        admin_group: String,
    },
    /// Internal: one role process, exec'd by the guardian.
    #[command(hide = true)]
    Role {
        /// The role name.
        name: String,
    },
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
        // The service installs its own subscriber: stderr and its log ring.
        Cmd::Service { .. } => {}
        Cmd::Role { .. } => init_logs(true),
        Cmd::Run { .. } | Cmd::Check { .. } => init_logs(false),
    }
    let result = match cli.command {
        Cmd::Run {
            config,
            die_with_parent,
        } => die_with_parent
            .map_or(Ok(()), service::tunnels::follow_parent)
            .and_then(|()| guardian::run(&config)),
        Cmd::Check { config } => guardian::setup::load(&config)
            .map(|_| ())
            .map_err(Into::into),
        Cmd::Role { name } => chantry_service::roles::run(&name),
        Cmd::Service {
            socket,
            state_dir,
            group,
            admin_group,
        } => std::env::current_exe()
            .map_err(anyhow::Error::from)
            .and_then(|chantryd| {
                service::run(service::Options {
                    socket,
                    state_dir,
                    group,
                    admin_group,
                    chantryd,
                })
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
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
