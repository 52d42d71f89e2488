//! What chapel reports to the guardian over its report pipe, and what the
//! guardian does with it: chapel holds the shared secret but no file
//! access; the guardian (root, outside any sandbox) writes the files.
//!
//! * A new shared secret unwrapped from an ambry (behaviour.md §7.2): the
//!   guardian writes `<secret>.new` (0600) and renames it over `secret`
//!   (files.md §2), so the next start of the tunnel uses it.
//! * A remembrance list: the guardian writes the 192-byte
//!   `cathedral_remembrance` file (0400, files.md §6) the same way.
//!
//! Messages are one byte of type then a fixed-size body, each written with
//! one `write(2)` below `PIPE_BUF`, so they arrive whole; the reader still
//! buffers partial reads. Nothing here logs a secret.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chantry_core::cathedral::REMEMBRANCE_FILE_LEN;
use chantry_core::secret::Key32;
use zeroize::{Zeroize, Zeroizing};

/// Type byte: an ambry was installed.
const AMBRY: u8 = 1;
/// Type byte: a remembrance list arrived.
const REMEMBRANCE: u8 = 2;
/// Body of [`AMBRY`]: generation (BE32) then the secret.
const AMBRY_LEN: usize = 4 + 32;

/// One report.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// A shared secret unwrapped from an ambry of `generation`.
    Ambry {
        /// The bundle generation.
        generation: u32,
        /// The new shared secret.
        secret: Key32,
    },
    /// The cathedral list, as the file's 192 bytes.
    Remembrance(Box<[u8; REMEMBRANCE_FILE_LEN]>),
}

/// A malformed report stream (a bug or a compromised chapel).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    /// An unknown type byte.
    #[error("unknown report type {0}")]
    UnknownType(u8),
}

impl Report {
    /// The wire bytes of this report.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(1 + REMEMBRANCE_FILE_LEN));
        match self {
            Report::Ambry { generation, secret } => {
                v.push(AMBRY);
                v.extend_from_slice(&generation.to_be_bytes());
                v.extend_from_slice(secret.expose());
            }
            Report::Remembrance(file) => {
                v.push(REMEMBRANCE);
                v.extend_from_slice(&file[..]);
            }
        }
        v
    }

    /// Writes this report to the pipe with one `write(2)`.
    pub fn send(&self, pipe: &mut std::fs::File) -> std::io::Result<()> {
        pipe.write_all(&self.encode())
    }
}

/// The guardian's end: buffers bytes and yields whole reports.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Zeroizing<Vec<u8>>,
}

impl Reader {
    /// Appends bytes read from the pipe.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole report, if one is buffered.
    pub fn next_report(&mut self) -> Result<Option<Report>, ReportError> {
        let Some(&kind) = self.buf.first() else {
            return Ok(None);
        };
        let body = match kind {
            AMBRY => AMBRY_LEN,
            REMEMBRANCE => REMEMBRANCE_FILE_LEN,
            other => {
                self.buf.zeroize();
                self.buf.clear();
                return Err(ReportError::UnknownType(other));
            }
        };
        if self.buf.len() < 1 + body {
            return Ok(None);
        }
        let report = if kind == AMBRY {
            let generation =
                u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&self.buf[5..1 + AMBRY_LEN]);
            Report::Ambry {
                generation,
                secret: Key32::new(*k),
            }
        } else {
            let mut f = Box::new([0u8; REMEMBRANCE_FILE_LEN]);
            f.copy_from_slice(&self.buf[1..1 + REMEMBRANCE_FILE_LEN]);
            Report::Remembrance(f)
        };
        self.buf[..1 + body].zeroize();
        self.buf.drain(..1 + body);
        Ok(Some(report))
    }
}

/// Where the guardian writes what chapel reports.
#[derive(Clone, Debug, Default)]
pub struct ReportFiles {
    /// The `secret` path (rewritten from ambries).
    pub secret: Option<PathBuf>,
    /// The `cathedral_remembrance` path.
    pub remembrance: Option<PathBuf>,
}

/// Reads what is available on the (non-blocking) report pipe into
/// `reader`. Returns false once chapel's end is closed.
pub fn drain(pipe: BorrowedFd<'_>, reader: &mut Reader) -> bool {
    let mut f = match pipe.try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => return false,
    };
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        match f.read(&mut chunk[..]) {
            Ok(0) => return false,
            Ok(n) => reader.push(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Writes `bytes` to `path` atomically: `<path>.new` (removed first if a
/// stale one exists) with `mode`, fsync, rename over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl ReportFiles {
    /// Acts on one report: writes the file it is about. Errors are
    /// returned for the caller to log; the tunnel runs on regardless
    /// (chapel already uses the new secret).
    pub fn apply(&self, report: &Report) -> std::io::Result<Option<&Path>> {
        match report {
            Report::Ambry { secret, .. } => match &self.secret {
                Some(p) => write_atomically(p, secret.expose(), 0o600).map(|()| Some(p.as_path())),
                None => Ok(None),
            },
            Report::Remembrance(file) => match &self.remembrance {
                Some(p) => write_atomically(p, &file[..], 0o400).map(|()| Some(p.as_path())),
                None => Ok(None),
            },
        }
    }
}

/// A pipe whose read end the guardian keeps (non-blocking) and whose
/// write end goes to chapel.
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(
        r.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok((r, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_partial_reads() {
        let a = Report::Ambry {
            generation: 0xdead_beef,
            secret: Key32::new([7; 32]),
        };
        let mut file = Box::new([0u8; REMEMBRANCE_FILE_LEN]);
        file[0] = 10;
        let b = Report::Remembrance(file);
        let mut bytes = a.encode().to_vec();
        bytes.extend_from_slice(&b.encode());
        let mut r = Reader::default();
        for chunk in bytes.chunks(5) {
            r.push(chunk);
        }
        assert_eq!(r.next_report().unwrap(), Some(a));
        assert_eq!(r.next_report().unwrap(), Some(b));
        assert_eq!(r.next_report().unwrap(), None);
        r.push(&[9, 1, 2]);
        assert_eq!(r.next_report(), Err(ReportError::UnknownType(9)));
        assert_eq!(r.next_report().unwrap(), None);
    }

    #[test]
    fn random_bytes_never_panic_the_reader() {
        use chantry_core::entropy::{Entropy, SeededEntropy};
        let mut rng = SeededEntropy::from_u64(11);
        for _ in 0..2000 {
            let mut r = Reader::default();
            let mut bytes = vec![0u8; (rng.next_u32() % 600) as usize];
            rng.fill(&mut bytes);
            if let Some(b) = bytes.first_mut() {
                *b = (*b % 3) + 1;
            }
            r.push(&bytes);
            for _ in 0..10 {
                if !matches!(r.next_report(), Ok(Some(_))) {
                    break;
                }
            }
        }
    }

    #[test]
    fn files_are_replaced_atomically_with_their_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("chantry-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = ReportFiles {
            secret: Some(dir.join("secret")),
            remembrance: Some(dir.join("remembrance")),
        };
        std::fs::write(dir.join("secret"), [1u8; 32]).unwrap();
        std::fs::write(dir.join("secret.new"), b"stale").unwrap();
        let a = Report::Ambry {
            generation: 1,
            secret: Key32::new([2; 32]),
        };
        files.apply(&a).unwrap();
        assert_eq!(std::fs::read(dir.join("secret")).unwrap(), [2u8; 32]);
        assert!(!dir.join("secret.new").exists());
        let mode = std::fs::metadata(dir.join("secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let rem = Report::Remembrance(Box::new([3u8; REMEMBRANCE_FILE_LEN]));
        files.apply(&rem).unwrap();
        // A second list replaces the read-only file.
        files.apply(&rem).unwrap();
        let mode = std::fs::metadata(dir.join("remembrance"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
        assert_eq!(
            std::fs::read(dir.join("remembrance")).unwrap().len(),
            REMEMBRANCE_FILE_LEN
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
