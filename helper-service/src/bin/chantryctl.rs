//! chantryctl: the command-line client of chantryd.
//!
//! Subcommands talk to the service's control endpoint (`--service`,
//! default /run/chantry/chantryd.sock): `list`, `status [NAME]`, `up NAME`,
//! `down NAME`, `import`, `remove NAME`, `export NAME`. `status -s SOCKET`
//! (or `-c FILE`) instead asks one tunnel's reference control socket
//! (spec/files.md §8) for its counters. Output is for people unless
//! `--json` is given (one JSON document on stdout).
//!
//! Exit status:
//! * 0: done;
//! * 1: any other failure (I/O, protocol, the service failed);
//! * 2: usage error;
//! * 3: the service (or tunnel socket) could not be reached;
//! * 4: refused: the caller lacks the group the request needs;
//! * 5: no such profile;
//! * 6: the request was rejected (invalid configuration, name taken,
//!   profile busy).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chantry_core::config::Config;
use chantry_core::ipc::{
    ErrorCode, ImportRequest, KeyMaterial, ProfileInfo, Request, Response, TunnelStatus,
};
use chantry_service::control::{DEFAULT_CONTROL_PATH, SaStats, Status};
use chantry_service::service::client::{Client, ClientError};
use chantry_service::service::{self, profile::rewrite_secret};
use clap::{Args, Parser, Subcommand};

/// Command-line client of chantryd.
#[derive(Debug, Parser)]
#[command(
    name = "chantryctl",
    version,
    about = "Command-line client of chantryd"
)]
struct Cli {
    /// The service's control socket.
    #[arg(long, global = true, value_name = "PATH", default_value = service::DEFAULT_SOCKET)]
    service: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// What to do; one subcommand per duty.
#[derive(Debug, Subcommand)]
enum Command {
    /// List the profiles and their states.
    List,
    /// Show the state of the profiles (or of NAME); with -s/-c, a running
    /// tunnel's SAs, counters, peer and MTU read from its control socket.
    Status(StatusArgs),
    /// Connect a profile.
    Up {
        /// The profile.
        name: String,
    },
    /// Disconnect a profile.
    Down {
        /// The profile.
        name: String,
    },
    /// Import a sanctum.conf and its shared secret file as a profile
    /// (needs root or the chantry-admin group).
    Import(ImportArgs),
    /// Remove a profile and its key files (needs root or chantry-admin).
    Remove {
        /// The profile.
        name: String,
    },
    /// Write a profile's sanctum.conf and secret into a directory (needs
    /// root or chantry-admin); with --json, print them instead.
    Export {
        /// The profile.
        name: String,
        /// Where NAME.conf and NAME.secret (0600) are written.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
}

/// Arguments of `chantryctl status`.
#[derive(Debug, Args)]
struct StatusArgs {
    /// The profile (all if absent).
    #[arg(conflicts_with_all = ["control", "config"])]
    name: Option<String>,
    /// A tunnel's control socket to ask instead of the service.
    #[arg(
        short = 's',
        long = "control",
        value_name = "PATH",
        conflicts_with = "config"
    )]
    control: Option<PathBuf>,
    /// A tunnel's sanctum.conf: its `control` line names the socket to ask
    /// instead of the service.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seconds to wait for a tunnel socket's answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    timeout: f64,
}

/// Arguments of `chantryctl import`.
#[derive(Debug, Args)]
struct ImportArgs {
    /// The sanctum.conf; its `secret` line names the key file to import.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// The profile name (default: the file name without `.conf`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Connect it when the service starts.
    #[arg(long)]
    auto_connect: bool,
    /// Keep the machine fail-closed while it is not up.
    #[arg(long)]
    always_on: bool,
}

/// A failure with the exit status it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let code = match error.downcast_ref::<ClientError>() {
            Some(ClientError::Connect { .. }) => 3,
            Some(ClientError::Refused(r)) => match r.code {
                ErrorCode::Forbidden => 4,
                ErrorCode::NotFound => 5,
                ErrorCode::Invalid
                | ErrorCode::Exists
                | ErrorCode::Busy
                | ErrorCode::Passphrase => 6,
                ErrorCode::Version | ErrorCode::Limit | ErrorCode::Internal => 1,
            },
            _ => 1,
        };
        Failure { code, error }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("chantryctl: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Status(args) if args.control.is_some() || args.config.is_some() => {
            status(args, cli.json).map_err(|e| Failure { code: 3, error: e })
        }
        Command::Status(args) => {
            let r = call(
                cli,
                Request::Status {
                    name: args.name.clone(),
                },
            )?;
            print_response(cli.json, &r)
        }
        Command::List => print_response(cli.json, &call(cli, Request::List)?),
        Command::Up { name } => {
            call(cli, Request::Connect { name: name.clone() })?;
            done(cli.json, &format!("{name}: connecting"))
        }
        Command::Down { name } => {
            call(cli, Request::Disconnect { name: name.clone() })?;
            done(cli.json, &format!("{name}: down"))
        }
        Command::Remove { name } => {
            call(cli, Request::Remove { name: name.clone() })?;
            done(cli.json, &format!("{name}: removed"))
        }
        Command::Import(args) => {
            let req = import_request(args)?;
            let name = req.name.clone();
            call(cli, Request::Import(req))?;
            done(cli.json, &format!("{name}: imported"))
        }
        Command::Export { name, dir } => {
            let Response::Export(p) = call(cli, Request::Export { name: name.clone() })? else {
                return Err(anyhow::anyhow!("unexpected answer to export").into());
            };
            if cli.json {
                println!("{}", serde_json::to_string(&p)?);
                return Ok(());
            }
            let key = dir.join(format!("{name}.secret"));
            let conf = dir.join(format!("{name}.conf"));
            write_new(&key, p.secret.expose(), 0o600)?;
            write_new(
                &conf,
                rewrite_secret(&p.config, &key.display().to_string()).as_bytes(),
                0o644,
            )?;
            println!("{}", conf.display());
            Ok(())
        }
    }
}

/// One request on a fresh connection.
fn call(cli: &Cli, request: Request) -> Result<Response, ClientError> {
    Client::connect(&cli.service)?.call(request)
}

fn done(json: bool, text: &str) -> Result<(), Failure> {
    if json {
        println!("{{\"ok\":true}}");
    } else {
        println!("{text}");
    }
    Ok(())
}

/// Creates `path` (never overwriting) with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    #[cfg(not(unix))]
    let _ = mode; // Windows: the directory's ACL applies.
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the configuration and the key file its `secret` line names.
fn import_request(args: &ImportArgs) -> anyhow::Result<ImportRequest> {
    let path = &args.config;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = Config::parse(path, &text)?;
    let secret_path = config
        .secret()
        .with_context(|| format!("{}: no `secret` line", path.display()))?;
    let secret = std::fs::read(secret_path)
        .with_context(|| format!("cannot read the secret {}", secret_path.display()))?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .with_context(|| format!("{}: give the profile a --name", path.display()))?,
    };
    Ok(ImportRequest {
        name,
        config: text,
        secret: KeyMaterial::new(secret),
        auto_connect: args.auto_connect,
        always_on: args.always_on,
    })
}

/// Prints a list or status answer.
fn print_response(json: bool, r: &Response) -> Result<(), Failure> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    match r {
        Response::Profiles { profiles } => print!("{}", profiles_table(profiles)),
        Response::Status { tunnels } => print!("{}", status_table(tunnels)),
        Response::Export(_) | Response::Done => {}
        other => println!("{}", serde_json::to_string_pretty(other)?),
    }
    Ok(())
}

/// The `list` table.
fn profiles_table(profiles: &[ProfileInfo]) -> String {
    let mut out = format!(
        "{:<20} {:<10} {:<12} {:<12} {:<5} {:<5}\n",
        "name", "mode", "instance", "state", "auto", "always"
    );
    let yn = |b: bool| if b { "yes" } else { "no" };
    for p in profiles {
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<12} {:<12} {:<5} {:<5}",
            p.name,
            p.mode,
            p.instance,
            p.state.to_string(),
            yn(p.auto_connect),
            yn(p.always_on)
        );
    }
    out
}

/// The service `status` table.
fn status_table(tunnels: &[TunnelStatus]) -> String {
    let mut out = String::new();
    for t in tunnels {
        let _ = write!(out, "{:<20} {}", t.name, t.state);
        if let Some(pid) = t.pid {
            let _ = write!(out, " (pid {pid})");
        }
        if let Some(d) = &t.detail {
            let _ = write!(out, ": {d}");
        }
        out.push('\n');
    }
    out
}

/// `chantryctl status -s SOCKET`: one tunnel's reference control socket.
fn status(args: &StatusArgs, json_out: bool) -> anyhow::Result<()> {
    let path = control_path(args)?;
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| {
            format!(
                "--timeout {}: not a positive number of seconds",
                args.timeout
            )
        })?;
    let status = query(&path, timeout)?;
    let now = monotonic_now()?;
    if json_out {
        println!("{}", json(&path, now, &status)?);
    } else {
        print!("{}", table(&path, now, &status));
    }
    Ok(())
}

/// The socket to ask: `-s`, else the `control` path of `-c FILE`, else
/// the reference default.
fn control_path(args: &StatusArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.control {
        return Ok(p.clone());
    }
    let Some(file) = &args.config else {
        return Ok(PathBuf::from(DEFAULT_CONTROL_PATH));
    };
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // Parse only: the control path is all we need, and the key files the
    // configuration names may be unreadable to this user.
    let config = Config::parse_bytes(file, &bytes)?;
    Ok(config.control().path.clone())
}

/// Asks the tunnel's control socket for its status.
#[cfg(unix)]
fn query(path: &Path, timeout: Duration) -> anyhow::Result<Status> {
    chantry_service::control::query(path, timeout).context("no status from the tunnel")
}

/// Tunnels (and their control sockets) are not built on this platform.
#[cfg(not(unix))]
fn query(path: &Path, _timeout: Duration) -> anyhow::Result<Status> {
    anyhow::bail!(
        "{}: a tunnel's control socket is a Unix datagram socket; tunnels on this platform are not built yet",
        path.display()
    )
}

/// Whole seconds of CLOCK_MONOTONIC, the clock the counters use.
#[cfg(not(unix))]
fn monotonic_now() -> anyhow::Result<u64> {
    anyhow::bail!("no CLOCK_MONOTONIC on this platform")
}

/// Whole seconds of CLOCK_MONOTONIC, the clock the counters use.
#[cfg(unix)]
fn monotonic_now() -> anyhow::Result<u64> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .context("clock_gettime(CLOCK_MONOTONIC)")?;
    Ok(u64::try_from(now.tv_sec()).unwrap_or(0))
}

/// The status as one JSON object: the socket, the monotonic second the
/// answer was read at (`now`, to compare `age` and `last` with), then the
/// fields of [`Status`].
fn json(path: &Path, now: u64, status: &Status) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Report<'a> {
        control: &'a Path,
        now: u64,
        #[serde(flatten)]
        status: &'a Status,
    }
    Ok(serde_json::to_string(&Report {
        control: path,
        now,
        status,
    })?)
}

/// The human-readable table.
fn table(path: &Path, now: u64, status: &Status) -> String {
    let mut out = String::new();
    let peer = status
        .peer
        .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    let _ = writeln!(out, "control  {}", path.display());
    let _ = writeln!(out, "peer     {peer}");
    let _ = writeln!(out, "mtu      {}", status.mtu);
    let _ = writeln!(
        out,
        "{:<4} {:<10}  {:>12}  {:>12}  {:>10}  {:>12}",
        "sa", "spi", "installed", "packets", "bytes", "last packet"
    );
    for (name, sa) in [("tx", &status.tx), ("rx", &status.rx)] {
        let _ = writeln!(out, "{}", sa_row(name, now, sa));
    }
    out
}

/// One row of the SA table.
fn sa_row(name: &str, now: u64, sa: &SaStats) -> String {
    let (spi, installed) = if sa.spi == 0 {
        ("none".to_owned(), "-".to_owned())
    } else {
        (format!("0x{:08x}", sa.spi), ago(now, sa.age))
    };
    let last = if sa.last == 0 {
        "never".to_owned()
    } else {
        ago(now, sa.last)
    };
    format!(
        "{name:<4} {spi:<10}  {installed:>12}  {:>12}  {:>10}  {last:>12}",
        sa.pkt,
        human_bytes(sa.bytes)
    )
}

/// `N s ago` for a monotonic second; a time after `now` counts as 0.
fn ago(now: u64, then: u64) -> String {
    format!("{} s ago", now.saturating_sub(then))
}

/// Bytes with a binary unit: `977 B`, `1.5 KiB`, `12.0 MiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn sample() -> Status {
        Status {
            tx: SaStats {
                spi: 0xa1b2_c3d4,
                age: 100,
                pkt: 3,
                last: 120,
                bytes: 1536,
            },
            rx: SaStats::default(),
            peer: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 4500)),
            mtu: 1422,
        }
    }

    #[test]
    fn bytes_are_human_readable() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn times_are_seconds_ago() {
        assert_eq!(ago(130, 100), "30 s ago");
        assert_eq!(ago(100, 130), "0 s ago");
    }

    #[test]
    fn table_shows_hex_spi_ages_and_missing_sa() {
        let t = table(Path::new("/tmp/x"), 130, &sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "control  /tmp/x");
        assert_eq!(lines[1], "peer     192.0.2.7:4500");
        assert_eq!(lines[2], "mtu      1422");
        assert_eq!(
            lines[4],
            "tx   0xa1b2c3d4      30 s ago             3     1.5 KiB      10 s ago"
        );
        assert_eq!(
            lines[5],
            "rx   none                   -             0         0 B         never"
        );
        let unknown = table(Path::new("/tmp/x"), 1, &Status::default());
        assert!(unknown.contains("peer     unknown\n"), "{unknown}");
    }

    #[test]
    fn json_is_one_object_with_the_socket_and_now() {
        let v: serde_json::Value =
            serde_json::from_str(&json(Path::new("/tmp/x"), 130, &sample()).unwrap()).unwrap();
        assert_eq!(v["control"], "/tmp/x");
        assert_eq!(v["now"], 130);
        assert_eq!(v["tx"]["spi"], 0xa1b2_c3d4_u32);
        assert_eq!(v["tx"]["last"], 120);
        assert_eq!(v["rx"]["spi"], 0);
        assert_eq!(v["peer"], "192.0.2.7:4500");
        assert_eq!(v["mtu"], 1422);
    }

    #[test]
    fn socket_path_comes_from_flag_config_or_default() {
        let parse = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Status(a) => a,
            other => panic!("{other:?}"),
        };
        let a = parse(&["chantryctl", "status"]);
        assert_eq!(control_path(&a).unwrap(), Path::new(DEFAULT_CONTROL_PATH));
        assert!(
            Cli::try_parse_from(["chantryctl", "status", "-s", "/run/t.sock", "--json"])
                .unwrap()
                .json
        );
        let a = parse(&["chantryctl", "status", "-s", "/run/t.sock", "--json"]);
        assert_eq!(control_path(&a).unwrap(), Path::new("/run/t.sock"));
        let a = parse(&["chantryctl", "status", "--control", "/run/u.sock"]);
        assert_eq!(control_path(&a).unwrap(), Path::new("/run/u.sock"));
        assert!(Cli::try_parse_from(["chantryctl", "status", "-s", "/a", "-c", "/b"]).is_err());

        let dir = std::env::temp_dir().join(format!("chantryctl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("t.conf");
        let mut text = String::from(
            "instance t1\nmode tunnel\nspi 0x0102\nlocal 127.0.0.1:4500\n\
             peer 127.0.0.1:4501\ntunnel 10.20.0.1/30 1422\nsecret /nonexistent\n\
             control /run/chantry-t1.control root\n",
        );
        for role in [
            "heaven-rx",
            "heaven-tx",
            "purgatory-rx",
            "purgatory-tx",
            "bless",
            "confess",
            "chapel",
            "control",
        ] {
            text.push_str(&format!("run {role} as nobody\n"));
        }
        std::fs::write(&conf, &text).unwrap();
        let a = parse(&["chantryctl", "status", "-c", conf.to_str().unwrap()]);
        assert_eq!(
            control_path(&a).unwrap(),
            Path::new("/run/chantry-t1.control")
        );
        // Without a `control` line: the reference default.
        let no_control: String = text
            .lines()
            .filter(|l| !l.starts_with("control "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&conf, no_control).unwrap();
        assert_eq!(control_path(&a).unwrap(), Path::new(DEFAULT_CONTROL_PATH));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
