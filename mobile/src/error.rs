//! Typed errors of the FFI. Every fallible call returns one of these; no
//! call panics across the FFI.

use chantry_core::config::ConfigError;
use chantry_core::vicar::VicarError;

/// Why a profile could not become an engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ProfileError {
    /// The sanctum.conf text does not parse or breaks a rule of files.md
    /// §1 (the message names the line and keyword).
    #[error("{message}")]
    MalformedConf {
        /// 1-based line to blame, if one is.
        line: Option<u32>,
        /// The keyword concerned, if any.
        keyword: Option<String>,
        /// The whole message: `profile:7: tunnel: mtu 400 out of range`.
        message: String,
    },
    /// The bytes are not a vicar file.
    #[error("malformed vicar file: {message}")]
    MalformedVicar {
        /// What is wrong with it.
        message: String,
    },
    /// The vicar file did not open: the passphrase is wrong (or the file
    /// was altered).
    #[error("wrong passphrase (or the vicar file was altered)")]
    BadPassphrase,
    /// The passphrase cannot be a vicar passphrase at all (256 bytes or
    /// more, or a NUL byte).
    #[error("unusable passphrase: {message}")]
    InvalidPassphrase {
        /// Why.
        message: String,
    },
    /// The profile needs a key that was not given.
    #[error("the profile needs the {name} key, which was not given")]
    MissingKey {
        /// Which key (`secret`, `kek`, `cathedral_secret`, `cathedral_cosk`).
        name: String,
    },
    /// A key of the wrong length.
    #[error("the {name} key is {actual} bytes, expected {expected}")]
    BadKey {
        /// Which key.
        name: String,
        /// Length it must have.
        expected: u32,
        /// Length it has.
        actual: u32,
    },
    /// A key of the right length whose content is unusable (a COSK whose
    /// halves do not belong together).
    #[error("the {name} key is unusable: {message}")]
    InvalidKey {
        /// Which key.
        name: String,
        /// Why.
        message: String,
    },
    /// A valid profile that this engine cannot run.
    #[error("unsupported profile: {message}")]
    Unsupported {
        /// What is not supported.
        message: String,
    },
}

impl From<ConfigError> for ProfileError {
    fn from(e: ConfigError) -> Self {
        ProfileError::MalformedConf {
            line: e.line.and_then(|l| u32::try_from(l).ok()),
            keyword: e.keyword.clone(),
            message: e.to_string(),
        }
    }
}

impl From<VicarError> for ProfileError {
    fn from(e: VicarError) -> Self {
        match e {
            VicarError::WrongLength { .. } => ProfileError::MalformedVicar {
                message: e.to_string(),
            },
            VicarError::PassphraseTooLong { .. } | VicarError::PassphraseHasNul => {
                ProfileError::InvalidPassphrase {
                    message: e.to_string(),
                }
            }
            VicarError::Integrity => ProfileError::BadPassphrase,
        }
    }
}

/// Why an engine call other than creation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum EngineError {
    /// The clock can only be moved by hand on an engine made with
    /// [`crate::Engine::with_manual_clock`].
    #[error("this engine runs on the system clock")]
    SystemClock,
}

/// An error a host callback reports back to the engine. The engine counts
/// it ([`crate::EngineStats::host_errors`]) and goes on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum HostError {
    /// The host could not do what was asked (a socket or TUN write failed).
    #[error("host failure: {message}")]
    Failed {
        /// What the host says.
        message: String,
    },
    /// The host's callback threw something uniffi could not map (a bug in
    /// the host).
    #[error("unexpected host callback error: {message}")]
    Unexpected {
        /// uniffi's description.
        message: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HostError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HostError::Unexpected { message: e.reason }
    }
}
