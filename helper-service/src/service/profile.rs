//! Turning an import request into a stored profile: the name is checked,
//! the configuration parsed, its `secret` line pointed at the service's
//! own copy of the key, and the result run through chantryd's setup
//! checks before anything is stored.

use chantry_core::config::Config;
use chantry_core::ipc::ImportRequest;

use super::store::{Profile, Store, StoreError};

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

/// Writes the key file and checks the configuration; returns the profile
/// to store. On error nothing is left behind.
pub fn prepare(store: &Store, req: &ImportRequest) -> Result<Profile, ImportError> {
    if !valid_name(&req.name) {
        return Err(ImportError::BadName(req.name.clone()));
    }
    let key = store.key_path(&req.name);
    let config = rewrite_secret(&req.config, &key.display().to_string());
    let label = format!("{}.conf", req.name);
    let parsed = Config::parse(&label, &config).map_err(|e| ImportError::Invalid(e.to_string()))?;
    if parsed.kek().is_some() || parsed.cathedral_client() {
        return Err(ImportError::Invalid(format!(
            "{label}: cathedral profiles cannot be imported yet"
        )));
    }
    store.write_key(&req.name, &req.secret)?;
    let run = store.run_config_path(&req.name);
    let checked = super::store::write_atomic(&run, config.as_bytes())
        .map_err(ImportError::from)
        .and_then(|()| check_setup(&run));
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(&run);
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
