//! The asking side ([`query`], used by `chantryctl status`) and the
//! guardian's binding of the control socket ([`bind_control_socket`]).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{ControlError, STATUS_LEN, STATUS_REQUEST, Status};

/// Longest path a Linux `sockaddr_un` holds (108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Mode of both the control socket and the client's reply socket, as in
/// the reference: only the owner may send to it.
const SOCKET_MODE: u32 = 0o700;

/// How many unique names [`query`] tries before giving up on binding its
/// reply socket (a name is only taken if another process chose the same
/// pid, counter and nanosecond, or left a file behind).
const BIND_ATTEMPTS: u32 = 8;

/// Counter that keeps reply socket names of one process apart.
static NEXT_CLIENT: AtomicU32 = AtomicU32::new(0);

/// Asks the control socket at `control_path` for the tunnel's status and
/// waits up to `timeout` for the reply.
///
/// Binds a reply socket of its own under the temporary directory (unique
/// name, mode 0700, removed again before returning), sends the one-byte
/// STATUS request and returns the first 88-byte datagram that arrives;
/// datagrams of any other size are skipped. When run as root and the
/// control socket belongs to another user, the reply socket is given to
/// that user, so that the control role (which runs as the socket's owner)
/// may send to it.
pub fn query(control_path: &Path, timeout: Duration) -> Result<Status, ControlError> {
    query_via(&reply_dir(), control_path, timeout)
}

/// [`query`] with the reply socket bound in `dir`.
pub(super) fn query_via(
    dir: &Path,
    control_path: &Path,
    timeout: Duration,
) -> Result<Status, ControlError> {
    check_length(control_path)?;
    let reply = ReplySocket::bind(dir)?;
    reply.hand_to_owner_of(control_path)?;

    reply
        .sock
        .send_to(&[STATUS_REQUEST], control_path)
        .map_err(|error| ControlError::Send {
            path: control_path.to_owned(),
            error,
        })?;

    let no_answer = || ControlError::NoAnswer {
        path: control_path.to_owned(),
        timeout,
    };
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; STATUS_LEN + 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(no_answer());
        }
        reply
            .sock
            .set_read_timeout(Some(left))
            .map_err(ControlError::Receive)?;
        match reply.sock.recv(&mut buf) {
            Ok(STATUS_LEN) => return Status::decode(&buf[..STATUS_LEN]),
            Ok(len) => tracing::debug!(len, "skipping a datagram that is not a status reply"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(no_answer());
            }
            Err(e) => return Err(ControlError::Receive(e)),
        }
    }
}

/// Binds the control socket at `path`, as the guardian does before it
/// starts the control role: removes a stale socket left there (but nothing
/// that is not a socket), binds, sets mode 0700 as the reference does,
/// gives it to `owner` (uid, gid) if given (the control role's user), and
/// makes it non-blocking. On failure after binding the socket file is
/// removed again.
pub fn bind_control_socket(
    path: &Path,
    owner: Option<(u32, u32)>,
) -> Result<UnixDatagram, ControlError> {
    check_length(path)?;
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path).map_err(|source| io_error("unlink", path, source))?;
        }
        Ok(_) => {
            return Err(ControlError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("stat", path, source)),
    }
    let sock = UnixDatagram::bind(path).map_err(|source| io_error("bind", path, source))?;
    let finish = || -> Result<(), ControlError> {
        fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(|source| io_error("chmod", path, source))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .map_err(|source| io_error("chown", path, source))?;
        }
        sock.set_nonblocking(true)
            .map_err(|source| io_error("set non-blocking", path, source))
    };
    if let Err(e) = finish() {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(sock)
}

/// The client's own socket, bound to a unique path that is removed when
/// it is dropped.
#[derive(Debug)]
struct ReplySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

impl ReplySocket {
    /// Binds a fresh, uniquely named socket with mode 0700 in `dir`.
    fn bind(dir: &Path) -> Result<ReplySocket, ControlError> {
        let mut last_error = None;
        for _ in 0..BIND_ATTEMPTS {
            let path = dir.join(unique_name());
            match UnixDatagram::bind(&path) {
                Ok(sock) => {
                    let reply = ReplySocket { sock, path };
                    fs::set_permissions(&reply.path, fs::Permissions::from_mode(SOCKET_MODE))
                        .map_err(|source| io_error("chmod", &reply.path, source))?;
                    return Ok(reply);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some((path, e)),
                Err(source) => return Err(io_error("bind", &path, source)),
            }
        }
        let (path, source) =
            last_error.unwrap_or_else(|| (dir.to_owned(), io::ErrorKind::AddrInUse.into()));
        Err(io_error("bind", &path, source))
    }

    /// Gives the reply socket to the owner of the control socket when we
    /// are root and that owner is someone else; otherwise leaves it ours.
    fn hand_to_owner_of(&self, control_path: &Path) -> Result<(), ControlError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        // A missing control socket is reported by the send that follows.
        let Ok(meta) = fs::metadata(control_path) else {
            return Ok(());
        };
        if meta.uid() == 0 {
            return Ok(());
        }
        std::os::unix::fs::lchown(&self.path, Some(meta.uid()), Some(meta.gid()))
            .map_err(|source| io_error("chown", &self.path, source))
    }
}

impl Drop for ReplySocket {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not remove reply socket");
        }
    }
}

/// Directory for reply sockets: the temporary directory, or `/tmp` if its
/// path is too long to leave room for a socket name.
fn reply_dir() -> PathBuf {
    let dir = std::env::temp_dir();
    if dir.as_os_str().len() + 1 + 48 <= MAX_SOCKET_PATH {
        dir
    } else {
        PathBuf::from("/tmp")
    }
}

/// `chantryctl.<pid>.<counter>.<nanoseconds>`: unique per process and call.
fn unique_name() -> String {
    let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("chantryctl.{}.{n}.{nanos}", std::process::id())
}

/// Refuses paths `sockaddr_un` cannot hold.
fn check_length(path: &Path) -> Result<(), ControlError> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(ControlError::PathTooLong {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Wraps an OS error of call `op` on `path`.
fn io_error(op: &'static str, path: &Path, error: io::Error) -> ControlError {
    ControlError::Io {
        op,
        path: path.to_owned(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_socket_is_private_and_follows_the_control_sockets_owner() {
        let dir = std::env::temp_dir().join(format!("chantry-ctl-{}-reply", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let control = dir.join("control");
        let owner = nix::unistd::geteuid().is_root().then_some((65534, 65533));
        let _sock = bind_control_socket(&control, owner).unwrap();

        let reply = ReplySocket::bind(&dir).unwrap();
        let meta = fs::symlink_metadata(&reply.path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        reply.hand_to_owner_of(&control).unwrap();
        let meta = fs::symlink_metadata(&reply.path).unwrap();
        match owner {
            Some((uid, gid)) => assert_eq!((meta.uid(), meta.gid()), (uid, gid)),
            None => assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw()),
        }
        let path = reply.path.clone();
        drop(reply);
        assert!(
            fs::symlink_metadata(&path).is_err(),
            "reply socket left behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reply_socket_names_differ() {
        assert_ne!(unique_name(), unique_name());
        assert!(unique_name().starts_with(&format!("chantryctl.{}.", std::process::id())));
    }
}
