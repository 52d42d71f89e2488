//! Key files (files.md §2): raw binary, opened without following symlinks,
//! regular files only, the first N bytes used.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Config;
use super::error::{ConfigError, ErrorKind};
use super::types::Keyword;
use crate::secret::Secret;

/// Length of the shared secret, sync secret, cathedral secret, base KEK
/// and COSK public key files.
pub const KEY_LEN: usize = 32;
/// Length of a COSK secret key file (Ed25519 seed then public key).
pub const COSK_LEN: usize = 64;

/// Why a key file (or the remembrance file, which follows the same open
/// rules) cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Nothing at that path.
    #[error("{}: does not exist", .path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A symbolic link (key files are opened with `O_NOFOLLOW`).
    #[error("{}: is a symbolic link (key files are never read through links)", .path.display())]
    Symlink {
        /// The file.
        path: PathBuf,
    },
    /// A directory, device, socket or FIFO.
    #[error("{}: is {what}, not a regular file", .path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead ("a directory", ...).
        what: &'static str,
    },
    /// Not a directory where one is expected (`secretdir`).
    #[error("{}: is not a directory", .path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Fewer bytes than the format needs.
    #[error("{}: too short: has {have} bytes, needs {need}", .path.display())]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its size.
        have: u64,
        /// The bytes needed.
        need: usize,
    },
    /// The path was swapped for another file between the checks and the
    /// open.
    #[error("{}: was replaced while being opened", .path.display())]
    Replaced {
        /// The file.
        path: PathBuf,
    },
    /// Any other I/O error (permission denied, ...).
    #[error("{}: {}", .path.display(), io_problem(.source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// An I/O error in words, without Rust's "(os error N)" suffix where a
/// plain description exists.
pub(crate) fn io_problem(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "does not exist".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn io_error(path: &Path, e: io::Error) -> KeyFileError {
    match e.kind() {
        io::ErrorKind::NotFound => KeyFileError::Missing {
            path: path.to_owned(),
        },
        _ => KeyFileError::Io {
            path: path.to_owned(),
            source: e,
        },
    }
}

fn file_kind(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_char_device() {
            return "a character device";
        }
    }
    "a special file"
}

/// Opens `path` for reading if it is a regular file and not a symlink.
///
/// The type is checked with `lstat` before opening (so FIFOs and devices
/// are never opened) and the opened file is compared with it afterwards
/// (device and inode on Unix), which rejects a link swapped in between.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), KeyFileError> {
    let before = std::fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    if before.file_type().is_symlink() {
        return Err(KeyFileError::Symlink {
            path: path.to_owned(),
        });
    }
    if !before.is_file() {
        return Err(KeyFileError::NotRegular {
            path: path.to_owned(),
            what: file_kind(&before),
        });
    }
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let after = file.metadata().map_err(|e| io_error(path, e))?;
    if !after.is_file() || !same_file(&before, &after) {
        return Err(KeyFileError::Replaced {
            path: path.to_owned(),
        });
    }
    Ok((file, after))
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &Metadata, _: &Metadata) -> bool {
    true
}

/// Reads the first `N` bytes of the key file at `path` (files.md §2): it
/// must be a regular file, not a symlink, and at least `N` bytes long;
/// trailing bytes are ignored. The bytes go straight into the returned
/// [`Secret`] (wiped on drop, also when the read fails half-way).
pub fn load_key_file<const N: usize>(path: &Path) -> Result<Secret<N>, KeyFileError> {
    let (file, meta) = open_regular(path)?;
    let too_short = |have| KeyFileError::TooShort {
        path: path.to_owned(),
        have,
        need: N,
    };
    if meta.len() < N as u64 {
        return Err(too_short(meta.len()));
    }
    let mut key = Secret::<N>::zero();
    let mut reader = file.take(N as u64);
    let mut filled = 0usize;
    while let Some(rest) = key.expose_mut().get_mut(filled..)
        && !rest.is_empty()
    {
        match reader.read(rest) {
            Ok(0) => return Err(too_short(filled as u64)),
            Ok(n) => filled = filled.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path, e)),
        }
    }
    Ok(key)
}

/// A readable directory (`secretdir`).
fn check_dir(path: &Path) -> Result<(), KeyFileError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_dir() {
        return Err(KeyFileError::NotADirectory {
            path: path.to_owned(),
        });
    }
    std::fs::read_dir(path)
        .map(drop)
        .map_err(|e| io_error(path, e))
}

/// A readable regular file (`settings`).
fn check_readable(path: &Path) -> Result<(), KeyFileError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(KeyFileError::NotRegular {
            path: path.to_owned(),
            what: file_kind(&meta),
        });
    }
    File::open(path).map(drop).map_err(|e| io_error(path, e))
}

/// One file check of [`Config::check_files`].
enum Check {
    Key,
    Cosk,
    Dir,
    Readable,
}

/// [`Config::check_files`].
pub(crate) fn check_config_files(config: &Config) -> Result<(), ConfigError> {
    let secret = config
        .secret
        .as_deref()
        .filter(|_| config.secret_must_exist);
    let mut checks: Vec<(Keyword, &Path, Check)> = [
        (Keyword::Kek, config.kek.as_deref(), Check::Key),
        (Keyword::Secret, secret, Check::Key),
        (
            Keyword::CathedralSecret,
            config.cathedral_secret.as_deref(),
            Check::Key,
        ),
        (
            Keyword::CathedralCosk,
            config.cathedral_cosk.as_deref(),
            Check::Cosk,
        ),
        (Keyword::Secretdir, config.secretdir.as_deref(), Check::Dir),
        (
            Keyword::Settings,
            config.settings.as_deref(),
            Check::Readable,
        ),
    ]
    .into_iter()
    .filter_map(|(k, p, c)| p.map(|p| (k, p, c)))
    .collect();
    checks.sort_by_key(|(k, _, _)| config.line_of(*k));
    for (keyword, path, check) in checks {
        let result = match check {
            Check::Key => load_key_file::<KEY_LEN>(path).map(drop),
            Check::Cosk => load_key_file::<COSK_LEN>(path).map(drop),
            Check::Dir => check_dir(path),
            Check::Readable => check_readable(path),
        };
        if let Err(e) = result {
            return Err(ConfigError::about(
                config.path(),
                config.line_of(keyword),
                keyword.as_str(),
                ErrorKind::File,
                e.to_string(),
            ));
        }
    }
    Ok(())
}
