//! chantry-cathedral: the tools of a cathedral operator (docs/cathedral.md).
//!
//! KEKs and ambry bundles in the layout of the reference `ambry` tool
//! (`ambry generate/export/renew/bundle/show/unwrap`), COSK key pairs,
//! random key files, and vicar provisioning files. It needs no service and
//! no privileges beyond the files it writes.
//!
//! Exit codes: 0 done, 1 a file or key problem (the message names the
//! file), 2 usage.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chantry_core::entropy::OsEntropy;
use chantry_service::cathedral_tool::{self as tool, ToolError, VicarFields};
use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

/// The environment variable a vicar passphrase may come from.
const PASSPHRASE_ENV: &str = "CHANTRY_PASSPHRASE";

#[derive(Parser)]
#[command(
    name = "chantry-cathedral",
    version,
    about = "Cathedral operator tools: KEKs, ambry bundles, COSK pairs, vicar files"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// KEKs and ambry bundles (the reference `ambry` tool's commands and
    /// directory layout).
    Ambry {
        /// Directory holding the `<%016x flock>/` KEK directories.
        #[arg(short = 'C', long, default_value = ".")]
        dir: PathBuf,
        #[command(subcommand)]
        cmd: AmbryCmd,
    },
    /// A new Ed25519 COSK pair: PRIV (64 bytes, the device's
    /// `cathedral_cosk`) and PUB (32 bytes, `<secretdir>/flock-F/<ID>.pub`).
    CoskPair {
        /// The 64-byte secret key file to create.
        private: PathBuf,
        /// The 32-byte public key file to create.
        public: PathBuf,
    },
    /// A new random 32-byte key file: a cathedral secret (`<ID>.key` and
    /// the device's `cathedral_secret`), a shared secret, a sync secret.
    Keygen {
        /// The file to create.
        out: PathBuf,
    },
    /// A vicar provisioning file for one device (spec files.md §9). The
    /// passphrase comes from --passphrase-file, CHANTRY_PASSPHRASE or a
    /// prompt without echo.
    Vicar {
        /// The vicar file to create.
        out: PathBuf,
        /// The cathedral's address, IPv4:port.
        #[arg(long)]
        cathedral: std::net::SocketAddrV4,
        /// The device's identity at the cathedral (hex).
        #[arg(long)]
        id: String,
        /// The device's flock (hex).
        #[arg(long)]
        flock: String,
        /// The device's tunnel id, own id << 8 | peer id (hex).
        #[arg(long)]
        tunnel: String,
        /// The device's base KEK (`kek-data/kek-0xNN`).
        #[arg(long)]
        kek: PathBuf,
        /// The device's 64-byte COSK.
        #[arg(long)]
        cosk: PathBuf,
        /// The device's cathedral secret.
        #[arg(long)]
        cs: PathBuf,
        /// Read the passphrase from this file (its first line).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AmbryCmd {
    /// Base KEKs for device ids 01..ff and the flock's derived KEKs.
    Generate {
        /// Flock (hex; the domain byte is cleared).
        flock: String,
    },
    /// Derived KEKs of FLOCK for talking to OTHER (for xflock bundles).
    Export {
        /// Own flock.
        flock: String,
        /// The other flock.
        other: String,
    },
    /// A new base KEK for one device.
    Renew {
        /// Flock.
        flock: String,
        /// Device id (hex).
        id: String,
    },
    /// A new bundle generation for A <-> B (A == B: one flock).
    Bundle {
        /// Flock A.
        a: String,
        /// Flock B.
        b: String,
        /// Days it stays valid.
        days: u32,
        /// The bundle file (replaced atomically).
        out: PathBuf,
    },
    /// What a bundle holds, checked as a cathedral loads it.
    Show {
        /// The bundle file.
        bundle: PathBuf,
    },
    /// Checks that a device's base KEK unwraps its entry of a bundle.
    Unwrap {
        /// The bundle file.
        bundle: PathBuf,
        /// The device's base KEK.
        #[arg(long)]
        kek: PathBuf,
        /// The device's flock (hex).
        #[arg(long)]
        flock: String,
        /// The flock it talks to (hex; default: its own).
        #[arg(long)]
        flock_dst: Option<String>,
        /// The device's tunnel id (hex).
        #[arg(long)]
        tunnel: String,
    },
}

fn hex_u32(s: &str, what: &str) -> Result<u32, ToolError> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|_| ToolError::Usage(format!("{what}: `{s}` is not hex")))
}

fn hex_u16(s: &str, what: &str) -> Result<u16, ToolError> {
    u16::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|_| ToolError::Usage(format!("{what}: `{s}` is not a 16-bit hex number")))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn run(cli: Cli) -> Result<(), ToolError> {
    let mut rng = OsEntropy;
    match cli.cmd {
        Cmd::Ambry { dir, cmd } => match cmd {
            AmbryCmd::Generate { flock } => {
                let f = tool::parse_flock(&flock)?;
                tool::kek_generate(&dir, f, &mut rng)?;
                eprintln!(
                    "{}: KEKs for ids 01..ff generated",
                    dir.join(format!("{f:016x}")).display()
                );
            }
            AmbryCmd::Export { flock, other } => {
                tool::kek_export(&dir, tool::parse_flock(&flock)?, tool::parse_flock(&other)?)?;
            }
            AmbryCmd::Renew { flock, id } => {
                tool::kek_renew(
                    &dir,
                    tool::parse_flock(&flock)?,
                    tool::parse_id(&id)?,
                    &mut rng,
                )?;
            }
            AmbryCmd::Bundle { a, b, days, out } => {
                let (a, b) = (tool::parse_flock(&a)?, tool::parse_flock(&b)?);
                let bundle = tool::bundle_generate(&dir, a, b, days, &out, now(), &mut rng)?;
                eprintln!(
                    "{}: {} entries, generation 0x{:08x}",
                    out.display(),
                    bundle.entries.len(),
                    bundle.head.generation
                );
            }
            AmbryCmd::Show { bundle } => {
                let (_, info) = tool::bundle_info(&bundle)?;
                let flocks: Vec<String> = info.flocks.iter().map(|f| format!("{f:x}")).collect();
                println!("generation 0x{:08x}", info.generation);
                println!(
                    "expires {} (day {}, unix {})",
                    if info.expires_at < now() {
                        "EXPIRED"
                    } else {
                        "ok"
                    },
                    info.expires,
                    info.expires_at
                );
                println!("flocks {}", flocks.join(" "));
                println!("entries {}", info.entries);
            }
            AmbryCmd::Unwrap {
                bundle,
                kek,
                flock,
                flock_dst,
                tunnel,
            } => {
                let (b, _) = tool::bundle_info(&bundle)?;
                let f = tool::parse_flock(&flock)?;
                let fd = match flock_dst {
                    Some(s) => tool::parse_flock(&s)?,
                    None => f,
                };
                tool::bundle_unwrap(&b, &kek, f, fd, hex_u16(&tunnel, "--tunnel")?, now())?;
                println!(
                    "ok: {} unwraps tunnel {tunnel} of generation 0x{:08x}",
                    kek.display(),
                    b.head.generation
                );
            }
        },
        Cmd::CoskPair { private, public } => {
            tool::cosk_pair(&private, &public, &mut rng)?;
        }
        Cmd::Keygen { out } => tool::secret_file(&out, &mut rng)?,
        Cmd::Vicar {
            out,
            cathedral,
            id,
            flock,
            tunnel,
            kek,
            cosk,
            cs,
            passphrase_file,
        } => {
            let fields = VicarFields {
                cathedral_id: hex_u32(&id, "--id")?,
                cathedral,
                flock: u64::from_str_radix(flock.trim_start_matches("0x"), 16)
                    .map_err(|_| ToolError::Usage(format!("--flock: `{flock}` is not hex")))?,
                tunnel: hex_u16(&tunnel, "--tunnel")?,
            };
            let pass = passphrase(passphrase_file.as_deref())?;
            tool::vicar_create(&out, fields, &kek, &cosk, &cs, pass.as_bytes(), &mut rng)?;
        }
    }
    Ok(())
}

/// --passphrase-file (first line), else CHANTRY_PASSPHRASE, else a prompt
/// without echo on a terminal.
fn passphrase(file: Option<&std::path::Path>) -> Result<Zeroizing<String>, ToolError> {
    if let Some(f) = file {
        let text = Zeroizing::new(std::fs::read_to_string(f).map_err(|e| ToolError::File {
            path: f.to_owned(),
            problem: e.to_string(),
        })?);
        return Ok(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_owned(),
        ));
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(ToolError::Usage(format!(
            "no passphrase: give --passphrase-file FILE, set {PASSPHRASE_ENV}, or run on a terminal"
        )));
    }
    let first = prompt("vicar passphrase: ")?;
    let second = prompt("again: ")?;
    if *first != *second {
        return Err(ToolError::Usage("the passphrases differ".into()));
    }
    Ok(first)
}

/// Reads one line from the terminal with echo off, and puts echo back.
#[cfg(unix)]
fn prompt(text: &str) -> Result<Zeroizing<String>, ToolError> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let fail =
        |e: &dyn std::fmt::Display| ToolError::Usage(format!("cannot read the passphrase: {e}"));
    let old = tcgetattr(&stdin).map_err(|e| fail(&e))?;
    let mut quiet = old.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| fail(&e))?;
    let mut line = Zeroizing::new(String::new());
    let r = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &old);
    eprintln!();
    r.map_err(|e| fail(&e))?;
    let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
    Ok(Zeroizing::new(trimmed))
}

/// No terminal prompt here yet: the passphrase comes from a file or the
/// environment.
#[cfg(not(unix))]
fn prompt(_text: &str) -> Result<Zeroizing<String>, ToolError> {
    Err(ToolError::Usage(format!(
        "no terminal prompt on this system: give --passphrase-file FILE or set {PASSPHRASE_ENV}"
    )))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ToolError::Usage(_)) => {
            eprintln!("chantry-cathedral: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("chantry-cathedral: {e}");
            ExitCode::from(1)
        }
    }
}
