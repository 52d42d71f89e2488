//! `Request::ImportVicar`: a profile from a vicar provisioning file
//! (spec/files.md §9) and the sanctum.conf lines the file does not hold.
//!
//! The vicar file gives the cathedral (address and port), the device's
//! identity there, its flock and tunnel id, and three keys: the base KEK,
//! the COSK and the cathedral secret. The service writes the keys as
//! root-only files under `keys/` (`NAME.kek`, `NAME.cosk`, `NAME.cs`,
//! atomically, never into the database) and appends to the caller's lines
//! the ones a cathedral client needs (spec/files.md §1.2, §1.3), in the
//! order the parser requires:
//!
//! ```text
//! spi 0x0102                 # before every cathedral_* line
//! kek KEYS/NAME.kek          # before secret: the secret need not exist
//! secret KEYS/NAME.secret    # written by the daemon from an ambry
//! cathedral_id 0x0badf00d
//! cathedral_flock 0x1122334455667700
//! cathedral_secret KEYS/NAME.cs
//! cathedral_cosk KEYS/NAME.cosk
//! cathedral 127.0.0.1:4500
//! ```
//!
//! The caller's lines keep their numbers, so a parser error on one of them
//! is answered with that line ([`ErrorReply::line`]). They must not set
//! what the file provides, and the mode must be `tunnel`. The passphrase
//! KDF costs about a second and 32 MiB: it runs on the blocking pool, one
//! at a time, after the cheap checks; a wrong passphrase is
//! [`ErrorCode::Passphrase`]. Neither the passphrase nor any key reaches a
//! log line or the event log.
//!
//! Such a profile exports (`Request::Export`) as a configuration with the
//! `kek`, `cathedral_secret` and `cathedral_cosk` contents, which
//! `Request::Import` takes back.

use std::net::{Ipv4Addr, SocketAddrV4};

use chantry_core::config::{Config, ConfigError};
use chantry_core::ipc::{ErrorCode, ErrorReply, Response, VicarImportRequest};
use chantry_core::vicar::{self, VicarError, VicarProfile};
use tokio::sync::Semaphore;

use super::conf_text;
use super::profile::valid_name;
use super::reply::{fail, internal, invalid_at};
use super::store::{KeyFile, Profile, Store};

/// Keywords the vicar file provides (the service writes these lines).
pub const PROVIDED: [&str; 8] = [
    "spi",
    "kek",
    "secret",
    "cathedral_id",
    "cathedral_flock",
    "cathedral_secret",
    "cathedral_cosk",
    "cathedral",
];

/// One passphrase KDF at a time (each holds 32 MiB).
static KDF: Semaphore = Semaphore::const_new(1);

/// What the appended lines say, from the file or placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Provided {
    tunnel: u16,
    cathedral_id: u32,
    flock: u64,
    cathedral: SocketAddrV4,
}

impl Provided {
    /// Values of the right shape, for checking the caller's lines before
    /// the file is opened.
    const PLACEHOLDER: Provided = Provided {
        tunnel: 0x0102,
        cathedral_id: 1,
        flock: 0x100,
        cathedral: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4500),
    };

    fn of(v: &VicarProfile) -> Provided {
        Provided {
            tunnel: v.tunnel,
            cathedral_id: v.cathedral_id,
            flock: v.flock,
            cathedral: SocketAddrV4::new(v.cathedral_ip, v.cathedral_port),
        }
    }
}

/// The caller's lines followed by the provided ones.
fn assemble(store: &Store, name: &str, user: &str, p: &Provided) -> String {
    let key = |k: KeyFile| store.key_file_path(name, k).display().to_string();
    let mut out = String::with_capacity(user.len() + 512);
    out.push_str(user);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(
        "# From the vicar file (chantryctl import-vicar); the keys are the service's copies.\n",
    );
    out.push_str(&format!("spi 0x{:04x}\n", p.tunnel));
    out.push_str(&format!("kek {}\n", key(KeyFile::Kek)));
    out.push_str(&format!("secret {}\n", key(KeyFile::Secret)));
    out.push_str(&format!("cathedral_id 0x{:08x}\n", p.cathedral_id));
    out.push_str(&format!("cathedral_flock 0x{:016x}\n", p.flock));
    out.push_str(&format!(
        "cathedral_secret {}\n",
        key(KeyFile::CathedralSecret)
    ));
    out.push_str(&format!("cathedral_cosk {}\n", key(KeyFile::CathedralCosk)));
    out.push_str(&format!("cathedral {}\n", p.cathedral));
    out
}

/// Refuses caller lines that set what the file provides, or another mode
/// than `tunnel`.
fn check_user_lines(label: &str, user: &str) -> Result<(), ErrorReply> {
    if let Some((line, mode)) = conf_text::find(user, "mode")
        && mode != "tunnel"
    {
        return Err(invalid_at(
            format!(
                "{label}:{line}: mode: a vicar profile is a tunnel to a cathedral: use `mode tunnel` (or no mode line), not {mode:?}"
            ),
            u32::try_from(line).ok(),
        ));
    }
    if let Some((line, kw, _)) = conf_text::lines(user).find(|(_, k, _)| PROVIDED.contains(k)) {
        return Err(invalid_at(
            format!(
                "{label}:{line}: {kw}: comes from the vicar file; remove this line (the service writes {})",
                PROVIDED.join(", ")
            ),
            u32::try_from(line).ok(),
        ));
    }
    Ok(())
}

/// Parses the assembled text; an error on one of the caller's first
/// `user_lines` lines names it, one on an appended line says so.
fn parse(label: &str, text: &str, user_lines: usize) -> Result<Config, ErrorReply> {
    Config::parse(label, text).map_err(|e| config_error(label, &e, user_lines))
}

fn config_error(label: &str, e: &ConfigError, user_lines: usize) -> ErrorReply {
    match e.line {
        Some(l) if l <= user_lines => invalid_at(e.to_string(), u32::try_from(l).ok()),
        Some(_) => invalid_at(
            format!(
                "{label}: {} (a line written from the vicar file): {}",
                e.keyword.as_deref().unwrap_or("?"),
                e.message
            ),
            None,
        ),
        None => invalid_at(e.to_string(), None),
    }
}

/// Why the file could not be opened, as the caller should hear it.
fn vicar_error(e: VicarError) -> ErrorReply {
    match e {
        VicarError::WrongLength { .. } => {
            fail(ErrorCode::Invalid, format!("not a vicar file: {e}"))
        }
        VicarError::Integrity => fail(
            ErrorCode::Passphrase,
            "wrong passphrase for this vicar file (or the file was altered)",
        ),
        VicarError::PassphraseTooLong { .. } | VicarError::PassphraseHasNul => fail(
            ErrorCode::Passphrase,
            format!("{e}: it cannot open this file"),
        ),
    }
}

/// Answers `ImportVicar`.
pub async fn import(
    store: &Store,
    req: VicarImportRequest,
    uid: u32,
) -> Result<Response, ErrorReply> {
    let name = req.name.clone();
    if !valid_name(&name) {
        return Err(fail(
            ErrorCode::Invalid,
            format!("profile name {name:?}: use 1 to 32 letters, digits, `-` or `_`"),
        ));
    }
    let exists = || {
        fail(
            ErrorCode::Exists,
            format!("a profile named `{name}` exists"),
        )
    };
    if store.get(&name).await.map_err(internal)?.is_some() {
        return Err(exists());
    }
    let label = format!("{name}.conf");
    let user_lines = req.config.lines().count();
    check_user_lines(&label, &req.config)?;
    parse(
        &label,
        &assemble(store, &name, &req.config, &Provided::PLACEHOLDER),
        user_lines,
    )?;
    vicar::salt_of(req.vicar.expose()).map_err(vicar_error)?;

    let opened = {
        let _slot = KDF.acquire().await.map_err(internal)?;
        let (vicar, passphrase) = (req.vicar.clone(), req.passphrase.clone());
        tokio::task::spawn_blocking(move || {
            vicar::decrypt(passphrase.expose().as_bytes(), vicar.expose())
        })
        .await
        .map_err(internal)?
    };
    let v = opened.map_err(vicar_error)?;
    let provided = Provided::of(&v);
    let config = assemble(store, &name, &req.config, &provided);
    let parsed = parse(&label, &config, user_lines)?;

    let written = (|| -> Result<(), ErrorReply> {
        store
            .write_key_file(&name, KeyFile::Kek, v.kek.expose())
            .map_err(internal)?;
        store
            .write_key_file(&name, KeyFile::CathedralCosk, v.cosk.expose())
            .map_err(internal)?;
        store
            .write_key_file(&name, KeyFile::CathedralSecret, v.cathedral_secret.expose())
            .map_err(internal)?;
        // With the key files in place the reference's parse-time file
        // checks pass too (the secret may be missing: `kek` comes first).
        parsed
            .check_files()
            .map_err(|e| config_error(&label, &e, user_lines))
    })();
    drop(v);
    let stored = match written {
        Ok(()) => store
            .insert(&Profile {
                name: name.clone(),
                instance: parsed.instance().to_owned(),
                mode: parsed.mode().to_string(),
                config,
                auto_connect: req.auto_connect,
                always_on: req.always_on,
            })
            .await
            .map_err(internal)
            .and_then(|inserted| if inserted { Ok(()) } else { Err(exists()) }),
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        let _ = store.remove_key_files(&name);
        return Err(e);
    }
    tracing::info!(uid, profile = name, "imported from a vicar file");
    let detail = format!(
        "imported from a vicar file by uid {uid}: cathedral {}, identity 0x{:08x}, flock 0x{:016x}, tunnel 0x{:04x}",
        provided.cathedral, provided.cathedral_id, provided.flock, provided.tunnel
    );
    let _ = store.log_event(Some(&name), "import", &detail).await;
    Ok(Response::Done)
}

#[cfg(test)]
mod tests;
