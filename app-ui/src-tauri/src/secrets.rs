//! Vicar passphrases the user asked the app to remember, in the OS
//! keyring (the Secret Service on Linux, the Keychain on macOS, the
//! Credential Manager on Windows) through the keyring crate. One entry
//! per profile; nothing is written anywhere else, and a passphrase is
//! never logged.

use zeroize::Zeroizing;

use crate::error::AppError;

/// The keyring service name of the app's entries.
pub const SERVICE: &str = "org.chantry.desktop";

/// Where remembered passphrases live.
pub trait PassphraseStore: Send + Sync {
    /// The passphrase remembered for `profile`, if any.
    fn get(&self, profile: &str) -> Result<Option<Zeroizing<String>>, AppError>;
    /// Remembers `passphrase` for `profile`.
    fn set(&self, profile: &str, passphrase: &str) -> Result<(), AppError>;
    /// Forgets `profile`'s passphrase (no error if there was none).
    fn forget(&self, profile: &str) -> Result<(), AppError>;
}

/// The OS keyring.
#[derive(Debug, Default)]
pub struct OsKeyring;

fn entry(profile: &str) -> Result<keyring::Entry, AppError> {
    keyring::Entry::new(SERVICE, &format!("vicar-passphrase:{profile}")).map_err(keyring_error)
}

fn keyring_error(e: keyring::Error) -> AppError {
    AppError::Keyring {
        detail: match e {
            keyring::Error::NoDefaultStore | keyring::Error::NoStorageAccess(_) => format!(
                "no keyring is available in this session ({e}); on Linux the Secret Service (GNOME Keyring, KWallet) must be running and unlocked"
            ),
            other => other.to_string(),
        },
    }
}

impl PassphraseStore for OsKeyring {
    fn get(&self, profile: &str) -> Result<Option<Zeroizing<String>>, AppError> {
        match entry(profile)?.get_password() {
            Ok(p) => Ok(Some(Zeroizing::new(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn set(&self, profile: &str, passphrase: &str) -> Result<(), AppError> {
        entry(profile)?
            .set_password(passphrase)
            .map_err(keyring_error)
    }

    fn forget(&self, profile: &str) -> Result<(), AppError> {
        match entry(profile)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// Passphrases in memory: for tests, and for `--no-keyring`.
#[derive(Debug, Default)]
pub struct MemoryStore(std::sync::Mutex<std::collections::HashMap<String, Zeroizing<String>>>);

impl PassphraseStore for MemoryStore {
    fn get(&self, profile: &str) -> Result<Option<Zeroizing<String>>, AppError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(profile)
            .cloned())
    }

    fn set(&self, profile: &str, passphrase: &str) -> Result<(), AppError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(profile.to_owned(), Zeroizing::new(passphrase.to_owned()));
        Ok(())
    }

    fn forget(&self, profile: &str) -> Result<(), AppError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(profile);
        Ok(())
    }
}

/// The passphrase to send for an import of `profile`: the one typed if
/// any, else the remembered one. The flag says it was typed (and so may
/// be remembered once the service accepted it).
pub fn choose(
    store: &dyn PassphraseStore,
    profile: &str,
    typed: Option<&str>,
) -> Result<(Zeroizing<String>, bool), AppError> {
    match typed.filter(|t| !t.is_empty()) {
        Some(t) => Ok((Zeroizing::new(t.to_owned()), true)),
        None => store
            .get(profile)?
            .map(|p| (p, false))
            .ok_or_else(|| AppError::Other {
                detail: format!(
                    "type the passphrase of the vicar profile: none is remembered for {profile:?}"
                ),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_passphrase_wins_and_the_remembered_one_fills_in() {
        let s = MemoryStore::default();
        let (p, typed) = choose(&s, "home", Some("correct horse")).expect("typed");
        assert_eq!((p.as_str(), typed), ("correct horse", true));
        assert!(choose(&s, "home", None).is_err());
        assert!(choose(&s, "home", Some("")).is_err());
        s.set("home", "battery staple").expect("set");
        let (p, typed) = choose(&s, "home", Some("")).expect("remembered");
        assert_eq!((p.as_str(), typed), ("battery staple", false));
        let (p, _) = choose(&s, "home", Some("other")).expect("typed");
        assert_eq!(p.as_str(), "other");
        s.forget("home").expect("forget");
        s.forget("home").expect("forgetting twice is fine");
        assert_eq!(s.get("home").expect("get"), None);
    }
}
