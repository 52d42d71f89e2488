//! Turning an import request into a stored profile: the name is checked,
//! the configuration parsed, its key file lines (`secret`, and for a
//! cathedral client `kek`, `cathedral_secret`, `cathedral_cosk`) pointed
//! at the service's own copies, and the result run through chantryd's
//! setup checks before anything is stored. [`export`] is the inverse.

use chantry_core::config::Config;
use chantry_core::ipc::{ExportedProfile, ImportRequest, KeyMaterial};

use super::conf_text;
use super::store::{KeyFile, Profile, Store, StoreError};

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The name is not 1 to 32 of `[A-Za-z0-9_-]`.
    #[error("profile name {0:?}: use 1 to 32 letters, digits, `-` or `_`")]
    BadName(String),
    /// The configuration or its key does not pass chantryd's checks.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// True for a valid profile name.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Runs chantryd's setup checks (key files, users, addresses) on the
/// stored configuration.
#[cfg(target_os = "linux")]
fn check_setup(run: &std::path::Path) -> Result<(), ImportError> {
    crate::guardian::setup::load(run)
        .map(|_| ())
        .map_err(|e| ImportError::Invalid(e.0))
}

/// Where tunnels are not built yet there is no setup to check: the
/// configuration was parsed, which is all this build can tell.
#[cfg(not(target_os = "linux"))]
fn check_setup(_run: &std::path::Path) -> Result<(), ImportError> {
    Ok(())
}

/// The key material of `req` for `kind` (`secret` is always there).
fn material(req: &ImportRequest, kind: KeyFile) -> Option<&KeyMaterial> {
    match kind {
        KeyFile::Secret => Some(&req.secret),
        KeyFile::Kek => req.kek.as_ref(),
        KeyFile::CathedralSecret => req.cathedral_secret.as_ref(),
        KeyFile::CathedralCosk => req.cathedral_cosk.as_ref(),
    }
}

/// Writes the key files and checks the configuration; returns the profile
/// to store. On error nothing is left behind.
pub fn prepare(store: &Store, req: &ImportRequest) -> Result<Profile, ImportError> {
    if !valid_name(&req.name) {
        return Err(ImportError::BadName(req.name.clone()));
    }
    let label = format!("{}.conf", req.name);
    let key = store.key_path(&req.name);
    let mut config = rewrite_secret(&req.config, &key.display().to_string());
    for kind in [
        KeyFile::Kek,
        KeyFile::CathedralSecret,
        KeyFile::CathedralCosk,
    ] {
        let kw = kind.keyword();
        match (conf_text::find(&config, kw), material(req, kind)) {
            (Some(_), Some(_)) => {
                let path = store.key_file_path(&req.name, kind);
                config = conf_text::set(&config, kw, &path.display().to_string(), false);
            }
            (Some((line, _)), None) => {
                return Err(ImportError::Invalid(format!(
                    "{label}:{line}: {kw}: the import does not carry this key file's contents"
                )));
            }
            (None, Some(_)) => {
                return Err(ImportError::Invalid(format!(
                    "{label}: {kw}: key material given but the configuration has no `{kw}` line"
                )));
            }
            (None, None) => {}
        }
    }
    let parsed = Config::parse(&label, &config).map_err(|e| ImportError::Invalid(e.to_string()))?;
    // With a `kek` before it the secret is unwrapped from an ambry later:
    // an empty one is not written (and the file need not exist).
    let secret_later = !parsed.secret_must_exist() && req.secret.expose().is_empty();
    let written = (|| -> Result<(), ImportError> {
        for kind in KeyFile::ALL {
            if kind == KeyFile::Secret && secret_later {
                continue;
            }
            if let Some(m) = material(req, kind) {
                store.write_key_file(&req.name, kind, m.expose())?;
            }
        }
        let run = store.run_config_path(&req.name);
        super::store::write_atomic(&run, config.as_bytes())?;
        if store.key_path(&req.name).exists() {
            check_setup(&run)?;
        } else {
            Config::load(&run).map_err(|e| ImportError::Invalid(e.to_string()))?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = store.remove_key_files(&req.name);
        let _ = std::fs::remove_file(store.run_config_path(&req.name));
        return Err(e);
    }
    Ok(Profile {
        name: req.name.clone(),
        instance: parsed.instance().to_owned(),
        mode: parsed.mode().to_string(),
        config,
        auto_connect: req.auto_connect,
        always_on: req.always_on,
    })
}

/// A stored profile as [`ImportRequest`] takes it back: its configuration
/// and the contents of every key file its lines name (the secret empty if
/// a `kek` profile has not unwrapped one yet).
pub fn export(store: &Store, p: Profile) -> Result<ExportedProfile, StoreError> {
    let read = |kind: KeyFile| -> Result<Option<KeyMaterial>, StoreError> {
        if conf_text::find(&p.config, kind.keyword()).is_none() {
            return Ok(None);
        }
        store.read_key_file(&p.name, kind)
    };
    let has_kek = conf_text::find(&p.config, KeyFile::Kek.keyword()).is_some();
    let secret = match store.read_key_file(&p.name, KeyFile::Secret)? {
        Some(s) => s,
        None if has_kek => KeyMaterial::new(Vec::new()),
        // The same error as before: a plain profile without its secret.
        None => store.read_key(&p.name)?,
    };
    Ok(ExportedProfile {
        kek: read(KeyFile::Kek)?,
        cathedral_secret: read(KeyFile::CathedralSecret)?,
        cathedral_cosk: read(KeyFile::CathedralCosk)?,
        name: p.name,
        config: p.config,
        secret,
        auto_connect: p.auto_connect,
        always_on: p.always_on,
    })
}

/// `text` with every `secret` line replaced by one naming `key` (one is
/// added if there was none).
pub fn rewrite_secret(text: &str, key: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + 8);
    let mut done = false;
    for line in text.lines() {
        if line.split_whitespace().next() == Some("secret") {
            if !done {
                out.push_str(&format!("secret {key}\n"));
                done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        out.push_str(&format!("secret {key}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("home-1_b"));
        assert!(!valid_name(""));
        assert!(!valid_name("../x"));
        assert!(!valid_name(&"a".repeat(33)));
    }

    #[test]
    fn secret_lines_point_at_the_stored_key() {
        assert_eq!(
            rewrite_secret(
                "mode tunnel\nsecret /home/u/s\nspi 1\n",
                "/var/lib/chantry/keys/p.secret"
            ),
            "mode tunnel\nsecret /var/lib/chantry/keys/p.secret\nspi 1\n"
        );
        assert_eq!(
            rewrite_secret("mode tunnel", "/k"),
            "mode tunnel\nsecret /k\n"
        );
    }
}
