//! chantryctl: the command-line client of chantryd.
//!
//! Subcommands talk to the service's control endpoint (`--service`,
//! default /run/chantry/chantryd.sock): `list`, `status [NAME]`, `up NAME`,
//! `down NAME`, `import`, `import-vicar`, `remove NAME`, `export NAME`,
//! `logs [-f] [NAME]`, `events [-f] [NAME]`, `history NAME`, `settings
//! [get|set]`; `completions SHELL` prints a shell completion script.
//! `status -s SOCKET` (or `-c FILE`) instead asks one tunnel's reference
//! control socket (spec/files.md §8) for its counters. Output is for
//! people unless `--json` is given: one JSON document on stdout, or with
//! `-f` one JSON object per line.
//!
//! Exit status ([`EXIT_CODES`], also in `--help`):
//! * 0: done;
//! * 1: any other failure (I/O, protocol, the service failed);
//! * 2: usage error (including no way to read a passphrase);
//! * 3: the service (or tunnel socket) could not be reached;
//! * 4: refused: the caller lacks the group the request needs;
//! * 5: no such profile;
//! * 6: the request was rejected (invalid configuration, name taken,
//!   profile busy);
//! * 7: the vicar file's passphrase is wrong.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chantry_core::config::Config;
use chantry_core::ipc::{
    ErrorCode, Event, EventRecord, ImportRequest, KeyMaterial, LogLine, Passphrase, PathKind,
    ProfileInfo, Request, Response, Settings, Stage, StatsSample, TunnelStats, TunnelStatus,
    VicarImportRequest,
};
use chantry_service::control::{DEFAULT_CONTROL_PATH, SaStats, Status};
use chantry_service::service::client::{Client, ClientError};
use chantry_service::service::conf_text;
use chantry_service::service::store::KeyFile;
use chantry_service::service::{self, profile::rewrite_secret};
use clap::{ArgGroup, Args, CommandFactory as _, Parser, Subcommand};
use zeroize::Zeroizing;

/// The exit status table, as `--help` prints it.
const EXIT_CODES: &str = "Exit status:
  0  done
  1  any other failure (I/O, protocol, the service failed)
  2  usage error (including no way to read a passphrase)
  3  the service (or tunnel socket) could not be reached
  4  refused: the caller lacks the group the request needs
  5  no such profile
  6  rejected: invalid configuration, name taken, profile busy
  7  the vicar file's passphrase is wrong";

/// The environment variable a vicar passphrase may come from.
const PASSPHRASE_ENV: &str = "CHANTRY_PASSPHRASE";

/// Command-line client of chantryd.
#[derive(Debug, Parser)]
#[command(
    name = "chantryctl",
    version,
    about = "Command-line client of chantryd",
    after_help = EXIT_CODES
)]
struct Cli {
    /// The service's control socket.
    #[arg(long, global = true, value_name = "PATH", default_value = service::DEFAULT_SOCKET)]
    service: PathBuf,
    /// Print JSON instead of text (with -f: one object per line).
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
    /// Show the state of the profiles (or of NAME) and a running tunnel's
    /// numbers; with -s/-c, a running tunnel's SAs, counters, peer and MTU
    /// read from its control socket.
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
    /// Import a sanctum.conf and the key files it names as a profile
    /// (needs root or the chantry-admin group).
    Import(ImportArgs),
    /// Import a vicar provisioning file and the sanctum.conf lines it does
    /// not hold as a profile (needs root or the chantry-admin group).
    ImportVicar(VicarArgs),
    /// Change a profile's flags (needs root or chantry-admin); a connected
    /// profile follows at once (the kill switch locks or unlocks).
    #[command(group(
        ArgGroup::new("flags")
            .required(true)
            .multiple(true)
            .args(["auto_connect", "always_on"])
    ))]
    Edit {
        /// The profile.
        name: String,
        /// Connect it whenever the service starts (true/false, yes/no,
        /// on/off).
        #[arg(long, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
        auto_connect: Option<bool>,
        /// Keep the machine fail-closed while it is connected (true/false,
        /// yes/no, on/off).
        #[arg(long, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
        always_on: Option<bool>,
    },
    /// Remove a profile and its key files (needs root or chantry-admin).
    Remove {
        /// The profile.
        name: String,
    },
    /// Write a profile's sanctum.conf and key files into a directory
    /// (needs root or chantry-admin); with --json, print them instead.
    Export {
        /// The profile.
        name: String,
        /// Where NAME.conf and its key files (0600) are written.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Show the log lines the service kept (of NAME's tunnel only, if
    /// given); -f follows new ones until interrupted.
    Logs(FollowArgs),
    /// Show the event log (connects, failures, imports, ...); -f follows
    /// new entries until interrupted.
    Events(FollowArgs),
    /// Show a profile's stored traffic samples (one every 10 s, 24 h kept).
    History {
        /// The profile.
        name: String,
        /// How far back, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        seconds: u32,
    },
    /// Show or change the service's settings (changing needs root or
    /// chantry-admin).
    Settings(SettingsArgs),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell) on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    /// The sanctum.conf; its `secret` line (and `kek`, `cathedral_secret`,
    /// `cathedral_cosk` lines) name the key files to import.
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

/// Arguments of `chantryctl import-vicar`.
#[derive(Debug, Args)]
struct VicarArgs {
    /// The profile name.
    name: String,
    /// The vicar file (216 bytes, from the reference `vicar` tool).
    file: PathBuf,
    /// The sanctum.conf lines the vicar file does not hold: instance,
    /// local, tunnel, routes, run lines (not spi, kek, secret or the
    /// cathedral lines: the service writes those).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// Read the passphrase from this file (its first line); else from
    /// CHANTRY_PASSPHRASE, else from a prompt on the terminal.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Connect it when the service starts.
    #[arg(long)]
    auto_connect: bool,
    /// Keep the machine fail-closed while it is not up.
    #[arg(long)]
    always_on: bool,
}

/// Arguments of `chantryctl logs` and `chantryctl events`.
#[derive(Debug, Args)]
struct FollowArgs {
    /// Only this profile's (all if absent).
    name: Option<String>,
    /// Keep printing new ones until interrupted.
    #[arg(short = 'f', long)]
    follow: bool,
    /// How many of the newest to print first (at most 1000).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 100)]
    lines: u32,
}

/// Arguments of `chantryctl settings`.
#[derive(Debug, Args)]
struct SettingsArgs {
    #[command(subcommand)]
    action: Option<SettingsAction>,
}

/// `settings get` (the default) or `settings set`.
#[derive(Debug, Subcommand)]
enum SettingsAction {
    /// Print the settings.
    Get,
    /// Change the given settings; the others keep their values.
    #[command(group(
        ArgGroup::new("change")
            .required(true)
            .multiple(true)
            .args(["log_level", "reconnect_on_network_change"])
    ))]
    Set {
        /// Least level of the log lines kept and streamed: error, warn,
        /// info or debug.
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
        /// Reconnect failed tunnels when the network changes (true/false,
        /// yes/no, on/off).
        #[arg(long, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
        reconnect_on_network_change: Option<bool>,
    },
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
            Some(ClientError::Refused(r)) => exit_code(r.code),
            _ => 1,
        };
        Failure { code, error }
    }
}

/// The exit status of a refusal of class `code`.
fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Forbidden => 4,
        ErrorCode::NotFound => 5,
        ErrorCode::Invalid | ErrorCode::Exists | ErrorCode::Busy => 6,
        ErrorCode::Passphrase => 7,
        ErrorCode::Version | ErrorCode::Limit | ErrorCode::Internal => 1,
    }
}

/// A usage problem found after parsing (exit status 2).
fn usage(error: anyhow::Error) -> Failure {
    Failure { code: 2, error }
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
        Command::Edit {
            name,
            auto_connect,
            always_on,
        } => {
            call(
                cli,
                Request::Edit {
                    name: name.clone(),
                    auto_connect: *auto_connect,
                    always_on: *always_on,
                },
            )?;
            done(cli.json, &format!("{name}: changed"))
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
        Command::ImportVicar(args) => {
            let req = vicar_request(args)?;
            let name = req.name.clone();
            call(cli, Request::ImportVicar(req)).map_err(|e| with_line(e, &args.config))?;
            done(
                cli.json,
                &format!("{name}: imported from {}", args.file.display()),
            )
        }
        Command::Export { name, dir } => {
            let Response::Export(p) = call(cli, Request::Export { name: name.clone() })? else {
                return Err(anyhow::anyhow!("unexpected answer to export").into());
            };
            if cli.json {
                println!("{}", serde_json::to_string(&p)?);
                return Ok(());
            }
            let mut config = p.config.clone();
            let files = [
                (KeyFile::Secret, Some(&p.secret)),
                (KeyFile::Kek, p.kek.as_ref()),
                (KeyFile::CathedralSecret, p.cathedral_secret.as_ref()),
                (KeyFile::CathedralCosk, p.cathedral_cosk.as_ref()),
            ];
            for (kind, material) in files {
                let Some(material) = material else { continue };
                let path = dir.join(format!("{name}.{}", kind.suffix()));
                if !material.expose().is_empty() {
                    write_new(&path, material.expose(), 0o600)?;
                }
                config = if kind == KeyFile::Secret {
                    rewrite_secret(&config, &path.display().to_string())
                } else {
                    conf_text::set(&config, kind.keyword(), &path.display().to_string(), false)
                };
            }
            let conf = dir.join(format!("{name}.conf"));
            write_new(&conf, config.as_bytes(), 0o644)?;
            println!("{}", conf.display());
            Ok(())
        }
        Command::Logs(args) => logs(cli, args),
        Command::Events(args) => events(cli, args),
        Command::History { name, seconds } => {
            let r = call(
                cli,
                Request::History {
                    name: name.clone(),
                    seconds: *seconds,
                },
            )?;
            print_response(cli.json, &r)
        }
        Command::Settings(args) => settings(cli, args),
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "chantryctl",
                &mut std::io::stdout(),
            );
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

/// Reads the configuration and the key files its lines name.
fn import_request(args: &ImportArgs) -> anyhow::Result<ImportRequest> {
    let path = &args.config;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = Config::parse(path, &text)?;
    let secret_path = config
        .secret()
        .with_context(|| format!("{}: no `secret` line", path.display()))?;
    let secret = match std::fs::read(secret_path) {
        Ok(s) => s,
        // With a `kek` first, the secret is unwrapped from an ambry later.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !config.secret_must_exist() => {
            Vec::new()
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the secret {}", secret_path.display()));
        }
    };
    let read = |file: Option<&Path>, what: &str| -> anyhow::Result<Option<KeyMaterial>> {
        file.map(|f| {
            std::fs::read(f)
                .map(KeyMaterial::new)
                .with_context(|| format!("cannot read the {what} {}", f.display()))
        })
        .transpose()
    };
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
        kek: read(config.kek(), "kek")?,
        cathedral_secret: read(config.cathedral_secret(), "cathedral secret")?,
        cathedral_cosk: read(config.cathedral_cosk(), "cathedral cosk")?,
    })
}

/// Reads the vicar file, the configuration lines and the passphrase.
fn vicar_request(args: &VicarArgs) -> Result<VicarImportRequest, Failure> {
    let vicar = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let config = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let passphrase = passphrase(args)?;
    Ok(VicarImportRequest {
        name: args.name.clone(),
        vicar: KeyMaterial::new(vicar),
        passphrase: Passphrase::new(passphrase.to_string()),
        config,
        auto_connect: args.auto_connect,
        always_on: args.always_on,
    })
}

/// The passphrase: `--passphrase-file` (its first line), else
/// CHANTRY_PASSPHRASE, else a prompt without echo when stdin is a
/// terminal; else a usage error.
fn passphrase(args: &VicarArgs) -> Result<Zeroizing<String>, Failure> {
    if let Some(file) = &args.passphrase_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        );
        return Ok(Zeroizing::new(first_line(&text).to_owned()));
    }
    if let Some(v) = std::env::var_os(PASSPHRASE_ENV) {
        let v = Zeroizing::new(
            v.into_string()
                .map_err(|_| usage(anyhow::anyhow!("{PASSPHRASE_ENV} is not valid UTF-8")))?,
        );
        return Ok(v);
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(anyhow::anyhow!(
            "no passphrase: give --passphrase-file FILE, set {PASSPHRASE_ENV}, or run on a terminal"
        )));
    }
    prompt(&format!("Passphrase for {}: ", args.file.display()))
        .context("cannot read the passphrase from the terminal")
        .map_err(Failure::from)
}

/// The text up to the first line end (`\n` or `\r\n`).
fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or("");
    line.strip_suffix('\r').unwrap_or(line)
}

/// Asks on the terminal with echo off, and puts echo back.
#[cfg(unix)]
fn prompt(question: &str) -> anyhow::Result<Zeroizing<String>> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead as _, Write as _};
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&tty, SetArg::TCSAFLUSH, &quiet)?;
    let answer = (|| -> anyhow::Result<Zeroizing<String>> {
        tty.write_all(question.as_bytes())?;
        tty.flush()?;
        let mut line = Zeroizing::new(String::new());
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        Ok(Zeroizing::new(first_line(&line).to_owned()))
    })();
    tcsetattr(&tty, SetArg::TCSAFLUSH, &saved)?;
    answer
}

/// Asks on the console with echo off (rpassword: the console's input
/// mode without `ENABLE_ECHO_INPUT`, put back after the line).
#[cfg(windows)]
fn prompt(question: &str) -> anyhow::Result<Zeroizing<String>> {
    let line = Zeroizing::new(rpassword::prompt_password(question)?);
    Ok(Zeroizing::new(first_line(&line).to_owned()))
}

/// A refusal about a line of the configuration names the caller's file.
fn with_line(e: ClientError, file: &Path) -> ClientError {
    match e {
        ClientError::Refused(mut r) if r.line.is_some() => {
            let line = r.line.unwrap_or(0);
            let rest = r
                .message
                .split_once(&format!(":{line}: "))
                .map_or(r.message.as_str(), |(_, rest)| rest);
            r.message = format!("{}:{line}: {rest}", file.display());
            ClientError::Refused(r)
        }
        other => other,
    }
}

/// `chantryctl logs`: the kept lines, then (with -f) new ones.
fn logs(cli: &Cli, args: &FollowArgs) -> Result<(), Failure> {
    let mut c = Client::connect(&cli.service)?;
    if args.follow {
        c.call(Request::Subscribe)?;
    }
    let Response::Logs { lines } = c.call(Request::Logs {
        name: args.name.clone(),
        limit: args.lines,
    })?
    else {
        return Err(anyhow::anyhow!("unexpected answer to logs").into());
    };
    if !args.follow {
        return print_response(cli.json, &Response::Logs { lines });
    }
    let wanted = |l: &LogLine| args.name.is_none() || l.profile == args.name;
    let mut out = std::io::stdout().lock();
    for l in &lines {
        print_log(&mut out, cli.json, l)?;
    }
    // Lines that came while the history was read may be in it already.
    for e in c.take_events() {
        if let Event::Log(l) = e
            && wanted(&l)
            && !lines.contains(&l)
        {
            print_log(&mut out, cli.json, &l)?;
        }
    }
    loop {
        if let Event::Log(l) = c.next_event()?
            && wanted(&l)
        {
            print_log(&mut out, cli.json, &l)?;
        }
    }
}

/// `chantryctl events`: the newest entries, then (with -f) new ones.
fn events(cli: &Cli, args: &FollowArgs) -> Result<(), Failure> {
    let mut c = Client::connect(&cli.service)?;
    if args.follow {
        c.call(Request::Subscribe)?;
    }
    let Response::Events { events } = c.call(Request::Events {
        name: args.name.clone(),
        limit: args.lines,
    })?
    else {
        return Err(anyhow::anyhow!("unexpected answer to events").into());
    };
    if !args.follow {
        return print_response(cli.json, &Response::Events { events });
    }
    let wanted = |r: &EventRecord| args.name.is_none() || r.profile == args.name;
    let mut out = std::io::stdout().lock();
    for r in &events {
        print_record(&mut out, cli.json, r)?;
    }
    for e in c.take_events() {
        if let Event::Recorded(r) = e
            && wanted(&r)
            && !events.contains(&r)
        {
            print_record(&mut out, cli.json, &r)?;
        }
    }
    loop {
        if let Event::Recorded(r) = c.next_event()?
            && wanted(&r)
        {
            print_record(&mut out, cli.json, &r)?;
        }
    }
}

/// One log line, flushed (a follower is read as it goes).
fn print_log(out: &mut impl std::io::Write, json: bool, l: &LogLine) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(l)?)?;
    } else {
        writeln!(out, "{}", log_row(l))?;
    }
    Ok(out.flush()?)
}

/// One event log entry, flushed.
fn print_record(out: &mut impl std::io::Write, json: bool, r: &EventRecord) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
    } else {
        writeln!(out, "{}", record_row(r))?;
    }
    Ok(out.flush()?)
}

/// `2026-01-01T00:00:00Z info  home: message` (`service` for the
/// service's own lines).
fn log_row(l: &LogLine) -> String {
    format!(
        "{} {:<5} {}: {}",
        utc(l.at),
        l.level,
        l.profile.as_deref().unwrap_or("service"),
        l.message
    )
}

/// `2026-01-01T00:00:00Z home        connect     connecting`.
fn record_row(r: &EventRecord) -> String {
    format!(
        "{} {:<12} {:<10} {}",
        utc(r.at),
        r.profile.as_deref().unwrap_or("service"),
        r.kind,
        r.detail
    )
}

/// `chantryctl settings [get|set]`.
fn settings(cli: &Cli, args: &SettingsArgs) -> Result<(), Failure> {
    let mut c = Client::connect(&cli.service)?;
    let Response::Settings(current) = c.call(Request::GetSettings)? else {
        return Err(anyhow::anyhow!("unexpected answer to get-settings").into());
    };
    let Some(SettingsAction::Set {
        log_level,
        reconnect_on_network_change,
    }) = &args.action
    else {
        return print_response(cli.json, &Response::Settings(current));
    };
    let new = Settings {
        log_level: log_level.clone().unwrap_or(current.log_level),
        reconnect_on_network_change: reconnect_on_network_change
            .unwrap_or(current.reconnect_on_network_change),
    };
    c.call(Request::SetSettings(new.clone()))?;
    print_response(cli.json, &Response::Settings(new))
}

/// Prints an answer.
fn print_response(json: bool, r: &Response) -> Result<(), Failure> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    match r {
        Response::Profiles { profiles } => print!("{}", profiles_table(profiles)),
        Response::Status { tunnels } => print!("{}", status_table(tunnels)),
        Response::Logs { lines } => lines.iter().for_each(|l| println!("{}", log_row(l))),
        Response::Events { events } => events.iter().for_each(|r| println!("{}", record_row(r))),
        Response::History { samples } => print!("{}", history_table(samples)),
        Response::Settings(s) => print!("{}", settings_table(s)),
        Response::Export(_) | Response::Done => {}
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

/// The service `status` table: a line per profile, and a running
/// tunnel's numbers under it.
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
        if let Some(s) = &t.stats {
            out.push_str(&stats_lines(s));
        }
    }
    out
}

/// A running tunnel's numbers, indented under its status line.
fn stats_lines(s: &TunnelStats) -> String {
    let stage = match s.stage {
        Stage::Keying => "keying",
        Stage::Online => "online",
        Stage::Rekeying => "rekeying",
        Stage::Error => "error",
    };
    let mut out = String::new();
    let stage = match s.path {
        Some(PathKind::Direct) => format!("{stage}, direct"),
        Some(PathKind::Relay) => format!("{stage}, relay"),
        None => stage.to_owned(),
    };
    let _ = writeln!(out, "    stage      {stage}");
    let _ = writeln!(
        out,
        "    peer       {}",
        s.peer.as_deref().unwrap_or("unknown")
    );
    if let Some(c) = &s.cathedral {
        let _ = writeln!(out, "    cathedral  {c}");
    }
    let _ = writeln!(
        out,
        "    sent       {}, {}",
        packets(s.tx.packets),
        human_bytes(s.tx.bytes)
    );
    let _ = writeln!(
        out,
        "    received   {}, {}",
        packets(s.rx.packets),
        human_bytes(s.rx.bytes)
    );
    let key = s
        .since_key_exchange_s
        .map_or_else(|| "none yet".to_owned(), |age| format!("{age} s ago"));
    let _ = writeln!(out, "    key        {key}");
    let _ = writeln!(out, "    mtu        {}", s.mtu);
    out
}

/// `1 packet`, `2 packets`.
fn packets(n: u64) -> String {
    if n == 1 {
        "1 packet".to_owned()
    } else {
        format!("{n} packets")
    }
}

/// The `history` table.
fn history_table(samples: &[StatsSample]) -> String {
    let mut out = format!(
        "{:<20}  {:>12}  {:>10}  {:>12}  {:>10}\n",
        "time", "tx packets", "tx bytes", "rx packets", "rx bytes"
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{:<20}  {:>12}  {:>10}  {:>12}  {:>10}",
            utc(s.at),
            s.tx.packets,
            human_bytes(s.tx.bytes),
            s.rx.packets,
            human_bytes(s.rx.bytes)
        );
    }
    out
}

/// The `settings` table.
fn settings_table(s: &Settings) -> String {
    format!(
        "log level                    {}\nreconnect on network change  {}\n",
        s.log_level,
        if s.reconnect_on_network_change {
            "yes"
        } else {
            "no"
        }
    )
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn utc(at: u64) -> String {
    let days = i64::try_from(at / 86_400).unwrap_or(0);
    let secs = at % 86_400;
    // Days to a civil date (H. Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
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
    fn times_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400 + 3_723), "2000-02-29T01:02:03Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn status_shows_a_running_tunnels_numbers() {
        use chantry_core::ipc::{Counters, TunnelState};
        let t = TunnelStatus {
            name: "home".into(),
            state: TunnelState::Up,
            detail: None,
            pid: Some(42),
            stats: Some(TunnelStats {
                stage: Stage::Online,
                path: Some(PathKind::Relay),
                peer: Some("192.0.2.7:4500".into()),
                cathedral: Some("192.0.2.7:4500".into()),
                since_key_exchange_s: Some(12),
                mtu: 1422,
                tx: Counters {
                    packets: 3,
                    bytes: 1536,
                },
                rx: Counters {
                    packets: 4,
                    bytes: 100,
                },
            }),
        };
        assert_eq!(
            status_table(std::slice::from_ref(&t)),
            "home                 up (pid 42)\n\
             \x20   stage      online, relay\n\
             \x20   peer       192.0.2.7:4500\n\
             \x20   cathedral  192.0.2.7:4500\n\
             \x20   sent       3 packets, 1.5 KiB\n\
             \x20   received   4 packets, 100 B\n\
             \x20   key        12 s ago\n\
             \x20   mtu        1422\n"
        );
        let keying = TunnelStats {
            stage: Stage::Keying,
            path: None,
            peer: None,
            cathedral: None,
            since_key_exchange_s: None,
            ..t.stats.clone().unwrap()
        };
        let lines = stats_lines(&TunnelStats {
            tx: chantry_core::ipc::Counters {
                packets: 1,
                bytes: 52,
            },
            ..keying
        });
        assert!(lines.contains("    sent       1 packet, 52 B\n"), "{lines}");
        assert!(
            lines.starts_with("    stage      keying\n    peer       unknown\n    sent"),
            "{lines}"
        );
        assert!(lines.contains("    key        none yet\n"), "{lines}");
    }

    #[test]
    fn log_and_event_rows() {
        let l = LogLine {
            at: 1_767_225_600,
            level: "warn".into(),
            profile: None,
            message: "m".into(),
        };
        assert_eq!(log_row(&l), "2026-01-01T00:00:00Z warn  service: m");
        let r = EventRecord {
            at: 1_767_225_601,
            profile: Some("home".into()),
            kind: "up".into(),
            detail: "d".into(),
        };
        assert_eq!(
            record_row(&r),
            "2026-01-01T00:00:01Z home         up         d"
        );
    }

    #[test]
    fn refusals_map_to_exit_codes_and_name_the_callers_file() {
        assert_eq!(exit_code(ErrorCode::Passphrase), 7);
        assert_eq!(exit_code(ErrorCode::Invalid), 6);
        assert_eq!(exit_code(ErrorCode::Forbidden), 4);
        assert!(EXIT_CODES.contains("7  the vicar file's passphrase is wrong"));
        let e = with_line(
            ClientError::Refused(chantry_core::ipc::ErrorReply {
                code: ErrorCode::Invalid,
                message: "home.conf:3: secret: comes from the vicar file".into(),
                line: Some(3),
            }),
            Path::new("/tmp/lines.conf"),
        );
        assert_eq!(
            e.to_string(),
            "/tmp/lines.conf:3: secret: comes from the vicar file"
        );
        assert_eq!(first_line("pass word\r\nrest"), "pass word");
        assert_eq!(first_line("pass"), "pass");
    }

    #[test]
    fn new_subcommands_parse() {
        let cli = Cli::try_parse_from(["chantryctl", "logs", "-f", "home", "-n", "5"]).unwrap();
        match cli.command {
            Command::Logs(a) => assert_eq!(
                (a.name.as_deref(), a.follow, a.lines),
                (Some("home"), true, 5)
            ),
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "chantryctl",
            "settings",
            "set",
            "--reconnect-on-network-change",
            "off",
        ])
        .unwrap();
        match cli.command {
            Command::Settings(SettingsArgs {
                action:
                    Some(SettingsAction::Set {
                        log_level: None,
                        reconnect_on_network_change: Some(false),
                    }),
            }) => {}
            other => panic!("{other:?}"),
        }
        // `set` needs something to set.
        assert!(Cli::try_parse_from(["chantryctl", "settings", "set"]).is_err());
        assert!(Cli::try_parse_from(["chantryctl", "settings"]).is_ok());
        let cli = Cli::try_parse_from([
            "chantryctl",
            "import-vicar",
            "home",
            "home.vicar",
            "--config",
            "lines.conf",
            "--passphrase-file",
            "pp",
        ])
        .unwrap();
        match cli.command {
            Command::ImportVicar(a) => {
                assert_eq!(a.file, Path::new("home.vicar"));
                assert_eq!(a.passphrase_file.as_deref(), Some(Path::new("pp")));
            }
            other => panic!("{other:?}"),
        }
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "chantryctl",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("import-vicar") && script.contains("completions"));
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
